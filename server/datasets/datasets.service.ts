import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { CatalogService } from '../catalog/catalog.service.js';
import type { SlideRelease } from '../catalog/slide-release.js';
import type { CatalogFilter } from '../catalog/filter.js';
import { writeFileAtomic } from '../lib/files.js';
import { DatasetNameTaken, VersionTaken, type DatasetsRepository, type MemberSlide } from './datasets.repository.js';
import { summariseDataset } from './overview.js';
import type { DatasetSummary } from './views.js';
import type { Dataset, Release, ReleasedSlide, Withdrawal } from './release.js';

/** A refusal with its reason, for the CLI (exit 1) and later the portal (409/400). */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

/** What a dataset may be called; a name that is not one names no dataset. */
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$/;
/** Slides one `add` by filter takes at most: beyond, the curator narrows the filter and adds in parts. */
export const MAX_ADDED_BY_FILTER = 10_000;

export interface DatasetsSettings {
  /** The slide store: relative file paths are under it. */
  slidesDir: string;
  /** Where releases keep their annotation files: `<paths.data>/releases`. */
  releasesDir: string;
  /** Slides one `add` by filter takes at most (default MAX_ADDED_BY_FILTER). */
  maxAddedByFilter?: number;
}

/** A slide of a release that its bags now leave out, and why. */
export interface WithheldSlide {
  slide: ReleasedSlide;
  reason: string;
  /** When it was withdrawn, when that is known. */
  withdrawnAt: Date | null;
}

/**
 * Curators' datasets: a named working set of published slides, frozen into
 * immutable releases. A release copies each annotation aside, so a later edit
 * of an annotation does not change what an old version exports; the slide
 * files themselves never change after ingest and are pinned by SHA-256.
 */
export class DatasetsService {
  constructor(
    private readonly repository: DatasetsRepository,
    /** For additions by filter: the published slides the catalog search shows for it. */
    private readonly catalog: Pick<CatalogService, 'publishedIds'>,
    /** Whether a slide's bytes may still leave this site: a release is served without those that may not. */
    private readonly slideRelease: Pick<SlideRelease, 'withheld'>,
    private readonly settings: DatasetsSettings,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(name: string, description: string | null = null): Promise<Dataset> {
    if (!DATASET_NAME.test(name)) throw new DatasetError(`"${name}" is not a dataset name: use letters, digits, ".", "_" and "-" (at most 100, starting with a letter or digit)`);
    try {
      return await this.repository.create(name, description, this.clock());
    } catch (error) {
      if (error instanceof DatasetNameTaken) throw new DatasetError(`a dataset named ${name} exists already`);
      throw error;
    }
  }

  async get(name: string): Promise<Dataset> {
    const dataset = await this.repository.findByName(name);
    if (!dataset) throw new DatasetError(`there is no dataset named ${name} (see dataset list)`);
    return dataset;
  }

  list(): ReturnType<DatasetsRepository['list']> {
    return this.repository.list();
  }

  /** Every dataset with its releases and withdrawals counted, for the portal. */
  async overview(): Promise<DatasetSummary[]> {
    const summaries: DatasetSummary[] = [];
    for (const dataset of await this.repository.list()) {
      const releases = await this.repository.releases(dataset);
      const withheld = new Map<number, number>();
      for (const release of releases) withheld.set(release.id, (await this.withheld(release)).length);
      summaries.push(summariseDataset(dataset, releases, await this.repository.withdrawals(dataset.id), withheld));
    }
    return summaries;
  }

  /** Add slides by id, or every published slide a catalog filter matches. Returns how many were new to the dataset. */
  async add(name: string, selection: { slides: number[] } | { filter: CatalogFilter }): Promise<{ added: number; total: number }> {
    const dataset = await this.get(name);
    const ids = 'slides' in selection ? [...new Set(selection.slides)] : await this.matching(selection.filter);
    if (ids.length === 0) throw new DatasetError('nothing was selected: no slide matches');
    const found = new Map((await this.repository.slides(ids)).map((s) => [s.id, s]));
    const withdrawn = new Map((await this.repository.withdrawals(dataset.id)).map((w) => [w.slideId, w]));
    for (const id of ids) {
      const slide = found.get(id);
      if (!slide) throw new DatasetError(`there is no slide ${id}; nothing was added`);
      if (slide.status !== 'published') throw new DatasetError(`slide ${id} (${slide.name}) is ${slide.status}, not published; nothing was added`);
      const withdrawal = withdrawn.get(id);
      if (withdrawal) throw new DatasetError(`slide ${id} (${slide.name}) was withdrawn from ${name} (${withdrawal.reason}); nothing was added`);
    }
    const added = await this.repository.addMembers(dataset.id, ids, this.clock());
    return { added, total: (await this.repository.memberIds(dataset.id)).length };
  }

  /** Freeze the working set as `version`. */
  async release(name: string, version: string, createdBy: string): Promise<Release> {
    if (!VERSION.test(version)) throw new DatasetError(`"${version}" is not a version: use letters, digits, ".", "_", "+" and "-" (at most 50)`);
    const dataset = await this.get(name);
    if (await this.repository.findRelease(dataset, version)) throw new DatasetError(`${name} has a release ${version} already; releases never change, choose a new version`);
    const members = await this.repository.slides(await this.repository.memberIds(dataset.id));
    if (members.length === 0) throw new DatasetError(`${name} has no slides to release (dataset add ${name} --slides …)`);
    const withdrawn = new Set((await this.repository.withdrawals(dataset.id)).map((w) => w.slideId));
    const releaseDir = this.releaseDir(dataset, version);
    await rm(releaseDir, { recursive: true, force: true });
    try {
      const slides: ReleasedSlide[] = [];
      for (const member of members) slides.push(await this.freeze(member, withdrawn, releaseDir));
      await this.repository.createRelease(dataset.id, version, createdBy, slides, this.clock());
    } catch (error) {
      await rm(releaseDir, { recursive: true, force: true });
      if (error instanceof VersionTaken) throw new DatasetError(`${name} has a release ${version} already (made at the same moment)`);
      throw error;
    }
    return (await this.repository.findRelease(dataset, version))!;
  }

  async withdraw(name: string, slideId: number, reason: string): Promise<Withdrawal> {
    const dataset = await this.get(name);
    if (reason.trim() === '') throw new DatasetError('a withdrawal needs a reason (--reason)');
    const releases = await this.repository.releases(dataset);
    const members = await this.repository.memberIds(dataset.id);
    const lastRelease = [...releases].reverse().find((r) => r.slides.some((s) => s.id === slideId));
    if (!members.includes(slideId) && !lastRelease) throw new DatasetError(`slide ${slideId} is not in ${name}`);
    if ((await this.repository.withdrawals(dataset.id)).some((w) => w.slideId === slideId)) throw new DatasetError(`slide ${slideId} was withdrawn from ${name} already`);
    const [slide] = await this.repository.slides([slideId]);
    const slideName = slide?.name ?? lastRelease?.slides.find((s) => s.id === slideId)?.name ?? String(slideId);
    await this.repository.withdraw(dataset.id, { id: slideId, name: slideName }, lastRelease?.id ?? null, reason.trim(), this.clock());
    return (await this.repository.withdrawals(dataset.id)).find((w) => w.slideId === slideId)!;
  }

  async findRelease(name: string, version: string): Promise<Release> {
    const dataset = await this.get(name);
    const release = await this.repository.findRelease(dataset, version);
    if (!release) {
      const versions = (await this.repository.releases(dataset)).map((r) => r.version);
      throw new DatasetError(`${name} has no release ${version}${versions.length ? ` (it has ${versions.join(', ')})` : ' (it has none yet)'}`);
    }
    return release;
  }

  async withdrawals(name: string): Promise<Withdrawal[]> {
    return this.repository.withdrawals((await this.get(name)).id);
  }

  /**
   * The slides of a release that its bags leave out now: those withdrawn
   * from the dataset after the release, and those whose bytes may no longer
   * leave this site at all (withdrawn from the catalog; see SlideRelease).
   * A release stays immutable; what is served of it shrinks.
   */
  async withheld(release: Release): Promise<WithheldSlide[]> {
    const fromDataset = new Map((await this.repository.withdrawals(release.datasetId)).map((w) => [w.slideId, w]));
    const fromSite = await this.slideRelease.withheld(release.slides.map((s) => s.id));
    const withheld: WithheldSlide[] = [];
    for (const slide of release.slides) {
      const site = fromSite.get(slide.id);
      const dataset = fromDataset.get(slide.id);
      if (site) withheld.push({ slide, reason: site.reason ?? (site.status === null ? 'no longer in the catalog' : `the slide is ${site.status}`), withdrawnAt: site.at });
      else if (dataset) withheld.push({ slide, reason: dataset.reason, withdrawnAt: dataset.createdAt });
    }
    return withheld;
  }

  /** The stored file of a released slide, checked against the release: the catalog's checksum and the file's size. */
  async slideFile(released: ReleasedSlide): Promise<string> {
    const [slide] = await this.repository.slides([released.id]);
    if (!slide || slide.name !== released.name) throw new DatasetError(`slide ${released.id} (${released.name}) is no longer in the catalog`);
    if (slide.sha256 !== released.sha256) throw new DatasetError(`the file of slide ${released.id} (${released.name}) is not the one released (its SHA-256 changed)`);
    return this.storePath(slide.filePath);
  }

  /** Where a release keeps its annotation files. */
  releaseDir(dataset: { id: number }, version: string): string {
    return path.join(this.settings.releasesDir, String(dataset.id), version);
  }

  /** The stored file a relative catalog path names. */
  storePath(stored: string): string {
    return path.isAbsolute(stored) ? stored : path.join(this.settings.slidesDir, stored);
  }

  private async freeze(member: MemberSlide, withdrawn: Set<number>, releaseDir: string): Promise<ReleasedSlide> {
    if (member.status !== 'published') throw new DatasetError(`slide ${member.id} (${member.name}) is ${member.status}; a release holds published slides only`);
    if (withdrawn.has(member.id)) throw new DatasetError(`slide ${member.id} (${member.name}) was withdrawn from this dataset`);
    if (member.sha256 === null) throw new DatasetError(`slide ${member.id} (${member.name}) has no recorded SHA-256; ingest records one`);
    const file = this.storePath(member.filePath);
    const size = await stat(file).then((s) => s.size, () => undefined);
    if (size !== member.fileSize) throw new DatasetError(`the file of slide ${member.id} (${member.name}) is ${size === undefined ? 'missing' : `${size} bytes, not ${member.fileSize}`}`);
    let annotation: ReleasedSlide['annotation'] = null;
    if (member.annotationPath !== null) {
      const xml = await readFile(this.storePath(member.annotationPath));
      const fileName = `${member.name}.xml`;
      await mkdir(releaseDir, { recursive: true });
      await writeFileAtomic(path.join(releaseDir, fileName), xml);
      annotation = { fileName, size: xml.length, sha256: createHash('sha256').update(xml).digest('hex') };
    }
    return {
      id: member.id,
      name: member.name,
      fileName: `${member.name}${path.extname(member.filePath).toLowerCase() || '.svs'}`,
      size: member.fileSize,
      sha256: member.sha256,
      annotation,
      metadata: member.metadata,
      facts: member.facts,
      annotationSummary: member.annotationSummary,
    };
  }

  private async matching(filter: CatalogFilter): Promise<number[]> {
    const max = this.settings.maxAddedByFilter ?? MAX_ADDED_BY_FILTER;
    const { ids, total } = await this.catalog.publishedIds(filter, max);
    if (ids === null) throw new DatasetError(`the filter matches ${total} slides; one add takes at most ${max}: narrow the filter and add in parts; nothing was added`);
    return ids;
  }
}

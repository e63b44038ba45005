import { createHash, randomBytes } from 'node:crypto';
import { copyFile, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { BagError, tagValue, validateBag, type TrustedKey, type ValidatedBag } from '../bagit/index.js';
import { readSlideFacts } from '../catalog/slide-facts.js';
import { writeThumbnails } from '../catalog/thumbnails.js';
import type { Logger } from '../logging.js';
import { METADATA_SCHEMA_VERSION, WITHDRAWN_TAG_FILE, type BagMetadata, type BagSlide, type WithdrawnSlideNotice } from './bag-contents.js';
import type { ImportChanges, ImportsRepository, LocalSlide } from './imports.repository.js';

/** A bag refused before anything changed, with the file at fault when there is one. */
export class ImportError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = 'ImportError';
  }
}

export interface ImportSettings {
  slidesDir: string;
  thumbnailsDir: string;
  trustedKeys: readonly TrustedKey[];
  log: Logger;
}

export interface ImportProgress {
  stage: 'verifying' | 'copying';
  done: number;
  total: number;
}

export interface ImportResult {
  site: string;
  dataset: string;
  version: string;
  since: string | null;
  added: string[];
  /** Slides of the release the mirror had already, byte for byte. */
  present: number;
  annotationsUpdated: string[];
  withdrawn: string[];
  /** Files of catalogued slides that were missing from the store (an import interrupted after its commit) and were put back. */
  repaired: string[];
  nothingToDo: boolean;
}

interface Staged {
  temp: string;
  final: string;
}

/** What a mirror that already has a release learns from a fresh bag of it: the slides withdrawn at the source since. */
export interface WithdrawalsResult {
  site: string;
  dataset: string;
  version: string;
  withdrawn: string[];
}

interface VerifiedExport {
  bags: ValidatedBag[];
  metadata: BagMetadata;
  /** The withdrawal notice's slides (none when the bag has no notice). */
  notices: WithdrawnSlideNotice[];
}

const NOTICE = z.strictObject({
  schemaVersion: z.literal(METADATA_SCHEMA_VERSION),
  withdrawn: z.array(
    z.strictObject({
      name: z.string().min(1).max(200),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      reason: z.string().max(2000),
      withdrawnAt: z.string().max(40).nullable(),
    }),
  ),
});

/**
 * `slidebank import BAG…`: verify the whole bag (structure, Payload-Oxum,
 * the signature against mirror.trustedKeys, every checksum) before touching
 * anything; then copy the new files into the slide store under temporary
 * names, change the catalog in one transaction, and only after it commits
 * rename the files into place. A failure before the commit removes the
 * temporary files, so catalog and store are as they were.
 */
export class ImportService {
  constructor(
    private readonly repository: ImportsRepository,
    private readonly settings: ImportSettings,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async import(bagDirs: readonly string[], onProgress?: (progress: ImportProgress) => void): Promise<ImportResult> {
    if (this.settings.trustedKeys.length === 0) {
      throw new ImportError('no partner keys are trusted: add the exporting site\'s key to mirror.trustedKeys (its GET /api/site shows it)');
    }
    const { bags, metadata, notices } = await this.verify(bagDirs, { onProgress });
    const site = bags[0]!.signedBy!.name;
    const files = new Map<string, string>();
    for (const bag of bags) for (const p of bag.payload) files.set(p.path.slice('data/'.length), path.join(bag.dir, ...p.path.split('/')));

    const local = await this.repository.slidesByName(metadata.slides.map((s) => s.name));
    const plan = await this.plan(metadata, notices, files, local);
    const already = await this.repository.imported(site, metadata.dataset, metadata.version);
    const result: ImportResult = {
      site,
      dataset: metadata.dataset,
      version: metadata.version,
      since: metadata.since,
      added: plan.add.map((s) => s.name),
      present: metadata.slides.length - plan.add.length,
      annotationsUpdated: plan.annotations.map((a) => a.slide.name),
      withdrawn: plan.withdraw.map((w) => w.slide.name),
      repaired: plan.repair.map((r) => r.slide.name),
      nothingToDo: false,
    };
    if (plan.add.length + plan.annotations.length + plan.withdraw.length + plan.repair.length === 0 && already) {
      return { ...result, nothingToDo: true };
    }

    const staged: Staged[] = [];
    const cleanup = () => Promise.all(staged.map((s) => rm(s.temp, { force: true })));
    let facts: Map<string, BagSlide['facts']>;
    try {
      const toCopy = [
        ...plan.add.flatMap((s) => [{ from: files.get(s.file)!, to: s.fileName, size: s.size }, ...(s.annotation ? [{ from: files.get(s.annotation.xml)!, to: `${s.name}.xml`, size: s.annotation.size }] : [])]),
        ...plan.annotations.map((a) => ({ from: files.get(a.slide.annotation!.xml)!, to: `${a.slide.name}.xml`, size: a.slide.annotation!.size })),
        ...plan.repair.map((r) => ({ from: files.get(r.slide.file)!, to: r.slide.fileName, size: r.slide.size })),
      ];
      const total = toCopy.reduce((sum, c) => sum + c.size, 0);
      let done = 0;
      for (const copy of toCopy) {
        const final = path.join(this.settings.slidesDir, copy.to);
        const temp = path.join(this.settings.slidesDir, `.import-${randomBytes(6).toString('hex')}-${copy.to}.partial`);
        staged.push({ temp, final });
        await copyFile(copy.from, temp);
        done += copy.size;
        onProgress?.({ stage: 'copying', done, total });
      }
      facts = new Map();
      for (const slide of plan.add) {
        const temp = staged.find((s) => s.final === path.join(this.settings.slidesDir, slide.fileName))!.temp;
        try {
          facts.set(slide.name, await readSlideFacts(temp));
        } catch (error) {
          throw new ImportError(`data/${slide.file} is not a readable slide: ${(error as Error).message}`, `data/${slide.file}`);
        }
      }
      const changes: ImportChanges = {
        add: plan.add.map((slide) => ({ slide, filePath: slide.fileName, annotationPath: slide.annotation ? `${slide.name}.xml` : null, facts: facts.get(slide.name)! })),
        annotations: plan.annotations.map((a) => ({ slideId: a.local.id, annotationPath: `${a.slide.name}.xml`, summary: a.slide.annotationSummary })),
        withdraw: plan.withdraw.map((w) => ({ slideId: w.local.id, reason: w.reason })),
        provenance: {
          site,
          key: bags[0]!.signedBy!.publicKey,
          dataset: metadata.dataset,
          version: metadata.version,
          since: metadata.since,
          summary: { added: result.added, annotationsUpdated: result.annotationsUpdated, withdrawn: result.withdrawn },
        },
      };
      const ids = await this.repository.apply(changes, this.clock());
      // Committed: from here on the files go into place; a crash now leaves rows whose files a re-run repairs.
      for (const s of staged) await rename(s.temp, s.final);
      staged.length = 0;
      for (const [name, id] of ids) {
        const slide = plan.add.find((s) => s.name === name)!;
        await writeThumbnails(path.join(this.settings.slidesDir, slide.fileName), this.settings.thumbnailsDir, id).catch((error: unknown) =>
          this.settings.log.warn({ slide: id, err: error }, 'import: thumbnails could not be made'),
        );
      }
    } catch (error) {
      await cleanup();
      throw error;
    }
    return result;
  }

  /**
   * Only the withdrawals of a partner's bag, for a release this site has
   * already imported (`slidebank mirror` when it is up to date): the bag's
   * structure, signature and the payload it carries are verified, the slides
   * its fetch.txt lists are not fetched, and the slides here that the bag
   * names as withdrawn are withdrawn, in one transaction, audited.
   */
  async applyWithdrawals(bagDir: string): Promise<WithdrawalsResult> {
    if (this.settings.trustedKeys.length === 0) {
      throw new ImportError('no partner keys are trusted: add the exporting site\'s key to mirror.trustedKeys (its GET /api/site shows it)');
    }
    const { bags, metadata, notices } = await this.verify([bagDir], { allowHoles: true });
    const site = bags[0]!.signedBy!.name;
    const withdraw = await this.withdrawals(metadata, notices);
    if (withdraw.length > 0) await this.repository.withdraw(withdraw.map((w) => ({ slideId: w.local.id, reason: w.reason })), site, this.clock());
    return { site, dataset: metadata.dataset, version: metadata.version, withdrawn: withdraw.map((w) => w.slide.name) };
  }

  importedVersions(dataset: string): Promise<string[]> {
    return this.repository.importedVersions(dataset);
  }

  private async verify(bagDirs: readonly string[], options: { onProgress?: (progress: ImportProgress) => void; allowHoles?: boolean }): Promise<VerifiedExport> {
    if (bagDirs.length === 0) throw new ImportError('name the bag to import');
    const { onProgress, allowHoles = false } = options;
    const bags: ValidatedBag[] = [];
    for (const dir of bagDirs) {
      try {
        bags.push(await validateBag(dir, { trustedKeys: this.settings.trustedKeys, allowHoles, onProgress: (done, total) => onProgress?.({ stage: 'verifying', done, total }) }));
      } catch (error) {
        if (error instanceof BagError) throw new ImportError(`${dir}: ${error.message}; nothing was imported`, error.file);
        throw error;
      }
    }
    const texts = await Promise.all(bags.map((b) => readFile(path.join(b.dir, 'data', 'metadata.json'), 'utf8').catch(() => undefined)));
    if (texts.some((t) => t === undefined)) throw new ImportError('data/metadata.json is missing: this is not a Slidebank export', 'data/metadata.json');
    if (new Set(texts).size > 1) throw new ImportError('the bags carry different data/metadata.json files: they are not parts of one export', 'data/metadata.json');
    let metadata: BagMetadata;
    try {
      metadata = JSON.parse(texts[0]!) as BagMetadata;
    } catch {
      throw new ImportError('data/metadata.json is not JSON', 'data/metadata.json');
    }
    if (metadata.schemaVersion !== METADATA_SCHEMA_VERSION) {
      throw new ImportError(`data/metadata.json has schema version ${String(metadata.schemaVersion)}; this Slidebank reads version ${METADATA_SCHEMA_VERSION}`, 'data/metadata.json');
    }
    const signers = new Set(bags.map((b) => b.signedBy!.publicKey));
    if (signers.size > 1) throw new ImportError('the bags were signed by different sites');
    const counts = bags.map((b) => tagValue(b.info, 'Bag-Count'));
    const expected = counts[0] === undefined ? 1 : Number(/of\s+(\d+)/.exec(counts[0])?.[1] ?? 1);
    const indexes = new Set(counts.map((c) => (c === undefined ? 1 : Number(/^(\d+)/.exec(c)?.[1]))));
    if (indexes.size !== bags.length || bags.length !== expected) {
      throw new ImportError(`this export is a group of ${expected} bags; give all of them (got ${bags.length}: ${[...counts].map((c) => c ?? '1 of 1').join(', ')})`);
    }
    const notices = await this.withdrawnNotices(bags);
    const listed = new Set(metadata.slides.map((s) => s.name));
    const contradicted = notices.find((n) => listed.has(n.name));
    if (contradicted) throw new ImportError(`${WITHDRAWN_TAG_FILE} names ${contradicted.name} as withdrawn, but data/metadata.json lists it`, WITHDRAWN_TAG_FILE);
    return { bags, metadata, notices };
  }

  /**
   * The tag file that names the release's slides withdrawn at the source
   * since (see bag-contents.ts). Trusted only when the signed tag manifest
   * lists it: a notice the signature does not cover refuses the bag.
   */
  private async withdrawnNotices(bags: readonly ValidatedBag[]): Promise<WithdrawnSlideNotice[]> {
    const texts: (string | undefined)[] = [];
    for (const bag of bags) {
      const text = await readFile(path.join(bag.dir, WITHDRAWN_TAG_FILE), 'utf8').catch(() => undefined);
      if (text !== undefined && !bag.tagFiles.includes(WITHDRAWN_TAG_FILE)) {
        throw new ImportError(`${WITHDRAWN_TAG_FILE} is not listed in tagmanifest-sha256.txt, so the signature does not vouch for it; nothing was imported`, WITHDRAWN_TAG_FILE);
      }
      texts.push(text);
    }
    if (new Set(texts).size > 1) throw new ImportError(`the bags carry different ${WITHDRAWN_TAG_FILE} files: they are not parts of one export`, WITHDRAWN_TAG_FILE);
    if (texts[0] === undefined) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(texts[0]);
    } catch {
      throw new ImportError(`${WITHDRAWN_TAG_FILE} is not JSON`, WITHDRAWN_TAG_FILE);
    }
    const notice = NOTICE.safeParse(parsed);
    if (!notice.success) throw new ImportError(`${WITHDRAWN_TAG_FILE} is not a withdrawal notice this Slidebank reads: ${notice.error.issues.map((i) => `${i.path.join('.') || '(top)'} ${i.message}`).join('; ')}`, WITHDRAWN_TAG_FILE);
    return notice.data.withdrawn;
  }

  /**
   * The published slides here that a bag says were withdrawn at the source:
   * those data/metadata.json lists as withdrawn from the dataset (by name),
   * and those the withdrawal notice names (by name and checksum: a slide of
   * the same name with other bytes is not the one withdrawn).
   */
  private async withdrawals(metadata: BagMetadata, notices: readonly WithdrawnSlideNotice[]): Promise<{ slide: { name: string }; local: LocalSlide; reason: string }[]> {
    const local = await this.repository.slidesByName([...metadata.withdrawals.map((w) => w.name), ...notices.map((n) => n.name)]);
    const withdraw: { slide: { name: string }; local: LocalSlide; reason: string }[] = [];
    const add = (name: string, reason: string, sha256?: string) => {
      const mine = local.get(name);
      if (!mine || mine.status !== 'published' || withdraw.some((w) => w.local.id === mine.id)) return;
      if (sha256 !== undefined && mine.sha256 !== sha256) return;
      withdraw.push({ slide: { name }, local: mine, reason });
    };
    for (const w of metadata.withdrawals) add(w.name, `withdrawn from ${metadata.dataset} at the source: ${w.reason}`);
    for (const n of notices) add(n.name, `withdrawn at the source after ${metadata.dataset} ${metadata.version} was released: ${n.reason}`, n.sha256);
    return withdraw;
  }

  private async plan(metadata: BagMetadata, notices: readonly WithdrawnSlideNotice[], files: Map<string, string>, local: Map<string, LocalSlide>) {
    const add: (BagSlide & { fileName: string })[] = [];
    const annotations: { slide: BagSlide; local: LocalSlide }[] = [];
    const repair: { slide: BagSlide & { fileName: string }; local: LocalSlide }[] = [];
    for (const slide of metadata.slides) {
      const fileName = safeName(path.posix.basename(slide.file), slide.file);
      if (slide.annotation) safeName(`${slide.name}.xml`, slide.annotation.xml);
      const mine = local.get(slide.name);
      if (slide.included.slide && !files.has(slide.file)) throw new ImportError(`data/metadata.json lists data/${slide.file} in this bag, but the bag lacks it`, `data/${slide.file}`);
      if (slide.annotation && slide.included.annotation && !files.has(slide.annotation.xml)) {
        throw new ImportError(`data/metadata.json lists data/${slide.annotation.xml} in this bag, but the bag lacks it`, `data/${slide.annotation.xml}`);
      }
      if (!mine) {
        if (!slide.included.slide) {
          throw new ImportError(`${slide.name} is not in this bag (it has the changes since ${metadata.since ?? '?'}) and not on this site: import ${metadata.dataset} ${metadata.since ?? ''} first`.trim());
        }
        if (await exists(path.join(this.settings.slidesDir, fileName))) throw new ImportError(`the slide store has a file ${fileName} that no catalog row names; move it away first`);
        add.push({ ...slide, fileName });
        continue;
      }
      if (mine.sha256 !== slide.sha256) {
        throw new ImportError(`this site has a different slide named ${slide.name} (slide ${mine.id}, SHA-256 ${mine.sha256 ?? 'unknown'}); nothing was imported`, `data/${slide.file}`);
      }
      const stored = path.isAbsolute(mine.filePath) ? mine.filePath : path.join(this.settings.slidesDir, mine.filePath);
      if ((await stat(stored).then((s) => s.size, () => -1)) !== mine.fileSize) {
        if (!files.has(slide.file)) throw new ImportError(`the file of ${slide.name} is missing from this site's store and this bag does not carry it`);
        repair.push({ slide: { ...slide, fileName: path.basename(stored) }, local: mine });
      }
      if (slide.annotation && slide.included.annotation) {
        const current = mine.annotationPath === null ? undefined : await readFile(path.join(this.settings.slidesDir, mine.annotationPath)).catch(() => undefined);
        if (current === undefined || createHash('sha256').update(current).digest('hex') !== slide.annotation.sha256) annotations.push({ slide, local: mine });
      }
    }
    const withdraw = await this.withdrawals(metadata, notices);
    return { add, annotations, withdraw, repair };
  }
}

/** A file name from a bag becomes a file in the store: a plain name only. */
function safeName(name: string, from: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new ImportError(`data/${from}: "${name}" is not a slide store file name`, `data/${from}`);
  return name;
}

function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

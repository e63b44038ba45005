import type { Knex } from 'knex';
import { writeCatalogWords } from '../../server/catalog/catalog-words.repository.js';
import { toDbTime } from '../../server/db/index.js';
import { formatSlideName } from '../../server/ingest/nomenclature.js';
import type { Vocabulary } from '../../server/ingest/types.js';

/**
 * A large catalog generated straight into the database with batched inserts,
 * for the catalog benchmark and the query-plan tests: published and
 * withdrawn slides named by the nomenclature, their metadata drawn the way a
 * hospital's collection looks (each dataset one or two organs scanned on one
 * scanner, H&E most often, IHC with a marker, differentiation and pathology
 * text where pathologists give them, annotations with their summary), the
 * ingest records, datasets with releases, accounts and an audit log.
 * Deterministic: the same counts give the same rows. The files do not
 * exist: only the database is written.
 */
export interface CatalogRowCounts {
  slides: number;
  auditEvents: number;
  users?: number;
}

export interface SeededCatalog {
  slides: number;
  published: number;
  datasets: string[];
  /** Ids of the generated accounts (researchers), none of them able to sign in. */
  userIds: number[];
}

/** The scanners a dataset's slides came from, with their original format. */
const SCANNERS = [
  { scannerVendor: 'aperio', originalFormat: 'svs', share: 55 },
  { scannerVendor: 'hamamatsu', originalFormat: 'ndpi', share: 20 },
  { scannerVendor: 'dicom', originalFormat: 'dicom', share: 10 },
  { scannerVendor: 'mirax', originalFormat: 'mrxs', share: 8 },
  { scannerVendor: 'generic', originalFormat: 'tiff', share: 7 },
] as const;

const PATHOLOGY_TEXTS = [
  'lymph node metastasis',
  'perineural invasion',
  'microvascular invasion present',
  'resection margin involved',
  'tumour budding high',
  'necrosis about 20 percent',
  'background cirrhosis',
  'mucinous component',
  'lymphovascular invasion not identified',
  'post neoadjuvant therapy, regression grade 2',
];

const AUDIT_ACTIONS: [string, number][] = [
  ['auth.login', 30],
  ['download.slide', 22],
  ['download.annotation', 12],
  ['download.bundle', 6],
  ['auth.login_failed', 8],
  ['token.created', 3],
  ['dua.applied', 2],
  ['dua.approved', 2],
  ['report.filed', 1],
  ['user.registered', 3],
  ['user.confirmed', 3],
  ['user.level_changed', 2],
  ['dataset.exported', 1],
  ['slide.withdrawn', 1],
  ['job.result.download', 4],
];

/** Rows per INSERT: knex writes SQLite's multi-row insert as a compound SELECT, which takes at most 500 terms. */
const SLIDE_BATCH = 500;
const ROW_BATCH = 500;
/** Audit rows per transaction. */
const AUDIT_TRANSACTION = 20_000;

/** A small linear congruential generator: fast, and the same sequence on every run. */
class Draw {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
    return this.state / 2 ** 32;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  weighted<T>(list: readonly T[], weight: (item: T) => number): T {
    const total = list.reduce((sum, item) => sum + weight(item), 0);
    let at = this.next() * total;
    for (const item of list) {
      at -= weight(item);
      if (at < 0) return item;
    }
    return list[list.length - 1]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  hex(length: number): string {
    let out = '';
    while (out.length < length) out += this.int(2 ** 30).toString(16).padStart(8, '0');
    return out.slice(0, length);
  }
  unique(): string {
    const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    let out = '';
    for (let i = 0; i < 10; i++) out += alphabet[this.int(32)];
    return out;
  }
}

interface DatasetPlan {
  name: string;
  organs: string[];
  scanner: (typeof SCANNERS)[number];
  ihcShare: number;
  share: number;
}

function planDatasets(vocabulary: Vocabulary, draw: Draw): DatasetPlan[] {
  const organs = vocabulary.organs.map((organ) => organ.code);
  const plans: DatasetPlan[] = [];
  const sources = ['PAIP-2019', 'PAIP-2020', 'PAIP-2021', 'hospital-2022', 'hospital-2023', 'hospital-2024', 'hospital-2025', 'partner-seoul', 'partner-busan', 'TCGA-like', 'trial-NEO-01', 'biobank'];
  for (const [i, source] of sources.entries()) {
    const first = organs[i % organs.length]!;
    const second = draw.chance(0.4) ? organs[(i + 2) % organs.length]! : undefined;
    plans.push({
      name: `${source}-${second ? `${first}-${second}` : first}`.toLowerCase(),
      organs: second ? [first, second] : [first],
      scanner: draw.weighted(SCANNERS, (s) => s.share),
      ihcShare: 0.1 + draw.next() * 0.35,
      share: 1 + draw.int(6),
    });
  }
  return plans;
}

/** `counts.slides` slides (about 97% published), their ingest records and releases, and `counts.auditEvents` audit events. */
export async function seedCatalogRows(knex: Knex, vocabulary: Vocabulary, counts: CatalogRowCounts, progress: (what: string, done: number, total: number) => void = () => {}): Promise<SeededCatalog> {
  const draw = new Draw(20261207);
  const plans = planDatasets(vocabulary, draw);
  const organs = new Map(vocabulary.organs.map((organ) => [organ.code, organ]));
  const ihc = vocabulary.stains.find((stain) => stain.requiresMarker);
  const he = vocabulary.stains.find((stain) => !stain.requiresMarker) ?? vocabulary.stains[0]!;
  const start = Date.UTC(2023, 0, 1);
  const span = Date.UTC(2026, 10, 30) - start;
  const firstId = Number(((await knex('slides').max({ max: 'id' }).first()) as { max: number | null } | undefined)?.max ?? 0) + 1;
  let published = 0;

  const members = new Map<string, number[]>(plans.map((plan) => [plan.name, []]));
  for (let from = 0; from < counts.slides; from += SLIDE_BATCH) {
    const slides: Record<string, unknown>[] = [];
    const records: Record<string, unknown>[] = [];
    for (let i = from; i < Math.min(counts.slides, from + SLIDE_BATCH); i++) {
      const id = firstId + i;
      const plan = draw.weighted(plans, (p) => p.share);
      const organ = organs.get(draw.pick(plan.organs))!;
      const stain = ihc && draw.chance(plan.ihcShare) ? ihc : he;
      const marker = stain.requiresMarker ? draw.pick(vocabulary.markers).code : null;
      const metadata = {
        organ: organ.code,
        histology: draw.pick(organ.histologies).code,
        stain: stain.code,
        marker,
        differentiation: vocabulary.differentiations.length > 0 && draw.chance(0.85) ? draw.pick(vocabulary.differentiations).code : null,
        pathologyInfo: draw.chance(0.35) ? draw.pick(PATHOLOGY_TEXTS) : null,
        annotationMethod: vocabulary.annotationMethods.length > 0 ? draw.pick(vocabulary.annotationMethods).code : null,
        dataset: plan.name,
      };
      const name = formatSlideName(metadata, vocabulary, () => draw.unique());
      // Ingest runs over time: ids and creation times grow together, a few seconds to hours apart.
      const created = new Date(start + Math.floor((span * i) / counts.slides) + draw.int(60_000));
      const status = draw.chance(0.03) ? 'withdrawn' : 'published';
      if (status === 'published') published++;
      const annotated = draw.chance(0.8);
      const width = 20_000 + draw.int(100_000);
      const height = 15_000 + draw.int(80_000);
      const mpp = draw.chance(0.7) ? 0.2527 : 0.5054;
      const extension = plan.scanner.originalFormat === 'dicom' ? '' : '.svs';
      slides.push({
        id,
        name,
        file_path: `${name.slice(4, 6)}/${name}${extension}`,
        file_size: Math.floor(80_000_000 + draw.next() ** 2 * 3_000_000_000),
        sha256: draw.hex(64),
        vendor: plan.scanner.originalFormat === 'dicom' ? 'dicom' : 'aperio',
        width,
        height,
        level_count: 3 + draw.int(3),
        mpp_x: mpp,
        mpp_y: mpp,
        objective_power: mpp < 0.3 ? 40 : 20,
        status,
        organ: metadata.organ,
        histology: metadata.histology,
        stain: metadata.stain,
        marker: metadata.marker,
        differentiation: metadata.differentiation,
        pathology_info: metadata.pathologyInfo,
        annotation_method: metadata.annotationMethod,
        dataset: metadata.dataset,
        original_sha256: draw.hex(64),
        annotation_path: annotated ? `${name.slice(4, 6)}/${name}.xml` : null,
        annotation_summary: annotated ? JSON.stringify(annotationSummary(draw, mpp, width * height)) : null,
        scanner_vendor: plan.scanner.scannerVendor,
        original_format: plan.scanner.originalFormat,
        created_at: toDbTime(created),
        updated_at: toDbTime(created),
      });
      records.push({
        outcome: 'published',
        reason: null,
        slide_id: id,
        original_sha256: null,
        quarantine_path: null,
        report: JSON.stringify({ originalFormat: plan.scanner.originalFormat, removed: ['label', 'macro'], scrubbed: ['ImageDescription'], checks: ['eligibility', 'nomenclature'] }),
        source: draw.chance(0.8) ? 'inbox' : 'cli',
        created_at: toDbTime(created),
      });
      if (draw.chance(0.04)) {
        const outcome = draw.pick(['quarantined', 'refused', 'duplicate'] as const);
        records.push({
          outcome,
          reason: outcome === 'quarantined' ? 'the label image could not be removed' : outcome === 'refused' ? 'collected after 2013-02 without a recorded donation consent' : 'this original was published before',
          slide_id: null,
          original_sha256: draw.hex(64),
          quarantine_path: outcome === 'quarantined' ? `quarantine/${draw.hex(12)}.svs` : null,
          report: null,
          source: 'inbox',
          created_at: toDbTime(new Date(created.getTime() + 1000)),
        });
      }
      if (status === 'published') members.get(plan.name)!.push(id);
    }
    await knex.transaction(async (trx) => {
      await trx('slides').insert(slides);
      await writeCatalogWords(trx, slides.map((slide) => ({ id: slide.id as number, name: slide.name as string, pathologyInfo: slide.pathology_info as string | null })));
      for (let r = 0; r < records.length; r += SLIDE_BATCH) await trx('ingest_records').insert(records.slice(r, r + SLIDE_BATCH));
    });
    progress('slides', Math.min(counts.slides, from + SLIDE_BATCH), counts.slides);
  }

  await seedDatasets(knex, plans, members, draw);
  const userIds = await seedUsers(knex, counts.users ?? 500, draw);
  await seedAudit(knex, counts.auditEvents, userIds, firstId, counts.slides, draw, (done) => progress('audit events', done, counts.auditEvents));
  return { slides: counts.slides, published, datasets: plans.map((plan) => plan.name), userIds };
}

function annotationSummary(draw: Draw, mpp: number, pixels: number) {
  const layers = ['Whole tumour', 'Viable tumour', 'Non-tumour'].map((name, i) => {
    const areaPx = Math.floor(pixels * (0.4 - i * 0.1) * draw.next());
    return { id: i + 1, name, colour: ['#ff0000', '#00ff00', '#0000ff'][i], regions: 1 + draw.int(12), holes: draw.int(3), vertices: 200 + draw.int(5000), areaPx, areaMm2: (areaPx * mpp * mpp) / 1e6 };
  });
  return { layers, regionCount: layers.reduce((sum, layer) => sum + layer.regions, 0), tumourAreaMm2: layers[0]!.areaMm2 };
}

async function seedDatasets(knex: Knex, plans: DatasetPlan[], members: Map<string, number[]>, draw: Draw): Promise<void> {
  const now = toDbTime(new Date(Date.UTC(2026, 10, 30)));
  for (const plan of plans) {
    const [inserted] = await knex('datasets').insert({ name: plan.name, description: `Slides of ${plan.organs.join(' and ')} (${plan.scanner.scannerVendor})`, created_at: now }).returning('id');
    const datasetId = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
    const ids = members.get(plan.name)!;
    for (let i = 0; i < ids.length; i += ROW_BATCH) {
      await knex('dataset_slides').insert(ids.slice(i, i + ROW_BATCH).map((slideId) => ({ dataset_id: datasetId, slide_id: slideId, added_at: now })));
    }
    // Two releases: the first half of the slides, then all of them (a snapshot names each slide).
    for (const [v, upTo] of [[1, Math.floor(ids.length / 2)], [2, ids.length]] as const) {
      const snapshot = { slides: ids.slice(0, upTo).map((slideId) => ({ id: slideId, sha256: draw.hex(16) })) };
      await knex('dataset_releases').insert({ dataset_id: datasetId, version: `${v}.0.0`, created_at: now, created_by: 'curator@hospital.example', snapshot: JSON.stringify(snapshot) });
    }
  }
}

async function seedUsers(knex: Knex, count: number, draw: Draw): Promise<number[]> {
  const now = toDbTime(new Date(Date.UTC(2026, 10, 30)));
  const rows = Array.from({ length: count }, (_, i) => ({
    email: `researcher${i}-${draw.hex(6)}@university.example`,
    name: `Researcher ${i}`,
    institution: `University ${i % 40}`,
    password_hash: null,
    level: draw.pick(['L1', 'L2', 'L2', 'L3']),
    email_confirmed_at: now,
    created_at: now,
    updated_at: now,
  }));
  const ids: number[] = [];
  for (let i = 0; i < rows.length; i += SLIDE_BATCH) await knex('users').insert(rows.slice(i, i + SLIDE_BATCH));
  const found = (await knex('users').whereIn('email', rows.map((row) => row.email)).select('id')) as { id: number }[];
  for (const row of found) ids.push(Number(row.id));
  return ids;
}

async function seedAudit(knex: Knex, count: number, userIds: number[], firstSlide: number, slides: number, draw: Draw, progress: (done: number) => void): Promise<void> {
  const start = Date.UTC(2023, 0, 1);
  const span = Date.UTC(2026, 11, 6) - start;
  for (let from = 0; from < count; from += AUDIT_TRANSACTION) {
    const rows: Record<string, unknown>[] = [];
    for (let i = from; i < Math.min(count, from + AUDIT_TRANSACTION); i++) {
      const [action] = draw.weighted(AUDIT_ACTIONS, ([, weight]) => weight);
      const onSlide = action.startsWith('download.') || action === 'slide.withdrawn';
      const actor = action === 'auth.login_failed' && draw.chance(0.5) ? null : draw.pick(userIds);
      rows.push({
        at: toDbTime(new Date(start + Math.floor((span * i) / count))),
        action,
        actor_id: actor,
        subject_type: onSlide ? 'slide' : action.startsWith('dua.') ? 'dua_application' : actor === null ? null : 'user',
        subject_id: onSlide ? String(firstSlide + draw.int(slides)) : actor === null ? null : String(actor),
        ip: `10.${draw.int(256)}.${draw.int(256)}.${draw.int(256)}`,
        details: onSlide ? JSON.stringify({ bytes: draw.int(2_000_000_000) }) : null,
      });
    }
    await knex.transaction(async (trx) => {
      for (let r = 0; r < rows.length; r += ROW_BATCH) await trx('audit_log').insert(rows.slice(r, r + ROW_BATCH));
    });
    progress(Math.min(count, from + AUDIT_TRANSACTION));
  }
}

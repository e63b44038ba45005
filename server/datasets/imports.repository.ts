import type { Knex } from 'knex';
import type { AuditLog } from '../audit/audit-log.js';
import { writeCatalogWords } from '../catalog/catalog-words.repository.js';
import { LOCAL_COLUMNS, SLIDES_TABLE, factsColumns, fileColumns, fileOf, metadataColumns, summaryColumn, type SlideRowOf, type StoredFile } from '../catalog/slides-table.js';
import { toDbTime } from '../db/index.js';
import type { BagSlide } from './bag-contents.js';

export interface LocalSlide extends StoredFile {
  id: number;
  name: string;
  status: string;
  annotationPath: string | null;
}

/** One import's changes to the catalog, made in one transaction. */
export interface ImportChanges {
  add: { slide: BagSlide; filePath: string; annotationPath: string | null; facts: BagSlide['facts'] }[];
  annotations: { slideId: number; annotationPath: string; summary: unknown }[];
  withdraw: { slideId: number; reason: string }[];
  provenance: { site: string; key: string; dataset: string; version: string; since: string | null; summary: unknown };
}

/** The queries `slidebank import` makes on the mirror's catalog. */
export class ImportsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly audit: AuditLog,
  ) {}

  async slidesByName(names: readonly string[]): Promise<Map<string, LocalSlide>> {
    const out = new Map<string, LocalSlide>();
    for (let i = 0; i < names.length; i += 500) {
      const rows = (await this.knex(SLIDES_TABLE).whereIn('name', names.slice(i, i + 500)).select(LOCAL_COLUMNS)) as SlideRowOf<typeof LOCAL_COLUMNS>[];
      for (const r of rows) out.set(r.name, { id: r.id, name: r.name, ...fileOf(r), status: r.status, annotationPath: r.annotation_path });
    }
    return out;
  }

  /** The versions of a dataset imported so far (from any site), oldest first. */
  async importedVersions(dataset: string): Promise<string[]> {
    return (await this.knex('dataset_imports').where({ dataset }).orderBy('id').select<{ version: string }[]>('version')).map((r) => r.version);
  }

  async imported(site: string, dataset: string, version: string): Promise<boolean> {
    return (await this.knex('dataset_imports').where({ source_site: site, dataset, version }).first('id')) !== undefined;
  }

  /** Everything or nothing; returns the new slides' ids by name. */
  async apply(changes: ImportChanges, now = new Date()): Promise<Map<string, number>> {
    return this.knex.transaction(async (trx) => {
      const ids = new Map<string, number>();
      const at = toDbTime(now);
      for (const { slide, filePath, annotationPath, facts } of changes.add) {
        const [inserted] = await trx(SLIDES_TABLE)
          .insert({
            name: slide.name,
            ...fileColumns({ filePath, fileSize: slide.size, sha256: slide.sha256 }),
            ...factsColumns(facts),
            status: 'published',
            ...metadataColumns(slide.metadata),
            annotation_path: annotationPath,
            annotation_summary: annotationPath === null ? null : summaryColumn(slide.annotationSummary),
            created_at: at,
            updated_at: at,
          })
          .returning('id');
        const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
        ids.set(slide.name, id);
        await writeCatalogWords(trx, [{ id, name: slide.name, pathologyInfo: slide.metadata.pathologyInfo }]);
        const p = changes.provenance;
        await trx('slide_provenance').insert({ slide_id: id, source_site: p.site, dataset: p.dataset, version: p.version, imported_at: at });
      }
      for (const a of changes.annotations) {
        await trx(SLIDES_TABLE).where({ id: a.slideId }).update({ annotation_path: a.annotationPath, annotation_summary: summaryColumn(a.summary), updated_at: at });
      }
      await this.withdrawIn(trx, changes.withdraw, changes.provenance.site, at);
      const p = changes.provenance;
      if (!(await trx('dataset_imports').where({ source_site: p.site, dataset: p.dataset, version: p.version }).first('id'))) {
        await trx('dataset_imports').insert({
          source_site: p.site,
          source_key: p.key,
          dataset: p.dataset,
          version: p.version,
          since_version: p.since,
          imported_at: at,
          summary: JSON.stringify(p.summary),
        });
      }
      return ids;
    });
  }

  /** Only withdrawals, in one transaction: what a partner's bag says of slides this site already has. */
  async withdraw(items: ImportChanges['withdraw'], site: string, now = new Date()): Promise<void> {
    await this.knex.transaction((trx) => this.withdrawIn(trx, items, site, toDbTime(now)));
  }

  /** Published slides become withdrawn, each audited as a curator's withdrawal is; a slide no longer published is left as it is. */
  private async withdrawIn(trx: Knex.Transaction, items: ImportChanges['withdraw'], site: string, at: string): Promise<void> {
    for (const w of items) {
      const changed = await trx(SLIDES_TABLE).where({ id: w.slideId, status: 'published' }).update({ status: 'withdrawn', updated_at: at });
      if (changed > 0) {
        await this.audit.record(
          { action: 'slide.withdrawn', actorId: null, subjectType: 'slide', subjectId: w.slideId, details: { reason: w.reason, from: 'published', to: 'withdrawn', by: `import from ${site}` } },
          trx,
        );
      }
    }
  }
}

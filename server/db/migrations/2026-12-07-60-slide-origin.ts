import type { Knex } from 'knex';

/**
 * What a slide came from: the scanner vendor (`aperio`, `hamamatsu`,
 * `dicom`, OpenSlide's vendor for a converted slide such as `mirax`, or
 * `generic` for a plain TIFF) and the original's format (`svs`, `ndpi`,
 * `tiff`, `dicom`, `mrxs`, `vms`, …), as ingest recognised them. Slides
 * published before are filled in from their ingest record's report where it
 * names the original's format, else from the published file's vendor where
 * that says it (an Aperio SVS, a DICOM series); the rest stay unknown (null).
 */
const BY_ENGINE_FORMAT: Record<string, { scanner_vendor: string; original_format: string }> = {
  aperio: { scanner_vendor: 'aperio', original_format: 'svs' },
  hamamatsu: { scanner_vendor: 'hamamatsu', original_format: 'ndpi' },
  'generic-tiff': { scanner_vendor: 'generic', original_format: 'tiff' },
  dicom: { scanner_vendor: 'dicom', original_format: 'dicom' },
};

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn('slides', 'scanner_vendor')) return;
  await knex.schema.alterTable('slides', (t) => {
    t.string('scanner_vendor', 64).nullable();
    t.string('original_format', 32).nullable();
  });
  const records = (await knex('ingest_records').where({ outcome: 'published' }).whereNotNull('slide_id').select('slide_id', 'report')) as {
    slide_id: number;
    report: string | null;
  }[];
  for (const record of records) {
    let format: unknown;
    try {
      format = record.report ? (JSON.parse(record.report) as { originalFormat?: unknown }).originalFormat : undefined;
    } catch {
      continue;
    }
    const origin = typeof format === 'string' ? BY_ENGINE_FORMAT[format] : undefined;
    if (!origin) continue;
    await knex('slides').where({ id: record.slide_id }).update(origin);
  }
  // Without a record that says, only the published file's vendor: a slide read as aperio or dicom was one.
  for (const vendor of ['aperio', 'dicom']) {
    await knex('slides').where({ vendor }).whereNull('scanner_vendor').update(BY_ENGINE_FORMAT[vendor]!);
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('slides', (t) => {
    t.dropColumn('original_format');
    t.dropColumn('scanner_vendor');
  });
}

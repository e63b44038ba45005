import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';

export const INGEST_OUTCOMES = ['published', 'quarantined', 'duplicate', 'refused', 'failed'] as const;
export const INGEST_SOURCES = ['cli', 'inbox', 'demo'] as const;

/** What de-identification did to one TIFF directory of the original. */
const directoryReport = z.looseObject({
  index: z.number().int().meta({ description: 'Position in the original' }),
  role: z.string().meta({ description: 'level, thumbnail, label, macro or unrecognised' }),
  width: z.number().int(),
  height: z.number().int(),
  action: z.enum(['copied', 'removed', 're-tiled', 're-encoded']).meta({
    description: 'copied byte for byte; removed; re-tiled (an NDPI level: its restart intervals re-wrapped as tiles, not decoded); re-encoded (decoded and encoded as JPEG)',
  }),
  droppedTags: z.array(z.number().int()),
  keptDescriptionKeys: z.array(z.string()),
  droppedDescriptionKeys: z.array(z.string()),
  droppedHeaderLines: z.number().int(),
});

/** The de-identification report ingest stores with its record (ingest-slide.ts); which parts it has depends on how far the ingest got. */
export const ingestReport = z
  .looseObject({
    directories: z.array(directoryReport).optional(),
    annotation: z.looseObject({ removed: z.array(z.string()), layers: z.number().int(), regions: z.number().int() }).nullable().optional(),
    checks: z.array(z.looseObject({ name: z.string(), passed: z.boolean(), detail: z.string() })).optional(),
    metadataProblems: z.array(z.string()).optional(),
    tiffFormat: z.string().optional(),
    originalFormat: z.string().optional().meta({ description: "The original's format as recognised by its content: aperio, generic-tiff or hamamatsu" }),
    levels: z
      .array(
        z.looseObject({
          width: z.number().int(),
          height: z.number().int(),
          tileWidth: z.number().int(),
          tileHeight: z.number().int(),
          from: z.string().meta({ description: "Which of the original's levels it comes from" }),
          how: z.enum(['copied', 're-tiled', 'scaled decoding', 're-encoded']),
          note: z.string().nullable(),
        }),
      )
      .optional()
      .meta({ description: "How each level of the published file was made, where it is not a byte-for-byte copy of the original's (an NDPI's)" }),
    sha256: z.string().optional(),
    error: z.string().optional(),
  })
  .meta({ id: 'IngestReport' });
export type IngestReportView = z.infer<typeof ingestReport>;

/** What one ingest did, as curators see it: the quarantine folder is named by the original's file name, so only whether there is one is shown. */
export const ingestRecord = z
  .object({
    id: z.number().int(),
    outcome: z.enum(INGEST_OUTCOMES),
    reason: z.string().nullable(),
    slideId: z.number().int().nullable(),
    slideName: z.string().nullable().meta({ description: 'The slide\'s name; null when there is no slide or it is no longer published' }),
    report: ingestReport.nullable(),
    source: z.enum(INGEST_SOURCES),
    createdAt: timestamp,
    quarantined: z.boolean(),
  })
  .meta({ id: 'IngestRecord' });
export type IngestRecordView = z.infer<typeof ingestRecord>;

export const ingestRecordList = z
  .object({ items: z.array(ingestRecord), limit: z.number().int(), offset: z.number().int() })
  .meta({ id: 'IngestRecordList' });
export type IngestRecordList = z.infer<typeof ingestRecordList>;

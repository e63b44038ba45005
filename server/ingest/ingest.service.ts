import os from 'node:os';
import pLimit from 'p-limit';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { compileTextPatterns } from '../annotations/index.js';
import { discoverFolder } from './discover.js';
import type { IngestRepository, IngestSource } from './ingest.repository.js';
import type { IngestSettings } from './ingest-settings.js';
import { ingestSlide, type IngestProgress, type IngestResult } from './ingest-slide.js';
import { OriginalsInFlight } from './originals-in-flight.js';
import { readMetadataSheet, type MetadataSheet, type SheetProblem } from './metadata-sheet.js';
import type { SlideMetadata, Vocabulary } from './types.js';

export interface FolderIngest {
  results: IngestResult[];
  /** Problems of the sheet as a whole (bad header, repeated rows); each also refuses the slides it concerns. */
  sheetProblems: SheetProblem[];
  ignored: string[];
  orphanXml: string[];
  unsettled: string[];
}

export interface IngestFolderOptions {
  source: IngestSource;
  /** Metadata for slides without a row in metadata.csv. */
  fallback?: SlideMetadata;
  /** Move originals out of the folder when done (the inbox does; a curator's folder is left alone). */
  takeOriginals?: boolean;
  /** Leave slides modified more recently than this (the inbox: files still being copied in). */
  minAgeMs?: number;
  onProgress?: (progress: IngestProgress) => void;
  onResult?: (result: IngestResult) => void;
}

/**
 * Ingest every slide of a folder, several at once (`ingest.parallelSlides`,
 * by default as many as there are cores; their copies are written one at a
 * time, the other stages overlap); one slide's failure never stops or
 * changes the rest, and the results come back in the folder's order.
 */
export class IngestService {
  constructor(
    private readonly config: Config,
    readonly vocabulary: Vocabulary,
    private readonly repository: IngestRepository,
    private readonly log: Logger,
  ) {}

  async ingestFolder(dir: string, options: IngestFolderOptions): Promise<FolderIngest> {
    const folder = await discoverFolder(dir, { ...(options.minAgeMs ? { minAgeMs: options.minAgeMs } : {}) });
    const sheet: MetadataSheet = folder.sheet
      ? await readMetadataSheet(folder.sheet, this.vocabulary, { consentRequiredFrom: this.config.ingest.consentRequiredFrom })
      : { rows: new Map(), problems: [] };
    const settings = this.settings(options.takeOriginals ?? false);
    const limit = pLimit(this.parallelSlides());
    const inFlight = new OriginalsInFlight();
    const writeLane = pLimit(1);
    const results = await Promise.all(
      folder.candidates.map((candidate) =>
        limit(async () => {
          const result = await ingestSlide({
            candidate,
            row: sheet.rows.get(candidate.key),
            fallback: options.fallback,
            settings,
            repository: this.repository,
            source: options.source,
            onProgress: options.onProgress,
            inFlight,
            writeLane,
          });
          this.log.info(
            { outcome: result.outcome, slideId: result.slideId, name: result.name, record: result.recordId, ms: result.durationMs },
            result.reason ? `ingest ${result.outcome}: ${result.reason}` : `ingest ${result.outcome}`,
          );
          options.onResult?.(result);
          return result;
        }),
      ),
    );
    return { results, sheetProblems: sheet.problems, ignored: folder.ignored, orphanXml: folder.orphanXml, unsettled: folder.unsettled };
  }

  /** Slides of one folder ingested at once: ingest.parallelSlides, or (0) the cores. */
  private parallelSlides(): number {
    return this.config.ingest.parallelSlides > 0 ? this.config.ingest.parallelSlides : os.availableParallelism();
  }

  private settings(takeOriginals: boolean): IngestSettings {
    const { paths, ingest } = this.config;
    return {
      paths: { slides: paths.slides, quarantine: paths.quarantine, originals: paths.originals, thumbnails: paths.thumbnails },
      keepOriginals: ingest.keepOriginals,
      takeOriginals,
      linkageKey: ingest.linkageKey,
      textPatterns: compileTextPatterns(ingest.scrubTextPatterns),
      vocabulary: this.vocabulary,
      conversion: {
        converter: ingest.converter,
        quality: ingest.conversionQuality,
        timeoutSeconds: ingest.conversionTimeoutSeconds,
        memoryMegabytes: ingest.conversionMemoryMegabytes,
      },
    };
  }
}

import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { createIngestService } from '../../ingest/create.js';
import type { IngestProgress, IngestResult } from '../../ingest/ingest-slide.js';
import { checkMetadataValues } from '../../ingest/metadata-sheet.js';
import type { SlideMetadata } from '../../ingest/types.js';
import { migrateToLatest, openDatabase, waitForDatabase } from '../../db/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { createLogger } from '../../logging.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

interface IngestOptions {
  organ?: string;
  histology?: string;
  stain?: string;
  marker?: string;
  differentiation?: string;
  annotationMethod?: string;
  dataset?: string;
  json?: boolean;
  progress?: boolean;
  databaseUrl?: string;
}

export function ingestCommand(): Command {
  return new Command('ingest')
    .description(
      'de-identify and publish every slide in a folder: each .svs or .tif with the .xml of the same base name, and the rows of metadata.csv; several slides at once (ingest.parallelSlides, env SLIDEBANK_INGEST_PARALLEL_SLIDES; default the number of cores)',
    )
    .argument('<dir>', 'the folder to ingest (its subfolders are not read)')
    .option('--organ <value>', 'for slides without a metadata.csv row: organ (code or name)')
    .option('--histology <value>', 'for slides without a row: histology')
    .option('--stain <value>', 'for slides without a row: stain (H&E or IHC)')
    .option('--marker <value>', 'for slides without a row: IHC marker')
    .option('--differentiation <value>', 'for slides without a row: differentiation')
    .option('--annotation-method <value>', 'for slides without a row: manual or AI-assisted')
    .option('--dataset <name>', 'for slides without a row: dataset')
    .option('--json', 'print the results as JSON instead of a table')
    .option('--no-progress', 'no progress bars (they are shown only on a terminal anyway)')
    .option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)')
    .addHelpText(
      'after',
      '\nExit status: 0 when every slide was published or was already published, 1 when any was refused, quarantined or failed.\n' +
        'The originals are not moved; with ingest.keepOriginals a copy is kept in paths.originals (never served).',
    )
    .action(async (dir: string, options: IngestOptions, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), {
          databaseUrl: { value: options.databaseUrl, option: '--database-url' },
        });
        const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
        const db = openDatabase(config.database.target, { log });
        try {
          await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
          await migrateToLatest(db, { log });
          const service = createIngestService(config, db, log);
          const fallback = fallbackMetadata(options, service.vocabulary, config.ingest.consentRequiredFrom);

          const bars = options.progress !== false && process.stderr.isTTY && !options.json ? new ProgressBars() : undefined;
          const started = performance.now();
          const outcome = await service.ingestFolder(dir, {
            source: 'cli',
            ...(fallback ? { fallback } : {}),
            onProgress: (p) => (bars ? bars.update(p) : !options.json && conversionLine(p)),
            onResult: (r) => {
              bars?.finish(r);
              if (!bars && !options.json) process.stderr.write(`${r.outcome.padEnd(11)} ${r.file}\n`);
            },
          });
          bars?.stop();

          if (options.json) {
            process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
          } else {
            process.stdout.write(summaryTable(outcome.results, (performance.now() - started) / 1000));
            for (const p of outcome.sheetProblems) process.stdout.write(`metadata.csv line ${p.line}${p.column ? ` (${p.column})` : ''}: ${p.message}\n`);
            if (outcome.orphanXml.length) process.stdout.write(`XML without a slide (not ingested): ${outcome.orphanXml.join(', ')}\n`);
            if (outcome.ignored.length) process.stdout.write(`other files (not ingested): ${outcome.ignored.join(', ')}\n`);
          }
          if (outcome.results.length === 0) {
            throw new FatalError(ExitCode.failure, `${dir}: no slides (.svs, .tif, .tiff) found`);
          }
          const failed = outcome.results.some((r) => r.outcome !== 'published' && r.outcome !== 'duplicate');
          return failed || outcome.sheetProblems.length > 0 ? ExitCode.failure : ExitCode.ok;
        } finally {
          await db.close();
        }
      }),
    );
}

function fallbackMetadata(
  options: IngestOptions,
  vocabulary: Parameters<typeof checkMetadataValues>[1],
  consentRequiredFrom: string,
): SlideMetadata | undefined {
  const given = {
    organ: options.organ,
    histology: options.histology,
    stain: options.stain,
    marker: options.marker,
    differentiation: options.differentiation,
    annotation_method: options.annotationMethod,
    dataset: options.dataset,
  };
  if (Object.values(given).every((v) => v === undefined)) return undefined;
  // Collection date and consent cannot be given for a whole folder; the consent rule needs the sheet.
  const row = checkMetadataValues(given, vocabulary, { consentRequiredFrom: '' });
  if (!row.metadata) throw new FatalError(ExitCode.config, `the metadata options are not valid: ${row.problems.join('; ')}`);
  if (consentRequiredFrom !== '') {
    process.stderr.write('note: consent is checked only for slides with a metadata.csv row (collection_date, consent)\n');
  }
  return row.metadata;
}

/** One line per slide, then the counts, and the bytes and wall-clock time of the whole folder (slides are ingested several at once). */
function summaryTable(results: IngestResult[], seconds: number): string {
  if (results.length === 0) return '';
  const rows = results.map((r) => [
    r.outcome,
    r.file,
    r.outcome === 'published' ? `${r.name} (slide ${r.slideId})` : (r.reason ?? ''),
  ]);
  const width = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]!.length), i === 0 ? 7 : 4));
  const line = (cells: string[]) => `${cells[0]!.padEnd(width[0]!)}  ${cells[1]!.padEnd(width[1]!)}  ${cells[2]}\n`;
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const megabytes = results.reduce((s, r) => s + r.bytes, 0) / 1e6;
  return (
    line(['outcome', 'file', 'published as / reason']) +
    rows.map(line).join('') +
    `${results.length} slide(s): ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}; ${megabytes.toFixed(1)} MB in ${seconds.toFixed(1)} s\n`
  );
}

/** Without bars, a conversion (which can take many minutes) still shows its progress: a line at every quarter. */
const conversionShown = new Map<string, number>();
function conversionLine(p: IngestProgress): void {
  if (p.stage !== 'converting') return;
  const quarter = Math.floor((p.done / Math.max(1, p.total)) * 4);
  if ((conversionShown.get(p.file) ?? -1) >= quarter) return;
  conversionShown.set(p.file, quarter);
  process.stderr.write(`converting  ${p.file} to a tiled TIFF: ${quarter * 25}%\n`);
}

/** One bar per slide while it is written; finished bars stay as a line with the outcome. */
class ProgressBars {
  private readonly multi = new MultiBar(
    { format: '{file} {bar} {percentage}% {stage}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    Presets.shades_classic,
  );
  private readonly bars = new Map<string, SingleBar>();

  update(p: IngestProgress): void {
    let bar = this.bars.get(p.file);
    if (!bar) {
      bar = this.multi.create(1, 0, { file: p.file.padEnd(28).slice(0, 28), stage: p.stage });
      this.bars.set(p.file, bar);
    }
    bar.setTotal(Math.max(1, p.total));
    bar.update(p.stage === 'writing' || p.stage === 'converting' ? p.done : p.stage === 'done' ? p.total : 0, { stage: p.stage });
  }

  finish(r: IngestResult): void {
    const bar = this.bars.get(r.file);
    bar?.update(bar.getTotal(), { stage: r.outcome });
  }

  stop(): void {
    this.multi.stop();
  }
}

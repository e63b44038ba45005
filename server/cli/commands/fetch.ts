import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { ExitCode, FatalError } from '../../errors.js';
import { fetchFiles, fetchManifest, FetchError, readManifestFile, STATE_FILE, type FetchEvent, type FileOutcome } from '../../downloads/client/fetch-files.js';
import { ManifestError } from '../../downloads/manifest.js';
import type { FetchableFile } from '../../downloads/manifest.js';
import { runCommand } from '../run.js';

interface FetchCliOptions {
  server?: string;
  token?: string;
  manifest?: string;
  filter?: string;
  out?: string;
  parallel: string;
  retries: string;
  progress?: boolean;
}

export function fetchCommand(): Command {
  return new Command('fetch')
    .description('download the files of a manifest or a catalog filter from a Slidebank server, resuming partial files and verifying every SHA-256')
    .addOption(new Option('--server <url>', 'the Slidebank server, e.g. https://slidebank.hospital.example').env('SLIDEBANK_SERVER'))
    .addOption(new Option('--token <token>', 'a personal access token (made on your account page)').env('SLIDEBANK_TOKEN'))
    .option('--manifest <file>', 'a manifest saved from GET /api/downloads/manifest (JSON or TSV)')
    .option('--filter <expr>', 'a catalog filter expression, e.g. "organ=CO;stain=IHC;histology=ADC"')
    .option('--out <dir>', 'the folder to download into (made if missing); files go to slides/ and annotations/')
    .addOption(new Option('--parallel <n>', 'files downloaded at once').default('2').env('SLIDEBANK_FETCH_PARALLEL'))
    .option('--retries <n>', 'attempts per file after the first (network errors, server errors, checksum mismatches)', '4')
    .option('--no-progress', 'no progress bars (they are shown only on a terminal anyway)')
    .addHelpText(
      'after',
      [
        '',
        'Run the same command again to finish an interrupted download: partial files (*.part) are resumed where',
        `they stopped, and files already verified are skipped (see ${STATE_FILE} in the output folder).`,
        '',
        'Example:',
        '  SLIDEBANK_TOKEN=… slidebank fetch --server https://slidebank.hospital.example --filter "organ=CO;stain=IHC" --out ./colon-ihc',
        '',
        'Exit status: 0 every file is present and verified, 1 any file failed (listed on stderr), 2 bad options,',
        '4 the server could not be reached for the manifest, 130 interrupted (run again to resume).',
      ].join('\n'),
    )
    .action(async (options: FetchCliOptions) =>
      runCommand(async () => {
        const server = required(options.server, '--server (or SLIDEBANK_SERVER) is required: the Slidebank server URL');
        const token = required(options.token, '--token (or SLIDEBANK_TOKEN) is required: a personal access token');
        const out = required(options.out, '--out is required: the folder to download into');
        if ((options.manifest === undefined) === (options.filter === undefined)) {
          throw new FatalError(ExitCode.config, 'give either --manifest FILE or --filter EXPR');
        }
        const parallel = whole('--parallel', options.parallel, 1, 32);
        const retries = whole('--retries', options.retries, 0, 100);

        const controller = new AbortController();
        const interrupt = () => controller.abort();
        process.once('SIGINT', interrupt);
        process.once('SIGTERM', interrupt);
        const progress = options.progress !== false && process.stderr.isTTY ? new ProgressBars() : new ProgressLines();
        try {
          let files: FetchableFile[];
          try {
            files =
              options.manifest !== undefined
                ? await readManifestFile(options.manifest)
                : await fetchManifest(server, token, options.filter!, controller.signal);
          } catch (error) {
            if (error instanceof ManifestError) throw new FatalError(ExitCode.config, `${options.manifest ?? 'the manifest'}: ${error.message}`);
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new FatalError(ExitCode.config, `${options.manifest}: no such file`);
            throw error;
          }
          if (files.length === 0) {
            process.stderr.write('slidebank fetch: the manifest lists no files\n');
            return ExitCode.ok;
          }
          progress.begin(files);
          const outcomes = await fetchFiles({ server, token, files, out, parallel, retries, signal: controller.signal, onEvent: (e) => progress.event(e) });
          progress.stop();
          return report(outcomes, out);
        } catch (error) {
          progress.stop();
          if (controller.signal.aborted) {
            process.stderr.write(`slidebank fetch: interrupted; partial files are kept in ${out}: run the same command again to resume\n`);
            return 130;
          }
          if (error instanceof FetchError) {
            throw new FatalError(error.kind === 'network' ? ExitCode.network : error.kind === 'usage' ? ExitCode.config : ExitCode.failure, error.message);
          }
          throw error;
        } finally {
          process.off('SIGINT', interrupt);
          process.off('SIGTERM', interrupt);
        }
      }),
    );
}

function required(value: string | undefined, message: string): string {
  if (value === undefined || value === '') throw new FatalError(ExitCode.config, message);
  return value;
}

function whole(flag: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new FatalError(ExitCode.config, `${flag} must be a whole number from ${min} to ${max}, not "${text}"`);
  return value;
}

/** The summary on stdout, the failures on stderr; exit status 1 when any file failed. */
function report(outcomes: FileOutcome[], out: string): number {
  const count = (status: FileOutcome['status']) => outcomes.filter((o) => o.status === status).length;
  const bytes = outcomes.reduce((sum, o) => sum + o.bytes, 0);
  const failed = outcomes.filter((o) => o.status === 'failed');
  process.stdout.write(
    `${outcomes.length} file(s) in ${out}: ${count('downloaded')} downloaded, ${count('resumed')} resumed, ${count('skipped')} already verified, ${failed.length} failed; ${megabytes(bytes)} received\n`,
  );
  if (failed.length === 0) return ExitCode.ok;
  process.stderr.write(`slidebank fetch: ${failed.length} file(s) failed:\n`);
  for (const f of failed) process.stderr.write(`  ${f.path}: ${f.reason}\n`);
  process.stderr.write('Run the same command again to retry them; verified files are kept.\n');
  return ExitCode.failure;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

interface Progress {
  begin(files: FetchableFile[]): void;
  event(event: FetchEvent): void;
  stop(): void;
}

/** Not a terminal: one line per file as it finishes, and each retry. */
class ProgressLines implements Progress {
  begin(files: FetchableFile[]): void {
    const total = files.reduce((sum, f) => sum + f.size, 0);
    process.stderr.write(`fetching ${files.length} file(s), ${megabytes(total)}\n`);
  }

  event(event: FetchEvent): void {
    if (event.type === 'retry') process.stderr.write(`retry     ${event.path}: ${event.reason} (in ${Math.round(event.waitMs / 1000)} s)\n`);
    if (event.type === 'done') {
      const { outcome } = event;
      const detail = outcome.status === 'failed' ? outcome.reason : outcome.status === 'skipped' ? outcome.reason : megabytes(outcome.bytes);
      process.stderr.write(`${outcome.status.padEnd(10)}${outcome.path} (${detail})\n`);
    }
  }

  stop(): void {}
}

/** A terminal: a bar for the whole download and one for each file being fetched. */
class ProgressBars implements Progress {
  private readonly multi = new MultiBar(
    { format: '{label} [{bar}] {percentage}% | {detail}', hideCursor: true, clearOnComplete: false, stream: process.stderr, fps: 5 },
    Presets.shades_classic,
  );
  private total: SingleBar | undefined;
  private readonly bars = new Map<string, SingleBar>();
  /** Bytes of each file on disk so far (verified files count whole). */
  private readonly position = new Map<string, number>();
  private files = 0;
  private done = 0;
  private received = 0;
  private totalBytes = 0;
  private readonly started = Date.now();

  begin(files: FetchableFile[]): void {
    this.files = files.length;
    this.totalBytes = files.reduce((sum, f) => sum + f.size, 0);
    this.total = this.multi.create(Math.max(1, this.totalBytes), 0, { label: 'total'.padEnd(24), detail: '' });
    this.refresh();
  }

  event(event: FetchEvent): void {
    switch (event.type) {
      case 'start': {
        this.position.set(event.path, event.resumeFrom);
        const detail = event.resumeFrom > 0 ? `resumed at ${megabytes(event.resumeFrom)}` : '';
        const bar = this.bars.get(event.path);
        if (bar) bar.update(event.resumeFrom, { detail });
        else this.bars.set(event.path, this.multi.create(Math.max(1, event.size), event.resumeFrom, { label: shorten(event.path, 24), detail }));
        break;
      }
      case 'progress':
        this.received += event.bytes;
        this.position.set(event.path, (this.position.get(event.path) ?? 0) + event.bytes);
        this.bars.get(event.path)?.increment(event.bytes);
        break;
      case 'retry':
        this.bars.get(event.path)?.update({ detail: `retrying: ${event.reason}` });
        break;
      case 'done': {
        this.done += 1;
        const { outcome } = event;
        if (outcome.status !== 'failed') this.position.set(outcome.path, event.size);
        const bar = this.bars.get(outcome.path);
        if (bar) {
          this.multi.remove(bar);
          this.bars.delete(outcome.path);
        }
        if (outcome.status === 'failed') this.multi.log(`failed    ${outcome.path}: ${outcome.reason}\n`);
        break;
      }
    }
    this.refresh();
  }

  stop(): void {
    this.multi.stop();
  }

  private refresh(): void {
    const present = [...this.position.values()].reduce((sum, n) => sum + n, 0);
    const seconds = (Date.now() - this.started) / 1000;
    const speed = seconds > 0 ? `${megabytes(this.received / seconds)}/s` : '';
    this.total?.update(Math.min(present, this.totalBytes), {
      detail: `${this.done}/${this.files} files | ${megabytes(present)} of ${megabytes(this.totalBytes)} | ${speed}`,
    });
  }
}

function shorten(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `…${text.slice(text.length - width + 1)}`;
}

import { readFile, stat } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { Requester } from '../../access/levels.js';
import type { ChallengeActor, Leaderboard } from '../../challenges/challenges.service.js';
import { createChallengesService } from '../../challenges/create.js';
import { DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, submitArchive, SubmitError } from '../../challenges/client/submit.js';
import { CHALLENGE_TASKS, LEADERBOARD_MODES, type ChallengeTaskName, type LeaderboardMode } from '../../challenges/model.js';
import { createAuditLog } from '../../audit/create.js';
import { AppError, ExitCode, FatalError } from '../../errors.js';
import { createMailer } from '../../mail/index.js';
import { runCommand } from '../run.js';
import { databaseOption, withDatabase, type DatabaseOption } from './dataset.js';

/** The operator at the command line: no account, an administrator's view (the audit log records the events without an actor). */
const OPERATOR: ChallengeActor = { requester: { user: null, level: 'L0', roles: ['admin'], via: 'anonymous' } as unknown as Requester, ip: null };

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function whole(option: string, min: number) {
  return (text: string): number => {
    if (!/^\d{1,9}$/.test(text) || Number(text) < min) throw new FatalError(ExitCode.config, `${option} takes a whole number of at least ${min}, not "${text}"`);
    return Number(text);
  };
}

function fraction(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value <= 1)) throw new FatalError(ExitCode.config, `--threshold takes a number from 0 to 1, not "${text}"`);
  return value;
}

function moment(option: string, text: string): Date {
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) throw new FatalError(ExitCode.config, `${option} takes an ISO 8601 time such as 2027-01-31T12:00:00Z, not "${text}"`);
  return date;
}

function slideList(text: string): number[] | null {
  if (text === 'all') return null;
  const ids = text.split(',').map((part) => part.trim());
  if (ids.length === 0 || ids.some((id) => !/^[1-9]\d{0,9}$/.test(id))) throw new FatalError(ExitCode.config, `--slides takes all or slide ids separated by commas (1,2,3), not "${text}"`);
  return ids.map(Number);
}

/** Refusals of the service (AppError) become one line on stderr and exit status 1. */
async function refusalsAsFailures<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError) throw new FatalError(ExitCode.failure, error.message, { cause: error });
    throw error;
  }
}

function printLeaderboard(board: Leaderboard): void {
  out(`${board.challenge} ${board.phase} (${board.state}${board.final ? ', final' : ''}; ${board.mode} submission of each team)`);
  if (board.entries.length === 0) out('no scored submissions yet');
  for (const entry of board.entries) {
    const interval = entry.interval ? `  [${entry.interval.low.toFixed(4)}, ${entry.interval.high.toFixed(4)}]` : '';
    out(`${String(entry.rank).padStart(3)}  ${entry.score.toFixed(4)}${interval}  ${entry.team}  #${entry.submissionId}  ${entry.submittedAt.toISOString()}`);
  }
  if (board.late.length > 0) {
    out('after the close:');
    for (const entry of board.late) out(`  -  ${entry.score.toFixed(4)}  ${entry.team}  #${entry.submissionId}  ${entry.submittedAt.toISOString()}`);
  }
}

/** `slidebank challenge create|phase|score|leaderboard|publish-truth|list`: challenges for organisers. */
export function challengeCommand(): Command {
  const challenge = new Command('challenge').description('challenges on the platform\'s data with hidden test sets: create, phases, scoring, leaderboards, publishing the truth');

  challenge
    .command('create')
    .description('create a challenge from a training and a test release (slidebank dataset release)')
    .argument('<name>', 'lower-case letters, digits, ".", "_" and "-"')
    .requiredOption('--train <release>', 'the training release, DATASET@VERSION')
    .requiredOption('--test <release>', 'the test release, DATASET@VERSION: its annotations are the hidden truth')
    .addOption(new Option('--task <task>', 'what is predicted').choices(CHALLENGE_TASKS).makeOptionMandatory())
    .option('--title <text>', 'the title (default the name)')
    .option('--description <text>', 'the overview, Markdown')
    .option('--rules <file.md>', 'the rules, a Markdown file; participants accept them to join')
    .option('--mask-downsample <n>', 'level-0 pixels per mask pixel (default 16)', whole('--mask-downsample', 1))
    .option('--threshold <t>', 'the Jaccard threshold (default 0.65)', fraction)
    .option('--daily-limit <n>', 'submissions per team and phase per UTC day (default 5)', whole('--daily-limit', 1))
    .option('--team-size <n>', 'members per team at most (default 5)', whole('--team-size', 1))
    .addOption(new Option('--leaderboard-mode <mode>', 'which submission of each team is ranked (default best)').choices(LEADERBOARD_MODES))
    .addOption(databaseOption())
    .action(
      async (
        name: string,
        options: {
          train: string;
          test: string;
          task: ChallengeTaskName;
          title?: string;
          description?: string;
          rules?: string;
          maskDownsample?: number;
          threshold?: number;
          dailyLimit?: number;
          teamSize?: number;
          leaderboardMode?: LeaderboardMode;
        } & DatabaseOption,
        command: Command,
      ) =>
        runCommand(async () => {
          const rules = options.rules !== undefined ? await readFile(options.rules, 'utf8').catch(() => {
            throw new FatalError(ExitCode.config, `--rules: cannot read ${options.rules}`);
          }) : undefined;
          await withDatabase(command, options, (config, db, log) =>
            refusalsAsFailures(async () => {
              const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
              const made = await service.create(
                {
                  name,
                  task: options.task,
                  train: options.train,
                  test: options.test,
                  ...(options.title !== undefined ? { title: options.title } : {}),
                  ...(options.description !== undefined ? { description: options.description } : {}),
                  ...(rules !== undefined ? { rules } : {}),
                  ...(options.maskDownsample !== undefined ? { maskDownsample: options.maskDownsample } : {}),
                  ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
                  ...(options.dailyLimit !== undefined ? { dailyLimit: options.dailyLimit } : {}),
                  ...(options.teamSize !== undefined ? { teamSize: options.teamSize } : {}),
                  ...(options.leaderboardMode !== undefined ? { leaderboardMode: options.leaderboardMode } : {}),
                },
                OPERATOR,
              );
              out(`created challenge ${made.name} (${made.task}; train ${options.train}, test ${options.test}; mask downsample ${made.maskDownsample}, threshold ${made.threshold}, ${made.dailyLimit} submission(s) a day)`);
            }),
          );
        }),
    );

  challenge
    .command('phase')
    .description('create or change a phase: when it opens and closes, its test slides, whether its leaderboard shows before the close')
    .argument('<name>', 'the challenge')
    .argument('<phase>', 'the phase, e.g. validation or test')
    .requiredOption('--opens <iso>', 'when submissions open, e.g. 2027-01-10T00:00:00Z')
    .requiredOption('--closes <iso>', 'when they close')
    .option('--slides <ids>', 'all (default) or test-release slide ids, comma-separated', 'all')
    .option('--daily-limit <n>', "submissions per team per UTC day in this phase (default the challenge's)", whole('--daily-limit', 1))
    .addOption(new Option('--leaderboard <visibility>', 'public: shown while open; hidden: only after the close').choices(['public', 'hidden']).default('public'))
    .addOption(databaseOption())
    .action(
      async (name: string, phase: string, options: { opens: string; closes: string; slides: string; dailyLimit?: number; leaderboard: 'public' | 'hidden' } & DatabaseOption, command: Command) =>
        runCommand(async () => {
          const input = {
            opensAt: moment('--opens', options.opens),
            closesAt: moment('--closes', options.closes),
            slides: slideList(options.slides),
            dailyLimit: options.dailyLimit ?? null,
            leaderboard: options.leaderboard,
          };
          await withDatabase(command, options, (config, db, log) =>
            refusalsAsFailures(async () => {
              const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
              const saved = await service.savePhase(name, phase, input, OPERATOR);
              out(`${name} ${saved.name}: ${saved.opensAt.toISOString()} to ${saved.closesAt.toISOString()}, ${saved.slides === null ? 'all test slides' : `${saved.slides.length} test slide(s)`}, leaderboard ${saved.leaderboard}`);
            }),
          );
        }),
    );

  challenge
    .command('score')
    .description('validate and score a submission archive as the organisers would, recording nothing')
    .argument('<name>', 'the challenge')
    .argument('<archive>', 'the submission: .zip, .tar or .tar.gz')
    .option('--phase <phase>', 'the phase whose slides count (default the open one, else the last to have opened)')
    .option('--json', 'print the report or the per-slide and total figures as JSON')
    .addOption(databaseOption())
    .action(async (name: string, archive: string, options: { phase?: string; json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(async () => {
        await stat(archive).catch(() => {
          throw new FatalError(ExitCode.config, `cannot read ${archive}`);
        });
        await withDatabase(command, options, (config, db, log) =>
          refusalsAsFailures(async () => {
            const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
            const result = await service.scoreFile(name, options.phase, archive);
            if (options.json) out(JSON.stringify(result, null, 2));
            else if (!result.valid) for (const problem of result.report.problems) out(`invalid: ${problem.message}`);
            else {
              for (const slide of result.perSlide) out(`${slide.slide}  ${slide.score.toFixed(4)}`);
              out(`score ${result.score.toFixed(4)}`);
            }
            if (!result.valid) throw new FatalError(ExitCode.failure, `the submission is not valid (${result.report.problems.length} problem(s))`);
          }),
        );
      }),
    );

  challenge
    .command('submit')
    .description("send a submission archive to a Slidebank server as a participant, in chunks that resume after a broken connection")
    .argument('<name>', 'the challenge')
    .argument('<archive>', 'the submission: .zip, .tar or .tar.gz')
    .option('--phase <phase>', 'the phase (default the one open now)')
    .addOption(new Option('--server <url>', 'the Slidebank server, e.g. https://slidebank.hospital.example').env('SLIDEBANK_SERVER'))
    .addOption(new Option('--token <token>', 'a personal access token (made on your account page)').env('SLIDEBANK_TOKEN'))
    .option('--chunk-size <bytes>', `bytes per request, at most ${MAX_CHUNK_BYTES} (default ${DEFAULT_CHUNK_BYTES}, 16 MiB)`)
    .option('--retries <n>', 'attempts per chunk after the first, for network and server errors', '6')
    .addHelpText(
      'after',
      [
        '',
        'The upload is kept on the server for a day after its last chunk, and its id beside the archive',
        '(ARCHIVE.upload.json): after a broken connection, run the same command again to continue from where it stopped.',
        '',
        'Exit status: 0 queued for scoring, 1 refused (the validation report on stdout) or the server said no,',
        '2 bad options, 4 the server could not be reached (run again to continue).',
      ].join('\n'),
    )
    .action(async (name: string, archive: string, options: { phase?: string; server?: string; token?: string; chunkSize?: string; retries: string }) =>
      runCommand(async () => {
        if (!options.server) throw new FatalError(ExitCode.config, '--server (or SLIDEBANK_SERVER) is required: the Slidebank server URL');
        if (!options.token) throw new FatalError(ExitCode.config, '--token (or SLIDEBANK_TOKEN) is required: a personal access token');
        const chunkBytes = options.chunkSize === undefined ? DEFAULT_CHUNK_BYTES : whole('--chunk-size', 1)(options.chunkSize);
        const retries = whole('--retries', 0)(options.retries);
        const controller = new AbortController();
        const interrupt = () => controller.abort();
        process.once('SIGINT', interrupt);
        process.once('SIGTERM', interrupt);
        const err = (line: string) => void process.stderr.write(`${line}\n`);
        try {
          const result = await submitArchive({
            server: options.server,
            token: options.token,
            challenge: name,
            file: archive,
            ...(options.phase ? { phase: options.phase } : {}),
            chunkBytes,
            retries,
            signal: controller.signal,
            onProgress: (sent, total) => err(`sent ${sent} of ${total} bytes (${Math.floor((sent * 100) / total)}%)`),
            onRetry: (reason, waitMs) => err(`${reason}; trying again in ${Math.round(waitMs / 1000)} s`),
          });
          if (result.resumedFrom > 0) err(`continued the upload begun earlier from byte ${result.resumedFrom}`);
          if (result.outcome === 'queued') {
            out(`submission ${result.submission.id} to ${name} ${result.submission.phase} is queued for scoring${result.submission.late ? ' (after the close: scored and shown apart)' : ''}`);
            return ExitCode.ok;
          }
          for (const problem of result.problems) out(`invalid: ${problem.file ? `${problem.file}: ` : ''}${problem.message}`);
          throw new FatalError(ExitCode.failure, result.message);
        } catch (error) {
          if ((error as Error).name === 'AbortError') throw new FatalError(ExitCode.failure, 'interrupted; run the command again to continue the upload');
          if (error instanceof SubmitError) throw new FatalError(error.kind === 'network' ? ExitCode.network : error.kind === 'usage' ? ExitCode.config : ExitCode.failure, error.message);
          throw error;
        } finally {
          process.off('SIGINT', interrupt);
          process.off('SIGTERM', interrupt);
        }
      }),
    );

  challenge
    .command('leaderboard')
    .description("a phase's leaderboard, as administrators see it")
    .argument('<name>', 'the challenge')
    .option('--phase <phase>', 'the phase (default the open one, else the last to have opened)')
    .option('--json', 'print it as JSON')
    .addOption(databaseOption())
    .action(async (name: string, options: { phase?: string; json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, (config, db, log) =>
          refusalsAsFailures(async () => {
            const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
            const board = await service.leaderboard(name, options.phase, OPERATOR.requester);
            if (options.json) out(JSON.stringify(board, null, 2));
            else printLeaderboard(board);
          }),
        ),
      ),
    );

  challenge
    .command('publish-truth')
    .description("publish the test release's annotations: from now on they are served like any other slide's")
    .argument('<name>', 'the challenge')
    .addOption(databaseOption())
    .action(async (name: string, options: DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, (config, db, log) =>
          refusalsAsFailures(async () => {
            const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
            const published = await service.publishTruth(name, OPERATOR);
            out(`${published.name}: the truth is published (${published.truthPublishedAt!.toISOString()})`);
          }),
        ),
      ),
    );

  challenge
    .command('list')
    .description('the challenges with their phases')
    .option('--json', 'print them as JSON')
    .addOption(databaseOption())
    .action(async (options: { json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, (config, db, log) =>
          refusalsAsFailures(async () => {
            const service = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
            const items = await service.list(OPERATOR.requester);
            if (options.json) return out(JSON.stringify(items, null, 2));
            if (items.length === 0) return out('no challenges');
            for (const item of items) {
              out(`${item.name}  ${item.task}  ${item.status}${item.truthPublished ? '  truth published' : ''}`);
              for (const phase of item.phases) out(`  ${phase.name}  ${phase.opensAt.toISOString()} – ${phase.closesAt.toISOString()}  ${phase.state}  leaderboard ${phase.leaderboard}`);
            }
          }),
        ),
      ),
    );

  return challenge;
}

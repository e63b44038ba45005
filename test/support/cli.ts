import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../../server/package-info.js';

/** The CLI as `npx slidebank` runs it: the build in dist/, which `npm test` brings up to date first. */
const CLI = [path.join(packageRoot, 'bin', 'slidebank.js')];

/** Written by `npm run build:server` when the server compiled. */
export const BUILD_STAMP = path.join(packageRoot, 'dist', '.build-stamp');

/**
 * Why dist/ cannot stand for the source, or undefined when it can: a test of
 * the built CLI after an edit under server/ would test the old code.
 */
export function staleBuild(root = packageRoot, stamp = BUILD_STAMP): string | undefined {
  let built: number;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return `the server is not built (${path.relative(root, stamp)} is missing): run \`npm run build:server\` (\`npm test\` does it first)`;
  }
  const newer = newestFile(path.join(root, 'server'));
  if (newer && newer.mtimeMs > built) {
    return `${path.relative(root, newer.file)} is newer than the build in dist/: run \`npm run build:server\` (\`npm test\` does it first)`;
  }
  return undefined;
}

function newestFile(dir: string): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const candidate = entry.isDirectory() ? newestFile(file) : { file, mtimeMs: statSync(file).mtimeMs };
    if (candidate && (!newest || candidate.mtimeMs > newest.mtimeMs)) newest = candidate;
  }
  return newest;
}

let buildChecked = false;

function assertBuilt(): void {
  if (buildChecked) return;
  const problem = staleBuild();
  if (problem) throw new Error(`cannot run the CLI: ${problem}`);
  buildChecked = true;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
}

/** A clean environment: nothing of the developer's SLIDEBANK_*, PORT or DATABASE_URL leaks in. */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SLIDEBANK_') || key === 'PORT' || key === 'DATABASE_URL' || key === 'NODE_ENV') continue;
    env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

export function spawnCli(args: string[], options: CliOptions = {}): ChildProcess {
  assertBuilt();
  return spawn(process.execPath, [...CLI, ...args], {
    cwd: options.cwd ?? packageRoot,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child, options.timeoutMs ?? 60_000);
}

export function collect(child: ChildProcess, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A port that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Poll until `url` answers with any HTTP status, or fail after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode} before answering`);
    try {
      return await fetch(url);
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * Run the command line inside this test process, from the source: for
 * commands that stop at their options or configuration (an exit code and a
 * message, nothing done), which need no process of their own. Runs are one at
 * a time: while one runs, process.env holds the command's environment (as
 * `spawnCli` would give it) and what the process writes to stdout and stderr
 * is its output. Commands that do work belong in `runCli`.
 */
export function runCliInProcess(args: string[], options: Pick<CliOptions, 'env'> = {}): Promise<CliResult> {
  const run = inProcessQueue.then(() => runHere(args, options.env ?? {}));
  inProcessQueue = run.catch(() => undefined);
  return run;
}

async function runHere(args: string[], extra: Record<string, string | undefined>): Promise<CliResult> {
  const { buildProgram } = await import('../../server/cli/program.js');
  const { CommanderError } = await import('commander');
  let stdout = '';
  let stderr = '';
  const program = buildProgram();
  const commands = [program];
  for (const command of commands) {
    commands.push(...command.commands);
    command.exitOverride().configureOutput({ writeOut: (text) => (stdout += text), writeErr: (text) => (stderr += text) });
  }
  const savedEnv = { ...process.env };
  const savedExitCode = process.exitCode;
  const writeOut = process.stdout.write;
  const writeErr = process.stderr.write;
  const capture = (append: (text: string) => void) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof process.stdout.write;
  replaceEnv(childEnv(extra));
  process.exitCode = undefined;
  process.stdout.write = capture((text) => (stdout += text));
  process.stderr.write = capture((text) => (stderr += text));
  let code: number;
  try {
    await program.parseAsync(args, { from: 'user' });
    code = Number(process.exitCode ?? 0);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode;
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    process.exitCode = savedExitCode;
    replaceEnv(savedEnv);
  }
  return { code, signal: null, stdout, stderr };
}

function replaceEnv(env: NodeJS.ProcessEnv): void {
  for (const key of Object.keys(process.env)) if (!(key in env)) delete process.env[key];
  Object.assign(process.env, env);
}

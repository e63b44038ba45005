// Toolbox workers run at a lower CPU and I/O priority than the web server: read back from /proc and ionice, on the real processes.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { ioPriorityOf, niceOf } from '../../server/queue/index.js';
import { appliance } from '../support/appliance.js';
import { collect, spawnCli, waitForHttp } from '../support/cli.js';

const linux = process.platform === 'linux' && spawnSync('ionice', ['-p', String(process.pid)]).status === 0;
const linuxTest = linux ? test : test.skip;

/** The niceness of every thread of a process, from /proc/<pid>/task/<tid>/stat. */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);
  });
}

/** Children of `parent`, from the parent field of each process's /proc/<pid>/stat. */
function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Everything the process writes, so far. */
function captured(child: ChildProcess): () => string {
  let text = '';
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
}

/** Wait until `check` holds (the worker lowers its priority once its configuration is read), or give up after `ms`. */
async function eventually<T>(read: () => T, check: (value: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = read();
    if (check(value) || Date.now() > deadline) return value;
    await sleep(100);
  }
}

linuxTest('the worker process serve starts runs at the configured niceness and I/O class, every thread of it; the server stays at its own', async (t) => {
  const site = await appliance(t);
  const env = { ...site.env, SLIDEBANK_QUEUE_WORKERS: '1', SLIDEBANK_QUEUE_WORKER_NICE: '7', SLIDEBANK_QUEUE_WORKER_IO_PRIORITY: 'low' };
  const server = spawnCli(['serve'], { env });
  const stopped = collect(server, 600_000);
  t.teardown(async () => {
    if (server.exitCode === null) server.kill('SIGTERM');
    await stopped;
  });
  await waitForHttp(`${site.base}/healthz`, 60_000, server);
  const [worker] = await eventually(() => childrenOf(server.pid!), (pids) => pids.length > 0);
  t.truthy(worker, 'serve started a worker process');
  t.is(await eventually(() => niceOf(worker!), (nice) => nice === 7), 7, '/proc/<worker>/stat: niceness 7');
  // The main thread is changed first; the others follow within the same call.
  const niceness = await eventually(() => [...new Set(threadNiceness(worker!))], (values) => values.length === 1 && values[0] === 7, 10_000);
  t.deepEqual(niceness, [7], 'every thread of the worker');
  t.is(await eventually(() => ioPriorityOf(worker!), (io) => io === 'best-effort: prio 7'), 'best-effort: prio 7', 'ionice -p <worker>');
  t.is(niceOf(server.pid!), niceOf(process.pid), 'the web server keeps the niceness it was started with');
  t.is(ioPriorityOf(server.pid!), ioPriorityOf(process.pid));
});

linuxTest('slidebank worker on its own runs at the defaults, nice 10 and the idle I/O class, and says so', async (t) => {
  const site = await appliance(t);
  await site.cli(['migrate']);
  const worker = spawnCli(['worker'], { env: site.env });
  const output = captured(worker);
  const done = collect(worker, 300_000);
  t.teardown(() => void worker.kill('SIGKILL'));
  t.is(await eventually(() => niceOf(worker.pid!), (nice) => nice === 10), 10);
  t.is(await eventually(() => ioPriorityOf(worker.pid!), (io) => io === 'idle'), 'idle');
  t.regex(await eventually(output, (text) => /queue worker started/.test(text)), /queue worker: running at nice 10, I\/O idle/);
  worker.kill('SIGTERM');
  t.is((await done).code, 0);
});

linuxTest('a worker that cannot run ionice says why and keeps the default I/O class', async (t) => {
  const site = await appliance(t);
  await site.cli(['migrate']);
  // Node itself is found by its full path; without /usr/bin and /bin on the PATH, ionice is not.
  const worker = spawnCli(['worker'], { env: { ...site.env, PATH: '/nonexistent' } });
  const output = captured(worker);
  const done = collect(worker, 300_000);
  t.teardown(() => void worker.kill('SIGKILL'));
  t.is(await eventually(() => niceOf(worker.pid!), (nice) => nice === 10), 10, 'the niceness needs no program');
  const text = await eventually(output, (text) => /queue worker started/.test(text));
  t.regex(text, /queue worker: ionice \(util-linux\) cannot be run \(ENOENT\); the I\/O priority is unchanged/);
  t.regex(text, /running at nice 10, I\/O unchanged/);
  t.not(ioPriorityOf(worker.pid!), 'idle');
  worker.kill('SIGTERM');
  t.is((await done).code, 0);
});

test('a niceness or I/O class out of range is refused with the setting named', async (t) => {
  const site = await appliance(t);
  const nice = spawnCli(['worker'], { env: { ...site.env, SLIDEBANK_QUEUE_WORKER_NICE: '25' } });
  const niceResult = await collect(nice, 60_000);
  t.is(niceResult.code, 2);
  t.regex(niceResult.stderr, /queue\.workerNice.*at most 19/);
  const io = spawnCli(['worker'], { env: { ...site.env, SLIDEBANK_QUEUE_WORKER_IO_PRIORITY: 'realtime' } });
  const ioResult = await collect(io, 60_000);
  t.is(ioResult.code, 2);
  t.regex(ioResult.stderr, /queue\.workerIoPriority.*idle, low or normal/);
});

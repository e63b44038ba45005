import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Client, logIn } from '../support/accounts.js';
import { appliance, type Appliance } from '../support/appliance.js';
import { collect, freePort, spawnCli, waitForHttp, type CliResult } from '../support/cli.js';

/**
 * Two app nodes as separate `slidebank serve` processes on one database, one
 * data folder and one slide store, as docs/scaling.md describes: what one node
 * starts, the other honours, and the scheduled jobs run once per tick between them.
 */

const PASSWORD = 'grey heron over the river 42';
/** Every three seconds: node-cron's six-field form with seconds. */
const EVERY_THREE_SECONDS = '*/3 * * * * *';

interface Node {
  site: { url(pathname: string): string };
  stop(): Promise<CliResult>;
}

async function startNodes(t: ExecutionContext, site: Appliance, env: Record<string, string>, count: number): Promise<Node[]> {
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const server = spawnCli(['serve'], { env: { ...site.env, ...env, PORT: String(port) } });
    const stopped = collect(server, 600_000);
    const stop = () => {
      if (server.exitCode === null) server.kill('SIGTERM');
      return stopped;
    };
    t.teardown(stop);
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/healthz`, 120_000, server);
    nodes.push({ site: { url: (pathname) => `${base}${pathname}` }, stop });
  }
  return nodes;
}

test('a session started on one node is valid on the other, and ended there it is over on both', async (t) => {
  t.timeout(5 * 60_000);
  const site = await appliance(t);
  await site.cli(['user', 'add', '--email', 'pathologist@hospital.example', '--password', PASSWORD, '--level', 'L1', '--role', 'pathologist']);
  const [a, b] = (await startNodes(t, site, {}, 2)) as [Node, Node];

  const onA = await logIn(a.site, 'pathologist@hospital.example', PASSWORD);
  const onB = new Client(b.site);
  for (const [name, value] of onA.cookies) onB.cookies.set(name, value);
  onB.csrfToken = onA.csrfToken;
  const me = await onB.get<{ email: string }>('/api/auth/me');
  t.is(me.status, 200);
  t.is(me.body.email, 'pathologist@hospital.example');
  t.true((await onB.post('/api/auth/logout')).status < 300);
  t.is((await onA.get('/api/auth/me')).body, null);
  // A forged cookie is refused by both.
  const forged = new Client(a.site);
  for (const [name, value] of onA.cookies) forged.cookies.set(name, `${value.slice(0, -2)}xx`);
  t.is((await forged.get('/api/auth/me')).body, null);
});

test('each scheduled tick of a job runs on one node only', async (t) => {
  t.timeout(5 * 60_000);
  const site = await appliance(t);
  const nodes = await startNodes(t, site, { SLIDEBANK_JOBS_CLEANUP_SCHEDULE: EVERY_THREE_SECONDS }, 2);
  const runsByTick = async () => {
    const runs = await site.database.db.knex('job_runs').where({ job: 'account-cleanup', trigger: 'schedule' }).orderBy('as_of').select('status', 'as_of');
    const byTick = new Map<number, string[]>();
    for (const run of runs) {
      const tick = Math.floor(new Date(`${String(run.as_of).replace(' ', 'T')}Z`).getTime() / 3000);
      byTick.set(tick, [...(byTick.get(tick) ?? []), String(run.status)]);
    }
    return { runs, byTick };
  };
  // Both schedulers fire on the same ticks until three ticks have been run.
  const deadline = Date.now() + 120_000;
  while ([...(await runsByTick()).byTick.values()].filter((statuses) => !statuses.includes('running')).length < 3 && Date.now() < deadline) await sleep(250);
  for (const node of nodes) t.is((await node.stop()).code, 0);

  const { runs, byTick } = await runsByTick();
  t.log(runs.map((r) => `${String(r.as_of)} ${String(r.status)}`).join('\n'));
  t.true(byTick.size >= 3, 'several ticks were recorded');
  for (const [tick, statuses] of byTick) {
    t.is(statuses.filter((s) => s === 'succeeded').length, 1, `tick ${new Date(tick * 3000).toISOString()}: ${statuses.join(', ')}`);
  }
});

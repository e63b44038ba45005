import test from 'ava';
import { DeferredWork } from '../../../server/access/deferred-work.js';
import { AppError } from '../../../server/errors.js';
import { memoryLogger } from '../../support/logs.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

test('deferred work starts after the code that deferred it, and idle() waits for all of it', async (t) => {
  const { log } = memoryLogger();
  const work = new DeferredWork(log, { concurrent: 2, pending: 10 });
  const order: string[] = [];
  for (const name of ['a', 'b', 'c']) {
    work.defer(name, async () => {
      await tick();
      order.push(name);
    });
  }
  order.push('answered');
  t.is(work.size, 3);
  await work.idle();
  t.deepEqual(order, ['answered', 'a', 'b', 'c']);
  t.is(work.size, 0);
});

test('a failing task is logged with what it was, and the others still run', async (t) => {
  const { log, lines } = memoryLogger();
  const work = new DeferredWork(log);
  let ran = false;
  work.defer('password reset mail to a@example.org', async () => {
    throw new Error('SMTP server refused');
  });
  work.defer('confirmation mail to b@example.org', async () => {
    ran = true;
  });
  await work.idle();
  t.true(ran);
  const line = lines.find((l) => l.msg === 'deferred account work failed');
  t.like(line, { level: 50, task: 'password reset mail to a@example.org' });
  t.regex(JSON.stringify(line), /SMTP server refused/);
});

test('beyond the pending bound a request is refused with 503 rather than anything dropped', (t) => {
  const { log } = memoryLogger();
  const work = new DeferredWork(log, { concurrent: 1, pending: 2 });
  const never = () => new Promise<void>(() => undefined);
  work.defer('one', never);
  work.defer('two', never);
  const error = t.throws(() => work.defer('three', never), { instanceOf: AppError });
  t.is(error.status, 503);
  t.like(error.details, { retryAfterSeconds: 60 });
});

test('closing lets pending work finish, and logs each task it had to leave', async (t) => {
  const { log, lines } = memoryLogger();
  const flushed = new DeferredWork(log, { concurrent: 1, pending: 10 });
  const sent: string[] = [];
  for (const name of ['first', 'second']) {
    flushed.defer(name, async () => {
      await tick();
      sent.push(name);
    });
  }
  await flushed.close(5_000);
  t.deepEqual(sent, ['first', 'second'], 'what was queued is done before close returns');
  t.throws(() => flushed.defer('late', async () => undefined), { instanceOf: AppError }, 'nothing new once closed');

  const stuck = new DeferredWork(log, { concurrent: 1, pending: 10 });
  stuck.defer('mail that hangs', () => new Promise<void>(() => undefined));
  stuck.defer('password reset mail to c@example.org', async () => undefined);
  await stuck.close(50);
  t.like(
    lines.find((l) => l.msg === 'shutting down: deferred account work was not done'),
    { level: 50, task: 'password reset mail to c@example.org' },
  );
  t.like(lines.find((l) => l.msg === 'shutting down: deferred account work still running was cut off'), { running: 1 });
});

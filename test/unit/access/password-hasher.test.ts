import test from 'ava';
import { PasswordHasher } from '../../../server/access/password-hasher.js';
import { AppError } from '../../../server/errors.js';

test('no more hashes run at once than allowed, a bounded number wait, and the rest are refused at once with 503', async (t) => {
  const hasher = new PasswordHasher({ concurrent: 2, queued: 2 });
  const accepted = Array.from({ length: 4 }, (_, i) => hasher.hash(`password number ${i}`));
  t.deepEqual(hasher.load, { running: 2, waiting: 2 });
  const refused = await t.throwsAsync(hasher.verify('one too many', 'scrypt$15$8$1$AAAA$AAAA'), { instanceOf: AppError });
  t.is(refused.status, 503);
  t.is(refused.code, 'server_busy');
  t.like(refused.details, { retryAfterSeconds: 2 });

  const hashes = await Promise.all(accepted);
  t.deepEqual(hasher.load, { running: 0, waiting: 0 }, 'every turn is handed back');
  t.true(await hasher.verify('password number 3', hashes[3]!), 'queued work is done in full');
  t.false(await hasher.verify('password number 3', hashes[2]!));
});

test('a hash that fails gives its turn back', async (t) => {
  const hasher = new PasswordHasher({ concurrent: 1, queued: 0 });
  await t.throwsAsync(hasher.verify('anything', 'scrypt$15$0$1$AAAA$AAAA'), undefined, 'scrypt refuses r = 0');
  await t.notThrowsAsync(hasher.hash('the next one gets its turn'));
  t.deepEqual(hasher.load, { running: 0, waiting: 0 });
});

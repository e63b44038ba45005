import test from 'ava';
import { generatePassword, hashPassword, verifyPassword } from '../../../server/access/password.js';

test('a hash verifies its own password and no other', async (t) => {
  const hash = await hashPassword('correct horse battery staple');
  t.regex(hash, /^scrypt\$15\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  t.true(await verifyPassword('correct horse battery staple', hash));
  t.false(await verifyPassword('correct horse battery stapl', hash));
});

test('two hashes of one password differ by their salt', async (t) => {
  t.not(await hashPassword('same'), await hashPassword('same'));
});

test('Unicode passwords verify whichever normal form the keyboard sent', async (t) => {
  const hash = await hashPassword('caf\u00e9');
  t.true(await verifyPassword('cafe\u0301', hash));
});

test('a stored value that is not one of our hashes never verifies', async (t) => {
  for (const stored of ['', 'plain', 'scrypt$15$8$1$salt', 'bcrypt$1$2$3$4$5', 'scrypt$40$8$1$AAAA$AAAA']) {
    t.false(await verifyPassword('anything', stored), stored);
  }
});

test('generated passwords are long and random', (t) => {
  const a = generatePassword();
  t.regex(a, /^[\w-]{24}$/);
  t.not(a, generatePassword());
});

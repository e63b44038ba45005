import { createServer, type Socket } from 'node:net';
import test from 'ava';
import { loadConfig } from '../../server/config/index.js';
import { DirectoryUnavailableError, LdapDirectory, mapGroups } from '../../server/access/directory/index.js';
import { escapeFilterValue, memberFilter, userFilter } from '../../server/access/directory/ldap-filter.js';
import { GROUPS, ldapEnv, PEOPLE, personDn, slapdTest, startSlapd, type Slapd } from '../support/slapd.js';

/** The auth.ldap settings as the configuration loader validates them, from the same variables an operator sets. */
function settings(slapd: Slapd, overrides: Record<string, string> = {}) {
  return loadConfig({ env: ldapEnv(slapd, overrides) }).config.auth.ldap;
}

test('what a user types is escaped in the filter (RFC 4515), so it can only be compared', (t) => {
  t.is(escapeFilterValue('a*b(c)d\\e\0f'), 'a\\2ab\\28c\\29d\\5ce\\00f');
  t.is(escapeFilterValue('Søren'), 'Søren');
  t.is(userFilter('(&(objectClass=person)(|(uid={username})(mail={username})))', '*)(uid=*'), '(&(objectClass=person)(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a)))');
  // Active Directory's in-chain search names the user's DN, whose own escapes and parentheses are escaped again for the filter.
  t.is(
    memberFilter('member:1.2.840.113556.1.4.1941:', 'CN=Kim\\, Ji (Path),OU=Staff,DC=hospital,DC=example'),
    '(member:1.2.840.113556.1.4.1941:=CN=Kim\\5c, Ji \\28Path\\29,OU=Staff,DC=hospital,DC=example)',
  );
});

test('groups map to roles and institutions by DN (any case and spacing) or by name', (t) => {
  const mapping = mapGroups(
    ['CN=Pathologists, OU=Groups, DC=hospital,DC=example', 'cn=partner-lab,ou=groups,dc=hospital,dc=example'],
    { admin: ['cn=admins,ou=groups,dc=hospital,dc=example'], curator: [], pathologist: ['cn=pathologists,ou=groups,dc=hospital,dc=example'] },
    [{ institution: 'Partner Laboratory', groups: ['Partner-Lab'] }],
  );
  t.deepEqual(mapping, { roles: ['pathologist'], institutions: ['Partner Laboratory'] });
  t.deepEqual(mapGroups([], { admin: ['x'], curator: [], pathologist: [] }, []), { roles: [], institutions: [] });
});

slapdTest('LDAPS with the test CA: the user is found by the service account, bound with the password, and their groups read with nested ones', async (t) => {
  const slapd = await startSlapd(t);
  const directory = new LdapDirectory(settings(slapd));
  const alice = await directory.authenticate(PEOPLE.alice.mail, PEOPLE.alice.password);
  t.is(alice.status, 'ok');
  if (alice.status !== 'ok') return;
  t.is(alice.entry.dn, personDn('alice'));
  t.is(alice.entry.email, PEOPLE.alice.mail);
  t.is(alice.entry.name, PEOPLE.alice.name);
  t.deepEqual(alice.entry.groups.map((g) => g.toLowerCase()).sort(), [GROUPS.partnerLab, GROUPS.pathologists].sort());

  // bob is in senior-curators, which is in curators: walking the groups finds both.
  const bob = await directory.authenticate('bob', PEOPLE.bob.password);
  t.is(bob.status, 'ok');
  if (bob.status === 'ok') t.deepEqual(bob.entry.groups.map((g) => g.toLowerCase()).sort(), [GROUPS.curators, GROUPS.seniorCurators].sort());
  // Without nesting only the direct group counts.
  const direct = await new LdapDirectory(settings(slapd, { SLIDEBANK_AUTH_LDAP_NESTED_GROUPS: 'off' })).authenticate('bob', PEOPLE.bob.password);
  if (direct.status === 'ok') t.deepEqual(direct.entry.groups.map((g) => g.toLowerCase()), [GROUPS.seniorCurators]);
  else t.fail(direct.status);
});

slapdTest('a wrong password, an empty one, an unknown user and a filter injection are refused without binding anyone', async (t) => {
  const slapd = await startSlapd(t);
  const directory = new LdapDirectory(settings(slapd));
  t.deepEqual(await directory.authenticate('alice', 'not alice’s password'), { status: 'wrong_password', dn: personDn('alice') });
  // An empty password would be an unauthenticated bind, which servers answer as a success.
  t.deepEqual(await directory.authenticate('alice', ''), { status: 'empty_password' });
  t.deepEqual(await directory.authenticate('nobody@hospital.example', 'whatever it is'), { status: 'unknown_user' });
  // `*` would match every uid if it were not escaped.
  t.deepEqual(await directory.authenticate('*', PEOPLE.alice.password), { status: 'unknown_user' });
  t.deepEqual(await directory.authenticate('alice)(uid=*', PEOPLE.alice.password), { status: 'unknown_user' });
});

slapdTest('a user without the e-mail attribute is found with an empty address', async (t) => {
  const slapd = await startSlapd(t);
  const answer = await new LdapDirectory(settings(slapd)).authenticate('carol', PEOPLE.carol.password);
  t.is(answer.status, 'ok');
  if (answer.status === 'ok') t.is(answer.entry.email, '');
});

slapdTest('TLS is checked: a directory whose certificate the configured CA did not sign is unavailable, not trusted', async (t) => {
  const slapd = await startSlapd(t);
  const error = await t.throwsAsync(new LdapDirectory(settings(slapd, { SLIDEBANK_AUTH_LDAP_CA_FILE: '' })).authenticate('alice', PEOPLE.alice.password), {
    instanceOf: DirectoryUnavailableError,
  });
  t.regex(error.message, /certificate/i);
});

slapdTest('StartTLS upgrades a plain ldap:// connection; plain LDAP is refused by the configuration unless allowed', async (t) => {
  const slapd = await startSlapd(t);
  const answer = await new LdapDirectory(settings(slapd, { SLIDEBANK_AUTH_LDAP_URL: slapd.ldapUrl, SLIDEBANK_AUTH_LDAP_START_TLS: 'true' })).authenticate('alice', PEOPLE.alice.password);
  t.is(answer.status, 'ok');
  t.throws(() => settings(slapd, { SLIDEBANK_AUTH_LDAP_URL: slapd.ldapUrl }), { message: /auth\.ldap\.url.*plain LDAP/s });
  const plain = await new LdapDirectory(settings(slapd, { SLIDEBANK_AUTH_LDAP_URL: slapd.ldapUrl, SLIDEBANK_AUTH_LDAP_ALLOW_PLAIN: 'true' })).authenticate('alice', PEOPLE.alice.password);
  t.is(plain.status, 'ok');
});

slapdTest('a directory that is down, or one whose service account is refused, is unavailable', async (t) => {
  const slapd = await startSlapd(t);
  await t.throwsAsync(new LdapDirectory(settings(slapd, { SLIDEBANK_AUTH_LDAP_BIND_PASSWORD: 'wrong service secret' })).authenticate('alice', PEOPLE.alice.password), {
    instanceOf: DirectoryUnavailableError,
    message: /service account/,
  });
  await slapd.stop();
  await t.throwsAsync(new LdapDirectory(settings(slapd)).authenticate('alice', PEOPLE.alice.password), { instanceOf: DirectoryUnavailableError });
});

test('a directory that accepts the connection and never answers is unavailable after auth.ldap.timeoutSeconds', async (t) => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as { port: number };
  const ldap = loadConfig({
    env: {
      SLIDEBANK_AUTH_LDAP_URL: `ldaps://127.0.0.1:${port}`,
      SLIDEBANK_AUTH_LDAP_USER_SEARCH_BASE: 'dc=hospital,dc=example',
      SLIDEBANK_AUTH_LDAP_TIMEOUT_SECONDS: '1',
    },
  }).config.auth.ldap;
  await t.throwsAsync(new LdapDirectory(ldap).authenticate('alice', 'a password'), { instanceOf: DirectoryUnavailableError, message: /timeout/i });
  t.true(sockets.length > 0, 'the client connected and waited for an answer');
});

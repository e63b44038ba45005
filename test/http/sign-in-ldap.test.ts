import type { ExecutionContext } from 'ava';
import { Client, accountWorkDone, createUser, TEST_PASSWORD } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { GROUPS, ldapEnv, PEOPLE, personDn, slapdTest, startSlapd, type Slapd } from '../support/slapd.js';

/**
 * The login form against a real OpenLDAP server over LDAPS (test/support/slapd.ts):
 * accounts made at the first directory login, roles and memberships from
 * groups at every login, a directory that is down, the break-glass
 * administrator, linking a local account, throttling and the audit log.
 */

interface Me {
  email: string;
  name: string;
  level: string;
  roles: string[];
  source: string;
  emailConfirmed: boolean;
}

async function withDirectory(t: ExecutionContext, overrides: Record<string, string> = {}): Promise<{ app: TestApp; slapd: Slapd }> {
  const slapd = await startSlapd(t);
  const app = await startTestApp(t, { env: ldapEnv(slapd, overrides) });
  return { app, slapd };
}

async function login(app: TestApp, email: string, password: string): Promise<{ client: Client; status: number; body: unknown }> {
  const client = new Client(app);
  const answer = await client.post('/api/auth/login', { email, password });
  return { client, status: answer.status, body: answer.body };
}

slapdTest('a first directory login makes the account, confirmed and without mail, with the roles and institution its groups give', async (t) => {
  const { app } = await withDirectory(t);
  await app.services.agreements.createInstitution(
    { actorId: null },
    { name: 'Partner Laboratory', agreementReference: 'PL-1', validFrom: new Date(Date.now() - 86_400_000), validUntil: new Date(Date.now() + 365 * 86_400_000), emailDomains: [] },
  );
  const { client, status, body } = await login(app, PEOPLE.alice.mail, PEOPLE.alice.password);
  t.is(status, 200, JSON.stringify(body));
  const me = body as Me;
  t.is(me.email, PEOPLE.alice.mail);
  t.is(me.name, PEOPLE.alice.name);
  t.is(me.source, 'ldap');
  t.true(me.emailConfirmed);
  t.deepEqual(me.roles, ['pathologist']);
  t.is(me.level, 'L3', 'the partner-lab group makes her a member of the Partner Laboratory');
  await accountWorkDone(app);
  t.deepEqual(app.mailer.to(PEOPLE.alice.mail), [], 'no confirmation mail: the directory vouched for the address');
  t.like(app.audit.of('user.created')[0], { details: { source: 'ldap', externalId: personDn('alice') } });
  t.like(app.audit.of('auth.login').at(-1), { details: { source: 'ldap', roles: ['pathologist'] } });
  t.is((await client.get<Me>('/api/auth/me')).body.source, 'ldap');

  // The same person again is the same account.
  const again = await login(app, PEOPLE.alice.mail, PEOPLE.alice.password);
  t.is(again.status, 200);
  t.is(app.audit.of('user.created').length, 1);
});

slapdTest('roles follow the groups at every login: a nested group gives its role, a group removed takes it away', async (t) => {
  const { app, slapd } = await withDirectory(t);
  const bob = await login(app, PEOPLE.bob.mail, PEOPLE.bob.password);
  t.is(bob.status, 200);
  t.deepEqual((bob.body as Me).roles, ['curator'], 'bob is in senior-curators, a member of curators');

  t.deepEqual(((await login(app, PEOPLE.alice.mail, PEOPLE.alice.password)).body as Me).roles, ['pathologist']);
  await slapd.modify(`dn: ${GROUPS.pathologists}\nchangetype: modify\ndelete: member\nmember: ${personDn('alice')}\n-\nadd: member\nmember: ${personDn('dave')}\n`);
  const after = await login(app, PEOPLE.alice.mail, PEOPLE.alice.password);
  t.is(after.status, 200);
  t.deepEqual((after.body as Me).roles, [], 'the group is gone, and the role with it');
  t.like(app.audit.of('user.roles_changed').at(-1), { details: { from: ['pathologist'], to: [] } });
  // A session of hers reads the change at once, as for any role change.
  t.deepEqual((await after.client.get<Me>('/api/auth/me')).body.roles, []);
});

slapdTest('a wrong password, an empty one and a user without an address are refused, each audited', async (t) => {
  const { app } = await withDirectory(t);
  const wrong = await login(app, PEOPLE.alice.mail, 'this is not her password');
  t.is(wrong.status, 401);
  t.like(wrong.body, { error: { code: 'invalid_credentials' } });
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { email: PEOPLE.alice.mail, source: 'ldap', reason: 'wrong_password' } });

  // The form refuses an empty password before anything is asked.
  t.is((await login(app, PEOPLE.alice.mail, '')).status, 400);

  const unknown = await login(app, 'nobody@hospital.example', 'any password at all');
  t.is(unknown.status, 401, 'an unknown user fails as a wrong password does');
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'ldap', reason: 'unknown_user' } });
});

slapdTest('a directory entry without an e-mail address cannot log in: 403 no_email, and no account is made', async (t) => {
  // The filter also matches a description, which carol's entry gets: her entry still has no mail attribute.
  const { app, slapd } = await withDirectory(t, {
    SLIDEBANK_AUTH_LDAP_USER_FILTER: '(&(objectClass=inetOrgPerson)(|(mail={username})(description={username})))',
  });
  await slapd.modify(`dn: ${personDn('carol')}\nchangetype: modify\nadd: description\ndescription: carol@hospital.example\n`);
  const carol = await login(app, 'carol@hospital.example', PEOPLE.carol.password);
  t.is(carol.status, 403);
  t.like(carol.body, { error: { code: 'no_email' } });
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'ldap', externalId: personDn('carol'), reason: 'no_email' } });
  t.is(Number((await app.database.db.knex('users').where({ source: 'ldap' }).count({ n: '*' }).first())?.n), 0);
});

slapdTest('the directory down: directory users get a clear 503, local accounts and the break-glass administrator still log in', async (t) => {
  const { app, slapd } = await withDirectory(t);
  const researcher = await createUser(app, { level: 'L1', email: 'researcher@university.example' });
  const breakGlass = await createUser(app, { level: 'L1', roles: ['admin'], email: 'admin@hospital.example' });
  const otherAdmin = await createUser(app, { level: 'L1', roles: ['admin'], email: 'second-admin@hospital.example' });
  // dave's account is made by the directory (it has no Slidebank password); then the directory goes down.
  t.is((await login(app, PEOPLE.dave.mail, PEOPLE.dave.password)).status, 200);
  await slapd.stop();

  const dave = await login(app, PEOPLE.dave.mail, PEOPLE.dave.password);
  t.is(dave.status, 503, 'an account of the directory’s own waits for the directory');
  t.like(dave.body, { error: { code: 'directory_unavailable' } });
  const alice = await login(app, PEOPLE.alice.mail, PEOPLE.alice.password);
  t.is(alice.status, 503);
  t.like(alice.body, { error: { code: 'directory_unavailable' } });
  t.regex((alice.body as { error: { message: string } }).error.message, /directory cannot be reached/);
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'ldap', reason: 'directory_unavailable' } });

  t.is((await login(app, researcher.email, TEST_PASSWORD)).status, 200, 'a local account outside the directory’s domains');
  const admin = await login(app, breakGlass.email, TEST_PASSWORD);
  t.is(admin.status, 200, 'the local administrator, although the address is in the directory’s domain');
  t.like(app.audit.of('auth.break_glass').at(-1), { actorId: breakGlass.id, details: { email: breakGlass.email } });
  await accountWorkDone(app);
  t.regex(app.mailer.last(otherAdmin.email).subject, /local administrator account was used/);
  t.regex(app.mailer.last(otherAdmin.email).text, new RegExp(breakGlass.email));
  t.deepEqual(app.mailer.to(breakGlass.email), [], 'the administrator who logged in is not mailed about themselves');
  t.is(app.audit.of('auth.break_glass').length, 1, 'the researcher’s login is no break-glass, nor dave’s directory login as an administrator');

  // Back up: directory users log in again.
  await slapd.start();
  t.is((await login(app, PEOPLE.alice.mail, PEOPLE.alice.password)).status, 200);
});

slapdTest('an address with a local account is linked only after its local password is given too', async (t) => {
  const { app } = await withDirectory(t);
  const local = await createUser(app, { level: 'L1', email: PEOPLE.alice.mail, name: 'Alice (registered here)' });
  const client = new Client(app);
  const first = await client.post('/api/auth/login', { email: PEOPLE.alice.mail, password: PEOPLE.alice.password });
  t.is(first.status, 409);
  t.like(first.body, { error: { code: 'link_required', details: { email: PEOPLE.alice.mail, source: 'ldap' } } });
  t.is((await client.get('/api/auth/me')).body, null, 'not logged in yet');
  t.like((await client.get('/api/auth/sign-in/link')).body, { email: PEOPLE.alice.mail, source: 'ldap', sourceLabel: 'directory' });

  const wrong = await client.post('/api/auth/sign-in/link', { password: 'not the local password' });
  t.is(wrong.status, 401);
  const linked = await client.post<Me>('/api/auth/sign-in/link', { password: TEST_PASSWORD });
  t.is(linked.status, 200, JSON.stringify(linked.body));
  t.is(linked.body.source, 'ldap');
  t.deepEqual(linked.body.roles, ['pathologist']);
  t.like(app.audit.of('user.linked')[0], { subjectId: local.id, details: { source: 'ldap', externalId: personDn('alice') } });
  t.is(app.audit.of('user.created').length, 0, 'the existing account, not a new one');

  // From now on the directory logs her in directly.
  t.is((await login(app, PEOPLE.alice.mail, PEOPLE.alice.password)).status, 200);
  // A link cannot be confirmed twice.
  t.is((await new Client(app).post('/api/auth/sign-in/link', { password: TEST_PASSWORD })).status, 404);
});

slapdTest('an administrator sees where accounts come from and turns the local password of a directory account off', async (t) => {
  const { app, slapd } = await withDirectory(t);
  await createUser(app, { level: 'L1', email: PEOPLE.bob.mail });
  const admin = await createUser(app, { level: 'L1', roles: ['admin'], email: 'root@university.example' });
  const linking = new Client(app);
  t.is((await linking.post('/api/auth/login', { email: PEOPLE.bob.mail, password: PEOPLE.bob.password })).status, 409);
  t.is((await linking.post('/api/auth/sign-in/link', { password: TEST_PASSWORD })).status, 200);

  const adminClient = (await login(app, admin.email, TEST_PASSWORD)).client;
  const list = await adminClient.get<{ items: { id: number; email: string; source: string; localLoginDisabled: boolean }[] }>('/api/admin/users');
  const bob = list.body.items.find((item) => item.email === PEOPLE.bob.mail)!;
  t.like(bob, { source: 'ldap', localLoginDisabled: false });
  t.like(list.body.items.find((item) => item.email === admin.email), { source: 'local' });

  const overview = await adminClient.get<{ directory: Record<string, unknown>; accounts: { source: string; count: number }[] }>('/api/admin/sign-in');
  t.is(overview.status, 200);
  t.like(overview.body.directory, { url: slapd.ldapsUrl, security: 'ldaps', nestedGroups: 'walk', roleGroups: { admin: [GROUPS.admins] } });
  t.false(JSON.stringify(overview.body).includes('service account secret'), 'the bind password is never shown');
  t.deepEqual(overview.body.accounts, [{ source: 'ldap', count: 1 }, { source: 'local', count: 1 }]);

  // With the directory down, bob's local password is his way in, until an administrator turns it off.
  await slapd.stop();
  t.is((await login(app, PEOPLE.bob.mail, TEST_PASSWORD)).status, 200);
  const off = await adminClient.put<{ localLoginDisabled: boolean }>(`/api/admin/users/${bob.id}/local-login`, { allowed: false });
  t.is(off.status, 200);
  t.true(off.body.localLoginDisabled);
  t.like(app.audit.of('user.local_login_disabled')[0], { actorId: admin.id, subjectId: bob.id });
  const refused = await login(app, PEOPLE.bob.mail, TEST_PASSWORD);
  t.is(refused.status, 503, 'only the directory may log him in now, and it is down');
  // A local account keeps its password: it has no other way in.
  t.is((await adminClient.put(`/api/admin/users/${admin.id}/local-login`, { allowed: false })).status, 409);
});

slapdTest('failed directory logins count against the address like local ones, and lock it', async (t) => {
  const { app } = await withDirectory(t, {});
  for (let attempt = 1; attempt <= 4; attempt++) t.is((await login(app, PEOPLE.alice.mail, `wrong ${attempt}`)).status, 401);
  const fifth = await login(app, PEOPLE.alice.mail, 'wrong 5');
  t.is(fifth.status, 429);
  t.like(app.audit.of('auth.locked').at(-1), { details: { email: PEOPLE.alice.mail, locked: ['email'] } });
  // Locked: even the right password is not checked.
  t.is((await login(app, PEOPLE.alice.mail, PEOPLE.alice.password)).status, 429);
});

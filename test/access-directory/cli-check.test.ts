import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { collect, runCli, staleBuild } from '../support/cli.js';
import { startOidcProvider } from '../support/oidc-provider.js';
import { ldapEnv, PEOPLE, personDn, slapdTest, startSlapd } from '../support/slapd.js';

/** `slidebank auth check-ldap` and `check-oidc`, the built command line against a real slapd and a real OpenID Connect provider. */

slapdTest('check-ldap finds the user, shows the groups and the roles they give, checks the password, and never prints it', async (t) => {
  const slapd = await startSlapd(t);
  const env = ldapEnv(slapd);
  const good = await runCli(['auth', 'check-ldap', '--user', PEOPLE.bob.mail], { env: { ...env, SLIDEBANK_CHECK_PASSWORD: PEOPLE.bob.password } });
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout, new RegExp(`user: +${personDn('bob')}`));
  t.regex(good.stdout, /roles: +curator/);
  t.regex(good.stdout, /password: +accepted by the directory/);
  t.false(good.stdout.includes(PEOPLE.bob.password) || good.stderr.includes(PEOPLE.bob.password));
  t.false(good.stdout.includes(env.SLIDEBANK_AUTH_LDAP_BIND_PASSWORD!), 'nor the service account’s');

  const wrong = await runCli(['auth', 'check-ldap', '--user', PEOPLE.bob.mail], { env: { ...env, SLIDEBANK_CHECK_PASSWORD: 'not his password' } });
  t.is(wrong.code, 1);
  t.regex(wrong.stdout, /password: +refused by the directory/);

  // The password on stdin, as an operator pipes it (runCli gives no stdin; the build's freshness is checked as runCli does).
  const stale = staleBuild();
  if (stale) throw new Error(stale);
  const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'slidebank.js'), 'auth', 'check-ldap', '--user', 'alice'], {
    cwd: packageRoot,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(`${PEOPLE.alice.password}\n`);
  const piped = await collect(child, 60_000);
  t.is(piped.code, 0, piped.stderr);
  t.regex(piped.stdout, /roles: +pathologist/);
  t.false(piped.stdout.includes(PEOPLE.alice.password));

  const unknown = await runCli(['auth', 'check-ldap', '--user', 'nobody', '--no-password'], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.stdout, /no entry matches "nobody"/);

  await slapd.stop();
  const down = await runCli(['auth', 'check-ldap', '--user', 'alice', '--no-password'], { env });
  t.is(down.code, 1);
  t.regex(down.stdout, /unavailable: +the directory at ldaps:\/\/127\.0\.0\.1:\d+ could not be asked/);
});

test('check-oidc discovers the provider, reads its keys and shows the mapping', async (t) => {
  const provider = await startOidcProvider(t);
  provider.register('http://localhost:8080/api/auth/oidc/hospital/callback', 'http://localhost:8080/');
  const env = {
    SLIDEBANK_AUTH_OIDC_PROVIDERS: JSON.stringify([
      {
        name: 'hospital',
        label: 'Hospital single sign-on',
        issuer: provider.issuer,
        clientId: provider.clientId,
        clientSecret: provider.clientSecret,
        roleGroups: { admin: ['slidebank-admins'], curator: [], pathologist: ['pathology'] },
      },
    ]),
  };
  const result = await runCli(['auth', 'check-oidc', 'hospital', '--groups', 'pathology,all-staff'], { env });
  t.is(result.code, 0, result.stdout + result.stderr);
  t.regex(result.stdout, /discovery: +ok/);
  t.regex(result.stdout, /keys: +1 for signing: test-key-1 RS256/);
  t.regex(result.stdout, /redirect address: http:\/\/localhost:8080\/api\/auth\/oidc\/hospital\/callback/);
  t.regex(result.stdout, /with groups pathology, all-staff: roles pathologist/);
  t.false(result.stdout.includes(provider.clientSecret), 'the client secret is never printed');

  const missing = await runCli(['auth', 'check-oidc', 'elsewhere'], { env });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /no provider named elsewhere in auth\.oidc\.providers \(there are: hospital\)/);
});

import test from 'ava';
import { effectiveConfig, loadConfig } from '../../server/config/index.js';

/** auth.ldap and auth.oidc are validated at start like every other key: every problem at once, each naming its key. */

const provider = { name: 'hospital', label: 'Hospital single sign-on', issuer: 'https://sso.hospital.example/realms/h', clientId: 'slidebank', clientSecret: 'client secret value' };

test('a usable directory and provider list load, with defaults for what is left out', (t) => {
  const { config } = loadConfig({
    env: {
      SLIDEBANK_AUTH_LDAP_URL: 'ldaps://dc1.hospital.example:636',
      SLIDEBANK_AUTH_LDAP_USER_SEARCH_BASE: 'OU=Staff,DC=hospital,DC=example',
      SLIDEBANK_AUTH_LDAP_DOMAINS: 'Hospital.example, research.hospital.example',
      SLIDEBANK_AUTH_OIDC_PROVIDERS: JSON.stringify([provider]),
    },
  });
  t.deepEqual(config.auth.ldap.domains, ['hospital.example', 'research.hospital.example']);
  t.like(config.auth.oidc.providers[0], { scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', roleGroups: { admin: [], curator: [], pathologist: [] } });
});

test('unsafe or incomplete sign-in settings stop the start, each problem named', (t) => {
  const error = t.throws(() =>
    loadConfig({
      env: {
        SLIDEBANK_AUTH_LDAP_URL: 'ldap://dc1.hospital.example',
        SLIDEBANK_AUTH_LDAP_USER_FILTER: '(uid=*)',
        SLIDEBANK_AUTH_LDAP_NESTED_GROUPS: 'walk',
        SLIDEBANK_AUTH_LDAP_CA_FILE: '/nonexistent/ca.pem',
        SLIDEBANK_AUTH_OIDC_PROVIDERS: JSON.stringify([provider, { ...provider, issuer: 'http://sso.hospital.example' }]),
      },
    }),
  );
  const message = error?.message ?? '';
  t.regex(message, /auth\.ldap\.url .*plain LDAP/);
  t.regex(message, /auth\.ldap\.userFilter .*must contain \{username\}/);
  t.regex(message, /auth\.ldap\.userSearchBase .*must be set/);
  t.regex(message, /auth\.ldap\.groupSearchBase .*in-chain or walk/);
  t.regex(message, /auth\.ldap\.caFile .*readable PEM file/);
  t.regex(message, /auth\.oidc\.providers\.1\.issuer .*https:\/\//);
  t.regex(message, /auth\.oidc\.providers\.1\.name .*names must differ/);
});

test('config check masks the bind password and every client secret', (t) => {
  const loaded = loadConfig({
    env: {
      SLIDEBANK_AUTH_LDAP_URL: 'ldaps://dc1.hospital.example:636',
      SLIDEBANK_AUTH_LDAP_USER_SEARCH_BASE: 'OU=Staff,DC=hospital,DC=example',
      SLIDEBANK_AUTH_LDAP_BIND_DN: 'CN=svc,DC=hospital,DC=example',
      SLIDEBANK_AUTH_LDAP_BIND_PASSWORD: 'service account secret',
      SLIDEBANK_AUTH_OIDC_PROVIDERS: JSON.stringify([provider]),
    },
  });
  const printed = JSON.stringify(effectiveConfig(loaded));
  t.false(printed.includes('service account secret'));
  t.false(printed.includes('client secret value'));
  t.true(printed.includes('CN=svc,DC=hospital,DC=example'));
});

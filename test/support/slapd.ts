import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImplementationFn } from 'ava';
import { testNeeding } from './requirements.js';

const run = promisify(execFile);

/**
 * A real OpenLDAP server for a test: Debian's `slapd` (and `ldap-utils` for
 * changes while it runs), started in a temporary folder on free loopback
 * ports with a generated slapd.conf, its database loaded from an LDIF with
 * slapadd, serving LDAPS with a certificate of a test CA that openssl makes
 * here (and plain LDAP on a second port, for the tests of refusing it).
 * Tests declared with `slapdTest` skip where slapd is missing and fail under
 * SLIDEBANK_REQUIRE_FIXTURES=1, as the deployment tests do.
 */

export const SUFFIX = 'dc=hospital,dc=example';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PASSWORD = 'root secret of the test directory';
export const SERVICE_DN = `cn=svc-slidebank,${SUFFIX}`;
export const SERVICE_PASSWORD = 'service account secret 7';

/** The test directory's people: their uid, password and what they are meant to show. */
export const PEOPLE = {
  /** Pathologist (a direct group) and member of the partner laboratory (L3). */
  alice: { uid: 'alice', mail: 'alice@hospital.example', name: 'Alice Pathologist', password: 'alice directory pass 1' },
  /** Curator through a nested group: senior-curators is a member of curators. */
  bob: { uid: 'bob', mail: 'bob@hospital.example', name: 'Bob Curator', password: 'bob directory pass 2' },
  /** No e-mail address in the directory. */
  carol: { uid: 'carol', mail: '', name: 'Carol Without Mail', password: 'carol directory pass 3' },
  /** Administrator through the admins group. */
  dave: { uid: 'dave', mail: 'dave@hospital.example', name: 'Dave Admin', password: 'dave directory pass 4' },
} as const;

export const GROUPS = {
  pathologists: `cn=pathologists,ou=groups,${SUFFIX}`,
  curators: `cn=curators,ou=groups,${SUFFIX}`,
  seniorCurators: `cn=senior-curators,ou=groups,${SUFFIX}`,
  admins: `cn=admins,ou=groups,${SUFFIX}`,
  partnerLab: `cn=partner-lab,ou=groups,${SUFFIX}`,
};

export const personDn = (uid: string) => `uid=${uid},ou=people,${SUFFIX}`;

function commandMissing(name: string): string | null {
  for (const folder of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (!folder) continue;
    try {
      accessSync(path.join(folder, name), constants.X_OK);
      return null;
    } catch {
      // not here
    }
  }
  return `${name} is not installed (.ci/run installs slapd and ldap-utils with apt)`;
}

const problems = [commandMissing('slapd'), commandMissing('slapadd'), commandMissing('ldapmodify'), commandMissing('openssl')];

/** A test that needs slapd: skipped with the reason where it is missing, failed under SLIDEBANK_REQUIRE_FIXTURES=1. */
export function slapdTest(title: string, implementation: ImplementationFn<[]>): void {
  testNeeding(problems, title, implementation, { serial: true });
}

function baseLdif(): string {
  const person = (p: { uid: string; mail: string; name: string; password: string }) =>
    [
      `dn: ${personDn(p.uid)}`,
      'objectClass: inetOrgPerson',
      `uid: ${p.uid}`,
      `cn: ${p.name}`,
      `sn: ${p.name.split(' ').pop()}`,
      ...(p.mail ? [`mail: ${p.mail}`] : []),
      `userPassword: ${p.password}`,
      '',
    ].join('\n');
  const group = (dn: string, members: string[]) => [`dn: ${dn}`, 'objectClass: groupOfNames', `cn: ${dn.split(',')[0]!.slice(3)}`, ...members.map((m) => `member: ${m}`), ''].join('\n');
  return [
    [`dn: ${SUFFIX}`, 'objectClass: dcObject', 'objectClass: organization', 'dc: hospital', 'o: Test Hospital', ''].join('\n'),
    [`dn: ${SERVICE_DN}`, 'objectClass: organizationalRole', 'objectClass: simpleSecurityObject', 'cn: svc-slidebank', `userPassword: ${SERVICE_PASSWORD}`, ''].join('\n'),
    [`dn: ou=people,${SUFFIX}`, 'objectClass: organizationalUnit', 'ou: people', ''].join('\n'),
    [`dn: ou=groups,${SUFFIX}`, 'objectClass: organizationalUnit', 'ou: groups', ''].join('\n'),
    ...Object.values(PEOPLE).map(person),
    group(GROUPS.pathologists, [personDn('alice')]),
    group(GROUPS.seniorCurators, [personDn('bob')]),
    group(GROUPS.curators, [GROUPS.seniorCurators]),
    group(GROUPS.admins, [personDn('dave')]),
    group(GROUPS.partnerLab, [personDn('alice')]),
  ].join('\n');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface Slapd {
  /** ldaps://127.0.0.1:<port> */
  ldapsUrl: string;
  /** ldap://127.0.0.1:<port>, the same server without TLS */
  ldapUrl: string;
  /** The test CA's certificate (PEM file), which signed the server's. */
  caFile: string;
  folder: string;
  /** Changes entries with ldapmodify as the directory's root. */
  modify(ldif: string): Promise<void>;
  /** Stops the server (the directory is down); `start` brings it back on the same ports. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Starts slapd for the test and stops it at teardown. */
export async function startSlapd(t: { teardown(fn: () => Promise<void> | void): void }): Promise<Slapd> {
  const folder = await mkdtemp(path.join(tmpdir(), 'slidebank-slapd-'));
  const file = (name: string) => path.join(folder, name);
  // The test CA and the server's certificate, for 127.0.0.1 and localhost.
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Slidebank test CA', '-keyout', file('ca.key'), '-out', file('ca.pem')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')]);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('server.ext'), '-out', file('server.pem')]);
  await run('mkdir', ['-p', file('db')]);
  const conf = [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    `pidfile ${file('slapd.pid')}`,
    `argsfile ${file('slapd.args')}`,
    `TLSCACertificateFile ${file('ca.pem')}`,
    `TLSCertificateFile ${file('server.pem')}`,
    `TLSCertificateKeyFile ${file('server.key')}`,
    'database mdb',
    'maxsize 16777216',
    `suffix "${SUFFIX}"`,
    `rootdn "${ROOT_DN}"`,
    `rootpw "${ROOT_PASSWORD}"`,
    `directory ${file('db')}`,
    // Anonymous clients may only bind; people and the service account read.
    'access to attrs=userPassword by anonymous auth by self write by * none',
    'access to * by users read by * none',
    '',
  ].join('\n');
  await writeFile(file('slapd.conf'), conf);
  await writeFile(file('base.ldif'), baseLdif());
  await run('slapadd', ['-f', file('slapd.conf'), '-l', file('base.ldif')]);
  const [ldapsPort, ldapPort] = [await freePort(), await freePort()];
  let child: ChildProcess | undefined;

  const start = async () => {
    const process_ = spawn('slapd', ['-f', file('slapd.conf'), '-h', `ldaps://127.0.0.1:${ldapsPort}/ ldap://127.0.0.1:${ldapPort}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    process_.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child = process_;
    const exited = new Promise<number | null>((resolve) => process_.once('exit', resolve));
    for (let attempt = 0; attempt < 200; attempt++) {
      if (process_.exitCode !== null) throw new Error(`slapd stopped at start: ${stderr}`);
      if ((await reachable(ldapsPort)) && (await reachable(ldapPort))) return;
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    throw new Error(`slapd did not start listening: ${stderr}`);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  await start();
  t.teardown(async () => {
    await stop();
    await rm(folder, { recursive: true, force: true });
  });
  return {
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    ldapUrl: `ldap://127.0.0.1:${ldapPort}`,
    caFile: file('ca.pem'),
    folder,
    modify: async (ldif: string) => {
      const changes = file(`change-${Date.now()}.ldif`);
      await writeFile(changes, ldif);
      await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', ROOT_DN, '-w', ROOT_PASSWORD, '-f', changes]);
    },
    stop,
    start,
  };
}

/** The auth.ldap settings of a Slidebank that uses the test directory, as environment variables. */
export function ldapEnv(slapd: Slapd, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    SLIDEBANK_AUTH_LDAP_URL: slapd.ldapsUrl,
    SLIDEBANK_AUTH_LDAP_CA_FILE: slapd.caFile,
    SLIDEBANK_AUTH_LDAP_BIND_DN: SERVICE_DN,
    SLIDEBANK_AUTH_LDAP_BIND_PASSWORD: SERVICE_PASSWORD,
    SLIDEBANK_AUTH_LDAP_USER_SEARCH_BASE: `ou=people,${SUFFIX}`,
    SLIDEBANK_AUTH_LDAP_USER_FILTER: '(&(objectClass=inetOrgPerson)(|(uid={username})(mail={username})))',
    SLIDEBANK_AUTH_LDAP_EMAIL_ATTRIBUTE: 'mail',
    SLIDEBANK_AUTH_LDAP_NAME_ATTRIBUTE: 'cn',
    SLIDEBANK_AUTH_LDAP_GROUP_SEARCH_BASE: `ou=groups,${SUFFIX}`,
    SLIDEBANK_AUTH_LDAP_NESTED_GROUPS: 'walk',
    SLIDEBANK_AUTH_LDAP_ROLE_GROUPS_ADMIN: JSON.stringify([GROUPS.admins]),
    SLIDEBANK_AUTH_LDAP_ROLE_GROUPS_CURATOR: JSON.stringify([GROUPS.curators]),
    SLIDEBANK_AUTH_LDAP_ROLE_GROUPS_PATHOLOGIST: JSON.stringify(['pathologists']),
    SLIDEBANK_AUTH_LDAP_INSTITUTION_GROUPS: JSON.stringify([{ institution: 'Partner Laboratory', groups: [GROUPS.partnerLab] }]),
    SLIDEBANK_AUTH_LDAP_TIMEOUT_SECONDS: '3',
    SLIDEBANK_AUTH_LDAP_DOMAINS: 'hospital.example',
    ...overrides,
  };
}

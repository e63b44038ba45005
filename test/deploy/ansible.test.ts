import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { readSlideFacts } from '../../server/catalog/slide-facts.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { loadConfig } from '../../server/config/index.js';
import { listen } from '../../server/http/server.js';
import { makeSlide } from '../support/slides.js';
import { bearerHeaders } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { memoryLogger } from '../support/logs.js';
import { freePort } from '../support/cli.js';
import { ansibleDir, findCommand, opsDir, run, toolTest } from './tools.js';

/**
 * The Ansible playbook, checked and run for real on this machine with
 * `ansible_connection=local` into a temporary prefix: packages, the service
 * user and systemd (which is not PID 1 here) are switched off by variables,
 * everything else — folders, the release tarball made by ops/make-release.sh,
 * the configuration, migrations on the embedded SQLite, units, nginx site,
 * backup scripts, logrotate — is done, twice, the second time changing nothing.
 */

const ANSIBLE_ENV = { ...process.env, ANSIBLE_CONFIG: path.join(ansibleDir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' };
const LONG = 15 * 60_000;

toolTest('the playbook passes ansible-playbook --syntax-check with both example inventories', ['ansible-playbook'], async (t) => {
  for (const inventory of ['single', 'cluster']) {
    const { stdout } = await run('ansible-playbook', ['--syntax-check', '-i', `inventories/${inventory}/hosts.yml`, 'site.yml'], { cwd: ansibleDir, env: ANSIBLE_ENV });
    t.regex(stdout, /playbook: site\.yml/, inventory);
  }
});

toolTest('the playbook and roles pass ansible-lint with the production profile, offline', ['ansible-lint'], async (t) => {
  t.timeout(5 * 60_000);
  const { stdout, stderr } = await run('ansible-lint', ['--offline', '--profile', 'production', '--nocolor'], {
    cwd: ansibleDir,
    env: { ...ANSIBLE_ENV, NO_COLOR: '1' },
    maxBuffer: 16 << 20,
  }).catch((error: { stdout: string; stderr: string }) => {
    t.fail(`ansible-lint failed:\n${error.stdout}\n${error.stderr}`);
    return error;
  });
  t.regex(`${stdout}${stderr}`, /Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
});

interface Installed {
  prefix: string;
  work: string;
  first: string;
  second: string;
  /** Where the rendered nginx site listens, and the app node it proxies to (nothing listens there until a test starts it). */
  ports: { http: number; https: number; app: number };
}

let installation: Promise<Installed> | undefined;
test.after.always(async () => {
  const done = await installation?.catch(() => undefined);
  if (done) await rm(done.work, { recursive: true, force: true });
});

/** Make a release, write a local inventory and variables, run the playbook twice. Shared by the tests below. */
function install(t: ExecutionContext): Promise<Installed> {
  return (installation ??= (async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ansible-'));
    const prefix = path.join(work, 'root');
    const { stdout: made } = await run(path.join(opsDir, 'make-release.sh'), ['--out', path.join(work, 'release'), '--version', '0.0.0-test'], { maxBuffer: 16 << 20 });
    const tarball = made.trim().split('\n').at(-1)!;
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=slidebank.test',
      '-keyout', path.join(work, 'key.pem'), '-out', path.join(work, 'cert.pem')]);
    const hosts = { hosts: { testhost: {} } };
    const inventory = {
      all: {
        children: { slidebank: { children: { slidebank_app: hosts, slidebank_db: hosts, slidebank_proxy: hosts, slidebank_backup: hosts } } },
        vars: { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3' },
      },
    };
    const ports = { http: await freePort(), https: await freePort(), app: await freePort() };
    const user = os.userInfo().username;
    const group = (await run('id', ['-gn'])).stdout.trim();
    const variables = {
      slidebank_prefix: prefix,
      slidebank_become: false,
      slidebank_manage_packages: false,
      slidebank_manage_user: false,
      slidebank_systemd: false,
      slidebank_user: user,
      slidebank_group: group,
      slidebank_release_tarball: tarball,
      slidebank_node_source: 'system',
      slidebank_node: process.execPath,
      slidebank_database: 'sqlite',
      slidebank_server_name: 'slidebank.test',
      slidebank_session_secret: 'a-test-session-secret-of-at-least-32-characters',
      slidebank_tls_certificate_src: path.join(work, 'cert.pem'),
      slidebank_tls_certificate_key_src: path.join(work, 'key.pem'),
      slidebank_metrics_allow: ['127.0.0.1', '10.20.0.0/24'],
      slidebank_nginx_http_port: ports.http,
      slidebank_nginx_https_port: ports.https,
      slidebank_app_nodes: [`127.0.0.1:${ports.app}`],
      // Hospital sign-in from the inventory (docs/sign-in.md); the test certificate stands for the directory's CA.
      slidebank_ldap: {
        url: 'ldaps://dc1.hospital.test:636',
        caFile: path.join(work, 'cert.pem'),
        bindDn: 'CN=svc-slidebank,OU=Service,DC=hospital,DC=test',
        userSearchBase: 'OU=Staff,DC=hospital,DC=test',
        nestedGroups: 'in-chain',
        groupSearchBase: 'OU=Groups,DC=hospital,DC=test',
        roleGroups: { admin: ['CN=Slidebank Admins,OU=Groups,DC=hospital,DC=test'], curator: [], pathologist: ['CN=Pathology,OU=Groups,DC=hospital,DC=test'] },
        timeoutSeconds: 5,
        domains: ['hospital.test'],
      },
      slidebank_ldap_bind_password: 'a vaulted service secret',
      slidebank_oidc_providers: [
        { name: 'hospital', label: 'Hospital single sign-on', issuer: 'https://sso.hospital.test/realms/hospital', clientId: 'slidebank', clientSecret: 'a vaulted client secret', roleGroups: { admin: [], curator: [], pathologist: ['pathology'] } },
      ],
    };
    // JSON is YAML: ansible reads both files as they are.
    await writeFile(path.join(work, 'inventory.yml'), JSON.stringify(inventory));
    await writeFile(path.join(work, 'vars.yml'), JSON.stringify(variables));
    const playbook = () =>
      run('ansible-playbook', ['-i', path.join(work, 'inventory.yml'), '-e', `@${path.join(work, 'vars.yml')}`, 'site.yml'], {
        cwd: ansibleDir,
        env: ANSIBLE_ENV,
        maxBuffer: 64 << 20,
      })
        .then(({ stdout }) => stdout)
        .catch((error: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`ansible-playbook failed: ${error.message}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
        });
    const first = await playbook();
    const second = await playbook();
    t.log(`release ${path.basename(tarball)} installed into ${prefix}`);
    return { prefix, work, first, second, ports };
  })());
}

function recap(output: string): Record<string, number> {
  const line = /^testhost\s+:\s+(.*)$/m.exec(output)?.[1] ?? '';
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

toolTest('a local run installs into a prefix, and a second run changes nothing', ['ansible-playbook', 'openssl'], async (t) => {
  t.timeout(LONG);
  const { prefix, first, second } = await install(t);
  t.true((recap(first).changed ?? 0) > 10, `the first run did the work:\n${first.slice(-2000)}`);
  t.is(recap(first).failed, 0);
  t.is(recap(second).changed, 0, `the second run changed something:\n${second.split('\n').filter((l) => /^(TASK|changed)/.test(l)).join('\n')}`);
  t.is(recap(second).failed, 0);

  const current = path.join(prefix, 'opt/slidebank/current');
  t.is((await readFile(path.join(current, 'RELEASE'), 'utf8')).trim(), '0.0.0-test');
  for (const built of ['dist/server/cli/main.js', 'web/dist/index.html', 'node_modules/koa/package.json', 'node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
    await t.notThrowsAsync(readFile(path.join(current, built)), `${built} is in the release`);
  }
  for (const tool of ['ava', 'eslint', 'vite']) {
    await t.throwsAsync(readFile(path.join(current, `node_modules/${tool}/package.json`)), undefined, `${tool}, a development tool, is not`);
  }

  // The rendered configuration is what the app itself accepts, with the variables in it.
  const { config } = loadConfig({ configDir: path.join(current, 'config'), cwd: current, env: { NODE_ENV: 'production' } });
  t.is(config.paths.slides, path.join(prefix, 'srv/slidebank/slides'));
  t.is(config.database.url, `sqlite:${path.join(prefix, 'var/lib/slidebank/slidebank.sqlite')}`);
  t.true(config.http.trustProxy);
  t.is(config.downloads.nginxAccelRedirect, '/protected-slides/');
  t.deepEqual(config.metrics.allow, ['127.0.0.1', '10.20.0.0/24']);
  t.is(config.port, 8080);
  t.like(config.queue, { workers: 0, workerNice: 10, workerIoPriority: 'idle' });
  t.like(config.auth.ldap, { url: 'ldaps://dc1.hospital.test:636', bindPassword: 'a vaulted service secret', nestedGroups: 'in-chain', timeoutSeconds: 5, domains: ['hospital.test'], emailAttribute: 'mail' });
  t.deepEqual(config.auth.ldap.roleGroups.pathologist, ['CN=Pathology,OU=Groups,DC=hospital,DC=test']);
  t.like(config.auth.oidc.providers[0], { name: 'hospital', clientSecret: 'a vaulted client secret', scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups' });

  // The migrations ran: the embedded database exists, and `migrate --status` has nothing pending.
  const { stdout: status } = await run(process.execPath, ['bin/slidebank.js', 'migrate', '--status'], { cwd: current, env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: '' } });
  t.regex(status, /\d+ applied, 0 pending/);

  const backupEnv = await readFile(path.join(prefix, 'etc/slidebank/backup.env'), 'utf8');
  t.regex(backupEnv, new RegExp(`^DATABASE_URL='sqlite:${prefix}/var/lib/slidebank/slidebank.sqlite'$`, 'm'));
  await t.notThrowsAsync(readFile(path.join(prefix, 'usr/local/sbin/slidebank-backup')));
  await t.notThrowsAsync(readFile(path.join(prefix, 'etc/logrotate.d/slidebank')));
});

toolTest('the rendered nginx site passes nginx -t with the certificate', ['ansible-playbook', 'openssl', 'nginx'], async (t) => {
  t.timeout(LONG);
  const { prefix, work } = await install(t);
  const site = path.join(prefix, 'etc/nginx/sites-enabled/slidebank.conf');
  const text = await readFile(site, 'utf8');
  t.regex(text, /location \/protected-slides\/ \{\s+internal;\s+alias [^;]+\/srv\/slidebank\/slides\/;/);
  t.regex(text, /proxy_buffering off;/);
  t.regex(text, /proxy_request_buffering off;/);
  t.regex(text, /server 127\.0\.0\.1:\d+ max_fails/);
  t.regex(text, /allow 10\.20\.0\.0\/24;\s+deny all;/);
  t.regex(text, new RegExp(`ssl_certificate ${prefix}/etc/ssl/slidebank/slidebank\\.crt;`));

  const nginxRoot = path.join(work, 'nginx');
  await mkdir(nginxRoot, { recursive: true });
  const temp = (name: string) => `${name}_temp_path ${path.join(nginxRoot, name)};`;
  const main = [
    `pid ${path.join(nginxRoot, 'nginx.pid')};`,
    `error_log ${path.join(nginxRoot, 'error.log')};`,
    'events {}',
    'http {',
    '  include /etc/nginx/mime.types;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${temp(name)}`),
    `  include ${site};`,
    '}',
  ].join('\n');
  await writeFile(path.join(nginxRoot, 'nginx.conf'), main);
  const nginx = findCommand('nginx')!;
  const { stderr } = await run(nginx, ['-t', '-p', nginxRoot, '-c', path.join(nginxRoot, 'nginx.conf')]);
  t.regex(stderr, /test is successful/);

  // And it fails when the certificate is missing, so the check means something.
  await writeFile(path.join(nginxRoot, 'broken.conf'), main.replace(`include ${site};`, `include ${path.join(nginxRoot, 'site.conf')};`));
  await writeFile(path.join(nginxRoot, 'site.conf'), text.replaceAll(`${prefix}/etc/ssl/slidebank/slidebank.crt`, path.join(nginxRoot, 'missing.crt')));
  const broken = await run(nginx, ['-t', '-p', nginxRoot, '-c', path.join(nginxRoot, 'broken.conf')]).then(() => null, (error: { stderr: string }) => error);
  t.regex(broken?.stderr ?? '', /missing\.crt/);
});

toolTest('the rendered systemd units pass systemd-analyze verify, hardened and without MemoryDenyWriteExecute', ['ansible-playbook', 'openssl', 'systemd-analyze'], async (t) => {
  t.timeout(LONG);
  const { prefix } = await install(t);
  const units = path.join(prefix, 'etc/systemd/system');
  for (const unit of ['slidebank.service', 'slidebank-worker.service', 'slidebank-backup.service', 'slidebank-backup.timer']) {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', path.join(units, unit)]).catch((error: { stdout: string; stderr: string }) => {
      t.fail(`${unit}: ${error.stderr}`);
      return error;
    });
    t.is(`${stdout}${stderr}`.trim(), '', `${unit} verifies without warnings`);
  }
  const web = await readFile(path.join(units, 'slidebank.service'), 'utf8');
  const worker = await readFile(path.join(units, 'slidebank-worker.service'), 'utf8');
  t.regex(worker, /bin\/slidebank\.js worker$/m);
  // The worker yields to the web server (slidebank_worker_nice, slidebank_worker_io_priority), in the unit and in the app's settings alike.
  t.regex(worker, /^Nice=10$/m);
  t.regex(worker, /^IOSchedulingClass=idle$/m);
  t.notRegex(web, /^(Nice|IOSchedulingClass)=/m);
  for (const text of [web, worker]) {
    for (const setting of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ProtectHome=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
      'ProtectKernelTunables=yes', 'ProtectKernelModules=yes', 'ProtectControlGroups=yes', 'LockPersonality=yes', 'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes', 'SystemCallArchitectures=native', 'CapabilityBoundingSet=\n']) {
      t.true(text.includes(setting), setting);
    }
    t.regex(text, new RegExp(`^ReadWritePaths=${prefix}/var/lib/slidebank ${prefix}/srv/slidebank/slides ${prefix}/var/cache/slidebank$`, 'm'));
    t.notRegex(text, /^MemoryDenyWriteExecute/m, 'V8 needs writable and executable memory');
  }
});

/** curl, because the certificate is self-signed (`-k`): the headers (`-D -`) and then the body, both on stdout. */
async function curl(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const args = ['-sk', '-D', '-', '--max-time', '60', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  const { stdout } = await run('curl', args, { encoding: 'buffer', maxBuffer: 256 << 20 });
  const end = stdout.indexOf('\r\n\r\n');
  const head = stdout.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(head[0] ?? '')?.[1]);
  const parsed = Object.fromEntries(head.slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status, headers: parsed, body: stdout.subarray(end + 4) };
}

toolTest('nginx with the rendered site serves the portal, proxies the app and sends downloads by X-Accel-Redirect', ['ansible-playbook', 'openssl', 'nginx', 'curl'], async (t) => {
  t.timeout(LONG);
  const { prefix, work, ports } = await install(t);
  const store = path.join(prefix, 'srv/slidebank/slides');
  const made = await makeSlide({ width: 1200, height: 900, out: store, name: 'through-nginx', seed: 3 });
  const bytes = await readFile(made.svs);

  // The app node nginx was rendered to proxy to: the real app with the settings the playbook writes.
  const app = await startTestApp(t, {
    env: { SLIDEBANK_DOWNLOADS_NGINX_ACCEL_REDIRECT: '/protected-slides/', SLIDEBANK_HTTP_TRUST_PROXY: 'true', SLIDEBANK_PATHS_SLIDES: store },
  });
  const slide = await new SlidesRepository(app.database.db.knex).create({ name: 'through-nginx', filePath: 'through-nginx.svs', sha256: null, ...(await readSlideFacts(made.svs)) });
  const node = await listen(app.app, { port: ports.app, host: '127.0.0.1', log: memoryLogger().log });
  t.teardown(() => node.close(1000).then(() => undefined));

  const nginxRoot = path.join(work, 'nginx-live');
  await mkdir(nginxRoot, { recursive: true });
  const conf = path.join(nginxRoot, 'nginx.conf');
  await writeFile(
    conf,
    [
      // Workers as root: the test's temporary folders are private to this user.
      'user root;',
      `pid ${path.join(nginxRoot, 'nginx.pid')};`,
      `error_log ${path.join(nginxRoot, 'error.log')};`,
      'events {}',
      'http {',
      '  include /etc/nginx/mime.types;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${name}_temp_path ${path.join(nginxRoot, name)};`),
      `  include ${path.join(prefix, 'etc/nginx/sites-enabled/slidebank.conf')};`,
      '}',
    ].join('\n'),
  );
  const nginx = spawn(findCommand('nginx')!, ['-p', nginxRoot, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErrors = '';
  nginx.stderr.on('data', (chunk: Buffer) => (nginxErrors += chunk.toString()));
  t.teardown(() => new Promise<void>((resolve) => (nginx.exitCode !== null ? resolve() : (nginx.once('close', () => resolve()), nginx.kill('SIGQUIT')))));
  const https = `https://127.0.0.1:${ports.https}`;
  for (let i = 0; ; i++) {
    const answer = await curl(`${https}/healthz`).catch((error: Error) => error);
    if (!(answer instanceof Error) && answer.status === 200) break;
    if (nginx.exitCode !== null || i > 300) {
      const log = await readFile(path.join(nginxRoot, 'error.log'), 'utf8').catch(() => '');
      const last = answer instanceof Error ? answer.message : `${answer.status} ${answer.body.toString().slice(0, 300)}`;
      throw new Error(`nginx did not answer /healthz with 200 (exit ${nginx.exitCode}; last answer: ${last}):\n${nginxErrors}\n${log}`);
    }
    await sleep(100);
  }

  const redirect = await curl(`http://127.0.0.1:${ports.http}/catalog?organ=liver`);
  t.is(redirect.status, 301);
  t.is(redirect.headers.location, `https://127.0.0.1:${ports.https}/catalog?organ=liver`);

  const asset = (await readdir(path.join(prefix, 'opt/slidebank/current/web/dist/assets')))[0]!;
  const served = await curl(`${https}/assets/${asset}`);
  t.is(served.status, 200);
  t.is(served.headers['cache-control'], 'public, immutable');
  t.deepEqual(served.body, await readFile(path.join(prefix, 'opt/slidebank/current/web/dist/assets', asset)));
  // The build's pre-compressed copy, to a client that accepts gzip.
  const assets = await readdir(path.join(prefix, 'opt/slidebank/current/web/dist/assets'));
  const script = assets.find((name) => name.endsWith('.js') && assets.includes(`${name}.gz`));
  t.truthy(script, 'the build wrote .gz copies');
  const gzipped = await curl(`${https}/assets/${script}`, { 'Accept-Encoding': 'gzip' });
  t.is(gzipped.status, 200);
  t.is(gzipped.headers['content-encoding'], 'gzip');
  t.regex(gzipped.headers.vary ?? '', /Accept-Encoding/);
  t.deepEqual(gzipped.body, await readFile(path.join(prefix, 'opt/slidebank/current/web/dist/assets', `${script}.gz`)));

  const researcher = await bearerHeaders(app, { level: 'L2' });
  const whole = await curl(`${https}/api/slides/${slide.id}/files/slide`, researcher);
  t.is(whole.status, 200, nginxErrors);
  t.is(whole.headers['x-accel-redirect'], undefined, 'nginx consumes the header');
  t.regex(whole.headers['content-disposition'] ?? '', /attachment/);
  t.true(whole.body.equals(bytes), 'nginx sent the file itself');
  const part = await curl(`${https}/api/slides/${slide.id}/files/slide`, { ...researcher, Range: 'bytes=1000-1999' });
  t.is(part.status, 206);
  t.true(part.body.equals(bytes.subarray(1000, 2000)));
  t.is((await curl(`${https}/api/slides/${slide.id}/files/slide`)).status, 401, 'the app still decides who may download');
  t.is((await curl(`${https}/protected-slides/through-nginx.svs`)).status, 404, 'the internal location is not reachable from outside');

  const metrics = await curl(`${https}/metrics`);
  t.is(metrics.status, 200);
  t.regex(metrics.body.toString(), /slidebank_download_bytes_total\{kind="file",via="nginx"\} \d+/);
});

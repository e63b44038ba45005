import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Orthanc (Debian's `orthanc`, with the `orthanc-dicomweb` plugin) as an
 * independent DICOMweb server for the cross-checks, and `OrthancWSIDicomizer`
 * (`orthanc-wsi`) as an independent converter of slides to DICOM. CI installs
 * them (.ci/run, debian_packages).
 */
const ORTHANC = '/usr/sbin/Orthanc';
const DICOMIZER = '/usr/bin/OrthancWSIDicomizer';
const PLUGIN_DIRS = ['/usr/share/orthanc/plugins', '/usr/lib/orthanc'];

function dicomwebPlugin(): string | undefined {
  for (const dir of PLUGIN_DIRS) {
    if (!existsSync(dir)) continue;
    const found = readdirSync(dir).find((name) => /^libOrthancDicomWeb\.so/.test(name));
    if (found) return path.join(dir, found);
  }
  return undefined;
}

/** Why Orthanc cannot be started here, or undefined when it can. */
export const orthancProblem = ((): string | undefined => {
  if (!existsSync(ORTHANC)) return `${ORTHANC} is absent (apt-get install orthanc orthanc-dicomweb)`;
  if (!dicomwebPlugin()) return `the DICOMweb plugin of Orthanc is not in ${PLUGIN_DIRS.join(' or ')} (apt-get install orthanc-dicomweb)`;
  return undefined;
})();

/** Why OrthancWSIDicomizer cannot be run here, or undefined when it can. */
export const dicomizerProblem = ((): string | undefined => {
  if (!existsSync(DICOMIZER)) return `${DICOMIZER} is absent (apt-get install orthanc-wsi)`;
  return spawnSync(DICOMIZER, ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : `${DICOMIZER} --version fails`;
})();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Orthanc {
  /** The REST API's root, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Store a DICOM file (POST /instances); its Orthanc identifier. */
  store(file: string): Promise<string>;
  get(pathname: string, accept?: string): Promise<Response>;
}

/**
 * A fresh Orthanc of the test's own: a child process with a JSON
 * configuration, index and storage in a temporary folder, a free HTTP port on
 * the loopback interface, its DICOM server disabled, the DICOMweb plugin at
 * /dicom-web/. Stopped (and its folder removed) at the test's teardown.
 */
export async function startOrthanc(t: { teardown(fn: () => Promise<void> | void): void; log(...values: unknown[]): void }): Promise<Orthanc> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-orthanc-'));
  const port = await freePort();
  const config = {
    Name: 'slidebank-crosscheck',
    StorageDirectory: path.join(dir, 'storage'),
    IndexDirectory: path.join(dir, 'index'),
    HttpPort: port,
    DicomServerEnabled: false,
    DicomPort: await freePort(),
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    HttpDescribeErrors: true,
    StorageCompression: false,
    Plugins: [dicomwebPlugin()],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full' },
  };
  const configFile = path.join(dir, 'orthanc.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFile = path.join(dir, 'orthanc.log');
  const child = spawn(ORTHANC, [`--logfile=${logFile}`, configFile], { stdio: 'ignore' });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  t.teardown(async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      await exit;
    }
    await rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  // Orthanc is ready when its REST API answers.
  for (let attempt = 0; ; attempt++) {
    if (exited !== undefined) throw new Error(`Orthanc exited with ${exited} at start: ${await readFile(logFile, 'utf8').catch(() => '(no log)')}`);
    const answer = await fetch(`${url}/system`).catch(() => undefined);
    if (answer?.ok) {
      t.log(`Orthanc ${((await answer.json()) as { Version: string }).Version} on port ${port}`);
      break;
    }
    if (attempt > 600) throw new Error(`Orthanc did not answer on port ${port} within a minute`);
    await sleep(100);
  }
  return {
    url,
    async store(file) {
      const answer = await fetch(`${url}/instances`, { method: 'POST', body: await readFile(file) });
      if (!answer.ok) throw new Error(`Orthanc refused ${file}: ${answer.status} ${await answer.text()}`);
      return ((await answer.json()) as { ID: string }).ID;
    },
    get: (pathname, accept) => fetch(`${url}${pathname}`, accept ? { headers: { accept } } : {}),
  };
}

/** OrthancWSIDicomizer: `source` converted into DICOM instances in `outDir` (its own file names); extra options as given. */
export async function dicomize(source: string, outDir: string, options: string[]): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const run = spawnSync(DICOMIZER, [`--folder=${outDir}`, '--threads=1', ...options, source], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`OrthancWSIDicomizer failed (${run.status}): ${run.stderr}`);
  return readdirSync(outDir).sort().map((name) => path.join(outDir, name));
}

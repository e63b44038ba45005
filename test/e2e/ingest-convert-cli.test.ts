/**
 * `slidebank ingest` on a folder holding a slide only OpenSlide reads (a
 * Hamamatsu VMS): the command shows the conversion's progress and publishes
 * it as one slide, its JPEGs not offered separately.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { openslideProblem } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';
import { writeVms } from '../support/vms.js';

const vipsProblem = ((): string | undefined => {
  try {
    execFileSync('vips', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'vips is not installed (apt-get install libvips-tools)';
  }
})();

testNeeding([vipsProblem, openslideProblem], 'slidebank ingest converts a VMS with a progress line and publishes it as one slide', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-convert-e2e-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  await writeVms(inbox, 'case-cli');
  await writeFile(
    path.join(inbox, 'metadata.csv'),
    'file,organ,histology,stain,marker,differentiation,pathology_info,annotation_method,dataset,collection_date,consent\ncase-cli.vms,Liver,HCC,H&E,,MD,,manual,test,2010,\n',
  );
  const run = await runCli(['ingest', inbox], { env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') }, timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  t.regex(run.stderr, /converting {2}case-cli\.vms to a tiled TIFF: 0%/);
  t.regex(run.stderr, /converting {2}case-cli\.vms to a tiled TIFF: 100%/);
  t.regex(run.stdout, /1 slide\(s\): 1 published/);
  t.notRegex(run.stdout, /other files \(not ingested\)/, 'the JPEGs the index names are part of the slide');
});

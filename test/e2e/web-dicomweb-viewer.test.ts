/**
 * A published slide in a DICOMweb viewer, in a real browser (Debian's
 * chromium through playwright-core) against the real server: the slide page
 * links to the viewer dicom.viewerUrl names, with the study and series
 * DICOMweb serves; the link opens dicom-microscopy-viewer (with
 * dicomweb-client, as Slim uses them) on an origin of its own listed in
 * dicom.corsOrigins, authenticated by a personal access token; at full
 * resolution it draws the pixels the Deep Zoom tiles hold for the same
 * region; and the label is never among what it asks for or is served.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import sharp from 'sharp';
import { chromium, type Request } from 'playwright-core';
import { build } from 'vite';
import { packageRoot } from '../../server/package-info.js';
import { TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { artifactsDir, browserTest, CHROMIUM, ensureWebBuilt, logInThroughPortal } from '../support/browser.js';
import { freePort } from '../support/cli.js';
import { testDialect } from '../support/database.js';
import { makeSlide } from '../support/slides.js';

const PAGE_SOURCES = path.join(packageRoot, 'test', 'e2e', 'dicomweb-viewer');
/** dicom-microscopy-viewer's decoding worker and its WebAssembly codecs, which it loads from PUBLIC_LIB_URL. */
const VIEWER_LIBRARY = path.join(packageRoot, 'node_modules', 'dicom-microscopy-viewer', 'dist', 'dynamic-import');

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };

/** The test page, bundled by vite (dicomweb-client and dicom-microscopy-viewer from node_modules). */
async function buildViewerPage(t: ExecutionContext): Promise<string> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-viewer-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await build({ configFile: false, root: PAGE_SOURCES, logLevel: 'warn', build: { outDir: out, emptyOutDir: true, chunkSizeWarningLimit: 20_000 } });
  return out;
}

/** A static server for the page on an origin of its own: `http://localhost:<port>`, where Slidebank is on 127.0.0.1. */
async function serveViewerPage(t: ExecutionContext, pageDir: string, port: number): Promise<void> {
  const server: Server = createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const [folder, name] = pathname.startsWith('/dicom-microscopy-viewer/') ? [VIEWER_LIBRARY, pathname.slice('/dicom-microscopy-viewer/'.length)] : [pageDir, pathname.slice(1) || 'index.html'];
    const file = path.join(folder, path.normalize(name));
    if (!file.startsWith(folder + path.sep)) {
      response.writeHead(404).end();
      return;
    }
    stat(file).then(
      (info) => {
        if (!info.isFile()) throw new Error('not a file');
        response.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': info.size });
        createReadStream(file).pipe(response);
      },
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
}

interface Pixels {
  width: number;
  height: number;
  data: number[];
}

interface Instance {
  sopInstanceUid: string;
  imageType: string[];
  columns: number;
  rows: number;
  frames: number;
}

/** Per-sample differences of two RGB(A) images of one size, alpha left out. */
function difference(a: Pixels, b: Pixels): { max: number; mean: number } {
  const diffs: number[] = [];
  for (let i = 0; i < a.data.length; i++) if (i % 4 !== 3) diffs.push(Math.abs(a.data[i]! - b.data[i]!));
  return {
    max: diffs.reduce((most, d) => Math.max(most, d), 0),
    mean: diffs.reduce((sum, d) => sum + d, 0) / diffs.length,
  };
}

browserTest(`DICOMweb viewer: the slide page's link opens dicom-microscopy-viewer on another origin with a token, and it draws the Deep Zoom tiles' pixels (${testDialect})`, async (t) => {
  t.timeout(600_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const { root, base, cli, serve, database, env } = await appliance(t);
  const viewerPort = await freePort();
  const viewerOrigin = `http://localhost:${viewerPort}`;
  env.SLIDEBANK_DICOM_CORS_ORIGINS = viewerOrigin;
  env.SLIDEBANK_DICOM_VIEWER_URL = `${viewerOrigin}/index.html?dicomweb={dicomweb}&study={study}&series={series}`;
  await cli(['user', 'add', '--email', 'rosa@lab.example', '--level', 'L1', '--name', 'Rosa'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 4000, height: 3000, seed: 21, out: inbox, name: 'colon' });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  const { id: slideId } = (await database.db.knex('slides').first('id')) as { id: number };
  await serve();
  await serveViewerPage(t, await buildViewerPage(t), viewerPort);

  // WebGL (OpenLayers' tile layers) in headless chromium: SwiftShader through ANGLE.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'] });
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const pageErrors: string[] = [];
  const requests: Request[] = [];
  context.on('request', (request) => requests.push(request));
  context.on('page', (page) => page.on('pageerror', (error) => pageErrors.push(error.message)));

  // The slide page shows the link, with the UIDs DICOMweb serves the slide under.
  const portal = await context.newPage();
  await logInThroughPortal(portal, base, 'rosa@lab.example', TEST_PASSWORD, `/slides/${slideId}`);
  const link = portal.getByTestId('dicom-viewer-link');
  await link.waitFor();
  const series = (await (await portal.request.get(`${base}/dicomweb/series`)).json()) as Record<string, { Value?: string[] }>[];
  t.is(series.length, 1);
  const study = series[0]!['0020000D']!.Value![0]!;
  const seriesUid = series[0]!['0020000E']!.Value![0]!;
  const href = new URL((await link.getAttribute('href'))!);
  t.is(href.origin, viewerOrigin);
  t.is(href.searchParams.get('study'), study);
  t.is(href.searchParams.get('series'), seriesUid);
  t.is(href.searchParams.get('dicomweb'), `${base}/dicomweb`);
  t.is(await link.getAttribute('target'), '_blank');

  // A read-only personal access token, as a viewer on another origin would hold one (no cookies cross over).
  const me = (await (await portal.request.get(`${base}/api/auth/me`)).json()) as { csrfToken: string };
  const created = await portal.request.post(`${base}/api/tokens`, { data: { name: 'DICOMweb viewer', scope: 'read' }, headers: { 'X-CSRF-Token': me.csrfToken } });
  t.is(created.status(), 201);
  const { token } = (await created.json()) as { token: string };
  await context.addInitScript(
    ({ origin, bearer }) => {
      const here = globalThis as unknown as { location: { origin: string }; sessionStorage: { setItem(key: string, value: string): void } };
      if (here.location.origin === origin) here.sessionStorage.setItem('dicomwebToken', bearer);
    },
    { origin: viewerOrigin, bearer: token },
  );

  const [viewerPage] = await Promise.all([context.waitForEvent('page'), link.click()]);
  await viewerPage.waitForLoadState();
  t.is(new URL(viewerPage.url()).origin, viewerOrigin);
  const status = viewerPage.locator('#status');
  await viewerPage.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('status')?.textContent !== 'loading');
  t.is(await status.textContent(), 'open', `the viewer opened the series: ${await status.textContent()}; page errors: ${pageErrors.join(' | ')}`);

  // The series is the slide's levels and thumbnail: no label (nor macro) is an instance, so the viewer cannot ask for one.
  const instances = (await viewerPage.evaluate('window.dicomwebViewer.instances()')) as Instance[];
  t.deepEqual(
    instances.map((i) => [i.imageType[2], i.columns, i.rows]),
    [
      ['VOLUME', 4000, 3000],
      ['VOLUME', 1000, 750],
      ['THUMBNAIL', 1024, 768],
    ],
  );
  t.true((await viewerPage.evaluate('window.dicomwebViewer.iccProfiles()')) as number > 0, "the viewer corrects colours with the slide's ICC profile, as Slim does");
  // The viewer turns the slide as Image Orientation (Slide) says (label to the right); the region is read unturned.
  t.log('rotation chosen by the viewer:', await viewerPage.evaluate('window.dicomwebViewer.rotation()'), 'degrees');

  // A region across six tiles of level 0, at one slide pixel per screen pixel, in both viewers.
  const [x, y] = [700, 500];
  const drawn = (await viewerPage.evaluate(`window.dicomwebViewer.region(${x}, ${y})`)) as Pixels & { resolution: number; topLeft: number[] };
  t.is(drawn.resolution, 1);
  t.deepEqual(drawn.topLeft, [x, -1 - y]);
  await viewerPage.screenshot({ path: path.join(artifactsDir, 'web-dicomweb-viewer-page.png') });
  // Evaluated rather than added as a script tag: the portal's Content Security Policy allows no inline script.
  await portal.evaluate(await readFile(path.join(PAGE_SOURCES, 'deep-zoom-region.js'), 'utf8'));
  const deepZoom = (await portal.evaluate(`window.deepZoomRegion(${slideId}, ${x}, ${y}, ${drawn.width}, ${drawn.height})`)) as Pixels & { tiles: number };
  t.true(deepZoom.tiles >= 6);
  for (const [name, image] of [['dicom-microscopy-viewer', drawn], ['deep-zoom', deepZoom]] as const) {
    await sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: 4 } }).png().toFile(path.join(artifactsDir, `web-dicomweb-viewer-${name}.png`));
  }
  // The frames are the stored JPEG tiles the Deep Zoom tiles are, decoded by libjpeg-turbo on both sides
  // (chromium's, and dicom-microscopy-viewer's WebAssembly build), and the view sits on whole pixels at
  // resolution 1, so WebGL samples texel centres: equal pixels are expected. The allowance of 2 per sample
  // is for rounding where the pixels pass through floating point: the ICC transform (here sRGB to sRGB)
  // and the texture upload and compositing of the WebGL canvas.
  const diff = difference(drawn, deepZoom);
  t.log(`difference per sample: max ${diff.max}, mean ${diff.mean.toFixed(4)}`);
  t.true(diff.max <= 2, `the viewer's pixels differ from the Deep Zoom tiles' by up to ${diff.max}`);
  t.true(diff.mean < 0.5, `mean difference ${diff.mean}`);

  // What the viewer asked DICOMweb for: metadata, the ICC profiles and frames of the levels and thumbnail, each with the token and no cookie, each answered.
  const dicomweb = requests.filter((request) => request.url().startsWith(`${base}/dicomweb/`));
  t.true(dicomweb.length > 0);
  const allowed = new Set(instances.map((i) => i.sopInstanceUid));
  const frameRequests: string[] = [];
  for (const request of dicomweb) {
    const headers = await request.allHeaders();
    t.is(headers.authorization, `Bearer ${token}`, request.url());
    t.is(headers.cookie, undefined, request.url());
    t.is((await request.response())?.status(), 200, request.url());
    const pathname = new URL(request.url()).pathname;
    t.true(pathname.startsWith(`/dicomweb/studies/${study}/series/${seriesUid}/`), pathname);
    const instance = /\/instances\/([\d.]+)\//.exec(pathname)?.[1];
    if (instance !== undefined) t.true(allowed.has(instance), `only the levels' and thumbnail's instances: ${pathname}`);
    if (/\/frames\//.test(pathname)) frameRequests.push(pathname);
  }
  const level0 = instances[0]!.sopInstanceUid;
  const tilesAcross = Math.ceil(4000 / 240);
  for (const row of [2, 3]) for (const col of [2, 3, 4, 5]) t.true(frameRequests.some((p) => p.endsWith(`/instances/${level0}/frames/${row * tilesAcross + col + 1}`)), `frame of tile ${col},${row}`);
  // Nothing else of the slide's was asked for from the viewer's page: no label, no tiles.
  t.deepEqual(
    requests.filter((request) => request.frame().page() === viewerPage && request.url().startsWith(base) && !request.url().startsWith(`${base}/dicomweb/`)).map((request) => request.url()),
    [],
  );
  t.deepEqual((await viewerPage.evaluate('window.dicomwebViewer.errors()')) as string[], []);
  t.deepEqual(pageErrors, []);
});

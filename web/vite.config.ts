import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import vue from '@vitejs/plugin-vue';
import { defineConfig, type Plugin } from 'vite';

/**
 * The web portal: `vite build` (through `npm run build`) writes web/dist,
 * which the Koa server serves (server/http/middleware/web-app.ts) and nginx
 * may serve in production. `vite` alone (dev) proxies the API to a running
 * `npm run dev` on :8080.
 */
const backend = process.env.SLIDEBANK_DEV_BACKEND ?? 'http://127.0.0.1:8080';

/** What the server (and nginx's gzip_static) send pre-compressed; the same list as PRECOMPRESSED in web-app.ts. */
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.json', '.svg', '.txt']);

/**
 * Writes `name.br` and `name.gz` beside each text file of the build, at the
 * highest settings (done once, not per request), so that the server sends
 * them as they are. A copy that would not be smaller is not written.
 */
function precompress(): Plugin {
  const brotli = promisify(brotliCompress);
  const gzipped = promisify(gzip);
  let outDir = '';
  return {
    name: 'slidebank-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      const files = (await readdir(outDir, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile() && COMPRESSIBLE.has(path.extname(entry.name)))
        .map((entry) => path.join(entry.parentPath, entry.name));
      await Promise.all(
        files.map(async (file) => {
          const content = await readFile(file);
          const copies = [
            ['.br', await brotli(content, { params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: content.length } })],
            ['.gz', await gzipped(content, { level: constants.Z_BEST_COMPRESSION })],
          ] as const;
          for (const [suffix, compressed] of copies) if (compressed.length < content.length) await writeFile(file + suffix, compressed);
        }),
      );
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  plugins: [vue(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One small entry; the viewer (Leaflet) is a separate chunk loaded with the slide page.
    chunkSizeWarningLimit: 250,
  },
  server: {
    proxy: Object.fromEntries(['/api', '/tiles', '/iiif', '/healthz'].map((prefix) => [prefix, { target: backend }])),
  },
});

import { createReadStream, existsSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context, Middleware } from 'koa';
import type { Logger } from '../../logging.js';

/** Paths the web app never answers: the API, tiles, IIIF and health stay with their routers (and their JSON 404s). */
const SERVER_PATHS = /^\/(api|tiles|iiif|healthz)(\/|$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Vite names what it emits under assets/ by content hash, so those never change; anything else may. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/**
 * The web portal (`web/dist`, built by `vite build`) behind the API routes:
 * static files, hashed assets cached for a year, `index.html` always
 * revalidated, and index.html for any other GET a browser navigates to (the
 * single-page app routes on the client). The fallback only answers requests
 * that accept HTML, so scripts and tests still get the JSON 404.
 *
 * Without a built app the server still runs its API (and says so once).
 */
export function webApp(root: string, log: Logger): Middleware {
  const dist = path.resolve(root);
  const index = path.join(dist, 'index.html');
  if (!existsSync(index) || !statSync(index).isFile()) {
    log.warn({ dist }, 'the web app is not built (run npm run build); serving the API only');
    return (_ctx, next) => next();
  }
  return async (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || SERVER_PATHS.test(ctx.path)) return next();
    let relative: string;
    try {
      relative = decodeURIComponent(ctx.path);
    } catch {
      return next();
    }
    const file = path.join(dist, path.normalize(relative));
    if (file.startsWith(dist + path.sep) && file !== index && (await isFile(file))) {
      const immutable = file.startsWith(path.join(dist, 'assets') + path.sep);
      return send(ctx, file, immutable ? IMMUTABLE : 'public, max-age=3600');
    }
    // A missing file with an extension (an old hashed asset, a typo) is a 404, not the app.
    if (path.extname(relative) !== '' && relative !== '/index.html') return next();
    if (relative !== '/' && relative !== '/index.html' && !ctx.get('Accept').includes('text/html')) return next();
    return send(ctx, index, REVALIDATE);
  };
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Files the build wrote `.br` and `.gz` copies of (web/vite.config.ts); images and fonts are compressed already. */
const PRECOMPRESSED = new Set(['.html', '.js', '.css', '.json', '.svg', '.txt']);
const ENCODINGS = [
  { name: 'br', suffix: '.br' },
  { name: 'gzip', suffix: '.gz' },
] as const;

/** The file itself, or its pre-compressed copy in the best encoding the client accepts. */
async function variant(ctx: Context, file: string): Promise<{ path: string; encoding?: string }> {
  if (!PRECOMPRESSED.has(path.extname(file))) return { path: file };
  ctx.vary('Accept-Encoding');
  for (const { name, suffix } of ENCODINGS) {
    // acceptsEncodings (negotiator) honours q=0 and says identity only when nothing else was offered.
    if (ctx.acceptsEncodings(name, 'identity') === name && (await isFile(file + suffix))) return { path: file + suffix, encoding: name };
  }
  return { path: file };
}

async function send(ctx: Context, file: string, cacheControl: string): Promise<void> {
  const stats = await stat(file);
  const chosen = await variant(ctx, file);
  ctx.set('Cache-Control', cacheControl);
  ctx.lastModified = stats.mtime;
  ctx.type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  ctx.length = chosen.encoding ? (await stat(chosen.path)).size : stats.size;
  if (chosen.encoding) ctx.set('Content-Encoding', chosen.encoding);
  ctx.status = 200;
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  // HEAD: Koa answers with these headers and no body; opening the file would only leak a descriptor.
  if (ctx.method !== 'HEAD') ctx.body = createReadStream(chosen.path);
}

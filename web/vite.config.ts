import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

/**
 * The web portal: `vite build` (through `npm run build`) writes web/dist,
 * which the Koa server serves (server/http/middleware/web-app.ts) and nginx
 * may serve in production. `vite` alone (dev) proxies the API to a running
 * `npm run dev` on :8080.
 */
const backend = process.env.SLIDEBANK_DEV_BACKEND ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [vue()],
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

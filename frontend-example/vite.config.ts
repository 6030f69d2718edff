import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// Two pages: the app (index.html) and the offline GraphiQL playground (playground.html).
// `npm run dev` proxies the API to a local `gql-media serve` (default port 8000,
// override with GQL_MEDIA_DEV_API=http://127.0.0.1:8765).
const api = process.env.GQL_MEDIA_DEV_API ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      onwarn(warning, warn) {
        // React libraries' "use client" directives are irrelevant in a client bundle.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        playground: resolve(import.meta.dirname, 'playground.html'),
      },
    },
  },
  worker: { format: 'es' },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: true },
      '/media': { target: api, changeOrigin: true },
      '/thumbnails': { target: api, changeOrigin: true },
      '/stream': { target: api, changeOrigin: true },
    },
  },
});

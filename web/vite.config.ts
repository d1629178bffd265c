import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

// The auditors' UI: plain TypeScript + DOM, bundled into web/dist (served by `flytrap audit serve`).
// Everything is bundled; nothing loads from a CDN, so it works offline.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
  },
  server: {
    // `FLYTRAP_API=http://127.0.0.1:8080 npx vite web` proxies the API to a running `flytrap audit serve`.
    proxy: { '/api': process.env.FLYTRAP_API ?? 'http://127.0.0.1:8080' },
  },
})

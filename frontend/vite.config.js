import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    target: 'es2022',
    // No inline scripts or data: URIs: the web binary's CSP allows only our own origin.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:3000' },
  },
});

import { defineConfig } from 'vite';

/** Served by the API under /console/: every asset is bundled, nothing comes from elsewhere. */
export default defineConfig({
  base: '/console/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', assetsInlineLimit: 0 },
});

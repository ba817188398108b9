import { defineConfig } from 'vite';

// The admin listener serves dist/ from tables compiled into the keystore binary. Files under
// assets/ carry a content hash in their names and are cached as immutable; index.html is not.
export default defineConfig({
  esbuild: {
    jsx: 'automatic',
    jsxImportSource: 'preact',
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // The Content-Security-Policy forbids inline scripts and data: fonts, so every asset is a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});

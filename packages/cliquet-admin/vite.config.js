// Builds web/ into src/cliquet_admin/static/, the files the Python
// distribution serves. Relative URLs (base "./"): the page sets a <base>
// under /v1/admin/, whatever the service's prefix. No source maps and
// content-hashed names: the build is small and reproducible (ci-test.sh
// checks that a rebuild gives the committed files byte for byte).
import { defineConfig } from "vite";

export default defineConfig({
  root: "web",
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: process.env.CLIQUET_ADMIN_OUT || "../src/cliquet_admin/static",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    proxy: { "/v1": "http://127.0.0.1:8888" },
  },
});

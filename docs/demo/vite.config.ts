// Builds the demo pages (npm run demo:build): index.html (generate text) and bench.html (kernel benchmark);
// `npm run demo` serves them with live reload.
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'docs/demo',
  base: './',
  build: {
    outDir: '../../dist-demo',
    emptyOutDir: true,
    target: 'es2022',
    // Node-only code paths (the npm webgpu binding, file access, worker threads) are never reached in a
    // browser, which has navigator.gpu: leave the native package and node: modules out of the bundle.
    rollupOptions: { external: ['webgpu', /^node:/], input: { index: 'docs/demo/index.html', bench: 'docs/demo/bench.html' } },
  },
  server: { fs: { allow: ['../..'] } },
});

import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import { securityHeaders } from './src/pwa/csp.js';
import { webditPwa } from './src/pwa/plugin.js';

// Cross-origin isolation (WASM threads) and the strict CSP; dev relaxes inline scripts for HMR (src/pwa/csp.ts).

export default defineConfig({
  plugins: [react(), webditPwa({ model: 'models/webdit-tiny/', precache: ['favicon.ico', 'manifest.webmanifest', 'icons'] })],
  server: { headers: securityHeaders('dev'), port: 5173 },
  preview: { headers: securityHeaders('header'), port: 5173 },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web', '@huggingface/transformers'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  test: {
    include: ['src/**/*.test.ts', 'training/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // load ORT-web and transformers.js as Node loads them, not through Vite's transform
    server: { deps: { external: [/onnxruntime-web/, /@huggingface\/transformers/] } },
  },
});

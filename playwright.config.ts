import { defineConfig } from '@playwright/test';
import fs from 'node:fs';

// Debian's Chromium where it exists (Playwright cannot download its own browser here);
// elsewhere Playwright's own build may be used (CHROMIUM_PATH overrides both).
const systemChromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const executablePath = process.env.CHROMIUM_PATH ?? systemChromium;
const PORT = Number(process.env.E2E_PORT ?? 4173);
// E2E_DIST: a build folder other than dist/ (parallel checkouts or sessions building side by side).
const DIST = process.env.E2E_DIST ?? 'dist';

const GPU_TESTS = new RegExp([
  'a new user generates', 'an SD3 replica loads by repo id', '@webgpu-only', '4-bit kernels', 'loads by repo id and a 9-step',
].map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));

const baseArgs = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export default defineConfig({
  testDir: 'e2e',
  outputDir: process.env.E2E_RESULTS ?? 'test-results', // playwright empties it at start: one per parallel run
  timeout: 600_000,
  expect: { timeout: 30_000 },
  workers: 1, // two cores: one browser at a time
  reporter: [['list']],
  use: {
    baseURL: `http://localhost:${PORT}`,
    acceptDownloads: true,
    trace: 'off',
    // a service worker would answer requests before page.route() sees them: specs that test it opt in
    // with test.use({ serviceWorkers: 'allow' }) (e2e/offline.spec.ts)
    serviceWorkers: 'block',
  },
  webServer: {
    command: `npx vite preview --port ${PORT} --strictPort --outDir ${DIST}`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: false,
    timeout: 120_000,
  },
  projects: [
    {
      name: 'webgpu',
      // WebGPU here is SwiftShader (the GPU emulated on the two CPU cores: every page load compiles
      // its shaders: 1-2 minutes per test), so to keep the test command well under 30 minutes this
      // project runs the tests where the backend changes the numbers: the engine's images against
      // PyTorch (embedded model, SD3, Z-Image), the 4-bit kernels, GPU-resident sampling and a lost
      // device. The rest runs on WASM; E2E_ALL_WEBGPU=1 runs everything on both (about 25 minutes
      // more here: batch, img2img, history, offline, animation frames were checked that way).
      grep: process.env.E2E_ALL_WEBGPU ? undefined : GPU_TESTS,
      // @wasm-only: a fault whose code path does not depend on the backend runs once, on WASM
      grepInvert: /@wasm-only/,
      use: {
        launchOptions: { executablePath, args: [...baseArgs, '--enable-unsafe-webgpu'] },
      },
      metadata: { backend: 'webgpu' },
    },
    {
      name: 'wasm',
      // @webgpu-only: needs a GPU device (Chromium runs this project without WebGPU)
      grepInvert: /@webgpu-only/,
      use: { launchOptions: { executablePath, args: [...baseArgs, '--disable-webgpu'] } },
      metadata: { backend: 'wasm' },
    },
  ],
});

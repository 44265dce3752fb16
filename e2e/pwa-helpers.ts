/**
 * Helpers shared by e2e/offline.spec.ts and e2e/csp.spec.ts (the form and canvas ones from ./ui.ts), plus a recorder of CSP violations.
 */
import { expect, type Page, type TestInfo } from '@playwright/test';
import { loadFixtures, type FixtureRun } from '../src/engine/testing/fixtures';
import { appState, canvasRGB, setParams, setSlider } from './ui';

export { appState, canvasRGB, setParams, setSlider };

export const fixtures = loadFixtures();

/** The project's backend and the fixture run it can afford (SwiftShader WebGPU: the 3-step run). */
export function setup(info: TestInfo): { backend: 'webgpu' | 'wasm'; run: FixtureRun } {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  return { backend, run: backend === 'webgpu' ? fixtures.runs[2] : fixtures.runs[0] };
}

/** Generate with the run's settings and wait for the final image of its seed. */
export async function generate(page: Page, run: FixtureRun): Promise<number[]> {
  await setParams(page, run);
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('timings')).toHaveText(new RegExp(`seed ${run.seed}$`), { timeout: 300_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'image');
  return canvasRGB(page);
}

export interface Violation {
  directive: string;
  blocked: string;
}

/** Record every securitypolicyviolation event of the page's documents (read with `violations(page)`). */
export async function recordViolations(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const list: { directive: string; blocked: string }[] = [];
    (window as unknown as { __cspViolations: typeof list }).__cspViolations = list;
    document.addEventListener('securitypolicyviolation', (e) => list.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
  });
}

export const violations = (page: Page): Promise<Violation[]> => page.evaluate(() => (window as unknown as { __cspViolations: Violation[] }).__cspViolations);

/**
 * crossOriginIsolated in the page and in the engine's worker (ORT's thread workers sit in
 * Atomics.wait and cannot answer; the badge's thread count speaks for them).
 */
export async function isolation(page: Page): Promise<{ page: boolean; engine: boolean }> {
  const engine = page.workers().find((w) => /\/assets\/worker-[^/]*\.js$/.test(new URL(w.url()).pathname));
  if (!engine) throw new Error(`no engine worker among ${page.workers().map((w) => w.url()).join(', ')}`);
  return {
    page: await page.evaluate(() => crossOriginIsolated),
    engine: await engine.evaluate(() => (self as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated),
  };
}

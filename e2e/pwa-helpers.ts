/**
 * Helpers shared by e2e/offline.spec.ts and e2e/csp.spec.ts (small copies of studio.spec.ts's, which
 * a spec cannot import without running its tests), plus a recorder of CSP violations.
 */
import { expect, type Page, type TestInfo } from '@playwright/test';
import { loadFixtures, type FixtureRun } from '../src/engine/testing/fixtures';

export const fixtures = loadFixtures();

export const appState = (page: Page) => page.locator('[data-state]').first();

/** The project's backend and the fixture run it can afford (SwiftShader WebGPU: the 3-step run). */
export function setup(info: TestInfo): { backend: 'webgpu' | 'wasm'; run: FixtureRun } {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  return { backend, run: backend === 'webgpu' ? fixtures.runs[2] : fixtures.runs[0] };
}

/** Set a range slider the way a keyboard user does: focus, Home, then ArrowRight. */
export async function setSlider(page: Page, testId: string, value: number, min: number, step: number) {
  const slider = page.getByTestId(testId);
  await slider.focus();
  await page.keyboard.press('Home');
  for (let v = min; v < value - 1e-9; v += step) await page.keyboard.press('ArrowRight');
  await expect(slider).toHaveValue(String(value));
}

export async function setParams(page: Page, run: FixtureRun) {
  await page.getByTestId('prompt').fill(run.prompt);
  await page.getByTestId('negative-prompt').fill(run.negativePrompt);
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale, 1, 0.5);
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(run.seed));
}

export async function canvasRGB(page: Page): Promise<number[]> {
  return page.getByTestId('result-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out;
  });
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

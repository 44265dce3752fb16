/**
 * Accessibility audit (issue 10, item 9): axe-core, injected into the page, reports no serious or
 * critical violation in each state a user sees: loading (the model download held back), ready,
 * running (a 50-step run, then cancelled), error (a model file answers 404) and history (a gallery
 * entry, and its image dialog open). Minor and moderate findings are printed, not failed.
 * Backend-independent (the DOM is the same on WebGPU and WASM): runs once, on WASM.
 */
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import path from 'node:path';
import { setSlider, appState } from './ui';

// The studio's Content-Security-Policy refuses inline scripts, and page.addScriptTag injects axe as
// an inline <script>: this spec's contexts bypass the CSP (e2e/csp.spec.ts tests the CSP itself).
test.use({ bypassCSP: true });

const AXE = path.resolve('node_modules/axe-core/axe.min.js');

interface AxeNode { target: unknown[]; html: string; failureSummary?: string }
interface AxeViolation { id: string; impact: string | null; help: string; helpUrl: string; nodes: AxeNode[] }

/** axe-core's violations for the whole document (axe injected on first use). */
async function axeViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: unknown[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations;
  }) as Promise<AxeViolation[]>;
}

/** Run axe on the whole document; fail on any serious or critical violation, printing every violation with its nodes. */
async function audit(page: Page, info: TestInfo, state: string) {
  const violations = await axeViolations(page);
  const report = violations
    .map((v) => `[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
      v.nodes.map((n) => `    ${JSON.stringify(n.target)} ${n.html}\n      ${(n.failureSummary ?? '').replace(/\n/g, '\n      ')}`).join('\n'))
    .join('\n');
  console.log(`[axe ${state}] ${violations.length} violation(s)${report ? `\n${report}` : ''}`);
  await info.attach(`axe-${state}.txt`, { body: report || 'no violations', contentType: 'text/plain' });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad, `serious or critical axe violations in the ${state} state:\n${report}`).toEqual([]);
}

async function waitReady(page: Page) {
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
}

test('axe: no serious or critical violation while the model loads, once ready, and during a run @wasm-only', async ({ page, context }, info) => {
  // hold the first .onnx response back so the page stays in its loading state while axe runs
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let first = true;
  await context.route(/\.onnx$/, async (route) => {
    if (first) { first = false; await held; }
    await route.continue();
  });
  await page.goto('/?backend=wasm');
  await expect(appState(page)).toHaveAttribute('data-state', 'loading', { timeout: 60_000 });
  await audit(page, info, 'loading');
  await expect(appState(page)).toHaveAttribute('data-state', 'loading'); // still loading when audited
  release();

  await waitReady(page);
  await audit(page, info, 'ready');

  // the audit can fail: a nameless button (critical) and grey-on-grey text (serious) planted in the
  // ready page are reported, with the planted nodes as targets; then removed
  await page.evaluate(() => {
    const probe = document.createElement('div');
    probe.id = 'axe-probe';
    probe.innerHTML = '<button id="axe-probe-button" type="button"></button><p id="axe-probe-text" style="color:#777;background:#888">low contrast</p>';
    document.querySelector('main')!.append(probe);
  });
  const planted = await axeViolations(page);
  const on = (id: string) => planted.find((v) => v.id === id)?.nodes.map((n) => String(n.target[0])) ?? [];
  expect(planted.find((v) => v.id === 'button-name')?.impact).toBe('critical');
  expect(on('button-name')).toEqual(['#axe-probe-button']);
  expect(planted.find((v) => v.id === 'color-contrast')?.impact).toBe('serious');
  expect(on('color-contrast')).toEqual(['#axe-probe-text']);
  await page.evaluate(() => document.getElementById('axe-probe')!.remove());

  // a 50-step run: audit while it runs, then cancel
  await setSlider(page, 'steps', 50, 1, 1);
  await page.getByTestId('generate').click();
  await expect(appState(page)).toHaveAttribute('data-state', 'running', { timeout: 60_000 });
  await audit(page, info, 'running');
  await expect(appState(page)).toHaveAttribute('data-state', 'running'); // audited mid-run
  await page.getByTestId('cancel').click();
  await waitReady(page);
});

test('axe: no serious or critical violation with a load error banner @wasm-only', async ({ page, context }, info) => {
  await context.route(/\/transformer\/model\.onnx$/, (route) => route.fulfill({ status: 404, body: 'Not Found' }));
  await page.goto('/?backend=wasm');
  await expect(page.getByTestId('error-banner')).toBeVisible({ timeout: 180_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'error');
  await audit(page, info, 'error');
});

test('axe: no serious or critical violation in the history gallery and its image dialog @wasm-only', async ({ page }, info) => {
  await page.goto('/?backend=wasm');
  await waitReady(page);
  await setSlider(page, 'steps', 2, 1, 1);
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('status')).toHaveText(/^Done in /, { timeout: 300_000 });
  await expect(page.getByTestId('history-item')).toHaveCount(1, { timeout: 30_000 });
  await audit(page, info, 'history');

  await page.getByTestId('history-item').click();
  const dialog = page.getByTestId('history-dialog');
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('history-canvas')).toHaveAttribute('data-drawn', 'true');
  await audit(page, info, 'history-dialog');
});

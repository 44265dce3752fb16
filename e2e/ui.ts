/** Form and canvas helpers shared by the e2e specs. */
import { expect, type Page } from '@playwright/test';
import type { FixtureRun } from '../src/engine/testing/fixtures';

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

export const appState = (page: Page) => page.locator('[data-state]').first();

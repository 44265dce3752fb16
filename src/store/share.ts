/**
 * Share links: the form's settings in the page URL. `shareUrl` writes them; `parseShareLink` reads
 * them back for applyForm, which clamps them like typed values. A value that is not a number where
 * one is needed is left out and named in the notice. `model`, `hub` and `revision` pick the model
 * (modelUrlFromSearch) and are carried over untouched; `backend` is the backend preference.
 */
import { isBackendPreference, parseSeedText } from './params';
import { selectGuidanceScale, selectNegativePrompt, selectNumInferenceSteps, selectSize } from './selectors';
import type { FormValues, StudioData } from './state';

/** URL parameter -> form field, for the numbers the setters clamp (the seed is read like the seed field). */
const NUMBER_PARAMS = { steps: 'numInferenceSteps', cfg: 'guidanceScale' } as const;

/** Every parameter the form reads from a link, plus `run` (generate once the model is ready). */
export const SHARE_PARAMS = ['prompt', 'negative', 'seed', 'steps', 'cfg', 'width', 'height', 'run'] as const;

export interface ShareLink {
  values: Partial<FormValues>;
  /** `name="value"` of each parameter that could not be read. */
  ignored: string[];
  /** `run=1`: generate once the model is ready. */
  run: boolean;
}

/** A whole decimal or float literal ("12", "4.5", "1e3"); "", " ", "0x10" and "abc" are not. */
function readNumber(raw: string): number | null {
  const text = raw.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

export function parseShareLink(search: string): ShareLink {
  const q = new URLSearchParams(search);
  const values: Partial<FormValues> = {};
  const ignored: string[] = [];
  const ignore = (name: string) => ignored.push(`${name}=${JSON.stringify(q.get(name))}`);

  const prompt = q.get('prompt');
  if (prompt !== null) values.prompt = prompt;
  const negative = q.get('negative');
  if (negative !== null) values.negativePrompt = negative;
  // the seed: exactly what the seed field accepts (digits, 0 to 2^32-1), so "1e3" or "-1" is named, not rewritten
  const seed = q.get('seed');
  if (seed !== null) {
    const parsed = parseSeedText(seed);
    if ('seed' in parsed) values.seed = parsed.seed;
    else ignore('seed');
  }
  for (const [name, field] of Object.entries(NUMBER_PARAMS)) {
    const raw = q.get(name);
    if (raw === null) continue;
    const n = readNumber(raw);
    if (n === null) ignore(name);
    else values[field] = n;
  }
  // a size is a pair: one side alone says nothing
  const [width, height] = [q.get('width'), q.get('height')];
  if (width !== null || height !== null) {
    const w = width === null ? null : readNumber(width);
    const h = height === null ? null : readNumber(height);
    if (w !== null && h !== null) values.size = [w, h];
    else {
      if (width !== null && w === null) ignore('width');
      if (height !== null && h === null) ignore('height');
      if (width === null || height === null) ignored.push(width === null ? 'height without width' : 'width without height');
    }
  }
  const backend = q.get('backend');
  if (backend !== null) {
    if (isBackendPreference(backend)) values.backendPreference = backend;
    else ignore('backend');
  }
  const run = q.get('run');
  return { values, ignored, run: run === '1' || run === 'true' };
}

/** The notice for a link's unreadable values, or null when there were none. */
export const ignoredNotice = (ignored: string[]): string | null =>
  ignored.length === 0 ? null : `Ignored from the link (not a valid value): ${ignored.join(', ')}. The form keeps its own values for them.`;

/**
 * `href` with the form's settings in it: the resolved values, so the link makes the same image
 * with the same model even where the form shows a model default. Other parameters (`model`,
 * `hub`, `revision`, anything else) stay as they are; `run` is never copied along.
 */
export function shareUrl(s: StudioData, href: string): string {
  const url = new URL(href);
  for (const name of SHARE_PARAMS) url.searchParams.delete(name);
  const q = url.searchParams;
  q.set('prompt', s.prompt);
  q.set('negative', selectNegativePrompt(s));
  q.set('seed', String(s.seed));
  const steps = selectNumInferenceSteps(s);
  if (steps !== null) q.set('steps', String(steps));
  const cfg = selectGuidanceScale(s);
  if (cfg !== null) q.set('cfg', String(cfg));
  const size = selectSize(s);
  if (size !== null) {
    q.set('width', String(size[0]));
    q.set('height', String(size[1]));
  }
  if (s.backendPreference === 'auto') q.delete('backend');
  else q.set('backend', s.backendPreference);
  return url.toString();
}

/**
 * `href` without the form's parameters, for the address bar once a link has filled the form:
 * a reload then keeps the user's later edits (saved ones) instead of the link's, and never runs
 * `run=1` twice. `model`, `hub`, `revision` and `backend` stay: they describe the page.
 */
export function withoutShareParams(href: string): string {
  const url = new URL(href);
  if (!SHARE_PARAMS.some((name) => url.searchParams.has(name))) return href;
  for (const name of SHARE_PARAMS) url.searchParams.delete(name);
  return url.toString();
}

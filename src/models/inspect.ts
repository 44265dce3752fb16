/**
 * What the picker shows of a model folder, read in the page (no ORT here): its files and sizes
 * (manifest.json or the Hub tree listing), how much of it browser storage holds, its optional parts
 * (SD3's T5) and the preflight's verdict for this browser. Also deleting a model from storage.
 */
import { EngineError } from '../engine/errors';
import { detectFamily } from '../engine/families';
import { browserLocks, FileStore, type FileSpec } from '../engine/core/files';
import { openFolder } from '../engine/core/folder';
import { defaultFetcher, LOCAL_CACHE } from '../engine/core/localFolder';
import { decide, guessBackend, modelNeeds, probeEnvironment, usedFiles, type Environment } from '../engine/core/preflight';
import { BrowserStorage, MemoryStorage, type ModelStorage } from '../engine/core/storage';
import type { BackendPreference } from '../engine/protocol';

export interface Verdict {
  ok: boolean;
  /** ok: the backend it would run on, and what it would leave out; not ok: why not, and what would work. */
  backend?: 'webgpu' | 'wasm';
  skip?: string[];
  notes?: string[];
  message?: string;
  action?: string;
}

export interface ModelReport {
  url: string;
  id: string;
  name: string;
  family: string;
  /** Every file a load may download (the components used, and model_index.json). */
  files: FileSpec[];
  bytes: number;
  /** Of `bytes`, what browser storage holds (an interrupted download counts what it got). */
  stored: number;
  /** Parts that can be left out, with their size. */
  droppable: { label: string; components: string[]; bytes: number }[];
  /** The preflight with the engine's default choice (optional parts left out when they would not fit)... */
  verdict: Verdict;
  /** ...and with every optional part in. */
  verdictAll: Verdict;
}

/** Storage that reads from `base` and keeps what is written in memory. */
class LookOnly implements ModelStorage {
  private memory = new MemoryStorage();
  constructor(private base: ModelStorage) {}
  async match(key: string) {
    return (await this.base.match(key)) ?? (await this.memory.match(key));
  }
  put(key: string, response: Response) {
    return this.memory.put(key, response);
  }
  delete(key: string) {
    return this.memory.delete(key);
  }
}

let shared: FileStore | null = null;
/** The page's view of the engine's model storage (same cache, same keys). */
export function pageStore(): FileStore {
  shared ??= new FileStore(new BrowserStorage(), defaultFetcher(), { locks: browserLocks() });
  return shared;
}

/** Free space (quota - usage) and usage, or nulls where the browser does not say. */
export async function storageEstimate(): Promise<{ usage: number | null; quota: number | null }> {
  const est = await navigator.storage?.estimate?.().catch(() => undefined);
  return { usage: est?.usage ?? null, quota: est?.quota ?? null };
}

function verdictOf(run: () => { backend: { backend: 'webgpu' | 'wasm' }; skip: string[]; notes: string[] }): Verdict {
  try {
    const plan = run();
    return { ok: true, backend: plan.backend.backend, skip: plan.skip, notes: plan.notes };
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return { ok: false, message: e.message, action: e.action };
  }
}

export async function inspectModel(url: string, preference: BackendPreference, env?: Environment, signal?: AbortSignal): Promise<ModelReport> {
  const store = pageStore();
  // looking at a model stores nothing of it: model_index.json is read from storage when it is there, else into memory
  const folder = await openFolder(url, new FileStore(new LookOnly(new BrowserStorage()), defaultFetcher()), defaultFetcher(), signal);
  const family = detectFamily(folder);
  const used = usedFiles(folder, family);
  const index = folder.files.get('model_index.json');
  const files = [...used.map(([, f]) => f), ...(index ? [index] : [])];
  const stored = (await Promise.all(files.map((f) => store.storedBytes(f)))).reduce((a, b) => a + b, 0);
  const needs = await modelNeeds(folder, family, store, { signal });
  const e = env ?? (await probeEnvironment(async () => {
    const { usage, quota } = await storageEstimate();
    return usage !== null && quota !== null ? quota - usage : null;
  }));
  const selected = guessBackend(e, preference, navigator.hardwareConcurrency ?? 1);
  const droppable = (family.droppable ?? [])
    .map((d) => ({ label: d.label, components: [...d.components], bytes: used.filter(([p]) => d.components.some((c) => p.startsWith(c + '/'))).reduce((n, [, f]) => n + f.bytes, 0) }))
    .filter((d) => d.bytes > 0);
  return {
    url,
    id: folder.id,
    name: folder.name,
    family: family.name,
    files,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    stored,
    droppable,
    verdict: verdictOf(() => decide(needs, e, preference, selected)),
    verdictAll: verdictOf(() => decide(needs, e, preference, selected, [])),
  };
}

/** Delete a model's files from browser storage (and the listing of a folder opened from disk). Returns how many files were there. */
export async function deleteModel(report: Pick<ModelReport, 'files' | 'url'>, local: boolean): Promise<number> {
  const store = pageStore();
  let n = 0;
  for (const f of report.files) if (await store.delete(f)) n++;
  if (local && typeof caches !== 'undefined') {
    const c = await caches.open(LOCAL_CACHE);
    const id = /\/([^/]+\/[^/]+)\/resolve\/[^/]+\/$/.exec(report.url)?.[1];
    for (const req of await c.keys()) if (req.url.startsWith(report.url) || (id && req.url.includes(`/api/models/${id}/`))) await c.delete(req);
  }
  return n;
}

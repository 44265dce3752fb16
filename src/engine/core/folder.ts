/**
 * A model folder in diffusers layout (docs/model-folder.md): its file list with sizes and hashes
 * (from our manifest.json, or from the Hub's tree listing when there is none), model_index.json and
 * the components' configs. The core knows components and files only; families give them meaning.
 */
import { CancelledError, downloadError, modelError } from '../errors';
import type { FileSpec, Fetcher, FileStore } from './files';

export interface ModelManifest {
  format: 'webdit-model';
  version: 2;
  id: string;
  name: string;
  family?: string;
  defaults: { num_inference_steps?: number; guidance_scale?: number; negative_prompt?: string };
  files: Record<string, { bytes: number; sha256: string }>;
}

/** model_index.json: `_class_name` plus one [library, class] pair per component. */
export interface ModelIndex {
  _class_name: string;
  [component: string]: unknown;
}

export interface ModelFolder {
  /** Folder URL, ending in '/'. */
  base: string;
  id: string;
  name: string;
  index: ModelIndex;
  /** Our manifest, when the folder has one (a plain Hub repo does not). */
  manifest: ModelManifest | null;
  files: Map<string, FileSpec>;
  /** Components: named in model_index.json or present as a folder. */
  components: string[];
}

const FIX = 'Re-export the model with training/export.py, or point the studio at a complete model folder.';

function need(cond: boolean, what: string): asserts cond {
  if (!cond) throw modelError(`Invalid model manifest: ${what}.`, FIX);
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isPosInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** Check a format-2 manifest; every error names the field and says how to fix it. */
export function parseManifest(text: string): ModelManifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw modelError(`The model manifest is not valid JSON (${(e as Error).message}).`, FIX);
  }
  need(isObj(m), 'it must be a JSON object');
  if (m.version !== 2) {
    throw modelError(
      `This model folder uses manifest version ${JSON.stringify(m.version ?? 1)}; this studio reads version 2 (diffusers layout).`,
      'Convert the folder with training/relayout_v1.py, or re-export it with training/export.py.',
    );
  }
  need(typeof m.id === 'string' && m.id.length > 0, '"id" must be a non-empty string');
  need(m.family === undefined || typeof m.family === 'string', '"family" must be a string when present');
  need(m.defaults === undefined || isObj(m.defaults), '"defaults" must be an object');
  const files = m.files;
  need(isObj(files), '"files" must list every file with its bytes and sha256');
  for (const [name, f] of Object.entries(files)) {
    // an absolute URL ("http://evil.example/x.onnx", "data:…") is not a path in the folder either (fault table 4e'')
    need(!name.includes('..') && !name.startsWith('/') && !name.includes('\\') && !/^[a-z][a-z\d+.-]*:/i.test(name), `file "${name}" must be a relative path inside the model folder`);
    need(isObj(f) && isPosInt(f.bytes), `file "${name}" needs a positive integer "bytes"`);
    need(typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256), `file "${name}" needs a 64-hex-digit "sha256"`);
  }
  need(Object.hasOwn(files, 'model_index.json'), '"files" must include model_index.json');
  return {
    ...(m as unknown as ModelManifest),
    name: typeof m.name === 'string' && m.name ? m.name : (m.id as string),
    defaults: (m.defaults as ModelManifest['defaults']) ?? {},
  };
}

/** `https://host/<owner>/<repo>/resolve/<rev>/` -> the Hub's tree API URL for that repo, or null. */
export function hubTreeUrl(base: string): string | null {
  const m = /^(.*?)\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/$/.exec(base);
  if (!m) return null;
  const [, host, owner, repo, rev] = m;
  return `${host}/api/models/${owner}/${repo}/tree/${rev}?recursive=true`;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

/** Files from a Hub tree listing: LFS files carry their sha256, small ones their git blob id. */
export function filesFromTree(base: string, entries: unknown): Map<string, FileSpec> {
  if (!Array.isArray(entries)) throw modelError('The Hub tree listing is not a list of files.', 'Check the repository id and revision.');
  const files = new Map<string, FileSpec>();
  for (const e of entries as TreeEntry[]) {
    if (!isObj(e) || e.type !== 'file' || typeof e.path !== 'string') continue;
    const size = e.lfs?.size ?? e.size;
    if (!isPosInt(size)) continue;
    files.set(e.path, {
      path: e.path,
      url: base + e.path.split('/').map(encodeURIComponent).join('/'),
      bytes: size,
      ...(e.lfs?.oid ? { sha256: e.lfs.oid } : { gitSha1: e.oid }),
    });
  }
  return files;
}

async function fetchJson(fetcher: Fetcher, url: string, signal?: AbortSignal): Promise<{ status: number; json?: unknown; text?: string }> {
  let res: Response;
  try {
    res = await fetcher(url, { signal });
  } catch (e) {
    if (signal?.aborted) throw new CancelledError('Loading the model');
    throw downloadError(`Could not download ${url} (${(e as Error).message}).`, 'Check the model URL and your connection, then press Retry download.');
  }
  if (!res.ok) return { status: res.status };
  try {
    return { status: res.status, text: await res.text() };
  } catch (e) {
    if (signal?.aborted) throw new CancelledError('Loading the model');
    throw downloadError(`Could not download ${url}: the connection broke off (${(e as Error).message}).`);
  }
}

/** Normalise a model URL: a folder ending in '/', or its manifest.json. */
export function folderBase(modelUrl: string): string {
  if (modelUrl.endsWith('/manifest.json')) return modelUrl.slice(0, -'manifest.json'.length);
  return modelUrl.endsWith('/') ? modelUrl : modelUrl + '/';
}

/** Read a folder's file list and model_index.json. */
export async function openFolder(modelUrl: string, store: FileStore, fetcher: Fetcher, signal?: AbortSignal): Promise<ModelFolder> {
  const base = folderBase(modelUrl);
  let manifest: ModelManifest | null = null;
  let files: Map<string, FileSpec>;

  const got = await fetchJson(fetcher, base + 'manifest.json', signal);
  if (got.text !== undefined) {
    manifest = parseManifest(got.text);
    files = new Map(Object.entries(manifest.files).map(([path, f]) => [path, { path, url: base + path, bytes: f.bytes, sha256: f.sha256 }]));
  } else {
    const tree = hubTreeUrl(base);
    if (got.status !== 404 || !tree) {
      throw modelError(
        `The model folder ${base} has no manifest.json (the server answered ${got.status}).`,
        'Check the model URL: it must point at a model folder with manifest.json, or at a Hub repository (…/<owner>/<repo>/resolve/<revision>/).',
      );
    }
    const listing = await fetchJson(fetcher, tree, signal);
    if (listing.text === undefined) {
      throw modelError(`The Hub could not list ${tree} (it answered ${listing.status}).`, 'Check the repository id and revision, and that the repository is public.');
    }
    let entries: unknown;
    try {
      entries = JSON.parse(listing.text);
    } catch {
      throw modelError(`The Hub tree listing of ${tree} is not JSON.`, 'Check the repository id and revision.');
    }
    files = filesFromTree(base, entries);
  }

  // a repo in another layout (webnn's Z-Image: onnx/*.onnx) has no model_index.json: an empty
  // class name, and its family knows it by its files (detectFamily names the file when none does)
  const indexSpec = files.get('model_index.json');
  let index: ModelIndex = { _class_name: '' };
  if (indexSpec) {
    try {
      index = JSON.parse(await store.text(indexSpec, signal));
    } catch (e) {
      if (e instanceof Error && e.name !== 'SyntaxError') throw e;
      throw modelError(`model_index.json is not valid JSON (${(e as Error).message}).`, FIX);
    }
    if (!isObj(index) || typeof index._class_name !== 'string') throw modelError('model_index.json has no "_class_name".', FIX);
  }
  // components: model_index.json's entries and the component folders present (optimum's SD3 export
  // lists "vae" but ships vae_decoder/ and vae_encoder/ folders)
  const named = Object.keys(index).filter((k) => !k.startsWith('_') && Array.isArray(index[k]) && (index[k] as unknown[])[0] !== null);
  const folders = [...files.keys()].filter((p) => p.includes('/')).map((p) => p.slice(0, p.indexOf('/')));
  const components = [...new Set([...named, ...folders])];
  const id = manifest?.id ?? base.replace(/\/resolve\/[^/]+\/$/, '').split('/').filter(Boolean).slice(-2).join('/');
  return { base, id, name: manifest?.name ?? id, index, manifest, files, components };
}

/** The files of one component folder, keyed by their path inside it. */
export function componentFiles(folder: ModelFolder, component: string): Map<string, FileSpec> {
  const prefix = component + '/';
  return new Map([...folder.files].filter(([p]) => p.startsWith(prefix)).map(([p, f]) => [p.slice(prefix.length), f]));
}

/** A component's JSON file (config.json by default), verified, parsed. */
/** A component's file as text, verified. */
export async function readComponentText(folder: ModelFolder, store: FileStore, component: string, file: string, signal?: AbortSignal): Promise<string> {
  const spec = folder.files.get(`${component}/${file}`);
  if (!spec) throw modelError(`The model folder has no ${component}/${file}.`, FIX);
  return store.text(spec, signal);
}

export async function readComponentJson<T = Record<string, unknown>>(folder: ModelFolder, store: FileStore, component: string, file = 'config.json', signal?: AbortSignal): Promise<T> {
  const text = await readComponentText(folder, store, component, file, signal);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw modelError(`${component}/${file} is not valid JSON (${(e as Error).message}).`, FIX);
  }
}

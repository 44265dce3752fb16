/**
 * The models the picker offers besides the embedded one, with what they need. Sizes and needs are
 * facts from the issue, README's converter section and training/replicas/README.md; those marked
 * `estimate` are computed from parameter counts, not measured on the real files.
 */

export interface KnownModel {
  /** Stable key (data-testid). */
  key: string;
  name: string;
  family: 'sd3' | 'zimage';
  /** Hub repo id that loads as it is, or null when the user has to convert and host it first. */
  repo: string | null;
  /** Download size in bytes, and whether it is an estimate. */
  bytes: number;
  estimate: boolean;
  /** What it needs, in words ("WebGPU with shader-f16", "about 6 GB of GPU memory"). */
  needs: string[];
  /** For a model that does not load by repo id: what to do. */
  howTo?: string;
  /** Optional parts and their size (SD3's T5). */
  optional?: { label: string; bytes: number; estimate: boolean };
}

const GB = 1e9;

export const KNOWN_MODELS: readonly KnownModel[] = [
  {
    key: 'z-image-turbo',
    name: 'Z-Image-Turbo (q4f16, webnn export)',
    family: 'zimage',
    repo: 'webnn/Z-Image-Turbo',
    // the issue: 6B S3-DiT + Qwen3-4B text encoder + FLUX VAE at q4f16, ~5.6 GB
    bytes: 5.6 * GB,
    estimate: true,
    needs: ['WebGPU with shader-f16 (its graphs compute in float16)', 'too large for WASM (4 GB WebAssembly memory)', 'about 6 GB of GPU memory'],
  },
  {
    key: 'sd35-medium-4bit',
    name: 'Stable Diffusion 3.5 medium (4-bit, converted)',
    family: 'sd3',
    repo: null,
    // README: ≈ 2.1 GB without T5, ≈ 5.1 GB with it (from parameter counts)
    bytes: 2.1 * GB,
    estimate: true,
    needs: ['WebGPU recommended; WASM without T5', 'about 2 GB of GPU memory without T5'],
    optional: { label: 'T5', bytes: 2.9 * GB, estimate: true },
    howTo: 'No 4-bit SD3 export is published: convert an optimum export with training/convert_sd3.py (README: Converting Stable Diffusion 3 / 3.5), then open the folder from disk or paste the repo you pushed it to.',
  },
  {
    key: 'sd35-medium-tensorstack',
    name: 'Stable Diffusion 3.5 medium (TensorStack fp16)',
    family: 'sd3',
    repo: null,
    // README: 16.2 GB at fp16; the MMDiT's one weight file is 4.94 GB
    bytes: 16.2 * GB,
    estimate: false,
    needs: ["cannot load as it is: its transformer's 4.94 GB weight file is over the 4 GB one file can have in ONNX Runtime Web"],
    optional: { label: 'T5', bytes: 9.52 * GB, estimate: false },
    howTo: 'TensorStack/stable-diffusion-3.5-medium-onnx is fp16: convert it to 4-bit with training/convert_sd3.py first (README: Converting Stable Diffusion 3 / 3.5).',
  },
  {
    key: 'sd35-large-turbo-4bit',
    name: 'Stable Diffusion 3.5 large turbo (4-bit, converted)',
    family: 'sd3',
    repo: null,
    // 8.1 B MMDiT x 4.625 bits ≈ 4.7 GB, plus the CLIPs and VAE as for medium (≈ 0.7 GB)
    bytes: 5.4 * GB,
    estimate: true,
    needs: ['WebGPU (too large for WASM)', 'about 6 GB of GPU memory without T5'],
    optional: { label: 'T5', bytes: 2.9 * GB, estimate: true },
    howTo: 'Convert TensorStack/stable-diffusion-3.5-large-turbo-onnx or an optimum export with training/convert_sd3.py, then open the folder from disk or paste the repo you pushed it to.',
  },
];

/** The `?model=` value and folder URL a pasted text names, or why it names none. */
export type ParsedModel = { model: string; url: string; hub: string | null; revision: string | null } | { error: string };

/**
 * What the paste box accepts: a Hub repo id (`owner/name`), a Hub repo page
 * (`https://huggingface.co/owner/name`, with `/tree/<rev>` or not), or the http(s) URL of a model
 * folder. `hub` is the page's `?hub=` (a mirror or a local server) for repo ids.
 */
export function parseModelInput(text: string, hub: string, revision = 'main'): ParsedModel {
  const t = text.trim();
  if (!t) return { error: 'Type a Hub repo id (owner/name) or the URL of a model folder.' };
  const repo = /^[\w.-]+\/[\w.-]+$/;
  if (repo.test(t)) {
    if (t.includes('..')) return { error: `"${t}" is not a Hub repo id: a name cannot contain "..".` };
    return { model: t, url: `${hub.replace(/\/+$/, '')}/${t}/resolve/${encodeURIComponent(revision)}/`, hub, revision };
  }
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return { error: `"${t.length > 60 ? t.slice(0, 60) + '…' : t}" is neither a Hub repo id (owner/name, letters, digits, - _ .) nor an http(s) URL of a model folder.` };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { error: `"${u.protocol}" URLs cannot be loaded: use an http(s) URL of a model folder, or a Hub repo id.` };
  // a Hub repo page: huggingface.co/<owner>/<name>[/tree/<rev>]
  const page = /^\/([\w.-]+\/[\w.-]+)(?:\/tree\/([^/]+))?\/?$/.exec(u.pathname);
  if (page && /(^|\.)(huggingface\.co|hf\.co)$/.test(u.hostname)) {
    const rev = page[2] ? decodeURIComponent(page[2]) : revision;
    return { model: page[1], url: `${u.origin}/${page[1]}/resolve/${encodeURIComponent(rev)}/`, hub: u.origin, revision: rev };
  }
  const folder = u.href.endsWith('/') || u.href.endsWith('/manifest.json') ? u.href : `${u.href}/`;
  return { model: folder, url: folder.endsWith('/manifest.json') ? folder.slice(0, -'manifest.json'.length) : folder, hub: null, revision: null };
}

import { modelError } from './errors';

/** A model folder's description (public/models/<id>/manifest.json), validated on load. */
export interface ModelManifest {
  id: string;
  name: string;
  family: string;
  version: number;
  image_size: number;
  latent_channels: number;
  latent_size: number;
  vae_scale_factor: number;
  patch_size: number;
  scaling_factor: number;
  shift_factor: number;
  text_max_length: number;
  text_hidden_size: number;
  pooled_dim: number;
  scheduler: { type: 'FlowMatchEulerDiscreteScheduler'; shift: number; num_train_timesteps: number };
  defaults: { steps: number; guidance_scale: number; negative_prompt: string };
  graphs: { transformer: string; vae_decoder: string; text_encoder: string };
  files: Record<string, { bytes: number; sha256: string }>;
}

const FIX = 'Re-export the model with training/export.py, or point the studio at a complete model folder.';

function need(cond: boolean, what: string): asserts cond {
  if (!cond) throw modelError(`Invalid model manifest: ${what}.`, FIX);
}

const isPosInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStr = (x: unknown): x is string => typeof x === 'string' && x.length > 0;

/** Parse and check a manifest; every error names the field and says how to fix it. */
export function parseManifest(text: string): ModelManifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw modelError(`The model manifest is not valid JSON (${(e as Error).message}).`, FIX);
  }
  need(typeof m === 'object' && m !== null && !Array.isArray(m), 'it must be a JSON object');
  need(isStr(m.id), '"id" must be a non-empty string');
  need(isStr(m.family), '"family" must be a non-empty string');
  for (const k of ['image_size', 'latent_channels', 'latent_size', 'patch_size', 'text_max_length', 'text_hidden_size', 'pooled_dim']) {
    need(isPosInt(m[k]), `"${k}" must be a positive integer (got ${JSON.stringify(m[k])})`);
  }
  need(isNum(m.scaling_factor) && m.scaling_factor !== 0, '"scaling_factor" must be a non-zero number');
  need(isNum(m.shift_factor), '"shift_factor" must be a number');
  need((m.latent_size as number) % (m.patch_size as number) === 0, '"latent_size" must be a multiple of "patch_size"');
  const sch = m.scheduler as ModelManifest['scheduler'] | undefined;
  need(!!sch && sch.type === 'FlowMatchEulerDiscreteScheduler', '"scheduler.type" must be "FlowMatchEulerDiscreteScheduler"');
  need(isNum(sch.shift) && sch.shift > 0, '"scheduler.shift" must be a number > 0');
  need(isPosInt(sch.num_train_timesteps), '"scheduler.num_train_timesteps" must be a positive integer');
  const d = m.defaults as ModelManifest['defaults'] | undefined;
  need(!!d && isPosInt(d.steps) && isNum(d.guidance_scale), '"defaults" must have integer "steps" and numeric "guidance_scale"');
  const g = m.graphs as ModelManifest['graphs'] | undefined;
  need(!!g && isStr(g.transformer) && isStr(g.vae_decoder) && isStr(g.text_encoder), '"graphs" must name transformer, vae_decoder and text_encoder');
  const files = m.files as ModelManifest['files'] | undefined;
  need(!!files && typeof files === 'object', '"files" must list every file with its bytes and sha256');
  for (const [name, f] of Object.entries(files)) {
    need(!name.includes('..') && !name.startsWith('/'), `file "${name}" must be a relative path inside the model folder`);
    need(isPosInt(f?.bytes), `file "${name}" needs a positive integer "bytes"`);
    need(typeof f?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256), `file "${name}" needs a 64-hex-digit "sha256"`);
  }
  need(!!files[g.transformer], `"files" must include the transformer graph "${g.transformer}"`);
  need(!!files[g.vae_decoder], `"files" must include the VAE decoder graph "${g.vae_decoder}"`);
  need(d.steps <= 50 && d.guidance_scale >= 1 && d.guidance_scale <= 12, '"defaults" must have steps 1-50 and guidance_scale 1-12');
  return {
    ...(m as object),
    name: isStr(m.name) ? m.name : (m.id as string),
    version: isPosInt(m.version) ? m.version : 1,
    vae_scale_factor: isPosInt(m.vae_scale_factor) ? m.vae_scale_factor : (m.image_size as number) / (m.latent_size as number),
    defaults: { ...d, negative_prompt: typeof d.negative_prompt === 'string' ? d.negative_prompt : '' },
  } as ModelManifest;
}

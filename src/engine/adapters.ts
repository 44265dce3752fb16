/**
 * A model family is an adapter: how text becomes conditioning and what the latents look like.
 * The pipeline (Euler + CFG + VAE) is shared; only these two questions differ between families.
 */
import type { ModelManifest } from './manifest';
import type { HostTensor } from './tensor';
import { modelError } from './errors';
import { PromptEncoder } from './textEncoder';

export interface Conditioning {
  /** [B, L, D] token context for cross-attention (`encoder_hidden_states`). */
  context: HostTensor;
  /** [B, P] pooled embedding (`pooled_projections`). */
  pooled: HostTensor;
}

/** What an adapter needs from a text encoder (PromptEncoder implements it). */
export interface TextEncoderLike {
  encode(texts: string[]): Promise<{ hiddenStates: HostTensor; pooled: HostTensor }>;
  dispose(): Promise<void>;
}

export interface FamilyAdapter {
  readonly family: string;
  /** Conditioning for a batch of prompts, in order. */
  encode(prompts: string[]): Promise<Conditioning>;
  /** [C, h, w] of one latent image. */
  latentShape(): [number, number, number];
  dispose(): Promise<void>;
}

/** What a family's factory gets: the manifest and the verified files of the model folder. */
export interface AdapterContext {
  manifest: ModelManifest;
  files: Map<string, Uint8Array>;
  /** Folder holding the model folder, and the model folder's name (for transformers.js). */
  root: string;
  name: string;
  textDevice?: 'wasm' | 'webgpu';
}

/** The verified files under `folder/`, keyed by their path inside it. */
export function filesUnder(files: Map<string, Uint8Array>, folder: string): Map<string, Uint8Array> {
  const prefix = folder + '/';
  return new Map([...files].filter(([f]) => f.startsWith(prefix)).map(([f, b]) => [f.slice(prefix.length), b]));
}

/** WebDiT's own family: one CLIP-style encoder gives both the context and the pooled vector. */
export class WebDiTAdapter implements FamilyAdapter {
  readonly family = 'webdit';

  static async create(ctx: AdapterContext): Promise<WebDiTAdapter> {
    const folder = ctx.manifest.graphs.text_encoder;
    const encoder = await PromptEncoder.load(
      { root: ctx.root, folder: `${ctx.name}/${folder}`, files: filesUnder(ctx.files, folder), device: ctx.textDevice },
      ctx.manifest.text_max_length,
    );
    return new WebDiTAdapter(ctx.manifest, encoder);
  }

  constructor(
    private manifest: ModelManifest,
    private encoder: TextEncoderLike,
  ) {}

  async encode(prompts: string[]): Promise<Conditioning> {
    const { hiddenStates, pooled } = await this.encoder.encode(prompts);
    const [, L, D] = hiddenStates.dims;
    const m = this.manifest;
    if (L !== m.text_max_length || D !== m.text_hidden_size || pooled.dims[1] !== m.pooled_dim) {
      throw modelError(
        `The text encoder gives [${hiddenStates.dims}] and [${pooled.dims}] but the manifest expects [B, ${m.text_max_length}, ${m.text_hidden_size}] and [B, ${m.pooled_dim}].`,
        'The text encoder and the transformer come from different exports: re-export the model folder as a whole.',
      );
    }
    return { context: hiddenStates, pooled };
  }

  latentShape(): [number, number, number] {
    return [this.manifest.latent_channels, this.manifest.latent_size, this.manifest.latent_size];
  }

  dispose() {
    return this.encoder.dispose();
  }
}

/**
 * SD3's conditioning from its encoders' outputs (DESIGN.md §3): CLIP-L [B,77,768] and CLIP-G
 * [B,77,1280] penultimate hidden states are concatenated on features and zero-padded to the
 * T5 width (4096), then concatenated on tokens with T5's [B,256,4096] (or with zeros [B,77,4096]
 * when T5 is not loaded); pooled = cat(L pooled 768, G pooled 1280) = [B, 2048].
 */
export function assembleSD3Conditioning(
  clipL: { hidden: HostTensor; pooled: HostTensor },
  clipG: { hidden: HostTensor; pooled: HostTensor },
  t5: HostTensor | null,
  t5Width = 4096,
): Conditioning {
  const [B, L, dL] = clipL.hidden.dims;
  const [B2, L2, dG] = clipG.hidden.dims;
  if (B !== B2 || L !== L2) throw modelError(`CLIP-L [${clipL.hidden.dims}] and CLIP-G [${clipG.hidden.dims}] disagree on batch or length.`, 'Use the encoders of one SD3 export.');
  if (dL + dG > t5Width) throw modelError(`CLIP widths ${dL}+${dG} exceed the context width ${t5Width}.`, 'Check the text encoders of this SD3 export.');
  const tT5 = t5 ? t5.dims[1] : L;
  if (t5 && (t5.dims[0] !== B || t5.dims[2] !== t5Width)) throw modelError(`T5 output [${t5.dims}] does not fit [${B}, T, ${t5Width}].`, 'Use the T5 encoder of the same SD3 export.');
  const T = L + tT5;
  const ctx = new Float32Array(B * T * t5Width);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      const o = (b * T + l) * t5Width;
      ctx.set(clipL.hidden.data.subarray((b * L + l) * dL, (b * L + l + 1) * dL), o);
      ctx.set(clipG.hidden.data.subarray((b * L + l) * dG, (b * L + l + 1) * dG), o + dL);
    }
    if (t5) ctx.set(t5.data.subarray(b * tT5 * t5Width, (b + 1) * tT5 * t5Width), (b * T + L) * t5Width);
  }
  const pL = clipL.pooled.dims[1], pG = clipG.pooled.dims[1];
  const pooled = new Float32Array(B * (pL + pG));
  for (let b = 0; b < B; b++) {
    pooled.set(clipL.pooled.data.subarray(b * pL, (b + 1) * pL), b * (pL + pG));
    pooled.set(clipG.pooled.data.subarray(b * pG, (b + 1) * pG), b * (pL + pG) + pL);
  }
  return { context: { data: ctx, dims: [B, T, t5Width] }, pooled: { data: pooled, dims: [B, pL + pG] } };
}

/**
 * Model families by the manifest's `family`. SD3 joins here with a factory that loads CLIP-L,
 * CLIP-G (and T5) and builds its conditioning with assembleSD3Conditioning.
 */
export const FAMILIES: Record<string, (ctx: AdapterContext) => Promise<FamilyAdapter>> = {
  webdit: (ctx) => WebDiTAdapter.create(ctx),
};

/** Checked before any download, so an unsupported model costs the user nothing. */
export function assertSupportedFamily(family: string): void {
  if (!Object.hasOwn(FAMILIES, family)) {
    throw modelError(
      `Model family "${family}" is not supported by this version of WebDiT (supported: ${Object.keys(FAMILIES).join(', ')}).`,
      'Load a model folder of a supported family, or update the studio.',
    );
  }
}

export function createAdapter(ctx: AdapterContext): Promise<FamilyAdapter> {
  assertSupportedFamily(ctx.manifest.family);
  return FAMILIES[ctx.manifest.family](ctx);
}

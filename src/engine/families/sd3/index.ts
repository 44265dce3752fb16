/**
 * Stable Diffusion 3 / 3.5 in the optimum (diffusers) ONNX layout: CLIP-L (`text_encoder`),
 * CLIP-G (`text_encoder_2`), optional T5 (`text_encoder_3`), an MMDiT (`transformer`) and a
 * 16-channel VAE decoder. Conditioning follows diffusers' StableDiffusion3Pipeline (DESIGN.md §3).
 */
import { modelError } from '../../errors';
import { clipTokenizerJson } from './clipTokenizer';
import { checker, type Need, readIntConfig, readSchedulerConfig, readVaeConfig } from '../../core/configs';
import { presentComponent, sd3TransformerFeeds, type FamilyContext, type LoadedModel, type ModelFamily } from '../../core/family';
import type { ModelFolder } from '../../core/folder';
import { output, type FloatTensor, type GraphRunner } from '../../core/tensor';
import type { TextTokenizer } from '../../core/tokenizer';

/** CLIP's context length; T5's in diffusers' SD3 pipeline (max_sequence_length). */
export const CLIP_TOKENS = 77;
export const T5_TOKENS = 256;

export const SD3_LIMITS = {
  numInferenceSteps: { min: 1, max: 50 },
  guidanceScale: { min: 1, max: 20 },
  numImagesPerPrompt: { min: 1, max: 4 },
} as const;

const need: Need = checker('SD3', 'Use an SD3 export in diffusers layout (optimum), with every component folder complete.');

/** The second-to-last of a CLIP export's `hidden_states.N` outputs, never a fixed index. */
export function penultimateHiddenState(outputNames: readonly string[], component: string): string {
  const layers = outputNames
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  if (layers.length < 2) {
    throw modelError(`${component}/model.onnx has no hidden_states.N outputs (it has ${outputNames.join(', ')}).`, 'Export the CLIP text encoders with all hidden states (optimum does).');
  }
  return `hidden_states.${layers[layers.length - 2]}`;
}

/** Image sizes: squares from half to the largest the position embedding allows (quarter steps of the native size), and common aspect ratios at the native area. */
export function sizesFor(native: number, max: number, step: number): [number, number][] {
  const round = (x: number) => Math.max(step, Math.round(x / step) * step);
  const out: [number, number][] = [];
  const add = (w: number, h: number) => {
    if (w <= max && h <= max && !out.some(([a, b]) => a === w && b === h)) out.push([w, h]);
  };
  add(native, native);
  for (let k = 2; (k * native) / 4 <= max; k++) add(round((k * native) / 4), round((k * native) / 4));
  for (const [a, b] of [[3, 4], [4, 3], [9, 16], [16, 9], [2, 3], [3, 2]]) {
    const area = native * native;
    add(round(Math.sqrt((area * a) / b)), round(Math.sqrt((area * b) / a)));
  }
  return out;
}

/** The first of `names` the graph has as an output, or an error naming what it has. */
function oneOf(outputs: readonly string[], names: string[], component: string): string {
  const hit = names.find((n) => outputs.includes(n));
  if (!hit) throw modelError(`${component}/model.onnx has none of the outputs ${names.join(', ')} (it has ${outputs.join(', ')}).`, FIX_GRAPH);
  return hit;
}

const FIX_GRAPH = 'Use an SD3 export from optimum or TensorStack; docs/model-folder.md lists the graph names WebDiT binds.';

interface ClipEncoder {
  tokenizer: TextTokenizer;
  graph: GraphRunner;
  hidden: string;
}

async function encodeClip(enc: ClipEncoder, prompts: string[]): Promise<{ hidden: FloatTensor; pooled: FloatTensor }> {
  const ids = enc.tokenizer.encode(prompts, CLIP_TOKENS, { keepEnd: true });
  const out = await enc.graph.run({ input_ids: ids });
  return { hidden: output(out, enc.hidden, 'text encoder'), pooled: output(out, 'text_embeds', 'text encoder') };
}

/**
 * diffusers' SD3 conditioning: CLIP-L and CLIP-G penultimate states side by side on features,
 * zero-padded to the transformer's width, then T5's tokens after them (or zeros of CLIP's length
 * without T5); pooled = [CLIP-L text_embeds, CLIP-G text_embeds].
 */
export function assembleConditioning(l: { hidden: FloatTensor; pooled: FloatTensor }, g: { hidden: FloatTensor; pooled: FloatTensor }, t5: FloatTensor | null, width: number) {
  const [B, L, dL] = l.hidden.dims;
  const [B2, L2, dG] = g.hidden.dims;
  if (B !== B2 || L !== L2) throw modelError(`CLIP-L [${l.hidden.dims}] and CLIP-G [${g.hidden.dims}] disagree on batch or length.`, 'Use the text encoders of one SD3 export.');
  if (dL + dG > width) throw modelError(`CLIP widths ${dL}+${dG} exceed the transformer's joint_attention_dim ${width}.`, 'Check transformer/config.json against the text encoders.');
  if (t5 && (t5.dims[0] !== B || t5.dims[2] !== width)) throw modelError(`T5 output [${t5.dims}] does not fit [${B}, T, ${width}].`, 'Use the T5 encoder of the same SD3 export.');
  const tT5 = t5 ? t5.dims[1] : L;
  const T = L + tT5;
  const ctx = new Float32Array(B * T * width);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      const o = (b * T + i) * width;
      ctx.set(l.hidden.data.subarray((b * L + i) * dL, (b * L + i + 1) * dL), o);
      ctx.set(g.hidden.data.subarray((b * L + i) * dG, (b * L + i + 1) * dG), o + dL);
    }
    if (t5) ctx.set(t5.data.subarray(b * tT5 * width, (b + 1) * tT5 * width), (b * T + L) * width);
  }
  const pL = l.pooled.dims[1], pG = g.pooled.dims[1];
  const pooled = new Float32Array(B * (pL + pG));
  for (let b = 0; b < B; b++) {
    pooled.set(l.pooled.data.subarray(b * pL, (b + 1) * pL), b * (pL + pG));
    pooled.set(g.pooled.data.subarray(b * pG, (b + 1) * pG), b * (pL + pG) + pL);
  }
  return { encoder_hidden_states: { data: ctx, dims: [B, T, width] }, pooled_projections: { data: pooled, dims: [B, pL + pG] } };
}

export const sd3: ModelFamily = {
  name: 'sd3',
  // TensorStack's exports keep the MMDiT in unet/ (model_index.json still says "transformer")
  requiredComponents: ['transformer|unet', 'vae_decoder', 'text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2', 'scheduler'],
  optionalComponents: ['text_encoder_3', 'tokenizer_3', 'vae_encoder'],
  // T5-XXL is most of SD3's text side (9.5 GB at fp16): without it the conditioning has zeros in its place
  droppable: [{ components: ['text_encoder_3', 'tokenizer_3'], label: 'T5' }],
  // TensorStack ships onnxruntime-extensions tokenizer graphs beside the tokenizer files: never needed
  skipFiles: /^tokenizer(_\d)?\/.*\.onnx$/,

  detect(folder: ModelFolder) {
    return /^StableDiffusion3(Img2Img)?Pipeline$/.test(folder.index._class_name);
  },

  async load(ctx: FamilyContext): Promise<LoadedModel> {
    const { folder } = ctx;
    // 1. configs
    const scheduler = await readSchedulerConfig(ctx, need);
    const dit = presentComponent(folder, 'transformer|unet')!;
    const tc = await readIntConfig(ctx, need, dit, ['sample_size', 'patch_size', 'in_channels', 'joint_attention_dim', 'pooled_projection_dim']);
    const vae = await readVaeConfig(ctx, need, tc.in_channels);
    const f = vae.scaleFactor;
    const native = tc.sample_size * f;
    const posMax = typeof tc.pos_embed_max_size === 'number' ? tc.pos_embed_max_size : tc.sample_size;
    const maxSize = posMax * f;
    const step = tc.patch_size * f;
    const useT5 = folder.components.includes('text_encoder_3') && folder.components.includes('tokenizer_3');

    // 2. tokenizers and graphs
    const runners: GraphRunner[] = [];
    const open = async (component: string, inputs: string[], outputs: string[]) => {
      const r = await ctx.openGraph(component, { inputs, outputs });
      runners.push(r);
      return r;
    };
    try {
      const clip = async (n: '' | '_2'): Promise<ClipEncoder> => {
        // SD3 repos ship CLIP's slow tokenizer files; build the tokenizer.json transformers.js reads
        const dir = `tokenizer${n}`;
        const built = ctx.has(dir, 'tokenizer.json')
          ? undefined
          : clipTokenizerJson(JSON.parse(await ctx.readText(dir, 'vocab.json')), await ctx.readText(dir, 'merges.txt'), await ctx.readJson(dir, 'tokenizer_config.json'), `${dir}/`);
        const { tokenizer } = await ctx.tokenizer(dir, built);
        const graph = await open(`text_encoder${n}`, ['input_ids'], ['text_embeds']);
        return { tokenizer, graph, hidden: penultimateHiddenState(graph.outputNames, `text_encoder${n}`) };
      };
      const clipL = await clip('');
      const clipG = await clip('_2');
      const t5 = useT5 ? { tokenizer: (await ctx.tokenizer('tokenizer_3')).tokenizer, graph: await open('text_encoder_3', ['input_ids'], ['last_hidden_state']) } : null;
      // optimum names the velocity out_hidden_states, TensorStack out_sample: bind whichever is there
      const transformer = await open(dit, ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'], []);
      const velocityOutput = oneOf(transformer.outputNames, ['out_hidden_states', 'out_sample'], dit);
      const vaeDecoder = await open('vae_decoder', ['latent_sample'], ['sample']);
      const vaeEncoder = folder.components.includes('vae_encoder') ? await open('vae_encoder', ['sample'], []) : null;
      // optimum's encoder returns mean + logvar (latent_parameters), TensorStack's the mean (latent_sample)
      const vaeEncoderOutput = vaeEncoder ? oneOf(vaeEncoder.outputNames, ['latent_parameters', 'latent_sample'], 'vae_encoder') : 'latent_sample';
      const d = folder.manifest?.defaults ?? {};

      return {
        info: {
          defaults: { numInferenceSteps: d.num_inference_steps ?? 28, guidanceScale: d.guidance_scale ?? 7, negativePrompt: d.negative_prompt ?? '', width: native, height: native, strength: 0.6 },
          limits: { ...SD3_LIMITS, sizes: sizesFor(native, maxSize, step) },
          scheduler,
          imageToImage: vaeEncoder !== null,
        },
        vae,
        latentShape(width, height) {
          if (width % step || height % step || width > maxSize || height > maxSize) {
            throw modelError(`This model makes images up to ${maxSize}x${maxSize} in steps of ${step} px, not ${width}x${height}.`, `Pick one of the listed sizes.`);
          }
          return [tc.in_channels, height / f, width / f];
        },
        async encodePrompts(prompts) {
          const l = await encodeClip(clipL, prompts);
          const g = await encodeClip(clipG, prompts);
          let t: FloatTensor | null = null;
          if (t5) t = output(await t5.graph.run({ input_ids: t5.tokenizer.encode(prompts, T5_TOKENS, { keepEnd: true }) }), 'last_hidden_state', 'text_encoder_3');
          return assembleConditioning(l, g, t, tc.joint_attention_dim);
        },
        transformerFeeds: sd3TransformerFeeds,
        transformer,
        velocityOutput,
        vaeDecoder,
        vaeEncoder,
        vaeEncoderOutput,
        async dispose() {
          await Promise.all(runners.map((r) => r.dispose()));
        },
      };
    } catch (e) {
      await Promise.all(runners.map((r) => r.dispose()));
      throw e;
    }
  },
};

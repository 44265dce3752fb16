/**
 * Z-Image-Turbo in the browser-export layout of webnn/Z-Image-Turbo (the graphs microsoft's
 * webnn-developer-preview demo runs): `onnx/text_encoder_model_q4f16.onnx` (Qwen3),
 * `onnx/transformer_model_q4f16.onnx` (single-stream DiT), `onnx/vae_decoder_model_f16.onnx` (FLUX
 * VAE), `onnx/vae_pre_process_model_f16.onnx`, and `tokenizer/`. Two graph contracts exist and both
 * are bound by name, rank and dtype: the older one (fp32 I/O, latents [1,16,1,h,w], transformer
 * output `unified_results` [16,1,h,w], text output `encoder_hidden_state`) and the newer one (fp16
 * I/O, latents [1,16,h,w], output `sample`, text output `encoder_hidden_states`, sharded weights).
 *
 * Conventions of diffusers' ZImagePipeline: the prompt goes through the chat template (user message,
 * generation prompt, enable_thinking true: no think block), at most 512 tokens, no padding; the
 * conditioning is the text encoder's second-to-last hidden state; sigmas end at sigma_min 0 with
 * shift 3.0 (so 9 steps are 8 transformer passes); the transformer gets t = 1 - sigma as
 * (1000 - timestep) / 1000 and answers the NEGATIVE velocity; no CFG (Turbo, as the demo).
 */
import { modelError } from '../../errors';
import { checker, isNum, isPosInt, readSchedulerConfig, type Need } from '../../core/configs';
import type { FamilyContext, GraphContract, LoadedModel, ModelFamily } from '../../core/family';
import type { ModelFolder } from '../../core/folder';
import { output, type FloatTensor, type GraphRunner, type HostTensor } from '../../core/tensor';
import type { TextTokenizer } from '../../core/tokenizer';
import { sizesFor } from '../sd3';

/** The folder holding the graphs, and the graph files the studio runs (the others are never downloaded). */
export const ONNX_DIR = 'onnx';
export const GRAPHS = {
  textEncoder: 'text_encoder_model_q4f16.onnx',
  transformer: 'transformer_model_q4f16.onnx',
  vaeDecoder: 'vae_decoder_model_f16.onnx',
  vaePreProcess: 'vae_pre_process_model_f16.onnx',
} as const;
/** diffusers' ZImagePipeline max_sequence_length (the webnn demo's maxSequenceLength). */
export const MAX_SEQUENCE_LENGTH = 512;
/** Without scheduler/scheduler_config.json: the demo's scheduler.js constants (Z-Image-Turbo's config has the same). */
const DEFAULT_SCHEDULER = { shift: 3.0, numTrainTimesteps: 1000 };
/** Without vae/config.json: diffusers' ZImagePipeline default size, and the FLUX VAE's factor and channels. */
const DEFAULT_NATIVE = 1024;
const LATENT_CHANNELS = 16;
const PATCH = 2;

export const ZIMAGE_LIMITS = {
  numInferenceSteps: { min: 1, max: 50 },
  // Turbo runs without classifier-free guidance (diffusers' example: guidance_scale 0; the demo has none)
  guidanceScale: { min: 1, max: 1 },
  numImagesPerPrompt: { min: 1, max: 4 },
} as const;

const FIX = 'Use a Z-Image-Turbo export in the webnn layout (onnx/*_q4f16.onnx, onnx/*_f16.onnx, tokenizer/); docs/model-folder.md lists the graph names WebDiT binds.';
const need: Need = checker('Z-Image', FIX);

/**
 * The chat text diffusers' ZImagePipeline encodes: the tokenizer's chat template with one user
 * message, the generation prompt and enable_thinking true; without a template, the same text written
 * out (ChatML, what the webnn demo's tokenizer gets from transformers.js' default template).
 */
export function chatText(tokenizer: TextTokenizer, prompt: string): string {
  const messages = [{ role: 'user', content: prompt }];
  return tokenizer.applyChatTemplate(messages, { enable_thinking: true }) ?? `<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n`;
}

/**
 * The text encoder output that holds the second-to-last hidden state: by name among
 * `hidden_states.N` outputs when the graph exports all of them (never a fixed index), else the one
 * tensor the graph answers (the exports compute hidden_states[-2] inside), else by its known names.
 */
export function conditioningOutput(outputs: readonly string[], graph: string): string {
  const layers = outputs
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  if (layers.length >= 2) return `hidden_states.${layers[layers.length - 2]}`;
  if (outputs.length === 1) return outputs[0];
  const named = ['encoder_hidden_states', 'encoder_hidden_state'].find((n) => outputs.includes(n));
  if (named) return named;
  throw modelError(`${graph} answers ${outputs.join(', ')}: none is the second-to-last hidden state.`, 'Export the text encoder with one output (hidden_states[-2]) or with all hidden_states.N outputs.');
}

/** The transformer's t for a timestep (sigma * 1000): (1000 - timestep) / 1000 in float32, as diffusers computes it. */
export function transformerT(timestep: number, numTrainTimesteps: number): number {
  return Math.fround(Math.fround(numTrainTimesteps - timestep) / numTrainTimesteps);
}

const path = (file: string) => `${ONNX_DIR}/${file}`;

/** The rank a graph declares for an input, or undefined where the session does not say. */
const rankOf = (g: GraphRunner, input: string) => g.inputs.get(input)?.shape?.length;

/** The first of `names` the graph answers, or an error naming what it has. */
function oneOf(g: GraphRunner, names: string[], file: string): string {
  const hit = names.find((n) => g.outputNames.includes(n));
  if (!hit) throw modelError(`${path(file)} has none of the outputs ${names.join(', ')} (it has ${g.outputNames.join(', ')}).`, FIX);
  return hit;
}

/**
 * The transformer as the pipeline drives it: [B,16,h,w] latents in, the velocity out. Each image
 * runs on its own (the exports take one image; the older one answers [16,1,h,w] without a batch
 * axis), in the graph's rank (a frame axis of 1 for 5-D latents), and the output is negated.
 */
function velocityRunner(dit: GraphRunner, outName: string, fiveD: boolean): GraphRunner {
  return {
    inputs: dit.inputs,
    outputNames: ['velocity'],
    dispose: async () => undefined, // the model's dispose releases the sessions
    async run(feeds) {
      const x = feeds.hidden_states as FloatTensor;
      const t = feeds.timestep as FloatTensor;
      const cond = feeds.encoder_hidden_states as FloatTensor;
      const [B, C, h, w] = x.dims;
      const per = C * h * w;
      const [, L, D] = cond.dims;
      const velocity = new Float32Array(B * per);
      for (let b = 0; b < B; b++) {
        const out = await dit.run({
          hidden_states: { data: x.data.subarray(b * per, (b + 1) * per), dims: fiveD ? [1, C, 1, h, w] : [1, C, h, w] },
          timestep: { data: t.data.subarray(b, b + 1), dims: [1] },
          encoder_hidden_states: { data: cond.data.subarray(b * L * D, (b + 1) * L * D), dims: [1, L, D] },
        });
        const y = output(out, outName, path(GRAPHS.transformer));
        if (y.data.length !== per) throw modelError(`${path(GRAPHS.transformer)} answered ${outName} [${y.dims}] for latents [1,${C},${h},${w}].`, FIX);
        // diffusers' ZImagePipeline: noise_pred = -model_output
        for (let k = 0; k < per; k++) velocity[b * per + k] = -y.data[k];
      }
      return { velocity: { data: velocity, dims: [B, C, h, w] } };
    },
  };
}

/** The VAE decoder, behind the repo's own pre-process graph (scale, shift and squeeze) when it has no VAE config. */
function decoderRunner(vae: GraphRunner, pre: GraphRunner | null, preFiveD: boolean): GraphRunner {
  if (!pre) return vae;
  return {
    inputs: vae.inputs,
    outputNames: vae.outputNames,
    dispose: async () => undefined, // the model's dispose releases the sessions
    async run(feeds) {
      const z = feeds.latent_sample as FloatTensor;
      const [B, C, h, w] = z.dims;
      const scaled = output(await pre.run({ latents: { data: z.data, dims: preFiveD ? [B, C, 1, h, w] : [B, C, h, w] } }), 'scaled_latents', path(GRAPHS.vaePreProcess));
      return vae.run({ latent_sample: scaled });
    },
  };
}

/** vae/config.json (diffusers' AutoencoderKL config, as Tongyi-MAI/Z-Image-Turbo ships it), checked. */
async function readVae(ctx: FamilyContext) {
  const vc = await ctx.readJson<Record<string, unknown>>('vae', 'config.json');
  need(vc.latent_channels === LATENT_CHANNELS, `vae/config.json latent_channels must be ${LATENT_CHANNELS} (got ${JSON.stringify(vc.latent_channels)})`);
  need(Array.isArray(vc.block_out_channels) && vc.block_out_channels.length > 0, 'vae/config.json needs "block_out_channels"');
  need(isNum(vc.scaling_factor) && vc.scaling_factor !== 0, 'vae/config.json needs a non-zero "scaling_factor"');
  need(vc.shift_factor === undefined || vc.shift_factor === null || isNum(vc.shift_factor), 'vae/config.json "shift_factor" must be a number');
  need(vc.sample_size === undefined || isPosInt(vc.sample_size), 'vae/config.json "sample_size" must be a positive integer');
  return {
    scaleFactor: 2 ** ((vc.block_out_channels as unknown[]).length - 1),
    scalingFactor: vc.scaling_factor as number,
    shiftFactor: isNum(vc.shift_factor) ? vc.shift_factor : 0,
    native: isPosInt(vc.sample_size) ? vc.sample_size : DEFAULT_NATIVE,
  };
}

export const zimage: ModelFamily = {
  name: 'zimage',
  requiredComponents: [ONNX_DIR, 'tokenizer'],
  optionalComponents: ['vae', 'scheduler'],
  // only the four graphs the studio runs and their external data: not the scheduler step (the
  // Euler step runs here), the safety checker (580 MB) or other variants of the graphs
  skipFiles: new RegExp(`^${ONNX_DIR}/(?!(?:${Object.values(GRAPHS).map((g) => g.replace(/\./g, '\\.')).join('|')})(?:_data(?:_\\d+)?|\\.data)?$)`),

  detect(folder: ModelFolder) {
    return folder.index._class_name === 'ZImagePipeline' || [GRAPHS.transformer, GRAPHS.textEncoder].some((g) => folder.files.has(path(g)));
  },

  check(folder: ModelFolder) {
    const missing = [GRAPHS.textEncoder, GRAPHS.transformer, GRAPHS.vaeDecoder].map(path).filter((p) => !folder.files.has(p));
    if (!folder.files.has('vae/config.json') && !folder.files.has(path(GRAPHS.vaePreProcess))) missing.push(`${path(GRAPHS.vaePreProcess)} (or vae/config.json)`);
    if (!folder.files.has('tokenizer/tokenizer.json')) missing.push('tokenizer/tokenizer.json');
    if (missing.length) throw modelError(`The Z-Image model at ${folder.base} lacks ${missing.join(', ')}.`, FIX);
  },

  async load(ctx: FamilyContext): Promise<LoadedModel> {
    // 1. configs: the scheduler's and the VAE's when the repo has them, else the demo's constants and the pre-process graph
    let scheduler = DEFAULT_SCHEDULER;
    if (ctx.has('scheduler', 'scheduler_config.json')) {
      scheduler = await readSchedulerConfig(ctx, need);
      const sch = await ctx.readJson<{ use_dynamic_shifting?: unknown }>('scheduler', 'scheduler_config.json');
      need(sch.use_dynamic_shifting !== true, 'scheduler_config.json has use_dynamic_shifting true, which needs a shift per image size: Z-Image-Turbo uses a fixed shift');
    }
    const vaeConfig = ctx.has('vae', 'config.json') ? await readVae(ctx) : null;
    const f = vaeConfig?.scaleFactor ?? 8;
    const native = vaeConfig?.native ?? DEFAULT_NATIVE;
    const step = PATCH * f;

    // 2. tokenizer and graphs, bound by name; ranks and dtypes come from the sessions
    const { tokenizer } = await ctx.tokenizer('tokenizer');
    const runners: GraphRunner[] = [];
    const open = async (file: string, contract: GraphContract) => {
      const r = await ctx.openGraph(ONNX_DIR, contract, { file });
      runners.push(r);
      return r;
    };
    try {
      const te = await open(GRAPHS.textEncoder, { inputs: ['input_ids'], outputs: [] });
      const hidden = conditioningOutput(te.outputNames, path(GRAPHS.textEncoder));
      const dit = await open(GRAPHS.transformer, { inputs: ['hidden_states', 'timestep', 'encoder_hidden_states'], outputs: [] });
      const ditOut = oneOf(dit, ['sample', 'unified_results'], GRAPHS.transformer);
      const fiveD = (rankOf(dit, 'hidden_states') ?? (ditOut === 'unified_results' ? 5 : 4)) === 5;
      const vae = await open(GRAPHS.vaeDecoder, { inputs: ['latent_sample'], outputs: ['sample'] });
      const pre = vaeConfig ? null : await open(GRAPHS.vaePreProcess, { inputs: ['latents'], outputs: ['scaled_latents'] });
      const preFiveD = pre ? (rankOf(pre, 'latents') ?? (fiveD ? 5 : 4)) === 5 : false;
      const d = ctx.folder.manifest?.defaults ?? {};

      const encodeOne = async (prompt: string): Promise<FloatTensor> => {
        const ids = tokenizer.encodeUnpadded(chatText(tokenizer, prompt), MAX_SEQUENCE_LENGTH);
        const feeds: Record<string, HostTensor> = { input_ids: ids };
        // no padding, so every token is attended to (diffusers pads to 512 and then drops the pads)
        if (te.inputs.has('attention_mask')) feeds.attention_mask = { data: new BigInt64Array(ids.data.length).fill(1n), dims: ids.dims };
        const h = output(await te.run(feeds), hidden, path(GRAPHS.textEncoder));
        if (h.dims.length !== 3 || h.dims[0] !== 1 || h.dims[1] !== ids.dims[1]) {
          throw modelError(`${path(GRAPHS.textEncoder)} answered ${hidden} [${h.dims}] for ${ids.dims[1]} tokens; a hidden state is [1, tokens, features].`, FIX);
        }
        return h;
      };

      return {
        info: {
          defaults: { numInferenceSteps: d.num_inference_steps ?? 9, guidanceScale: 1, negativePrompt: '', width: native, height: native, strength: 0.6 },
          limits: { ...ZIMAGE_LIMITS, sizes: sizesFor(native, native, step) },
          scheduler,
          imageToImage: false,
        },
        // with the pre-process graph, the decoder wrapper scales and shifts: the pipeline's step is the identity
        vae: vaeConfig ? { scalingFactor: vaeConfig.scalingFactor, shiftFactor: vaeConfig.shiftFactor } : { scalingFactor: 1, shiftFactor: 0 },
        latentShape(width, height) {
          if (width % step || height % step || width > native || height > native) {
            throw modelError(`This model makes images up to ${native}x${native} in steps of ${step} px, not ${width}x${height}.`, 'Pick one of the listed sizes.');
          }
          return [LATENT_CHANNELS, height / f, width / f];
        },
        async encodePrompts(prompts) {
          const states = [];
          for (const p of prompts) states.push(await encodeOne(p));
          const [, L, D] = states[0].dims;
          if (states.some((s) => s.dims[1] !== L)) throw modelError('Z-Image-Turbo encodes one prompt at a time here (no classifier-free guidance).', 'Set the guidance scale to 1.');
          const data = new Float32Array(states.length * L * D);
          states.forEach((s, b) => data.set(s.data, b * L * D));
          return { encoder_hidden_states: { data, dims: [states.length, L, D] } };
        },
        // generic over the tensor type: only dims are read here (the velocity runner reads the data)
        transformerFeeds<T extends { readonly dims: readonly number[] }>(latents: T, timestep: number, cond: Record<string, T>): Record<string, T | HostTensor> {
          const B = latents.dims[0];
          return { hidden_states: latents, timestep: { data: new Float32Array(B).fill(transformerT(timestep, scheduler.numTrainTimesteps)), dims: [B] }, encoder_hidden_states: cond.encoder_hidden_states };
        },
        transformer: velocityRunner(dit, ditOut, fiveD),
        velocityOutput: 'velocity',
        vaeDecoder: decoderRunner(vae, pre, preFiveD),
        vaeEncoder: null,
        vaeEncoderOutput: 'latent_sample',
        sigmaMin: 0,
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

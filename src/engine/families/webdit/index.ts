/**
 * WebDiT's own family (docs/model-folder.md): one CLIP-style text encoder gives both the token
 * context and the pooled vector; a DiT with the SD3 graph contract; a VAE with a measured
 * scaling/shift. Its DiT has fixed position embeddings, so it makes one size: the training size.
 */
import { modelError } from '../../errors';
import { checker, isNum, type Need, readIntConfig, readSchedulerConfig, readVaeConfig } from '../../core/configs';
import { sd3TransformerFeeds, type FamilyContext, type LoadedModel, type ModelFamily } from '../../core/family';
import type { ModelFolder } from '../../core/folder';
import { output } from '../../core/tensor';

const need: Need = checker('webdit', 'Re-export the model with training/export.py (docs/model-folder.md lists every config field).');

/** Limits of this family; the manifest's defaults must fall inside them. */
export const WEBDIT_LIMITS = {
  numInferenceSteps: { min: 1, max: 50 },
  guidanceScale: { min: 1, max: 12 },
  numImagesPerPrompt: { min: 1, max: 8 },
} as const;

export const webdit: ModelFamily = {
  name: 'webdit',
  requiredComponents: ['transformer', 'vae_decoder', 'text_encoder', 'tokenizer', 'scheduler'],
  optionalComponents: ['vae_encoder'],

  detect(folder: ModelFolder) {
    return folder.index._class_name === 'WebDiTPipeline' || folder.manifest?.family === 'webdit';
  },

  async load(ctx: FamilyContext): Promise<LoadedModel> {
    const { folder } = ctx;
    // 1. configs: everything the pipeline needs comes from here, never from literals
    const scheduler = await readSchedulerConfig(ctx, need);
    const tc = await readIntConfig(ctx, need, 'transformer', ['sample_size', 'patch_size', 'in_channels', 'joint_attention_dim', 'pooled_projection_dim', 'max_text_length']);
    const vae = await readVaeConfig(ctx, need, tc.in_channels);
    const size = tc.sample_size * vae.scaleFactor;
    const { tokenizer } = await ctx.tokenizer('tokenizer');

    // 2. graphs (the text encoder is tiny: WASM, so WebGPU compiles shaders for the DiT only)
    const d = folder.manifest?.defaults ?? {};
    const runners: { dispose(): Promise<void> }[] = [];
    const open = async (component: string, inputs: string[], outputs: string[], backend?: 'wasm') => {
      const r = await ctx.openGraph(component, { inputs, outputs }, backend ? { backend } : {});
      runners.push(r);
      return r;
    };
    try {
      const transformer = await open('transformer', ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'], ['out_hidden_states']);
      const vaeDecoder = await open('vae_decoder', ['latent_sample'], ['sample']);
      const vaeEncoder = folder.components.includes('vae_encoder') ? await open('vae_encoder', ['sample'], ['latent_sample']) : null;
      const textEncoder = await open('text_encoder', ['input_ids'], ['last_hidden_state', 'text_embeds'], 'wasm');
      const L = tc.max_text_length;

      const defaults = {
        numInferenceSteps: d.num_inference_steps ?? 20,
        guidanceScale: d.guidance_scale ?? 4,
        negativePrompt: d.negative_prompt ?? '',
        width: size,
        height: size,
        strength: 0.6,
      };
      const { numInferenceSteps: st, guidanceScale: gs } = WEBDIT_LIMITS;
      need(Number.isInteger(defaults.numInferenceSteps) && defaults.numInferenceSteps >= st.min && defaults.numInferenceSteps <= st.max, `manifest default steps must be ${st.min}-${st.max}`);
      need(isNum(defaults.guidanceScale) && defaults.guidanceScale >= gs.min && defaults.guidanceScale <= gs.max, `manifest default guidance_scale must be ${gs.min}-${gs.max}`);

      return {
        info: {
          defaults,
          limits: { ...WEBDIT_LIMITS, sizes: [[size, size]] },
          scheduler,
          imageToImage: vaeEncoder !== null,
        },
        vae,
        latentShape(width, height) {
          if (width !== size || height !== size) {
            throw modelError(`This model makes ${size}x${size} images, not ${width}x${height}.`, `Ask for ${size}x${size}.`);
          }
          return [tc.in_channels, tc.sample_size, tc.sample_size];
        },
        async encodePrompts(prompts) {
          const ids = tokenizer.encode(prompts, L);
          const out = await textEncoder.run({ input_ids: ids });
          const h = output(out, 'last_hidden_state', 'text_encoder');
          const p = output(out, 'text_embeds', 'text_encoder');
          if (h.dims[1] !== L || h.dims[2] !== tc.joint_attention_dim || p.dims[1] !== tc.pooled_projection_dim) {
            throw modelError(
              `The text encoder gives [${h.dims}] and [${p.dims}] but the transformer expects [B, ${L}, ${tc.joint_attention_dim}] and [B, ${tc.pooled_projection_dim}].`,
              'The text encoder and the transformer come from different exports: re-export the model folder as a whole.',
            );
          }
          return { encoder_hidden_states: h, pooled_projections: p };
        },
        transformerFeeds: sd3TransformerFeeds,
        transformer,
        velocityOutput: 'out_hidden_states',
        vaeDecoder,
        vaeEncoder,
        vaeEncoderOutput: 'latent_sample',
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

/**
 * What a model family is to the core. A family (src/engine/families/<name>/) recognises its model
 * folders, says which components it needs, and turns its components into a LoadedModel: text ->
 * conditioning, latent shape, scheduler and VAE facts, limits and defaults. The core (folder,
 * files, sessions, pipeline, engine) never names a family.
 */
import type { ModelInfo } from '../protocol';
import type { FloatTensor, GraphRunner, HostTensor } from './tensor';
import type { FileStore } from './files';
import type { ModelFolder } from './folder';
import type { TextTokenizer } from './tokenizer';

/** Named transformer inputs for a batch of prompts (dim 0 = batch), e.g. encoder_hidden_states. */
export type Conditioning = Record<string, FloatTensor>;

export interface GraphContract {
  inputs: readonly string[];
  outputs: readonly string[];
}

/** What the core offers a family while it loads. */
export interface FamilyContext {
  folder: ModelFolder;
  store: FileStore;
  signal?: AbortSignal;
  /**
   * Open `<component>/model.onnx` (or `<component>/<file>`) with the external data files the graph
   * names, and check its names.
   */
  openGraph(component: string, contract: GraphContract, options?: { backend?: 'wasm'; file?: string }): Promise<GraphRunner>;
  /** A component's JSON file, verified and parsed. */
  readJson<T = Record<string, unknown>>(component: string, file?: string): Promise<T>;
  /** A tokenizer from a component folder's tokenizer.json (or the JSON given) + tokenizer_config.json. */
  tokenizer(component: string, tokenizerJson?: unknown): Promise<{ tokenizer: TextTokenizer; config: Record<string, unknown> }>;
  /** A component's file as text, verified. */
  readText(component: string, file: string): Promise<string>;
  /** Whether the folder has this file. */
  has(component: string, file: string): boolean;
  progress(message: string): void;
}

/** A loaded model as the pipeline drives it. */
export interface LoadedModel {
  info: Omit<ModelInfo, 'id' | 'name' | 'family'>;
  vae: { scalingFactor: number; shiftFactor: number };
  /** [C, h, w] of one latent image of width x height pixels. */
  latentShape(width: number, height: number): [number, number, number];
  /** Conditioning for a batch of prompts, in order. */
  encodePrompts(prompts: string[]): Promise<Conditioning>;
  /**
   * The transformer's feeds for one step; its output is the velocity, [B, C, h, w]. Generic so the
   * same routing serves host tensors and tensors kept on the GPU (only `dims` may be read).
   */
  transformerFeeds<T extends { readonly dims: readonly number[] }>(latents: T, timestep: number, cond: Record<string, T>): Record<string, T | HostTensor>;
  transformer: GraphRunner;
  /** Output name of the transformer's velocity. */
  velocityOutput: string;
  vaeDecoder: GraphRunner;
  /** Present when the folder has a vae_encoder (image-to-image). */
  vaeEncoder: GraphRunner | null;
  /** Its output: the posterior mean [B, C, h, w], or mean and logvar stacked on channels [B, 2C, h, w]. */
  vaeEncoderOutput: string;
  /**
   * Where the sigma linspace ends before the shift (diffusers' `scheduler.sigma_min`); by default
   * the scheduler's own shift(1 / num_train_timesteps). Z-Image sets 0: its last step is a no-op.
   */
  sigmaMin?: number;
  dispose(): Promise<void>;
}

export interface ModelFamily {
  readonly name: string;
  /** Whether a folder is this family's, from model_index.json (and the manifest's `family`). */
  detect(folder: ModelFolder): boolean;
  /** Components that must be in the folder, checked before any download; 'a|b' accepts either folder. */
  requiredComponents: readonly string[];
  /** Components used when present. */
  optionalComponents: readonly string[];
  /**
   * Optional components that preflight leaves out by default when the model would not fit with
   * them (and the UI offers to turn on), e.g. SD3's T5: ['text_encoder_3', 'tokenizer_3'].
   */
  droppable?: readonly { components: readonly string[]; label: string }[];
  /** Files of the used components that are never needed (not downloaded), by path. */
  skipFiles?: RegExp;
  /** Checks before any download beyond the components (e.g. named graph files); throws a ModelError naming what is missing. */
  check?(folder: ModelFolder): void;
  load(ctx: FamilyContext): Promise<LoadedModel>;
}

/** The folder present for a requirement 'a|b' (the first alternative that has files), or null. */
export function presentComponent(folder: ModelFolder, requirement: string): string | null {
  return requirement.split('|').find((c) => folder.components.includes(c) && [...folder.files.keys()].some((p) => p.startsWith(c + '/'))) ?? null;
}

/** The SD3-style transformer contract (DESIGN.md §2), shared by the families that follow it. */
export function sd3TransformerFeeds<T extends { readonly dims: readonly number[] }>(latents: T, timestep: number, cond: Record<string, T>): Record<string, T | HostTensor> {
  const B = latents.dims[0];
  return { ...cond, hidden_states: latents, timestep: { data: new Float32Array(B).fill(timestep), dims: [B] } };
}

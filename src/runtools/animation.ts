/**
 * The animation panel's state: what to animate (the second seed or prompt, frames, fps), the job
 * (sent to the engine as one generate with `animation`), and its frames once made. The first seed,
 * the prompt and the other settings are the studio form's.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import { toErrorInfo } from '../engine/errors';
import type { EngineErrorInfo, GeneratedImage, GenerateRequestParams, GenerateTimings, ImageEngine, ResolvedGenerateParams } from '../engine/protocol';
import { ANIMATION_FRAMES, GENERATE_FIELDS, type AnimationSpec } from '../engine/schema';
import { parseSeedText } from '../store/params';
import { selectGuidanceScale, selectNegativePrompt, selectNumInferenceSteps, selectSeedError, selectSize } from '../store/selectors';
import type { StudioData } from '../store/state';

export type AnimationKind = AnimationSpec['kind'];

export const FPS = { min: 1, max: 30, default: 6 } as const;

export interface AnimationResult {
  frames: GeneratedImage[];
  /** Frame 0's settings (the animation spec included). */
  params: ResolvedGenerateParams;
  timings: GenerateTimings;
}

export interface AnimationData {
  kind: AnimationKind;
  /** The seed field of seed B, as typed. */
  toSeedText: string;
  /** Prompt B. */
  toPrompt: string;
  frames: number;
  fps: number;
  status: 'idle' | 'running' | 'cancelling';
  jobId: string | null;
  step: number;
  total: number;
  /** Why the last start was refused or failed. */
  error: string | null;
  result: AnimationResult | null;
}

export interface AnimationActions {
  attach(engine: ImageEngine | null): void;
  setKind(kind: AnimationKind): void;
  setToSeedText(text: string): void;
  setToPrompt(text: string): void;
  setFrames(n: number): void;
  setFps(n: number): void;
  /** Sends the studio form plus this animation as one generate job. */
  start(studio: StudioData): void;
  cancel(): void;
}

export type AnimationState = AnimationData & AnimationActions;

const clamp = (x: number, min: number, max: number) => Math.min(max, Math.max(min, Math.round(x)));

function message(e: unknown): string {
  const info = (e as { info?: EngineErrorInfo } | null)?.info ?? toErrorInfo(e);
  return `${info.message} ${info.action}`.trim();
}

/** The request: the studio's settings (as Generate would send them) plus the animation; or why not. */
export function animationRequest(studio: StudioData, a: AnimationData): { params: GenerateRequestParams } | { error: string } {
  const seedError = selectSeedError(studio);
  if (seedError) return { error: `Seed A: ${seedError}` };
  let animation: AnimationSpec;
  if (a.kind === 'seed') {
    const parsed = parseSeedText(a.toSeedText);
    if ('error' in parsed) return { error: `Seed B: ${parsed.error}` };
    if (parsed.seed === studio.seed) return { error: `Seed B is seed A (${studio.seed}): every frame would be the same picture. Pick another seed B.` };
    animation = { kind: 'seed', to: parsed.seed, frames: a.frames };
  } else {
    const to = a.toPrompt.slice(0, GENERATE_FIELDS.prompt.maxLength);
    if (to === studio.prompt) return { error: 'Prompt B is the prompt: every frame would be the same picture. Type a different prompt B.' };
    animation = { kind: 'prompt', to, frames: a.frames };
  }
  const steps = selectNumInferenceSteps(studio);
  const guidance = selectGuidanceScale(studio);
  const size = selectSize(studio);
  return {
    params: {
      prompt: studio.prompt,
      negativePrompt: selectNegativePrompt(studio),
      seed: studio.seed,
      numImagesPerPrompt: 1,
      previewEvery: 0,
      ...(steps !== null && { numInferenceSteps: steps }),
      ...(guidance !== null && { guidanceScale: guidance }),
      ...(size !== null && { width: size[0], height: size[1] }),
      animation,
    },
  };
}

export function createAnimationStore(): StoreApi<AnimationState> {
  let engine: ImageEngine | null = null;
  return createStore<AnimationState>()((set, get) => ({
    kind: 'seed',
    toSeedText: '',
    toPrompt: '',
    frames: 4,
    fps: FPS.default,
    status: 'idle',
    jobId: null,
    step: 0,
    total: 0,
    error: null,
    result: null,
    attach: (e) => {
      engine = e;
    },
    setKind: (kind) => set({ kind, error: null }),
    setToSeedText: (toSeedText) => set({ toSeedText, error: null }),
    setToPrompt: (toPrompt) => set({ toPrompt, error: null }),
    setFrames: (n) => Number.isFinite(n) && set({ frames: clamp(n, ANIMATION_FRAMES.min, ANIMATION_FRAMES.max) }),
    setFps: (n) => Number.isFinite(n) && set({ fps: clamp(n, FPS.min, FPS.max) }),
    start: (studio) => {
      if (get().status !== 'idle') return;
      if (!engine) return set({ error: 'The image engine has not started.' });
      if (!studio.model.info) return set({ error: 'Wait for the model to load first.' });
      const req = animationRequest(studio, get());
      if ('error' in req) return set({ error: req.error });
      const frames: GeneratedImage[] = [];
      let first: ResolvedGenerateParams | null = null;
      let timings: GenerateTimings | null = null;
      const job = engine.generate(req.params, (event) => {
        if (get().jobId !== job.id) return;
        if (event.type === 'progress' && event.stage === 'denoise') set({ step: event.step, total: event.total });
        if (event.type === 'image') {
          frames[event.index] = event.image;
          if (event.index === 0) first = event.params;
          timings = event.timings;
        }
      });
      set({ status: 'running', jobId: job.id, step: 0, total: req.params.numInferenceSteps ?? 0, error: null });
      job.result.then(
        (r) => {
          if (get().jobId !== job.id) return;
          set({ status: 'idle', jobId: null, result: first ? { frames, params: first, timings: timings ?? r.timings } : null });
        },
        (e: unknown) => {
          if (get().jobId !== job.id) return;
          const name = (e as { info?: EngineErrorInfo } | null)?.info?.name;
          set({ status: 'idle', jobId: null, error: name === 'CancelledError' ? 'Cancelled.' : message(e) });
        },
      );
    },
    cancel: () => {
      const { jobId, status } = get();
      if (!engine || jobId === null || status !== 'running') return;
      set({ status: 'cancelling' });
      engine.cancel(jobId).catch(() => set({ status: 'running' }));
    },
  }));
}

export const animationStore = createAnimationStore();

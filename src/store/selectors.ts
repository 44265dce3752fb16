import { formatSeconds } from './format';
import type { StudioData } from './state';

export type AppState = 'loading' | 'ready' | 'running' | 'error';

/** The root's data-state, which e2e tests wait on. A run outranks everything; a banner outranks ready. */
export function selectAppState(s: StudioData): AppState {
  if (s.generation.status !== 'idle') return 'running';
  if (s.model.status === 'loading') return 'loading';
  if (s.model.status === 'error' || s.error !== null) return 'error';
  // Idle means the load has not been sent yet (or could not be: then the banner above says why).
  return s.model.status === 'idle' ? 'loading' : 'ready';
}

/** Bytes over all files with a known size, as 0..1; null before any size is known. */
export function selectLoadFraction(s: StudioData): number | null {
  let loaded = 0;
  let total = 0;
  for (const f of Object.values(s.model.files)) {
    if (f.total > 0) {
      loaded += Math.min(f.loaded, f.total);
      total += f.total;
    }
  }
  return total > 0 ? loaded / total : null;
}

export const selectCanGenerate = (s: StudioData) => s.model.status === 'ready' && s.generation.status === 'idle';

/** The live region's sentence. */
export function selectStatusText(s: StudioData): string {
  const { generation, model } = s;
  if (generation.status === 'cancelling') return 'Cancelling…';
  if (generation.status === 'running') {
    // per-step counts live in the progress bar: announcing each one would flood screen readers
    if (generation.step === 0 && generation.message) return generation.message;
    return generation.total > 0 ? `Generating ${generation.total} steps…` : 'Generating…';
  }
  if (model.status === 'idle') return 'Starting…';
  if (model.status === 'loading') {
    const fraction = selectLoadFraction(s);
    // Once the bytes are in, the engine's own message ("Compiling shaders…") says more than 100%.
    if (fraction !== null && (fraction < 1 || !model.message)) return `Loading model… ${Math.floor(fraction * 100)}%`;
    return model.message ? `Loading model… ${model.message}` : 'Loading model…';
  }
  if (model.status === 'error') return 'The model could not be loaded';
  return s.notice ?? 'Ready';
}

/** "~1.2 s left", or null while unknown. */
export function selectTimeLeft(s: StudioData): string | null {
  const { etaMs, status } = s.generation;
  return status !== 'idle' && etaMs !== null ? `~${formatSeconds(etaMs)} left` : null;
}

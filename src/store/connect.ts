import { applyEvent } from './reducer';
import type { StudioEngine, StudioStore } from './store';

/**
 * Wires an engine to the store, once, outside React: requests go out through the store's
 * actions, events come back through the pure reducer. Returns the disconnect function.
 */
export function connectEngine(store: StudioStore, engine: StudioEngine): () => void {
  store.getState().attachEngine(engine);
  const unsubscribe = engine.subscribe((event) => {
    store.setState((state) => applyEvent(state, event));
    // a run pressed during the load goes out once the load's `done` made the model ready
    store.getState().runPending();
  });
  return () => {
    unsubscribe();
    store.getState().attachEngine(null);
  };
}

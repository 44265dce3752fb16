import type { EngineClient } from '../engine/client';
import { applyEvent } from './reducer';
import type { EnginePort, StudioStore } from './store';

export type ConnectableEngine = EnginePort & Pick<EngineClient, 'subscribe'>;

/**
 * Wires an engine to the store, once, outside React: requests go out through the store's
 * actions, events come back through the pure reducer. Returns the disconnect function.
 */
export function connectEngine(store: StudioStore, client: ConnectableEngine): () => void {
  store.getState().attachEngine(client);
  const unsubscribe = client.subscribe((event) => store.setState((state) => applyEvent(state, event)));
  return () => {
    unsubscribe();
    store.getState().attachEngine(null);
  };
}

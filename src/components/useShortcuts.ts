import { useEffect } from 'react';
import { selectCanGenerate } from '../store/selectors';
import { studioStore } from '../store/store';

/** Ctrl/Cmd+Enter generates and Esc cancels, from anywhere on the page. */
export function useShortcuts(): void {
  useEffect(() => {
    const onKeyDown = (e: KeyboardEvent) => {
      if (e.isComposing) return; // an IME is using the key
      const state = studioStore.getState();
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        // Same rule as the disabled button: a shortcut never produces a "busy" banner.
        if (selectCanGenerate(state)) state.generate();
      } else if (e.key === 'Escape' && state.generation.status === 'running') {
        e.preventDefault();
        state.cancel();
      }
    };
    document.addEventListener('keydown', onKeyDown);
    return () => document.removeEventListener('keydown', onKeyDown);
  }, []);
}

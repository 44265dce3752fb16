import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { createEngineClient } from './engine/client';
import { connectEngine } from './store/connect';
import { modelUrlFromSearch } from './store/params';
import { studioStore } from './store/store';
import './styles.css';

/** The embedded model folder (diffusers layout); the engine finds manifest.json in it. */
const EMBEDDED_MODEL_URL = `${import.meta.env.BASE_URL}models/webdit-tiny/`;

// The engine is wired here, once, outside React, so StrictMode's double effects cannot start two workers.
function startEngine(): void {
  try {
    connectEngine(studioStore, createEngineClient());
  } catch (e) {
    studioStore.getState().engineUnavailable({
      name: 'EngineMissingError',
      message: `The image engine could not start: ${e instanceof Error ? e.message : String(e)}`,
      action: 'Use a recent Chrome, Edge or Firefox, which can run module Web Workers.',
    });
    return;
  }
  // ?model=<owner/repo | folder URL> (&revision=, &hub=) picks another model folder
  const model = modelUrlFromSearch(location.search, EMBEDDED_MODEL_URL);
  if ('error' in model) {
    studioStore.getState().loadModel(EMBEDDED_MODEL_URL);
    studioStore.getState().reportError({ name: 'BadRequestError', message: `${model.error} The embedded model is loaded instead.`, action: 'Use ?model=owner/name (a Hugging Face repo) or the URL of a model folder.' });
    return;
  }
  studioStore.getState().loadModel(model.url);
}

startEngine();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

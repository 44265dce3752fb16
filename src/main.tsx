import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { pngWithParameters } from './components/download';
import { createEngineClient } from './engine/start';
import { connectHistory, historyStore } from './history/store';
import { connectEngine } from './store/connect';
import { registerServiceWorker } from './pwa/register';
import { connectRunTools } from './runtools/connect';
import { loadOptionsFromSearch } from './models/url';
import { modelUrlFromSearch } from './store/params';
import { browserStorage, readSavedForm, saveFormOnChange } from './store/persist';
import { ignoredNotice, parseShareLink, withoutShareParams } from './store/share';
import { studioStore } from './store/store';
import './styles.css';

/** The embedded model folder (diffusers layout); the engine finds manifest.json in it. */
const EMBEDDED_MODEL_URL = `${import.meta.env.BASE_URL}models/webdit-tiny/`;

/**
 * The form before anything renders: the saved one, then a share link's values over it (the link
 * wins). The link's parameters then leave the address bar, so a reload keeps later edits.
 * Returns whether the link asks to generate (`run=1`).
 */
function restoreForm(): boolean {
  const storage = browserStorage();
  const link = parseShareLink(location.search);
  const store = studioStore.getState();
  store.applyForm({ ...readSavedForm(storage), ...link.values });
  const notice = ignoredNotice(link.ignored);
  if (notice) store.reportFormNotice(notice);
  saveFormOnChange(studioStore, storage);
  const clean = withoutShareParams(location.href);
  if (clean !== location.href) history.replaceState(history.state, '', clean);
  return link.run;
}

// The engine is wired here, once, outside React, so StrictMode's double effects cannot start two workers.
function startEngine(): boolean {
  try {
    const engine = createEngineClient();
    connectEngine(studioStore, engine);
    // the filmstrip follows the studio's runs; the animation panel sends its own
    connectRunTools(engine, studioStore);
  } catch (e) {
    studioStore.getState().engineUnavailable({
      name: 'EngineMissingError',
      message: `The image engine could not start: ${e instanceof Error ? e.message : String(e)}`,
      action: 'Use a recent Chrome, Edge or Firefox, which can run module Web Workers.',
    });
    return false;
  }
  // ?model=<owner/repo | folder URL> (&revision=, &hub=) picks another model folder
  const model = modelUrlFromSearch(location.search, EMBEDDED_MODEL_URL);
  if ('error' in model) {
    studioStore.getState().loadModel(EMBEDDED_MODEL_URL);
    studioStore.getState().reportError({ name: 'BadRequestError', message: `${model.error} The embedded model is loaded instead.`, action: 'Use ?model=owner/name (a Hugging Face repo) or the URL of a model folder.' });
    return true;
  }
  // ?t5=on|off: SD3's T5 asked for or left out (absent: the engine leaves it out only when it would not fit)
  studioStore.getState().loadModel(model.url, loadOptionsFromSearch(location.search));
  return true;
}

const run = restoreForm();
// every finished image also goes to the history (IndexedDB), with the PNG Download PNG would save
connectHistory(studioStore, historyStore, pngWithParameters);
// run=1: the run waits in the store while the model loads (shown as such, and cancellable)
if (startEngine() && run) studioStore.getState().generate();

// offline after the first visit: app shell from the service worker, model files from the engine's cache
registerServiceWorker(`${import.meta.env.BASE_URL}sw.js`);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

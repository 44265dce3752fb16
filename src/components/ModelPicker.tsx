/**
 * The model picker: the embedded model, models loaded before, the known real models (with their
 * size and needs), a box for a Hub repo id or a folder URL, and a model folder opened from disk. For
 * each: download size, how much browser storage holds, delete from storage, and (SD3) whether T5 is
 * used. Choosing one loads it like `?model=` does and puts it in the page URL.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { importLocalFolder, isLocalUrl, pickedFolder } from '../engine/core/localFolder';
import { EngineError } from '../engine/errors';
import { KNOWN_MODELS, parseModelInput, type KnownModel } from '../models/known';
import { deleteModel, inspectModel, storageEstimate, type ModelReport } from '../models/inspect';
import { hubFromSearch, T5_COMPONENTS, urlWithModel, type ModelChoice } from '../models/url';
import { EMBEDDED_MODEL_URL } from '../store/fixes';
import { formatBytes } from '../store/format';
import { studioStore, useStudio } from '../store/store';
import './ModelPicker.css';

type Inspection = { status: 'loading' } | { status: 'ok'; report: ModelReport } | { status: 'error'; message: string; action?: string };

/** A model the picker lists, with how to load it. */
interface Entry {
  key: string;
  name: string;
  /** Folder URL, or null for a known model that does not load by repo id. */
  url: string | null;
  choice: ModelChoice;
  known?: KnownModel;
  local?: boolean;
}

interface Recent {
  url: string;
  name: string;
  choice: ModelChoice;
}

const RECENT_KEY = 'webdit-recent-models';
const MAX_RECENT = 6;

function readRecent(): Recent[] {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((r): r is Recent => typeof r?.url === 'string' && typeof r?.name === 'string' && typeof r?.choice === 'object') : [];
  } catch {
    return [];
  }
}

function writeRecent(list: Recent[]): void {
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, MAX_RECENT)));
  } catch {
    // storage off: the list lives for this page only
  }
}

const appRoot = () => new URL(import.meta.env.BASE_URL, location.origin).href;
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

function sizeText(e: Entry, ins: Inspection | undefined): string {
  if (ins?.status === 'ok') return formatBytes(ins.report.bytes);
  if (e.known) return `≈ ${formatBytes(e.known.bytes)}${e.known.estimate ? ' (estimate)' : ''}`;
  return ins?.status === 'loading' ? 'reading…' : 'size unknown';
}

function storedText(r: ModelReport): { state: 'all' | 'some' | 'none'; text: string } {
  if (r.stored >= r.bytes) return { state: 'all', text: 'Cached' };
  if (r.stored > 0) return { state: 'some', text: `Partly cached (${formatBytes(r.stored)} of ${formatBytes(r.bytes)})` };
  return { state: 'none', text: 'Not cached' };
}

export function ModelPicker() {
  const [open, setOpen] = useState(false);
  const [inspections, setInspections] = useState<Record<string, Inspection>>({});
  const [estimate, setEstimate] = useState<{ usage: number | null; quota: number | null }>({ usage: null, quota: null });
  const [recent, setRecent] = useState<Recent[]>(readRecent);
  const [text, setText] = useState('');
  const [inputError, setInputError] = useState<string | null>(null);
  const [folderState, setFolderState] = useState<{ busy: boolean; message: string | null; error: string | null }>({ busy: false, message: null, error: null });
  const [t5, setT5] = useState<Record<string, boolean>>({});
  const modelUrl = useStudio((s) => s.model.url);
  const modelStatus = useStudio((s) => s.model.status);
  const modelName = useStudio((s) => s.model.info?.name);
  const skipped = useStudio((s) => s.model.skipComponents);
  const preference = useStudio((s) => s.backendPreference);
  const busy = useStudio((s) => s.generation.status !== 'idle');

  const entries = useMemo<Entry[]>(() => {
    if (!open) return [];
    const hub = hubFromSearch(location.search);
    const list: Entry[] = [{ key: 'embedded', name: 'WebDiT tiny (built in)', url: EMBEDDED_MODEL_URL, choice: { model: null } }];
    const seen = new Set([EMBEDDED_MODEL_URL]);
    const add = (url: string, name: string, choice: ModelChoice) => {
      if (seen.has(url)) return;
      seen.add(url);
      list.push({ key: url, name, url, choice, local: isLocalUrl(url, appRoot()) });
    };
    if (modelUrl && modelUrl !== EMBEDDED_MODEL_URL) {
      // loaded by the page URL (?model=): choosing it again keeps the URL's own spelling
      const q = new URLSearchParams(location.search);
      const fromUrl: ModelChoice = { model: q.get('model') ?? modelUrl, revision: q.get('revision') };
      const r = recent.find((x) => x.url === modelUrl);
      add(modelUrl, modelName ?? r?.name ?? modelUrl, r?.choice ?? fromUrl);
    }
    for (const r of recent) add(r.url, r.name, r.choice);
    for (const k of KNOWN_MODELS) {
      const url = k.repo ? `${hub}/${k.repo}/resolve/main/` : null;
      if (url && seen.has(url)) continue;
      list.push({ key: k.key, name: k.name, url, choice: { model: k.repo, hub: null }, known: k });
    }
    return list;
  }, [open, modelUrl, modelName, recent]);

  const inspect = useCallback(
    (url: string) => {
      setInspections((m) => ({ ...m, [url]: { status: 'loading' } }));
      inspectModel(url, preference).then(
        (report) => setInspections((m) => ({ ...m, [url]: { status: 'ok', report } })),
        (e: unknown) => setInspections((m) => ({ ...m, [url]: { status: 'error', message: messageOf(e), ...(e instanceof EngineError && { action: e.action }) } })),
      );
    },
    [preference],
  );

  const refreshEstimate = useCallback(() => void storageEstimate().then(setEstimate), []);

  // on open: what storage holds of the models already used (known ones are read only when asked: that is a request to the Hub)
  useEffect(() => {
    if (!open) return;
    refreshEstimate();
    for (const e of entries) if (e.url && !e.known) inspect(e.url);
  }, [open, entries]);

  // a load that finished stored the model: its entry says so
  useEffect(() => {
    if (open && modelStatus === 'ready' && modelUrl) {
      inspect(modelUrl);
      refreshEstimate();
    }
  }, [modelStatus, modelUrl]);

  const choose = (url: string, name: string, choice: ModelChoice) => {
    const report = inspections[url]?.status === 'ok' ? (inspections[url] as { report: ModelReport }).report : null;
    const hasT5 = report?.droppable.some((d) => d.label === 'T5') ?? false;
    const useT5 = hasT5 && url in t5 ? t5[url] : undefined;
    const full: ModelChoice = { ...choice, ...(useT5 !== undefined && { t5: useT5 }) };
    history.replaceState(history.state, '', urlWithModel(location.href, full));
    if (url !== EMBEDDED_MODEL_URL) {
      const next = [{ url, name, choice: full }, ...recent.filter((r) => r.url !== url)];
      setRecent(next);
      writeRecent(next);
    }
    studioStore.getState().loadModel(url, { skipComponents: useT5 === undefined ? undefined : useT5 ? [] : [...T5_COMPONENTS] });
  };

  const submit = () => {
    const parsed = parseModelInput(text, hubFromSearch(location.search), new URLSearchParams(location.search).get('revision') ?? 'main');
    if ('error' in parsed) return setInputError(parsed.error);
    setInputError(null);
    setText('');
    choose(parsed.url, parsed.model, { model: parsed.model, hub: parsed.hub, revision: parsed.revision });
  };

  const openFolder = async (input: HTMLInputElement) => {
    const files = Array.from(input.files ?? []);
    input.value = '';
    if (!files.length) return;
    setFolderState({ busy: true, message: 'Reading the folder…', error: null });
    try {
      const picked = pickedFolder(files.map((f) => ({ webkitRelativePath: f.webkitRelativePath || f.name, file: f })));
      const url = await importLocalFolder(picked, appRoot(), {
        onProgress: (stage, done, total) => setFolderState({ busy: true, message: `${stage === 'hashing' ? 'Checking' : 'Storing'} ${picked.name}: ${formatBytes(done)} of ${formatBytes(total)}`, error: null }),
      });
      setFolderState({ busy: false, message: `${picked.name} is stored in the browser; loading it.`, error: null });
      choose(url, `${picked.name} (from disk)`, { model: url });
    } catch (e) {
      setFolderState({ busy: false, message: null, error: `${messageOf(e)}${e instanceof EngineError ? ` ${e.action}` : ''}` });
    }
  };

  const remove = async (e: Entry, report: ModelReport) => {
    await deleteModel(report, !!e.local);
    if (e.local && e.url !== modelUrl) {
      const next = recent.filter((r) => r.url !== e.url);
      setRecent(next);
      writeRecent(next);
    }
    inspect(report.url);
    refreshEstimate();
  };

  return (
    <div className="model-picker">
      <button type="button" className="model-picker-toggle" data-testid="model-picker-toggle" aria-expanded={open} aria-controls="model-picker" onClick={() => setOpen((o) => !o)}>
        Models
      </button>
      {open && (
        <section id="model-picker" className="panel model-picker-panel" data-testid="model-picker" aria-labelledby="model-picker-title">
          <div className="model-picker-head">
            <h2 id="model-picker-title">Models</h2>
            <p className="muted small" data-testid="storage-estimate" data-usage={estimate.usage ?? ''} data-quota={estimate.quota ?? ''}>
              {estimate.usage !== null && estimate.quota !== null ? `Browser storage: ${formatBytes(estimate.usage)} used, ${formatBytes(Math.max(0, estimate.quota - estimate.usage))} available to this site` : 'This browser does not say how much storage it offers.'}
            </p>
            <button type="button" className="icon-button" data-testid="model-picker-close" aria-label="Close the model picker" onClick={() => setOpen(false)}>
              ×
            </button>
          </div>
          <ul className="model-list">
            {entries.map((e) => {
              const ins = e.url ? inspections[e.url] : undefined;
              const report = ins?.status === 'ok' ? ins.report : null;
              const stored = report ? storedText(report) : null;
              const current = e.url !== null && e.url === modelUrl;
              const t5Part = report?.droppable.find((d) => d.label === 'T5');
              const t5Default = report ? !(report.verdict.skip ?? []).some((c) => T5_COMPONENTS.includes(c)) : true;
              const t5Now = e.url && e.url in t5 ? t5[e.url] : current && skipped ? !skipped.includes('text_encoder_3') : t5Default;
              return (
                <li key={e.key} className="model-entry" data-testid="model-entry" data-key={e.key} data-url={e.url ?? ''} data-cached={stored?.state ?? 'unknown'} data-bytes={report?.bytes ?? e.known?.bytes ?? ''} data-stored={report?.stored ?? ''} data-current={current}>
                  <div className="model-entry-main">
                    <strong className="model-entry-name">{report && !e.known && e.key !== 'embedded' ? report.name : e.name}</strong>
                    <span className="model-entry-size" data-testid="model-size">
                      {sizeText(e, ins)}
                    </span>
                    {stored && (
                      <span className={`badge model-cached model-cached-${stored.state}`} data-testid="model-cached">
                        {stored.text}
                      </span>
                    )}
                    {current && <span className="badge model-current">{modelStatus === 'loading' ? 'Loading' : modelStatus === 'ready' ? 'In use' : 'Chosen'}</span>}
                  </div>
                  {e.known && <p className="muted small model-needs">Needs: {e.known.needs.join('; ')}.{e.known.optional ? ` Optional ${e.known.optional.label}: ${e.known.optional.estimate ? '≈ ' : ''}${formatBytes(e.known.optional.bytes)} more.` : ''}</p>}
                  {e.known?.howTo && <p className="muted small">{e.known.howTo}</p>}
                  {report && !report.verdict.ok && (
                    <p className="model-verdict" role="note" data-testid="model-verdict">
                      {report.verdict.message} {report.verdict.action}
                    </p>
                  )}
                  {report?.verdict.ok && report.verdict.notes?.map((n) => (
                    <p key={n} className="muted small" data-testid="model-note">
                      {n}
                    </p>
                  ))}
                  {ins?.status === 'error' && (
                    <p className="model-verdict" role="note" data-testid="model-error">
                      {ins.message} {ins.action}
                    </p>
                  )}
                  <div className="model-entry-actions">
                    {t5Part && e.url && (
                      <label className="checkbox" title={report && !report.verdictAll.ok ? `With T5: ${report.verdictAll.message}` : 'T5-XXL makes prompts follow better; without it the model uses zeros in its place'}>
                        <input type="checkbox" data-testid="use-t5" checked={t5Now} onChange={(ev) => {
                            const on = ev.currentTarget.checked;
                            setT5((m) => ({ ...m, [e.url!]: on }));
                          }} />
                        Use T5 ({formatBytes(t5Part.bytes)} more)
                      </label>
                    )}
                    {e.url && (
                      <button type="button" className={current ? '' : 'primary'} data-testid="model-load" disabled={busy || (current && modelStatus === 'loading')} onClick={() => choose(e.url!, report?.name ?? e.name, e.choice)}>
                        {current && modelStatus === 'ready' ? 'Load again' : 'Load'}
                      </button>
                    )}
                    {e.known && e.url && !ins && (
                      <button type="button" data-testid="model-check" onClick={() => inspect(e.url!)}>
                        Check size
                      </button>
                    )}
                    {report && report.stored > 0 && (
                      <button type="button" className="danger" data-testid="model-delete" onClick={() => void remove(e, report)}>
                        Delete from cache
                      </button>
                    )}
                  </div>
                </li>
              );
            })}
          </ul>
          <form
            className="model-paste"
            onSubmit={(ev) => {
              ev.preventDefault();
              submit();
            }}
          >
            <label htmlFor="model-input">Hub repo id or model folder URL</label>
            <div className="model-paste-row">
              <input
                id="model-input"
                data-testid="model-input"
                type="text"
                spellCheck={false}
                placeholder="owner/name or https://…/model-folder/"
                value={text}
                aria-invalid={inputError !== null}
                aria-describedby={inputError ? 'model-input-error' : undefined}
                onChange={(ev) => {
                  setText(ev.currentTarget.value);
                  setInputError(null);
                }}
              />
              <button type="submit" data-testid="model-input-load" disabled={busy}>
                Load
              </button>
            </div>
            {inputError && (
              <p id="model-input-error" className="model-verdict" role="alert" data-testid="model-input-error">
                {inputError}
              </p>
            )}
          </form>
          <div className="model-folder">
            <label className="model-folder-label">
              Open a model folder from disk
              <input type="file" data-testid="model-folder-input" disabled={folderState.busy || busy} {...{ webkitdirectory: '', directory: '' }} onChange={(ev) => void openFolder(ev.currentTarget)} />
            </label>
            <p className="muted small">A folder you downloaded once (with manifest.json, or model_index.json and its component folders): its files are checked and kept in this browser, nothing is uploaded.</p>
            {folderState.message && (
              <p className="small" data-testid="model-folder-status">
                {folderState.message}
              </p>
            )}
            {folderState.error && (
              <p className="model-verdict" role="alert" data-testid="model-folder-error">
                {folderState.error}
              </p>
            )}
          </div>
        </section>
      )}
    </div>
  );
}

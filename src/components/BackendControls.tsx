import type { BackendInfo } from '../engine/protocol';
import { isBackendPreference } from '../store/params';
import { studioStore, useStudio } from '../store/store';

const LABELS = { webgpu: 'WebGPU', wasm: 'WASM' } as const;

function describe(info: BackendInfo): { short: string; long: string } {
  const threads = `${info.threads} WASM thread${info.threads === 1 ? '' : 's'}`;
  if (info.backend === 'webgpu') {
    const f16 = info.shaderF16 ? 'shader-f16 available' : 'no shader-f16';
    return { short: `${info.adapter ?? 'GPU'} · ${f16}`, long: `Adapter: ${info.adapter ?? 'unknown'}; ${f16}; ${threads}` };
  }
  const why = info.fallbackReason ? `WebGPU not used: ${info.fallbackReason}` : '';
  return { short: threads, long: [threads, why].filter(Boolean).join('; ') };
}

/** Which backend runs the model, and a switch to force one (kept in `?backend=`). */
export function BackendControls() {
  const info = useStudio((s) => s.model.backend);
  const trying = useStudio((s) => s.model.loadingBackend);
  const loading = useStudio((s) => s.model.status === 'loading');
  const preference = useStudio((s) => s.backendPreference);
  // A switch while loading replaces that load; during a run the select is off (one thing at a time from the UI).
  const running = useStudio((s) => s.generation.status !== 'idle');
  // The badge says what ran: while a load is trying a backend, it is only being started.
  const details = info && !loading ? describe(info) : null;

  return (
    <div className="backend">
      {info && details ? (
        <>
          <span className={`badge badge-${info.backend}`} data-testid="backend-badge" data-backend={info.backend} title={details.long}>
            {LABELS[info.backend]}
          </span>
          <small className="backend-detail" title={details.long}>
            {details.short}
          </small>
          {/* auto mode chose WASM over a GPU: why, in view rather than only in a tooltip (fault table 8b) */}
          {info.backend === 'wasm' && info.fallbackReason && (
            <small className="backend-reason" data-testid="backend-reason">
              WebGPU not used: {info.fallbackReason}
            </small>
          )}
        </>
      ) : (
        <span className="badge badge-pending" data-testid="backend-badge-pending">{trying ? `Starting ${LABELS[trying.backend]}…` : loading ? 'Detecting…' : 'Not loaded'}</span>
      )}
      <label className="backend-label" htmlFor="backend-select">
        Backend
      </label>
      <select
        id="backend-select"
        data-testid="backend-select"
        value={preference}
        disabled={running}
        title="Choose which backend runs the model"
        onChange={(e) => {
          const value: string = e.currentTarget.value;
          if (isBackendPreference(value)) studioStore.getState().setBackendPreference(value);
        }}
      >
        <option value="auto">Auto</option>
        <option value="webgpu">WebGPU</option>
        <option value="wasm">WASM</option>
      </select>
    </div>
  );
}

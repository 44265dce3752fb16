import { useMemo } from 'react';
import { formatBytes } from '../store/format';
import { loadBytes } from '../store/selectors';
import { useStudio } from '../store/store';

const percent = (loaded: number, total: number) => (total > 0 ? Math.floor((Math.min(loaded, total) / total) * 100) : 0);

/** Bytes per file and overall while the model downloads. */
export function LoadProgress() {
  const files = useStudio((s) => s.model.files);
  const message = useStudio((s) => s.model.message);
  const list = useMemo(() => Object.values(files), [files]);
  // the same sum as selectLoadFraction, so the bar and the "X of Y" text agree
  const totals = useMemo(() => loadBytes(files), [files]);
  const fraction = totals.total > 0 ? totals.loaded / totals.total : null;

  return (
    <section className="load-progress" data-testid="load-progress" aria-label="Model download">
      <div className="load-head">
        <span>Loading model</span>
        <span className="muted">
          {totals.total > 0 ? `${formatBytes(totals.loaded)} of ${formatBytes(totals.total)}` : (message ?? 'Starting…')}
        </span>
      </div>
      {/* No value means indeterminate: sizes are not known yet. */}
      <progress aria-label="Overall download" max={1} value={fraction ?? undefined} />
      {message && totals.total > 0 && <p className="muted small">{message}</p>}
      {list.length > 0 && (
        <ul className="file-list">
          {list.map((f) => (
            <li key={f.file}>
              <span className="file-name" title={f.file}>
                {f.file}
              </span>
              <span className="muted">
                {f.total > 0 ? `${formatBytes(f.loaded)} / ${formatBytes(f.total)}` : formatBytes(f.loaded)}
              </span>
              <progress aria-label={`${f.file} download`} max={100} value={f.total > 0 ? percent(f.loaded, f.total) : undefined} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

import { useEffect, useRef } from 'react';
import { fixesFor, fixLabel } from '../store/fixes';
import { studioStore, useStudio } from '../store/store';

/**
 * The error, with the button that fixes it in place (none needs a reload, so the form and the
 * images stay). It sits above Generate, where the user last acted, and scrolls into view when it
 * appears; role="alert" has screen readers announce it.
 */
export function ErrorBanner() {
  const error = useStudio((s) => s.error);
  const model = useStudio((s) => s.model);
  const backendPreference = useStudio((s) => s.backendPreference);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (error) ref.current?.scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
  }, [error]);

  if (!error) return null;
  const s = { model, backendPreference };
  const fixes = fixesFor(error, s);
  return (
    <div ref={ref} className="banner" role="alert" data-testid="error-banner" data-error={error.name}>
      <div className="banner-text">
        <strong data-testid="error-message">{error.message}</strong>
        {error.action && <p data-testid="error-action">{error.action}</p>}
        {fixes.length > 0 && (
          <div className="banner-actions">
            {fixes.map((fix, i) => (
              <button key={fix} type="button" className={i === 0 ? 'primary' : undefined} data-testid={`fix-${fix}`} onClick={() => studioStore.getState().applyFix(fix)}>
                {fixLabel(fix, error, s)}
              </button>
            ))}
          </div>
        )}
      </div>
      <button type="button" className="icon-button" aria-label="Dismiss error" onClick={() => studioStore.getState().dismissError()}>
        <span aria-hidden="true">×</span>
      </button>
    </div>
  );
}

import { studioStore, useStudio } from '../store/store';

export function ErrorBanner() {
  const error = useStudio((s) => s.error);
  if (!error) return null;
  return (
    <div className="banner" role="alert" data-testid="error-banner" data-error={error.name}>
      <div className="banner-text">
        <strong>{error.message}</strong>
        {error.action && <p>{error.action}</p>}
      </div>
      <button type="button" className="icon-button" aria-label="Dismiss error" onClick={() => studioStore.getState().dismissError()}>
        <span aria-hidden="true">×</span>
      </button>
    </div>
  );
}

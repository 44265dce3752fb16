import { studioStore, useStudio } from '../store/store';

/** What the form could not take (a share link's unreadable values), until dismissed. */
export function FormNotice() {
  const notice = useStudio((s) => s.formNotice);
  if (!notice) return null;
  return (
    <div className="form-notice" role="status" data-testid="form-notice">
      <p>{notice}</p>
      <button type="button" className="icon-button" aria-label="Dismiss notice" onClick={() => studioStore.getState().dismissFormNotice()}>
        <span aria-hidden="true">×</span>
      </button>
    </div>
  );
}

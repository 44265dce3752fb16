import { useEffect, useRef, useState } from 'react';
import { shareUrl } from '../store/share';
import { studioStore } from '../store/store';
import { copyText } from './clipboard';

type Outcome = { copied: true } | { copied: false; url: string } | null;

/** How long "Link copied" stays. */
const COPIED_MS = 4000;

/**
 * "Copy link": the form's settings as a URL on the clipboard. Where the clipboard is refused, the
 * link appears in a selected text field to copy by hand.
 */
export function ShareLink() {
  const [outcome, setOutcome] = useState<Outcome>(null);
  const fieldRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (outcome?.copied === false) fieldRef.current?.select();
    if (!outcome?.copied) return;
    const timer = setTimeout(() => setOutcome(null), COPIED_MS);
    return () => clearTimeout(timer);
  }, [outcome]);

  const onCopy = async () => {
    const url = shareUrl(studioStore.getState(), location.href);
    setOutcome((await copyText(url)) ? { copied: true } : { copied: false, url });
  };

  return (
    <div className="share">
      <button type="button" data-testid="copy-link" title="Copy a link that opens the studio with these settings" onClick={onCopy}>
        Copy link
      </button>
      <span className="muted small" role="status" data-testid="share-status">
        {outcome?.copied ? 'Link copied' : outcome ? 'The clipboard was refused: copy the link below.' : ''}
      </span>
      {outcome?.copied === false && (
        <input
          ref={fieldRef}
          type="text"
          readOnly
          className="share-link"
          data-testid="share-link"
          aria-label="Link to these settings"
          value={outcome.url}
          onFocus={(e) => e.currentTarget.select()}
        />
      )}
    </div>
  );
}

import { selectStatusText } from '../store/selectors';
import { useStudio } from '../store/store';

/** One polite live region for everything that happens, so screen readers hear progress too. */
export function StatusLine() {
  const text = useStudio(selectStatusText);
  return (
    <p className="status" data-testid="status" role="status" aria-live="polite">
      {text}
    </p>
  );
}

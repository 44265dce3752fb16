import { storageNotice } from '../store/fixes';
import { useStudio } from '../store/store';

/** Says when the browser refused to keep the model's files (quota, private window), and what that costs. */
export function StorageNotice() {
  const text = useStudio(storageNotice);
  if (!text) return null;
  return (
    <p className="storage-notice" role="status" data-testid="storage-notice">
      {text}
    </p>
  );
}

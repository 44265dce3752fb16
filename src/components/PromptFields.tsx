import { GENERATE_FIELDS } from '../engine/schema';
import { selectNegativePrompt } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';

export function PromptFields() {
  const prompt = useStudio((s) => s.prompt);
  const negativePrompt = useStudio(selectNegativePrompt);
  const { setPrompt, setNegativePrompt } = studioStore.getState();
  return (
    <>
      <div className="field">
        <label htmlFor="prompt">Prompt</label>
        <textarea
          id="prompt"
          data-testid="prompt"
          rows={4}
          maxLength={GENERATE_FIELDS.prompt.maxLength}
          placeholder="a red apple on a blue background"
          aria-describedby="prompt-hint"
          aria-keyshortcuts="Control+Enter Meta+Enter"
          value={prompt}
          onChange={(e) => setPrompt(e.currentTarget.value)}
        />
        <p className="hint" id="prompt-hint">
          <kbd>Ctrl</kbd>+<kbd>Enter</kbd> generates. Leave empty for an unprompted image.
        </p>
      </div>
      <div className="field">
        <label htmlFor="negative-prompt">Negative prompt</label>
        <input
          id="negative-prompt"
          type="text"
          data-testid="negative-prompt"
          maxLength={GENERATE_FIELDS.negativePrompt.maxLength}
          placeholder="what to steer away from"
          value={negativePrompt}
          onChange={(e) => setNegativePrompt(e.currentTarget.value)}
        />
      </div>
    </>
  );
}

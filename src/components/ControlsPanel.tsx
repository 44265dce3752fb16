import { useEffect, useRef, type FormEvent } from 'react';
import { GUIDANCE_STEP } from '../store/params';
import { selectCanGenerate, selectGuidanceScale, selectLimits, selectNumImagesPerPrompt, selectNumInferenceSteps, selectWaiting } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';
import { ErrorBanner } from './ErrorBanner';
import { FormNotice } from './FormNotice';
import { InitImageField } from './InitImageField';
import { PromptFields } from './PromptFields';
import { RestorePanel } from './RestorePanel';
import { SeedField } from './SeedField';
import { ShareLink } from './ShareLink';
import { SizeField } from './SizeField';
import { SliderField } from './SliderField';
import { StorageNotice } from './StorageNotice';

export function ControlsPanel() {
  const numInferenceSteps = useStudio(selectNumInferenceSteps);
  const guidanceScale = useStudio(selectGuidanceScale);
  const numImagesPerPrompt = useStudio(selectNumImagesPerPrompt);
  const limits = useStudio(selectLimits);
  const livePreview = useStudio((s) => s.livePreview);
  const recordTrajectory = useStudio((s) => s.recordTrajectory);
  const canGenerate = useStudio(selectCanGenerate);
  const running = useStudio((s) => s.generation.status === 'running');
  const cancelling = useStudio((s) => s.generation.status === 'cancelling');
  // sent while the model loads: the engine runs it once the load is done
  const waiting = useStudio(selectWaiting);
  const { setNumInferenceSteps, setGuidanceScale, setNumImagesPerPrompt, setLivePreview, cancel } = studioStore.getState();
  const generateRef = useRef<HTMLButtonElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);

  // The pressed button disables itself; keep keyboard focus on the one that can act next.
  useEffect(() => {
    const active = document.activeElement;
    const lost = active === null || active === document.body;
    if (running && (lost || active === generateRef.current)) cancelRef.current?.focus();
    if (!running && !cancelling && (lost || active === cancelRef.current)) generateRef.current?.focus();
  }, [running, cancelling]);

  // A form, so Enter in the negative prompt generates like the button does.
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (selectCanGenerate(studioStore.getState())) studioStore.getState().generate();
  };

  return (
    <form className="panel controls" aria-label="Generation settings" onSubmit={onSubmit}>
      <FormNotice />
      <RestorePanel />
      <PromptFields />
      <SliderField
        id="steps"
        testId="steps"
        label="Steps"
        min={limits.numInferenceSteps.min}
        max={limits.numInferenceSteps.max}
        step={1}
        value={numInferenceSteps}
        hint="More steps: finer detail, slower."
        onChange={setNumInferenceSteps}
      />
      <SliderField
        id="guidance"
        testId="guidance"
        label="Guidance (CFG)"
        min={limits.guidanceScale.min}
        max={limits.guidanceScale.max}
        step={GUIDANCE_STEP}
        value={guidanceScale}
        hint="How closely to follow the prompt. 1 turns guidance off (twice as fast)."
        onChange={setGuidanceScale}
      />
      <SizeField />
      <SliderField
        id="images"
        testId="images"
        label="Images"
        min={limits.numImagesPerPrompt.min}
        max={limits.numImagesPerPrompt.max}
        step={1}
        value={numImagesPerPrompt}
        hint="Images per run, with seeds seed, seed+1, …"
        onChange={setNumImagesPerPrompt}
      />
      <SeedField />
      <label className="checkbox">
        <input type="checkbox" data-testid="live-preview" checked={livePreview} onChange={(e) => setLivePreview(e.currentTarget.checked)} />
        Live preview while it runs
      </label>
      <label className="checkbox" title="Keep the estimate after every step for the trajectory filmstrip (costs a decode per step)">
        <input type="checkbox" data-testid="record-trajectory" checked={recordTrajectory} onChange={(e) => studioStore.getState().setRecordTrajectory(e.currentTarget.checked)} />
        Record every step (trajectory)
      </label>
      <InitImageField />
      {/* errors and storage notices sit by Generate, where the user acts */}
      <ErrorBanner />
      <StorageNotice />
      <div className="actions">
        <button ref={generateRef} type="submit" className="primary" data-testid="generate" disabled={!canGenerate} aria-keyshortcuts="Control+Enter Meta+Enter">
          {waiting ? 'Waiting…' : running || cancelling ? 'Generating…' : 'Generate'}
        </button>
        <button ref={cancelRef} type="button" data-testid="cancel" disabled={!running} aria-keyshortcuts="Escape" onClick={cancel}>
          {cancelling ? 'Cancelling…' : 'Cancel'}
        </button>
      </div>
      <ShareLink />
    </form>
  );
}

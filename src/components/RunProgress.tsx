import { selectNumInferenceSteps, selectTimeLeft, selectWaiting } from '../store/selectors';
import { useStudio } from '../store/store';

/** "Step i/N" with a bar and the time left; shows the last run's count when idle. */
export function RunProgress() {
  const step = useStudio((s) => s.generation.step);
  const runTotal = useStudio((s) => s.generation.total);
  const planned = useStudio(selectNumInferenceSteps);
  const active = useStudio((s) => s.generation.status !== 'idle');
  const waiting = useStudio(selectWaiting);
  const timeLeft = useStudio(selectTimeLeft);
  // null: the model's default, unknown until it has loaded
  const total = runTotal > 0 ? runTotal : planned;

  return (
    <div className="run-progress" data-testid="progress" data-active={active}>
      <progress max={total ?? 1} value={step} aria-label="Generation progress" aria-valuetext={`Step ${step} of ${total ?? 'unknown'}`} />
      <span className="run-progress-text">
        Step {step}/{total ?? '?'}
        {waiting && <span className="muted"> · waiting for the model</span>}
        {timeLeft && <span className="muted"> · {timeLeft}</span>}
      </span>
    </div>
  );
}

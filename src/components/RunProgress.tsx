import { selectTimeLeft } from '../store/selectors';
import { useStudio } from '../store/store';

/** "Step i/N" with a bar and the time left; shows the last run's count when idle. */
export function RunProgress() {
  const step = useStudio((s) => s.generation.step);
  const runTotal = useStudio((s) => s.generation.total);
  const planned = useStudio((s) => s.numInferenceSteps);
  const active = useStudio((s) => s.generation.status !== 'idle');
  const timeLeft = useStudio(selectTimeLeft);
  const total = runTotal > 0 ? runTotal : planned;

  return (
    <div className="run-progress" data-testid="progress" data-active={active}>
      <progress max={total} value={step} aria-label="Generation progress" aria-valuetext={`Step ${step} of ${total}`} />
      <span className="run-progress-text">
        Step {step}/{total}
        {timeLeft && <span className="muted"> · {timeLeft}</span>}
      </span>
    </div>
  );
}

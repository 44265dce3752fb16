import './SeedField.css';
import { selectSeedError } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';

/**
 * The seed as typed: a text field (a number input rewrites "1e20" and hides "abc"), so it shows
 * exactly what a run would use. Text that is not a seed stays as typed, marked invalid with the
 * reason below it, and Generate refuses to start from it.
 */
export function SeedField() {
  const seedText = useStudio((s) => s.seedText);
  const error = useStudio(selectSeedError);
  const randomizeSeed = useStudio((s) => s.randomizeSeed);
  const { setSeedText, rollSeed, setRandomizeSeed } = studioStore.getState();

  return (
    <div className="field">
      <label htmlFor="seed">Seed</label>
      <div className="seed-row">
        <input
          id="seed"
          type="text"
          data-testid="seed"
          inputMode="numeric"
          autoComplete="off"
          spellCheck={false}
          value={seedText}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? 'seed-error' : undefined}
          onChange={(e) => setSeedText(e.currentTarget.value)}
          // " 007 " is seed 7: once the user leaves the field it says so
          onBlur={() => {
            const s = studioStore.getState();
            if (selectSeedError(s) === null && s.seedText !== String(s.seed)) setSeedText(String(s.seed));
          }}
        />
        <button type="button" className="icon-button dice" data-testid="dice" aria-label="Random seed" title="Random seed" onClick={rollSeed}>
          <DiceIcon />
        </button>
      </div>
      {error !== null && (
        <p className="hint field-error" id="seed-error" data-testid="seed-error">
          {randomizeSeed ? `${error} "New seed each time" replaces it when you generate.` : error}
        </p>
      )}
      <label className="checkbox">
        <input type="checkbox" data-testid="random-seed" checked={randomizeSeed} onChange={(e) => setRandomizeSeed(e.currentTarget.checked)} />
        New seed each time
      </label>
    </div>
  );
}

/** Drawn, not an emoji: emoji fonts are missing on many Linux machines. */
function DiceIcon() {
  const pips = [
    [8, 8],
    [16, 8],
    [12, 12],
    [8, 16],
    [16, 16],
  ];
  return (
    <svg aria-hidden="true" viewBox="0 0 24 24" width="18" height="18">
      <rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" strokeWidth="1.8" />
      {pips.map(([cx, cy]) => (
        <circle key={`${cx}-${cy}`} cx={cx} cy={cy} r="1.6" fill="currentColor" />
      ))}
    </svg>
  );
}

import { useState } from 'react';
import { MAX_SEED } from '../store/params';
import { studioStore, useStudio } from '../store/store';

export function SeedField() {
  const seed = useStudio((s) => s.seed);
  const randomizeSeed = useStudio((s) => s.randomizeSeed);
  // A draft lets the field be empty or half-typed without the store snapping it back.
  const [draft, setDraft] = useState(String(seed));
  const [shownSeed, setShownSeed] = useState(seed);
  if (seed !== shownSeed) {
    // The store changed it (dice, new seed each time): show the new value.
    setShownSeed(seed);
    setDraft(String(seed));
  }
  const { setSeed, rollSeed, setRandomizeSeed } = studioStore.getState();

  return (
    <div className="field">
      <label htmlFor="seed">Seed</label>
      <div className="seed-row">
        <input
          id="seed"
          type="number"
          data-testid="seed"
          inputMode="numeric"
          min={0}
          max={MAX_SEED}
          step={1}
          value={draft}
          onChange={(e) => {
            setDraft(e.currentTarget.value);
            const n = e.currentTarget.valueAsNumber;
            if (Number.isFinite(n)) setSeed(n);
          }}
          onBlur={() => setDraft(String(studioStore.getState().seed))}
        />
        <button type="button" className="icon-button dice" data-testid="dice" aria-label="Random seed" title="Random seed" onClick={rollSeed}>
          <DiceIcon />
        </button>
      </div>
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

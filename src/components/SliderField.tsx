interface SliderFieldProps {
  id: string;
  label: string;
  /** data-testid of the range; its value display gets `${testId}-value`. */
  testId: string;
  min: number;
  max: number;
  step: number;
  /** null: the model's default, not known until it has loaded. */
  value: number | null;
  hint?: string;
  onChange(value: number): void;
}

export function SliderField({ id, label, testId, min, max, step, value, hint, onChange }: SliderFieldProps) {
  const hintId = hint ? `${id}-hint` : undefined;
  // an unknown default sits mid-range, and the output says so rather than show a made-up number
  const position = value ?? min + Math.round((max - min) / 2 / step) * step;
  return (
    <div className="field">
      <div className="field-head">
        <label htmlFor={id}>{label}</label>
        <output htmlFor={id} data-testid={`${testId}-value`} title={value === null ? "The model's default, once it has loaded" : undefined}>
          {value ?? 'auto'}
        </output>
      </div>
      <input
        id={id}
        type="range"
        data-testid={testId}
        min={min}
        max={max}
        step={step}
        value={position}
        aria-describedby={hintId}
        onChange={(e) => onChange(e.currentTarget.valueAsNumber)}
      />
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

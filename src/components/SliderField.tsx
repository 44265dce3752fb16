interface SliderFieldProps {
  id: string;
  label: string;
  /** data-testid of the range; its value display gets `${testId}-value`. */
  testId: string;
  min: number;
  max: number;
  step: number;
  value: number;
  hint?: string;
  onChange(value: number): void;
}

export function SliderField({ id, label, testId, min, max, step, value, hint, onChange }: SliderFieldProps) {
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <div className="field-head">
        <label htmlFor={id}>{label}</label>
        <output htmlFor={id} data-testid={`${testId}-value`}>
          {value}
        </output>
      </div>
      <input
        id={id}
        type="range"
        data-testid={testId}
        min={min}
        max={max}
        step={step}
        value={value}
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

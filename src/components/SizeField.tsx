import { selectSize } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';

/** The output size, among those the model offers; hidden for a model with a single size. */
export function SizeField() {
  const sizes = useStudio((s) => s.model.info?.limits.sizes ?? null);
  const size = useStudio(selectSize);
  if (!sizes || sizes.length < 2 || !size) return null;
  return (
    <div className="field">
      <label htmlFor="size">Size</label>
      <select
        id="size"
        data-testid="size"
        value={`${size[0]}x${size[1]}`}
        onChange={(e) => {
          const [w, h] = e.currentTarget.value.split('x').map(Number);
          studioStore.getState().setSize(w, h);
        }}
      >
        {sizes.map(([w, h]) => (
          <option key={`${w}x${h}`} value={`${w}x${h}`}>
            {w} × {h}
          </option>
        ))}
      </select>
    </div>
  );
}

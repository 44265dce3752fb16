import { describe, expect, it } from 'vitest';
import { settled } from './warmup';

describe('the warm-up stops when the transformer has stopped getting faster', () => {
  it('waits for the minimum number of forwards, even when they are equally slow (optimised code not there yet)', () => {
    expect(settled([300, 300, 300])).toBe(false);
    expect(settled([300, 300, 300, 300])).toBe(true);
    expect(settled([300, 300], 2)).toBe(true);
  });

  it('keeps going while either of the last two is more than 10% over the fastest', () => {
    expect(settled([1646, 1325, 1025, 840, 411])).toBe(false);
    expect(settled([1646, 1325, 1025, 840, 411, 440])).toBe(true); // 440 <= 1.1 * 411
    expect(settled([900, 700, 180, 400])).toBe(false);
    expect(settled([900, 700, 180, 195])).toBe(true); // 195 <= 1.1 * 180 = 198
    expect(settled([900, 700, 180, 195, 210])).toBe(false);
  });
});

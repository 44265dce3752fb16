import { describe, expect, it } from 'vitest';
import { fromHalf, toHalf } from './float16';

describe('float16', () => {
  it('encodes the IEEE 754 binary16 reference values', () => {
    // from the binary16 definition: 1 = 0x3c00, max normal 65504 = 0x7bff, min subnormal 2^-24 = 0x0001,
    // min normal 2^-14 = 0x0400, -2 = 0xc000, 0.1 rounds to 0x2e66, 1/3 to 0x3555
    const cases: [number, number][] = [[1, 0x3c00], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400], [-2, 0xc000], [0.1, 0x2e66], [1 / 3, 0x3555], [0, 0], [1e6, 0x7c00], [2 ** -26, 0]];
    for (const [x, bits] of cases) expect(toHalf(x), String(x)).toBe(bits);
  });

  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = fromHalf(h);
      if (Number.isNaN(x)) continue;
      expect(toHalf(x)).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });

  it('rounds halfway cases to even', () => {
    // 1 + 2^-11 lies halfway between 1 (0x3c00) and 1 + 2^-10 (0x3c01): even mantissa wins
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gitBlobSha1, Sha256, sha256Hex } from './sha256';

describe('streaming sha256', () => {
  it('gives the FIPS 180-4 check values', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('matches node:crypto for every block boundary, fed whole or in odd chunks', () => {
    const data = Uint8Array.from({ length: 4099 }, (_, i) => (i * 7919) % 251);
    for (const n of [1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4099]) {
      const d = data.subarray(0, n);
      const want = createHash('sha256').update(d).digest('hex');
      expect(sha256Hex(d)).toBe(want);
      const s = new Sha256();
      for (let i = 0; i < n; i += 37) s.update(d.subarray(i, Math.min(n, i + 37)));
      expect(s.hex()).toBe(want);
    }
  });

  it('gives git blob ids as the Hub lists them', async () => {
    // `printf 'hello\n' | git hash-object --stdin`
    expect(await gitBlobSha1(new TextEncoder().encode('hello\n'))).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
  });
});

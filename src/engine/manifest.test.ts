import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from './manifest';
import { MANIFEST_PATH } from './testing/fixtures';

const shipped = fs.readFileSync(MANIFEST_PATH, 'utf8');
const edit = (f: (m: Record<string, any>) => void) => {
  const m = JSON.parse(shipped);
  f(m);
  return JSON.stringify(m);
};

describe('model manifest', () => {
  it('accepts the shipped manifest and keeps its constants', () => {
    const m = parseManifest(shipped);
    const raw = JSON.parse(shipped);
    expect(m.id).toBe(raw.id);
    expect(m.scaling_factor).toBe(raw.scaling_factor);
    expect(m.scheduler.shift).toBe(raw.scheduler.shift);
    expect(Object.keys(m.files)).toContain(m.graphs.transformer);
  });

  it.each([
    ['not JSON', () => '{"id": ', /not valid JSON/],
    ['an array', () => '[]', /JSON object/],
    ['no id', () => edit((m) => delete m.id), /"id"/],
    ['latent_channels 0', () => edit((m) => (m.latent_channels = 0)), /"latent_channels"/],
    ['scaling_factor 0', () => edit((m) => (m.scaling_factor = 0)), /"scaling_factor"/],
    ['another scheduler', () => edit((m) => (m.scheduler.type = 'DDIM')), /scheduler.type/],
    ['negative shift', () => edit((m) => (m.scheduler.shift = -1)), /scheduler.shift/],
    ['a file without sha256', () => edit((m) => (m.files['transformer.onnx'].sha256 = 'abc')), /sha256/],
    ['a path outside the folder', () => edit((m) => (m.files['../secret'] = { bytes: 1, sha256: 'a'.repeat(64) })), /relative path/],
    ['the transformer not listed', () => edit((m) => delete m.files['transformer.onnx']), /transformer graph/],
    ['latent size not a multiple of the patch', () => edit((m) => (m.latent_size = 15)), /multiple/],
  ])('rejects %s with an error that says what to fix', (_n, make, pattern) => {
    let err: any;
    try {
      parseManifest(make());
    } catch (e) {
      err = e;
    }
    expect(err?.name).toBe('ModelError');
    expect(err.message).toMatch(pattern);
    expect(err.action).toMatch(/export|model folder/);
  });
});

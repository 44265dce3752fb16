/**
 * The 4-bit SD3 replica (training/convert_sd3.py on sd3-tiny, built by training/replicas/sd3_q4.py):
 * com.microsoft MatMulNBits weights, fp16-stored weights decoded by Casts, external data in shards,
 * our manifest.json. The engine loads it on onnxruntime-web's WASM backend from a local hub and must
 * make the image onnxruntime-node made from the same graphs (>= 45 dB), within the error
 * sd3-q4-error.json reports against the PyTorch golden.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES } from '..';
import { openModel, resolveParams, type Current } from '../../core/engine';
import { FileStore } from '../../core/files';
import { runPipeline } from '../../core/pipeline';
import { MemoryStorage } from '../../core/storage';
import { f32, maxAbsDiff, psnr, rgbOf, u8, type FixtureTensor } from '../../testing/fixtures';
import { startHubServer, type HubServer } from '../../testing/hubServer';

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '__replica__');
const REPLICA = path.join(DIR, 'sd3-tiny-q4');
const read = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8'));
interface GoldenRun {
  name: string;
  prompt: string;
  negativePrompt: string;
  seed: number;
  numInferenceSteps: number;
  guidanceScale: number;
  width: number;
  height: number;
  useT5: boolean;
  rgb: FixtureTensor;
}
const golden = read('sd3-golden.json') as { runs: GoldenRun[] };
const report = read('sd3-q4-error.json') as {
  floor_db: number;
  model_files: Record<string, string>;
  conversion: Record<string, { quantized: number; shards: [string, number][] }>;
  runs: { name: string; psnr_vs_pytorch_db: number; latents: FixtureTensor; rgb: FixtureTensor }[];
};
const manifest = JSON.parse(fs.readFileSync(path.join(REPLICA, 'manifest.json'), 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };

let hub: HubServer;
const opened: Record<'t5' | 'noT5', Current | null> = { t5: null, noT5: null };

async function open(skipComponents: string[] = []) {
  const store = new FileStore(new MemoryStorage(), (u, i) => fetch(u, i));
  return openModel(
    { modelUrl: `${hub.url}/webdit/sd3-tiny-q4/resolve/main/`, backend: 'wasm', skipComponents },
    { store, fetcher: (u, i) => fetch(u, i), families: FAMILIES, storageFree: async () => null },
    new AbortController().signal,
  );
}

beforeAll(async () => {
  hub = await startHubServer({ 'webdit/sd3-tiny-q4': REPLICA });
  opened.t5 = await open();
  opened.noT5 = await open(['text_encoder_3', 'tokenizer_3']);
});
afterAll(async () => {
  await opened.t5?.model.dispose();
  await opened.noT5?.model.dispose();
  await hub.close();
});

describe('sd3-tiny-q4: the converted folder', () => {
  it('is the one sd3-q4-error.json measured, and loads through its manifest', () => {
    expect(Object.fromEntries(Object.entries(manifest.files).map(([p, f]) => [p, f.sha256]))).toEqual(report.model_files);
    expect(opened.t5!.info.family).toBe('sd3');
    expect(opened.t5!.info.id).toBe('webdit/sd3-tiny-q4');
    expect(hub.requests).toContain('/webdit/sd3-tiny-q4/resolve/main/manifest.json');
    expect(hub.requests.some((u) => u.startsWith('/api/models/'))).toBe(false);
  });

  it('has its transformer and text encoders in 4-bit and its external data in shards, every shard fetched', () => {
    for (const g of ['transformer', 'text_encoder', 'text_encoder_2', 'text_encoder_3']) expect(report.conversion[g].quantized).toBeGreaterThan(0);
    const shards = Object.entries(report.conversion).flatMap(([g, c]) => c.shards.map(([name]) => `${g}/${name}`));
    expect(shards.filter((s) => /_data_\d+$/.test(s)).length).toBeGreaterThan(0);
    for (const s of shards) expect(hub.requests).toContain(`/webdit/sd3-tiny-q4/resolve/main/${s}`);
  });
});

describe('sd3-tiny-q4 on WASM makes the 4-bit image onnxruntime-node made, within the reported error of PyTorch', () => {
  it.each(report.runs.map((r) => [r.name, r] as const))('%s', async (name, q) => {
    const r = golden.runs.find((g) => g.name === name)!;
    const m = r.useT5 ? opened.t5! : opened.noT5!;
    const params = resolveParams(
      { prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale, width: r.width, height: r.height, numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0 },
      m.info,
    );
    let latents: Float32Array | null = null;
    let pixels: Uint8ClampedArray | null = null;
    await runPipeline(m.model, params, undefined, { onImage: (_i, img, l) => ((pixels = img.pixels), (latents = l)) });
    const rgb = rgbOf(pixels!);
    expect(maxAbsDiff(latents!, f32(q.latents))).toBeLessThanOrEqual(1e-3);
    const vsOrt = psnr(rgb, u8(q.rgb));
    const vsTorch = psnr(rgb, u8(r.rgb));
    console.log(`${name}: 4-bit engine image ${vsOrt.toFixed(1)} dB vs onnxruntime-node 4-bit, ${vsTorch.toFixed(1)} dB vs PyTorch fp32 (reported ${q.psnr_vs_pytorch_db})`);
    expect(vsOrt).toBeGreaterThanOrEqual(45);
    expect(vsTorch).toBeGreaterThanOrEqual(q.psnr_vs_pytorch_db - 0.5);
    expect(vsTorch).toBeGreaterThanOrEqual(report.floor_db);
  });
});

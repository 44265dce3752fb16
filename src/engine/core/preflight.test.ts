/**
 * Preflight decisions with fake adapters: which backend runs a model, what is left out, and what a
 * model that cannot run here is told (what it needs, what this browser has, what would work).
 */
import { describe, expect, it } from 'vitest';
import type { BackendInfo } from '../protocol';
import { decide, declaredNeeds, GiB, PreflightError, type Environment, type GpuAdapterInfo, type ModelNeeds } from './preflight';

const GB = 1e9;
const adapter = (o: Partial<GpuAdapterInfo> = {}): GpuAdapterInfo => ({ description: 'test GPU', fallback: false, shaderF16: true, maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB, ...o });
const env = (o: Partial<Environment> = {}): Environment => ({ webgpuApi: true, adapter: adapter(), deviceMemoryGiB: 8, storageFree: 100 * GB, ...o });
const webgpu: BackendInfo = { backend: 'webgpu', adapter: 'test GPU', shaderF16: true, threads: 4 };
const wasm: BackendInfo = { backend: 'wasm', threads: 4 };

/** A model of graphs (component, bytes, largest tensor), every file missing from storage. */
function model(name: string, graphs: [string, number, number | null][], o: Partial<ModelNeeds> = {}): ModelNeeds {
  return {
    name,
    graphs: graphs.map(([component, bytes, largestTensor]) => ({ name: `${component}/model.onnx`, component, bytes, largestTensor, float16Io: [] })),
    files: graphs.map(([component, bytes]) => ({ component, bytes, missing: bytes })),
    float16: null,
    webgpu: null,
    droppable: [],
    ...o,
  };
}

// Z-Image-Turbo's size (README: ~5.6 GB q4f16), float16 I/O as the newer webnn export declares
const zimage = model('Z-Image-Turbo', [['transformer', 3.5 * GB, 0.2 * GB], ['text_encoder', 2.0 * GB, 0.4 * GB], ['vae_decoder', 0.1 * GB, null]], { float16: 'its graphs take float16 tensors' });
// a 4-bit SD3.5 medium: transformer, CLIPs, and a T5 that alone would break WASM's budget
const sd3 = model('SD3.5 medium (4-bit)', [['transformer', 1.6 * GB, 0.1 * GB], ['text_encoder', 0.25 * GB, 0.1 * GB], ['text_encoder_2', 1.4 * GB, 0.3 * GB], ['text_encoder_3', 2.7 * GB, 0.3 * GB], ['vae_decoder', 0.1 * GB, null]], {
  droppable: [{ components: ['text_encoder_3', 'tokenizer_3'], label: 'T5' }],
});

function refusal(f: () => unknown): PreflightError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PreflightError);
    return e as PreflightError;
  }
  throw new Error('expected a refusal');
}

describe('preflight: WebGPU and shader-f16', () => {
  it('a large float16 model runs on a WebGPU adapter with shader-f16', () => {
    const plan = decide(zimage, env(), 'auto', webgpu);
    expect(plan.backend.backend).toBe('webgpu');
    expect(plan.skip).toEqual([]);
    expect(plan.weightBytes).toBe(5.6 * GB);
    expect(plan.notes).toEqual([]);
  });

  it('WebGPU without shader-f16: refused, saying what it needs, what this browser has, and what would work', () => {
    const e = refusal(() => decide(zimage, env({ adapter: adapter({ shaderF16: false, description: 'SwiftShader' }) }), 'auto', webgpu));
    expect(e.name).toBe('UnsupportedError');
    expect(e.need).toBe('shader-f16');
    expect(e.message).toBe(
      'Z-Image-Turbo needs WebGPU with shader-f16 (its graphs take float16 tensors); this browser has WebGPU without it (adapter: SwiftShader). WASM cannot run it instead: its weights are 5.6 GB, more than the 4.3 GB WebAssembly memory WASM runs in holds with room to run.',
    );
    expect(e.action).toMatch(/^Try Chrome or Edge 121\+ .*shader-f16.*; or use the embedded model/);
    expect(e.fix).toBe('smaller-model');
  });

  it('no WebGPU at all: refused with the browsers that have it', () => {
    const e = refusal(() => decide(zimage, env({ webgpuApi: false, adapter: null }), 'auto', wasm));
    expect(e.need).toBe('webgpu');
    expect(e.message).toMatch(/^Z-Image-Turbo needs WebGPU with shader-f16 \(its graphs take float16 tensors\); this browser has no WebGPU\. WASM cannot run it instead/);
    const noAdapter = refusal(() => decide(zimage, env({ webgpuApi: true, adapter: null }), 'auto', wasm));
    expect(noAdapter.message).toMatch(/this browser has WebGPU but no adapter/);
  });

  it('a small model with float16 inputs falls back to WASM in auto mode, and is refused when WebGPU is forced', () => {
    const small = model('fp16 replica', [['transformer', 2e6, 1e5]]);
    small.graphs[0].float16Io = ['sample'];
    const noF16 = env({ adapter: adapter({ shaderF16: false }) });
    const plan = decide(small, noF16, 'auto', webgpu);
    expect(plan.backend).toMatchObject({ backend: 'wasm', fallbackReason: expect.stringMatching(/fp16 replica cannot run on this GPU: this browser has WebGPU without it/) });
    const e = refusal(() => decide(small, noF16, 'webgpu', webgpu));
    expect(e.message).toMatch(/^fp16 replica needs WebGPU with shader-f16 \(transformer\/model\.onnx takes and gives float16 tensors: sample\); this browser has WebGPU without it/);
    expect(e.fix).toBe('switch-backend');
    expect(e.action).toMatch(/press Use WASM/);
    // with shader-f16 it stays on WebGPU
    expect(decide(small, env(), 'auto', webgpu).backend.backend).toBe('webgpu');
  });

  it("a weight larger than the adapter's buffers: refused on WebGPU with both limits named", () => {
    const big = model('big tensor', [['transformer', 5 * GB, 3 * GB]]);
    const e = refusal(() => decide(big, env({ adapter: adapter({ maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 1 * GiB }) }), 'auto', webgpu));
    expect(e.need).toBe('buffer-size');
    expect(e.message).toMatch(/transformer\/model\.onnx has a 3\.0 GB weight, more than the 1\.1 GB this GPU's buffers hold \(maxBufferSize 2147483648, maxStorageBufferBindingSize 1073741824\)/);
    // an unknown largest tensor (graph not read) is not refused on a guess
    expect(decide(model('unknown', [['transformer', 5 * GB, null]]), env({ adapter: adapter({ maxBufferSize: 2 * GiB }) }), 'auto', webgpu).backend.backend).toBe('webgpu');
  });
});

describe("preflight: WASM's 4 GiB and the backend", () => {
  it('WASM forced for a model over its budget: refused with Use WebGPU when an adapter can run it', () => {
    const e = refusal(() => decide(zimage, env(), 'wasm', wasm));
    expect(e.need).toBe('wasm-memory');
    expect(e.fix).toBe('switch-backend');
    expect(e.message).toMatch(/^Z-Image-Turbo cannot run on WASM: its weights are 5\.6 GB/);
  });

  it('auto mode with only a software adapter picked WASM; a model too large for WASM goes to that adapter with a note', () => {
    const big = model('big', [['transformer', 4 * GB, 0.1 * GB]]);
    const plan = decide(big, env({ adapter: adapter({ fallback: true, description: 'SwiftShader' }) }), 'auto', { ...wasm, fallbackReason: 'software adapter' });
    expect(plan.backend.backend).toBe('webgpu');
    expect(plan.notes[0]).toMatch(/too large for WASM, so it runs on the software WebGPU adapter \(SwiftShader\)/);
  });

  it('a manifest that declares WebGPU keeps the model off WASM whatever its size', () => {
    const declared = declaredNeeds({ requires: { webgpu: 'its graphs use WebGPU-only operators', shader_f16: true } });
    expect(declared).toEqual({ webgpu: 'its graphs use WebGPU-only operators', float16: 'its manifest says its graphs compute in float16' });
    const tiny = model('tiny', [['transformer', 1e6, 1e4]], declared);
    const e = refusal(() => decide(tiny, env({ webgpuApi: false, adapter: null }), 'wasm', wasm));
    expect(e.message).toBe('tiny needs WebGPU with shader-f16 (its manifest says its graphs compute in float16); this browser has no WebGPU. WASM cannot run it instead: its graphs use WebGPU-only operators.');
    expect(declaredNeeds({ requires: 'yes' })).toEqual({ webgpu: null, float16: null });
    expect(declaredNeeds(null)).toEqual({ webgpu: null, float16: null });
  });
});

describe('preflight: memory and storage', () => {
  it('refuses only when the device certainly has too little memory (deviceMemory is rounded down, capped at 8)', () => {
    const e = refusal(() => decide(zimage, env({ deviceMemoryGiB: 2 }), 'auto', webgpu));
    expect(e.need).toBe('device-memory');
    expect(e.message).toMatch(/needs about 7\.0 GB of memory to load \(an estimate\), and this device has less than 4 GB \(the browser reports 2 GB\)/);
    const tight = decide(zimage, env({ deviceMemoryGiB: 4 }), 'auto', webgpu);
    expect(tight.notes[0]).toMatch(/this device reports 4 GB, so loading may fail/);
    expect(decide(zimage, env({ deviceMemoryGiB: 8 }), 'auto', webgpu).notes).toEqual([]);
    expect(decide(zimage, env({ deviceMemoryGiB: null }), 'auto', webgpu).notes).toEqual([]);
  });

  it('storage: what is not stored yet must fit (StorageFullError with Delete cached models)', () => {
    expect(() => decide(zimage, env({ storageFree: 1 * GB }), 'auto', webgpu)).toThrow(expect.objectContaining({ name: 'StorageFullError', message: 'Z-Image-Turbo needs 5.6 GB more of browser storage, but only 1.0 GB is free for this site.', fix: 'free-storage' }));
    const stored = { ...zimage, files: zimage.files.map((f) => ({ ...f, missing: 0 })) };
    expect(decide(stored, env({ storageFree: 0 }), 'auto', webgpu).backend.backend).toBe('webgpu');
  });
});

describe('preflight: T5 left out when it would not fit', () => {
  it('on WASM: T5 breaks the 3.5 GiB budget, so it is left out by default with a note', () => {
    const plan = decide(sd3, env({ webgpuApi: false, adapter: null }), 'auto', wasm);
    expect(plan.backend.backend).toBe('wasm');
    expect(plan.skip).toEqual(['text_encoder_3']);
    expect(plan.weightBytes).toBeCloseTo(3.35 * GB, -6);
    expect(plan.notes[0]).toMatch(/^T5 left out \(2\.7 GB\): SD3\.5 medium \(4-bit\) needs WebGPU; this browser has no WebGPU\. WASM cannot run it instead: its weights are 6\.0 GB.*Turn it on in the model picker/);
  });

  it('asked for explicitly (skipComponents []), the same model is refused with why', () => {
    const e = refusal(() => decide(sd3, env({ webgpuApi: false, adapter: null }), 'auto', wasm, []));
    expect(e.need).toBe('webgpu');
  });

  it('with WebGPU and room, T5 stays; with storage for the rest only, it is left out', () => {
    expect(decide(sd3, env(), 'auto', webgpu).skip).toEqual([]);
    const plan = decide(sd3, env({ storageFree: 4 * GB }), 'auto', webgpu);
    expect(plan.skip).toEqual(['text_encoder_3']);
    expect(plan.notes[0]).toMatch(/^T5 left out \(2\.7 GB\): SD3\.5 medium \(4-bit\) needs 6\.0 GB more of browser storage, but only 4\.0 GB is free/);
  });

  it('asked to leave T5 out, it is out whatever fits', () => {
    expect(decide(sd3, env(), 'auto', webgpu, ['text_encoder_3', 'tokenizer_3']).skip).toEqual(['text_encoder_3']);
  });
});

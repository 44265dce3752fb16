/**
 * What the browser under the engine offers: the WebGPU adapter (vendor, architecture, features,
 * the buffer limits that bound the largest tensor) and WASM's threads, SIMD and cross-origin
 * isolation. Shown with each run, so a slow or failed run can be read against the machine.
 */
import type { DeviceReport } from '../protocol';

/**
 * The smallest module that needs SIMD: one function () -> v128 returning v128.const 0. Validation
 * fails where the engine has no SIMD.
 */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: 1 type, func () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: 1 function of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b, // code: v128.const 0, end
]);

export function wasmSimd(): boolean {
  try {
    return typeof WebAssembly !== 'undefined' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

type Gpu = { requestAdapter(o?: { powerPreference?: string }): Promise<AdapterLike | null> };
type AdapterLike = {
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  features: Iterable<string>;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
};

export async function deviceReport(threads: number, gpu: Gpu | undefined = (globalThis.navigator as { gpu?: Gpu } | undefined)?.gpu): Promise<DeviceReport> {
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  const wasm = { threads, simd: wasmSimd(), crossOriginIsolated: g.crossOriginIsolated === true, hardwareConcurrency: g.navigator?.hardwareConcurrency ?? null };
  if (!gpu) return { webgpu: null, webgpuMissing: 'this browser has no WebGPU (navigator.gpu)', wasm };
  let adapter: AdapterLike | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { webgpu: null, webgpuMissing: `requestAdapter failed: ${e instanceof Error ? e.message : String(e)}`, wasm };
  }
  if (!adapter) return { webgpu: null, webgpuMissing: 'no WebGPU adapter available', wasm };
  const info = adapter.info ?? {};
  return {
    webgpu: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description ?? '',
      isFallbackAdapter: info.isFallbackAdapter === true,
      features: [...adapter.features].sort(),
      limits: { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize },
    },
    wasm,
  };
}

// One ORT-web build in a fresh worker (ORT fixes its thread count when its wasm starts), as the
// studio runs it: in a worker, proxy off. Times the transformer on the inputs the server holds.
// (A fresh worker per build and thread count: V8 compiles each module from scratch, as on a first visit.)
const BUILDS = {
  // 'onnxruntime-web/wasm': the plain ort-wasm-simd-threaded.wasm, what the studio's WASM loads run
  plain: { js: '/ort/ort.wasm.bundle.min.mjs' },
  // 'onnxruntime-web/webgpu': the asyncify .wasm, what the studio's WebGPU loads run (their WASM sessions too)
  asyncify: { js: '/ort/ort.webgpu.bundle.min.mjs' },
  // 'onnxruntime-web/jspi': WebGPU + WASM EPs with JS Promise Integration instead of asyncify (Chromium 137+)
  jspi: { js: '/ort/ort.jspi.bundle.min.mjs' },
};

async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const TYPED = { float32: Float32Array, float16: Uint16Array, int64: BigInt64Array, int32: Int32Array };

self.onmessage = async (e) => {
  const { build, threads, graph, warmup, runs } = e.data;
  try {
    const ort = await import(BUILDS[build].js);
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = '/ort/';
    const model = await bytes(`/model/${graph.rel}`);
    const externalData = await Promise.all(graph.external.map(async (f) => ({ path: f, data: await bytes(`/model/${graph.dir}/${f}`) })));
    const tCreate = performance.now();
    const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', ...(externalData.length ? { externalData } : {}) });
    const createMs = performance.now() - tCreate;
    const meta = await (await fetch('/inputs/meta.json')).json();
    const feeds = {};
    for (const m of meta) {
      const buf = (await bytes(`/inputs/${m.index}.bin`)).buffer;
      feeds[m.name] = new ort.Tensor(m.type, new TYPED[m.type](buf), m.dims);
    }
    // every forward in order: the first ones show V8's baseline wasm code before hot functions are optimised
    const curve = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t = performance.now();
      await session.run(feeds);
      curve.push(performance.now() - t);
    }
    await session.release();
    const firstMs = curve[0];
    const times = curve.slice(warmup).sort((a, b) => a - b);
    const mid = times.length >> 1;
    const ms = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    self.postMessage({ ms, min: times[0], firstMs, createMs, runs, curve: curve.map(Math.round), threads: Number(ort.env.wasm.numThreads), isolated: self.crossOriginIsolated });
  } catch (err) {
    self.postMessage({ error: String(err?.stack || err) });
  }
};

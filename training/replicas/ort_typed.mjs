// Runs one ONNX graph with onnxruntime-node for the replica builders, with typed inputs and outputs
// (float32, float16, int64), so graphs with fp16 inputs/outputs can be compared with PyTorch.
// stdin: {model, inputs: {name: {type, dims, b64}}}
// stdout: {outputs: {name: {type, dims, b64}}} (little-endian; float16 as its raw 16-bit words).
import * as ort from 'onnxruntime-node';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const session = await ort.InferenceSession.create(req.model, { graphOptimizationLevel: 'all' });
const ARRAYS = { int64: BigInt64Array, float32: Float32Array, float16: Uint16Array };
const feeds = {};
for (const [name, t] of Object.entries(req.inputs)) {
  const buf = Buffer.from(t.b64, 'base64');
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const Arr = ARRAYS[t.type];
  if (!Arr) throw new Error(`input ${name}: type ${t.type} is not supported`);
  feeds[name] = new ort.Tensor(t.type, new Arr(ab), t.dims);
}
const out = await session.run(feeds);
const res = {};
for (const [name, t] of Object.entries(out)) {
  const d = t.data;
  res[name] = { type: t.type, dims: t.dims, b64: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') };
}
process.stdout.write(JSON.stringify({ outputs: res }));

// Runs one ONNX graph with onnxruntime-node (the CPU build inside the npm package) so the Python
// recipe can compare exported graphs with PyTorch. stdin: {model, inputs: {name: {type, dims, b64}}}
// stdout: {outputs: {name: {dims, b64}}} (float32 little-endian).
import * as ort from 'onnxruntime-node';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const session = await ort.InferenceSession.create(req.model, { graphOptimizationLevel: 'all' });
const feeds = {};
for (const [name, t] of Object.entries(req.inputs)) {
  const buf = Buffer.from(t.b64, 'base64');
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const data = t.type === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
  feeds[name] = new ort.Tensor(t.type, data, t.dims);
}
const out = await session.run(feeds);
const res = {};
for (const [name, t] of Object.entries(out)) {
  res[name] = { dims: t.dims, b64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
}
process.stdout.write(JSON.stringify({ outputs: res }));

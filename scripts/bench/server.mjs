// The benchmark's own HTTP server, cross-origin isolated (WASM threads need SharedArrayBuffer):
//   /bench/*   this folder (the forward page and its worker)
//   /ort/*     onnxruntime-web's dist (the same build the studio bundles)
//   /model/*   the model folder, for the forward page
//   /inputs/*  the forward inputs (meta.json + one .bin per input)
//   /bench/model/resolve/main/* and /api/models/bench/model/tree/main: the model folder as a Hub
//   repo, so the studio loads it with ?model=bench/model&hub=<this server> (CORS + CORP for that)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const ORT_DIST = path.resolve(HERE, '../../node_modules/onnxruntime-web/dist');
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'cross-origin',
  'access-control-allow-origin': '*',
};

function walk(dir, rel = '') {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

/** The Hub's tree listing of a folder (graphs and their data as LFS entries with sha256). */
function treeListing(dir) {
  return walk(dir).map((p) => {
    const bytes = fs.readFileSync(path.join(dir, p));
    const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const lfs = /\.onnx(_data(_\d+)?|\.data)?$/.test(p) ? { oid: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, pointerSize: 134 } : undefined;
    return { type: 'file', oid, size: lfs ? 134 : bytes.length, path: p, ...(lfs ? { lfs } : {}) };
  });
}

export async function startBenchServer({ modelDir, feeds }) {
  const meta = feeds.map((f, index) => ({ index, name: f.name, type: f.type, dims: f.dims }));
  let tree = null;
  const sendFile = (res, file) => {
    if (!file || !fs.existsSync(file) || fs.statSync(file).isDirectory()) return res.writeHead(404, HEADERS).end('not found');
    res.writeHead(200, { ...HEADERS, 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  };
  const under = (root, rel) => {
    const p = path.resolve(root, rel);
    return p.startsWith(root + path.sep) ? p : null;
  };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]);
    if (url === '/api/models/bench/model/tree/main') {
      tree ??= JSON.stringify(treeListing(modelDir));
      return res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' }).end(tree);
    }
    if (url.startsWith('/bench/model/resolve/main/')) return sendFile(res, under(modelDir, url.slice('/bench/model/resolve/main/'.length)));
    if (url === '/inputs/meta.json') return res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(meta));
    const input = url.match(/^\/inputs\/(\d+)\.bin$/);
    if (input && feeds[Number(input[1])]) {
      const d = feeds[Number(input[1])].data;
      return res.writeHead(200, HEADERS).end(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    }
    if (url.startsWith('/bench/')) return sendFile(res, under(HERE, url.slice('/bench/'.length)));
    if (url.startsWith('/ort/')) return sendFile(res, under(ORT_DIST, url.slice('/ort/'.length)));
    if (url.startsWith('/model/')) return sendFile(res, under(modelDir, url.slice('/model/'.length)));
    res.writeHead(404, HEADERS).end('not found');
  });
  server.keepAliveTimeout = 120_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * Test-only: a local HTTP server that answers like the Hugging Face Hub for model folders on disk:
 * `/<owner>/<repo>/resolve/<rev>/<path>` and `/api/models/<owner>/<repo>/tree/<rev>?recursive=true`
 * (graphs and external data as LFS entries with their sha256, small files with their git blob id).
 * Like the Hub's file servers it sends a strong ETag, answers `Range: bytes=N-` with 206 and
 * Content-Range (a full 200 when `If-Range` names another ETag), and answers CORS preflights. Tests
 * can cut a body off after N bytes (`drops`), hold it open after N bytes (`stalls`), change a file's
 * ETag (`etags`), and read what was served (`log`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

function walk(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

// the studio is cross-origin isolated (COEP require-corp): a hub on another origin must allow it, as huggingface.co does
const CORS = {
  'access-control-allow-origin': '*',
  'cross-origin-resource-policy': 'cross-origin',
  'access-control-expose-headers': 'etag, content-range, content-length, accept-ranges',
};

const isLfs = (p: string) => /\.onnx(_data(_\d+)?|\.data)?$/.test(p);

export function treeListing(dir: string, hide: ReadonlySet<string> = new Set()) {
  return walk(dir)
    .filter((p) => !hide.has(p))
    .map((p) => {
      const bytes = fs.readFileSync(path.join(dir, p));
      const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
      const lfs = isLfs(p) ? { oid: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, pointerSize: 134 } : undefined;
      return { type: 'file', oid, size: lfs ? 134 : bytes.length, path: p, ...(lfs ? { lfs } : {}) };
    });
}

/** One GET as served: what it asked for and how many body bytes went out. */
export interface ServedRequest {
  path: string;
  range: string | null;
  ifRange: string | null;
  status: number;
  /** Body bytes written before the response ended, was cut off, or the client went away. */
  bytes: number;
}

export interface HubServer {
  url: string;
  /** Every GET's path (CORS preflights are not counted). */
  requests: string[];
  /** Every file GET, with its Range / If-Range and the bytes it served. */
  log: ServedRequest[];
  /** Paths (inside a repo) the server pretends not to have. */
  hidden: Set<string>;
  /** `<repo>/<path>` -> destroy the connection after this many body bytes, once (the entry is removed). */
  drops: Map<string, number>;
  /** `<repo>/<path>` -> send this many body bytes, then hold the response open until the client leaves (once). */
  stalls: Map<string, number>;
  /** `<repo>/<path>` -> the ETag to send instead of the file's own (a file replaced on the server). */
  etags: Map<string, string>;
  /** Body bytes served for `<repo>/<path>`, over all its requests. */
  served(file: string): number;
  close(): Promise<void>;
}

/** Serve `repos` ({'owner/name': dir}) at revision `main`. */
export async function startHubServer(repos: Record<string, string>): Promise<HubServer> {
  const requests: string[] = [];
  const log: ServedRequest[] = [];
  const hidden = new Set<string>();
  const drops = new Map<string, number>();
  const stalls = new Map<string, number>();
  const etags = new Map<string, string>();
  const ownEtags = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    if (req.method === 'OPTIONS') {
      // a Range request with If-Range is not CORS-simple: the browser asks first
      res.writeHead(204, { ...CORS, 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-allow-headers': 'range, if-range', 'access-control-max-age': '600' }).end();
      return;
    }
    requests.push(url);
    for (const [repo, dir] of Object.entries(repos)) {
      if (url === `/api/models/${repo}/tree/main?recursive=true`) {
        res.writeHead(200, { ...CORS, 'content-type': 'application/json' }).end(JSON.stringify(treeListing(dir, hidden)));
        return;
      }
      const prefix = `/${repo}/resolve/main/`;
      if (!url.startsWith(prefix)) continue;
      const rel = url.slice(prefix.length);
      const file = path.join(dir, rel);
      if (rel.includes('..') || hidden.has(rel) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) break;
      serveFile(req, res, `${repo}/${rel}`, file);
      return;
    }
    res.writeHead(404, CORS).end('not found');
  });
  function etagOf(key: string, file: string): string {
    const own = ownEtags.get(key) ?? `"${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}"`;
    ownEtags.set(key, own);
    return etags.get(key) ?? own;
  }

  function serveFile(req: http.IncomingMessage, res: http.ServerResponse, key: string, file: string): void {
    const size = fs.statSync(file).size;
    const etag = etagOf(key, file);
    const range = req.headers.range ?? null;
    const ifRange = (req.headers['if-range'] as string | undefined) ?? null;
    const entry: ServedRequest = { path: key, range, ifRange, status: 200, bytes: 0 };
    log.push(entry);
    let start = 0;
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m && (ifRange === null || ifRange === etag)) {
      start = Number(m[1]);
      if (start >= size) {
        entry.status = 416;
        res.writeHead(416, { ...CORS, 'content-range': `bytes */${size}` }).end();
        return;
      }
      entry.status = 206;
    }
    const headers = { ...CORS, etag, 'accept-ranges': 'bytes', 'content-length': String(size - start), ...(entry.status === 206 && { 'content-range': `bytes ${start}-${size - 1}/${size}` }) };
    res.writeHead(entry.status, headers);
    const drop = drops.get(key);
    const stall = stalls.get(key);
    if (drop !== undefined) drops.delete(key);
    if (stall !== undefined) stalls.delete(key);
    const limit = drop ?? stall;
    const stream = fs.createReadStream(file, { start, highWaterMark: 16 * 1024 });
    stream.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const take = limit === undefined ? buf.length : Math.min(buf.length, limit - entry.bytes);
      if (take > 0) {
        res.write(buf.subarray(0, take));
        entry.bytes += take;
      }
      if (limit !== undefined && entry.bytes >= limit) {
        stream.destroy();
        // a drop: the connection breaks mid-body; a stall: the rest never comes (until the client leaves)
        if (drop !== undefined) setTimeout(() => res.socket?.destroy(), 20);
      }
    });
    stream.on('end', () => res.end());
    res.on('close', () => stream.destroy());
  }

  // Node closes idle keep-alive sockets after 5 s, racing fetch's reuse of them (ECONNRESET) while
  // a test spends longer creating sessions; real hubs keep them for minutes
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    log,
    hidden,
    drops,
    stalls,
    etags,
    served: (file) => log.filter((r) => r.path === file).reduce((n, r) => n + r.bytes, 0),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // a stalled response keeps its socket open: end it so close() returns
        server.closeAllConnections();
      }),
  };
}

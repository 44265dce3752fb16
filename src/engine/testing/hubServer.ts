/**
 * Test-only: a local HTTP server that answers like the Hugging Face Hub for model folders on disk:
 * `/<owner>/<repo>/resolve/<rev>/<path>` and `/api/models/<owner>/<repo>/tree/<rev>?recursive=true`
 * (graphs and external data as LFS entries with their sha256, small files with their git blob id).
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
const CORS = { 'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin' };

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

export interface HubServer {
  url: string;
  requests: string[];
  /** Paths (inside a repo) the server pretends not to have. */
  hidden: Set<string>;
  close(): Promise<void>;
}

/** Serve `repos` ({'owner/name': dir}) at revision `main`. */
export async function startHubServer(repos: Record<string, string>): Promise<HubServer> {
  const requests: string[] = [];
  const hidden = new Set<string>();
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
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
      res.writeHead(200, { ...CORS, 'content-length': fs.statSync(file).size });
      fs.createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404, CORS).end('not found');
  });
  // Node closes idle keep-alive sockets after 5 s, racing fetch's reuse of them (ECONNRESET) while
  // a test spends longer creating sessions; real hubs keep them for minutes
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    hidden,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Test-only: serves a built studio (a `vite build` folder) with the same headers as `vite preview`
 * (src/pwa/csp.ts), and lets a test change what it serves (`overrides`: a new deploy) or take it
 * off the network (`down`: every connection is dropped, as when the server or the network is gone).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { securityHeaders } from '../csp';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface AppServer {
  url: string;
  /** `<status> <path>` of every answer, in order (304: the browser's HTTP cache copy was still good). */
  requests: string[];
  /** Path -> body served instead of the file (e.g. a new /sw.js or /index.html). */
  overrides: Map<string, string | Uint8Array>;
  /** When true every request's connection is dropped (a network error in the browser). */
  down: boolean;
  close(): Promise<void>;
}

export async function startAppServer(dir: string): Promise<AppServer> {
  const root = path.resolve(dir);
  if (!fs.existsSync(path.join(root, 'index.html'))) throw new Error(`${root} has no index.html: build the studio first (npx vite build --outDir ${dir}).`);
  const state: Pick<AppServer, 'requests' | 'overrides' | 'down'> = { requests: [], overrides: new Map(), down: false };
  const server = http.createServer((req, res) => {
    if (state.down) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    let rel = decodeURIComponent(url.pathname);
    let file = path.join(root, rel);
    if (!file.startsWith(root + path.sep) && file !== root) {
      res.writeHead(400).end();
      return;
    }
    // the SPA's routes (no file there) get index.html, as vite preview does
    if (!state.overrides.has(rel) && (!fs.existsSync(file) || fs.statSync(file).isDirectory())) {
      rel = '/index.html';
      file = path.join(root, rel);
    }
    const body = state.overrides.get(rel) ?? fs.readFileSync(file);
    // as vite preview (sirv): no-cache with an ETag, so the browser revalidates and may keep its copy
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    const headers = { ...securityHeaders('header'), 'content-type': TYPES[path.extname(rel)] ?? 'application/octet-stream', 'cache-control': 'no-cache', etag };
    const status = req.headers['if-none-match'] === etag ? 304 : 200;
    state.requests.push(`${status} ${url.pathname}${url.search}`);
    res.writeHead(status, headers);
    res.end(status === 304 ? undefined : body);
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const app: AppServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return state.requests;
    },
    get overrides() {
      return state.overrides;
    },
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return app;
}

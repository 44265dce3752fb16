/**
 * The studio's security headers: cross-origin isolation (WASM threads need SharedArrayBuffer) and a
 * strict Content-Security-Policy. One source for `vite` (dev), `vite preview`, the `<meta>` tag of
 * the built index.html and the test servers, so they cannot drift apart.
 *
 * What the policy allows and why:
 * - scripts and workers only from our own origin; `'wasm-unsafe-eval'` lets ORT compile its .wasm
 *   (nothing else may eval). ORT's pthread workers are started from our own worker script, not from
 *   blob: URLs, so `worker-src` needs no `blob:`.
 * - `connect-src`: our origin, the Hugging Face Hub and the hosts it redirects LFS/Xet downloads to
 *   (`cdn-lfs*.hf.co`, `cas-bridge.xethub.hf.co`, `transfer.xethub.hf.co`, `*.cdn.hf.co`: every one a
 *   subdomain of hf.co or huggingface.co, huggingface.co/.well-known/meta.json lists them), the
 *   hf-mirror.com mirror, and localhost (local mirrors and tests use `?hub=http://localhost:PORT`).
 *   A model folder on any other host is refused by the browser. `blob:`: the engine hands ONNX Runtime
 *   a model file over 2 GB as the object URL of its stored Blob, which ORT fetches (a blob: URL is
 *   made by this origin's own code and readable only by it).
 * - images from our origin, `data:` and `blob:` (thumbnails, dropped init images).
 * - styles from our origin only: React writes `style` through the CSSOM, which CSP does not govern.
 * Dev mode (`npm run dev`) relaxes scripts and styles to `'unsafe-inline'` for Vite's HMR client and
 * react-refresh preamble, and allows its websocket.
 */

/** The Hub, the hosts its downloads redirect to, and a well-known mirror. */
export const HUB_SOURCES = ['https://huggingface.co', 'https://*.huggingface.co', 'https://hf.co', 'https://*.hf.co', 'https://hf-mirror.com'];

/** Local mirrors and test hubs (`?hub=http://localhost:PORT`). */
export const LOCAL_SOURCES = ['http://localhost:*', 'http://127.0.0.1:*'];

export type PolicyMode = 'header' | 'meta' | 'dev';

export function contentSecurityPolicy(mode: PolicyMode): string {
  const dev = mode === 'dev';
  const directives: [string, string[]][] = [
    ['default-src', ["'self'"]],
    ['script-src', ["'self'", "'wasm-unsafe-eval'", ...(dev ? ["'unsafe-inline'"] : [])]],
    ['worker-src', ["'self'"]],
    ['connect-src', ["'self'", 'blob:', ...HUB_SOURCES, ...LOCAL_SOURCES, ...(dev ? ['ws://localhost:*', 'ws://127.0.0.1:*'] : [])]],
    ['img-src', ["'self'", 'data:', 'blob:']],
    ['style-src', ["'self'", ...(dev ? ["'unsafe-inline'"] : [])]],
    ['font-src', ["'self'"]],
    ['manifest-src', ["'self'"]],
    ['object-src', ["'none'"]],
    ['base-uri', ["'self'"]],
    ['form-action', ["'self'"]],
  ];
  // a <meta> policy cannot carry frame-ancestors (the browser ignores it with a console error)
  if (mode !== 'meta') directives.push(['frame-ancestors', ["'none'"]]);
  return directives.map(([name, sources]) => `${name} ${sources.join(' ')}`).join('; ');
}

/** Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Every header the studio's server sends: `dev` for `vite`, `header` for `vite preview` and hosting. */
export function securityHeaders(mode: 'header' | 'dev'): Record<string, string> {
  return { ...ISOLATION_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(mode) };
}

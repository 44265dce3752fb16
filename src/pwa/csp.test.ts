import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, securityHeaders } from './csp';

/** directive -> sources */
function parse(policy: string): Record<string, string[]> {
  return Object.fromEntries(
    policy.split(';').map((d) => {
      const [name, ...sources] = d.trim().split(/\s+/);
      return [name, sources];
    }),
  );
}

/** CSP3 host-source matching, enough for scheme://host[:port] sources with a leading `*.` and port `*`. */
function allows(sources: string[], url: string, self: string): boolean {
  const u = new URL(url);
  return sources.some((s) => {
    if (s === "'self'") return u.origin === new URL(self).origin;
    const m = /^(https?):\/\/(\*\.)?([^:/]+)(?::(\*|\d+))?$/.exec(s);
    if (!m) return false;
    const [, scheme, wild, host, port] = m;
    if (u.protocol !== `${scheme}:`) return false;
    const hostOk = wild ? u.hostname.endsWith(`.${host}`) : u.hostname === host;
    const portOk = port === '*' || (port ?? '') === u.port;
    return hostOk && portOk;
  });
}

const SELF = 'http://localhost:5173/';

describe('contentSecurityPolicy', () => {
  const strict = parse(contentSecurityPolicy('header'));

  it('allows scripts and workers from our origin only, WASM compilation but no eval or inline script', () => {
    expect(strict['default-src']).toEqual(["'self'"]);
    expect(strict['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(strict['worker-src']).toEqual(["'self'"]);
    expect(strict['style-src']).toEqual(["'self'"]);
    expect(strict['object-src']).toEqual(["'none'"]);
    expect(strict['img-src']).toEqual(["'self'", 'data:', 'blob:']);
    expect(strict['frame-ancestors']).toEqual(["'none'"]);
  });

  it('lets the engine reach the Hub and every host it redirects downloads to, local mirrors, and nothing else', () => {
    const connect = strict['connect-src'];
    // huggingface.co/.well-known/meta.json (hubDomains, lfsDomains, cdnDomains) and the legacy LFS/Xet hosts
    const hub = [
      'https://huggingface.co/api/models/webdit/sd3-tiny/tree/main?recursive=true',
      'https://hf.co/webdit/sd3-tiny/resolve/main/model_index.json',
      'https://cdn-lfs.hf.co/repos/ab/cd/x',
      'https://cdn-lfs-us-1.hf.co/repos/ab/cd/x',
      'https://cdn-lfs-eu-1.hf.co/repos/ab/cd/x',
      'https://transfer.xethub.hf.co/x',
      'https://transfer.xethub-eu.hf.co/x',
      'https://cas-bridge.xethub.hf.co/xet-bridge-us/abc',
      'https://us.aws.cdn.hf.co/xet-bridge-us/abc',
      'https://us-east1.us.gcp.cdn.hf.co/x',
      'https://cdn-lfs.huggingface.co/repos/ab/cd/x',
      'https://cdn-lfs-us-1.huggingface.co/repos/ab/cd/x',
      'https://hf-mirror.com/webdit/sd3-tiny/resolve/main/model_index.json',
      'http://localhost:8080/webdit/sd3-tiny/resolve/main/model_index.json',
      'http://127.0.0.1:41234/api/models/webdit/sd3-tiny/tree/main?recursive=true',
      'http://localhost:5173/models/webdit-tiny/manifest.json',
    ];
    for (const url of hub) expect(allows(connect, url, SELF), url).toBe(true);
    const refused = [
      'https://evil.example/model.onnx',
      'http://huggingface.co/x', // not https
      'https://huggingface.co.evil.example/x',
      'https://evilhf.co/x',
      'http://192.168.1.10:8080/x',
      'http://localhost.evil.example/x',
    ];
    for (const url of refused) expect(allows(connect, url, SELF), url).toBe(false);
    // a model file over 2 GB reaches ONNX Runtime as an object URL of its stored Blob, which ORT fetches
    expect(connect).toContain('blob:');
  });

  it('puts everything but frame-ancestors in the <meta> tag (browsers ignore it there)', () => {
    const meta = parse(contentSecurityPolicy('meta'));
    expect(meta['frame-ancestors']).toBeUndefined();
    const { 'frame-ancestors': _, ...rest } = strict;
    expect(meta).toEqual(rest);
  });

  it("relaxes only what Vite's dev server needs: inline scripts and styles, its websocket", () => {
    const dev = parse(contentSecurityPolicy('dev'));
    expect(dev['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'", "'unsafe-inline'"]);
    expect(dev['style-src']).toEqual(["'self'", "'unsafe-inline'"]);
    expect(dev['connect-src']).toEqual([...strict['connect-src'], 'ws://localhost:*', 'ws://127.0.0.1:*']);
    expect(dev['script-src']).not.toContain("'unsafe-eval'");
  });

  it('goes with the cross-origin isolation headers WASM threads need', () => {
    expect(securityHeaders('header')).toEqual({
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Content-Security-Policy': contentSecurityPolicy('header'),
    });
  });
});

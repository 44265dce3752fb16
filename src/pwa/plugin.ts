/**
 * Build-time side of the installable, offline studio (Node only, used by vite.config.ts):
 * - the built index.html gets the strict CSP as a `<meta>` tag (static hosts that cannot set
 *   headers still get the policy; `vite preview` sends it as a header too);
 * - `/sw.js` is bundled from src/pwa/sw.ts with this build's file list and version, which is a hash
 *   of every precached file's name and bytes, the embedded model's manifest.json among them: a new
 *   build or a new model gives a new sw.js, which the browser installs and which replaces the old
 *   cache.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin, type ResolvedConfig } from 'vite';
import { contentSecurityPolicy } from './csp.js';
import type { SwConfig } from './swCore';

export interface PwaOptions {
  /** The embedded model folder inside the public dir, ending in '/'. */
  model: string;
  /** Files or folders of the public dir to precache (the model's manifest.json is always added). */
  precache: string[];
}

export interface PrecacheFile {
  /** Scope-relative URL ('' for index.html). */
  url: string;
  bytes: Uint8Array | string;
  /** Its name carries a hash of its content (Vite's `[name]-[hash]` assets). */
  hashed?: boolean;
}

/** The service worker's config: the files to precache and a version that changes with any of them. */
export function swConfig(files: PrecacheFile[], model: string, modelManifest: string): SwConfig {
  const sorted = [...files].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  const hash = createHash('sha256');
  for (const f of sorted) hash.update(`${f.url}\0${f.bytes.length}\0`).update(f.bytes);
  let parsed: { files?: Record<string, { sha256?: string }> };
  try {
    parsed = JSON.parse(modelManifest);
  } catch (e) {
    throw new Error(`The embedded model's manifest.json is not JSON (${(e as Error).message}): re-export the model folder.`);
  }
  const modelFiles = Object.fromEntries(Object.entries(parsed.files ?? {}).map(([p, f]) => [p, f.sha256 ?? '']));
  return {
    version: hash.digest('hex').slice(0, 16),
    shell: sorted.map((f) => f.url),
    mutable: sorted.filter((f) => !f.hashed).map((f) => f.url),
    model: { base: model, files: modelFiles },
  };
}

function publicFiles(publicDir: string, rel: string): string[] {
  const full = path.join(publicDir, rel);
  if (!fs.existsSync(full)) throw new Error(`PWA precache: ${full} does not exist (run node scripts/make-icons.mjs for the icons).`);
  if (!fs.statSync(full).isDirectory()) return [rel];
  return fs.readdirSync(full).flatMap((name) => publicFiles(publicDir, path.posix.join(rel, name)));
}

const SW_ENTRY = fileURLToPath(new URL('./sw.ts', import.meta.url));

export function webditPwa(opts: PwaOptions): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'webdit-pwa',
    apply: 'build',
    enforce: 'post',
    configResolved(c) {
      config = c;
    },
    transformIndexHtml(html) {
      // right after <meta charset>: before every script and stylesheet the policy must govern
      const meta = `<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy('meta')}" />`;
      const charset = /<meta charset="[^"]*"\s*\/?>/i;
      if (!charset.test(html)) throw new Error('PWA: index.html has no <meta charset> to put the CSP <meta> after.');
      return html.replace(charset, (m) => `${m}\n    ${meta}`);
    },
    async generateBundle(_options, bundle) {
      if (config.build.ssr || !bundle['index.html']) return; // only the app's own build (not workers' sub-builds)
      const files: PrecacheFile[] = [];
      for (const [name, out] of Object.entries(bundle)) {
        if (name.endsWith('.map')) continue;
        files.push({ url: name === 'index.html' ? '' : name, bytes: out.type === 'chunk' ? out.code : out.source, hashed: name !== 'index.html' });
      }
      const manifestPath = path.join(opts.model, 'manifest.json');
      for (const rel of [...opts.precache, manifestPath]) {
        for (const f of publicFiles(config.publicDir, rel)) files.push({ url: f.split(path.sep).join('/'), bytes: fs.readFileSync(path.join(config.publicDir, f)) });
      }
      const cfg = swConfig(files, opts.model, fs.readFileSync(path.join(config.publicDir, manifestPath), 'utf8'));
      const out = await build({
        configFile: false,
        root: config.root,
        logLevel: 'warn',
        publicDir: false,
        define: { __WEBDIT_SW__: JSON.stringify(cfg) },
        build: {
          write: false,
          target: 'es2022',
          minify: true,
          lib: { entry: SW_ENTRY, formats: ['iife'], name: 'webditServiceWorker', fileName: () => 'sw.js' },
        },
      });
      const chunk = (Array.isArray(out) ? out : [out]).flatMap((o) => ('output' in o ? o.output : [])).find((o) => o.type === 'chunk');
      if (!chunk || chunk.type !== 'chunk') throw new Error('PWA: bundling src/pwa/sw.ts produced no script.');
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: chunk.code });
    },
  };
}

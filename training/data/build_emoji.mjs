// Builds the emoji part of the training set from npm packages (devDependencies), no network.
// Output: training/data/cache/emoji.u8 (N x 64 x 64 x 3 uint8, on white) + emoji.json (labels).
// Usage: node training/data/build_emoji.mjs [outDir] [limit]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';

const require = createRequire(import.meta.url);
const SIZE = 64;
const outDir = process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), 'cache');
const limit = Number(process.argv[3] ?? Infinity);

const emojibase = require('emojibase-data/en/data.json');
const datasource = require('emoji-datasource/emoji.json');
const fluentChars = require('@iconify-json/fluent-emoji-flat/chars.json');
const fluentIcons = require('@iconify-json/fluent-emoji-flat/icons.json');
const googleDir = path.dirname(require.resolve('emoji-datasource-google/package.json')) + '/img/google/64';
const twitterDir = path.dirname(require.resolve('emoji-datasource-twitter/package.json')) + '/img/twitter/64';

// Hex keys differ between packages only in FE0F (emoji presentation selector) and case.
const norm = (hex) => hex.toLowerCase().split('-').filter((p) => p !== 'fe0f').join('-');

const dsImages = new Map(); // norm hex -> {file, google, twitter}
for (const e of datasource) {
  dsImages.set(norm(e.unified), { file: e.image, google: e.has_img_google, twitter: e.has_img_twitter });
  for (const v of Object.values(e.skin_variations ?? {})) {
    dsImages.set(norm(v.unified), { file: v.image, google: v.has_img_google, twitter: v.has_img_twitter });
  }
}
const fluentByHex = new Map(Object.entries(fluentChars).map(([k, v]) => [norm(k), v]));

/** Composite RGBA (premultiplied=false) over white, resample to 64x64 by box filter if needed. */
function toRgbOnWhite(rgba, w, h) {
  const out = new Uint8Array(SIZE * SIZE * 3);
  const sx = w / SIZE, sy = h / SIZE;
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
    let r = 0, g = 0, b = 0, n = 0;
    for (let yy = Math.floor(y * sy); yy < Math.floor((y + 1) * sy); yy++)
      for (let xx = Math.floor(x * sx); xx < Math.floor((x + 1) * sx); xx++) {
        const i = (yy * w + xx) * 4, a = rgba[i + 3] / 255;
        r += rgba[i] * a + 255 * (1 - a); g += rgba[i + 1] * a + 255 * (1 - a); b += rgba[i + 2] * a + 255 * (1 - a); n++;
      }
    const o = (y * SIZE + x) * 3;
    out[o] = Math.round(r / n); out[o + 1] = Math.round(g / n); out[o + 2] = Math.round(b / n);
  }
  return out;
}

function loadPng(file) {
  const png = PNG.sync.read(fs.readFileSync(file));
  return toRgbOnWhite(png.data, png.width, png.height);
}

function renderFluent(name) {
  const icon = fluentIcons.icons[name] ?? fluentIcons.icons[fluentIcons.aliases?.[name]?.parent];
  if (!icon) return null;
  const w = icon.width ?? fluentIcons.width, h = icon.height ?? fluentIcons.height;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${icon.body}</svg>`;
  // Render at 4x and box-filter down: smoother edges than resvg's direct 64 px raster.
  const r = new Resvg(svg, { fitTo: { mode: 'width', value: SIZE * 4 }, background: 'rgba(255,255,255,0)' }).render();
  return toRgbOnWhite(r.pixels, r.width, r.height);
}

const entries = [];
for (const e of emojibase) {
  entries.push({ hex: e.hexcode, label: e.label, tags: e.tags ?? [], emoji: e.emoji, group: e.group ?? -1, base: e.hexcode });
  for (const s of e.skins ?? []) entries.push({ hex: s.hexcode, label: s.label, tags: e.tags ?? [], emoji: s.emoji, group: e.group ?? -1, base: e.hexcode });
}

fs.mkdirSync(outDir, { recursive: true });
const meta = [];
const chunks = [];
let missing = { noto: 0, twemoji: 0, fluent: 0 };
for (const e of entries) {
  if (meta.length >= limit) break;
  const key = norm(e.hex);
  const ds = dsImages.get(key);
  const sources = [
    ['noto', () => (ds?.google ? loadPng(path.join(googleDir, ds.file)) : null)],
    ['twemoji', () => (ds?.twitter ? loadPng(path.join(twitterDir, ds.file)) : null)],
    ['fluent', () => (fluentByHex.has(key) ? renderFluent(fluentByHex.get(key)) : null)],
  ];
  for (const [style, load] of sources) {
    let img = null;
    try { img = load(); } catch { img = null; }
    if (!img) { missing[style]++; continue; }
    chunks.push(img);
    meta.push({ hex: e.hex, base: e.base, label: e.label, tags: e.tags, emoji: e.emoji, group: e.group, style });
  }
}
const buf = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer)));
fs.writeFileSync(path.join(outDir, 'emoji.u8'), buf);
fs.writeFileSync(path.join(outDir, 'emoji.json'), JSON.stringify({ size: SIZE, count: meta.length, items: meta }));
console.log(JSON.stringify({ images: meta.length, emoji: entries.length, missing, bytes: buf.length }));

// Draws the studio's icons (one SVG, rendered with resvg) into public/: favicon.ico (16, 32 and 48 px
// PNGs in one ICO), icons/icon-192.png, icons/icon-512.png, icons/icon-maskable-512.png (full bleed,
// the mark inside the 80% safe circle) and icons/apple-touch-icon.png (180 px). Deterministic: the
// same script gives the same bytes. Run: node scripts/make-icons.mjs
import { Resvg } from '@resvg/resvg-js';
import fs from 'node:fs';
import path from 'node:path';

const OUT = path.resolve('public');
const BG = '#0e1015';
const ACCENT = '#7c9cff';
const ACCENT_STRONG = '#5b7cf5';

/** mulberry32, so the "noise" half of the mark is the same on every run. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * The mark on a 100x100 canvas: a disc that turns from noise (left, grey pixels) into a clean
 * gradient (right): what a diffusion model does to an image. `inset` shrinks it toward the centre.
 */
function mark(inset) {
  const r = 34 * inset;
  const next = rng(7);
  const cells = [];
  const cell = 6 * inset;
  for (let y = 50 - r; y < 50 + r; y += cell) {
    for (let x = 50 - r; x < 50; x += cell) {
      const v = Math.round(60 + next() * 160);
      const fade = (50 - x) / r; // denser noise toward the left edge
      if (next() < 0.25 + 0.6 * fade) cells.push(`<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${cell.toFixed(2)}" height="${cell.toFixed(2)}" fill="rgb(${v},${v},${Math.min(255, v + 30)})"/>`);
    }
  }
  return `
  <defs>
    <linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="${ACCENT}"/><stop offset="1" stop-color="${ACCENT_STRONG}"/>
    </linearGradient>
    <clipPath id="disc"><circle cx="50" cy="50" r="${r}"/></clipPath>
  </defs>
  <circle cx="50" cy="50" r="${r}" fill="url(#g)"/>
  <g clip-path="url(#disc)">${cells.join('')}</g>
  <circle cx="50" cy="50" r="${r}" fill="none" stroke="${ACCENT}" stroke-width="${(2.5 * inset).toFixed(2)}"/>`;
}

function svg({ rounded, inset }) {
  const bg = rounded ? `<rect width="100" height="100" rx="22" fill="${BG}"/>` : `<rect width="100" height="100" fill="${BG}"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">${bg}${mark(inset)}</svg>`;
}

function png(source, size) {
  return new Resvg(source, { fitTo: { mode: 'width', value: size } }).render().asPng();
}

/** An ICO whose images are PNGs (every browser and Windows since Vista read these). */
function ico(images) {
  const header = Buffer.alloc(6 + 16 * images.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(images.length, 4);
  let offset = header.length;
  images.forEach(({ size, data }, i) => {
    const e = 6 + 16 * i;
    header.writeUInt8(size >= 256 ? 0 : size, e);
    header.writeUInt8(size >= 256 ? 0 : size, e + 1);
    header.writeUInt8(0, e + 2); // palette
    header.writeUInt8(0, e + 3);
    header.writeUInt16LE(1, e + 4); // planes
    header.writeUInt16LE(32, e + 6); // bits per pixel
    header.writeUInt32LE(data.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += data.length;
  });
  return Buffer.concat([header, ...images.map((i) => i.data)]);
}

const app = svg({ rounded: true, inset: 1 });
const maskable = svg({ rounded: false, inset: 0.8 });
const write = (rel, data) => {
  fs.mkdirSync(path.dirname(path.join(OUT, rel)), { recursive: true });
  fs.writeFileSync(path.join(OUT, rel), data);
  console.log(`${rel}: ${data.length} bytes`);
};

write('favicon.ico', ico([16, 32, 48].map((size) => ({ size, data: png(app, size) }))));
write('icons/icon-192.png', png(app, 192));
write('icons/icon-512.png', png(app, 512));
write('icons/icon-maskable-512.png', png(maskable, 512));
write('icons/apple-touch-icon.png', png(svg({ rounded: false, inset: 0.9 }), 180));

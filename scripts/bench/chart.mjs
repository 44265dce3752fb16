// The benchmark's rows as an SVG chart (no dependencies): one panel of ms per CFG step against the
// native floor, one of seconds from page open to ready and to the first image, one of the GEMM floor
// (MatMuls alone, native vs WASM) when bench.mjs measured it.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel({ title, bars, unit, y, width, floor, floorLabel }) {
  const labelW = 300;
  const barH = 22;
  const gap = 8;
  const plotW = width - labelW - 260;
  const max = Math.max(...bars.map((b) => b.value), floor ?? 0) || 1;
  const out = [`<text x="16" y="${y + 18}" class="title">${esc(title)}</text>`];
  let yy = y + 32;
  for (const b of bars) {
    const w = Math.max(1, (b.value / max) * plotW);
    out.push(`<text x="${labelW - 8}" y="${yy + 15}" class="label" text-anchor="end">${esc(b.label)}</text>`);
    out.push(`<rect x="${labelW}" y="${yy}" width="${w.toFixed(1)}" height="${barH}" rx="3" class="${b.kind}"/>`);
    const note = b.note ? ` (${b.note})` : '';
    out.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${yy + 15}" class="value">${esc(`${b.value < 10 ? b.value.toFixed(2) : b.value.toFixed(b.value < 100 ? 1 : 0)} ${unit}${note}`)}</text>`);
    yy += barH + gap;
  }
  if (floor) {
    const x = labelW + (floor / max) * plotW;
    out.push(`<line x1="${x.toFixed(1)}" y1="${y + 28}" x2="${x.toFixed(1)}" y2="${yy - gap + 4}" class="floor"/>`);
    out.push(`<text x="${(x + 3).toFixed(1)}" y="${yy + 10}" class="floorlabel">2x native (${floorLabel})</text>`);
  }
  return { svg: out.join('\n'), height: yy - y + 20 };
}

/** SVG text for the rows bench.mjs printed (missing rows are left out). */
export function benchChart(rows, { title, subtitle = '' }) {
  const width = 1040;
  const find = (pred) => rows.find(pred);
  // the floor: native's fastest forward (on a busy 2-core machine 1 thread can beat 2)
  const natives = rows.filter((r) => r.row === 'native-forward');
  const native = natives.length ? natives.reduce((a, b) => (b.ms < a.ms ? b : a)) : undefined;
  const threads = (n) => `${n} thread${n > 1 ? 's' : ''}`;
  const vs = (r) => (Number.isFinite(r.vsNative) ? `${r.vsNative.toFixed(2)}x native, same threads` : '');
  const stepBars = [];
  for (const r of rows.filter((r) => r.row === 'native-forward')) stepBars.push({ label: `native onnxruntime-node, ${threads(r.threads)}`, value: r.ms, kind: 'native' });
  for (const r of rows.filter((r) => r.row === 'wasm-forward')) stepBars.push({ label: `ORT-web WASM, ${r.build} build, ${threads(r.threads)}`, value: r.ms, kind: r.build === 'plain' ? 'wasm' : 'wasmalt', note: vs(r) });
  const step = find((r) => r.row === 'studio-step');
  if (step) stepBars.push({ label: `studio: ms per step, ${threads(step.threads)}`, value: step.msPerStep, kind: 'studio', note: `${step.vsNative.toFixed(2)}x native; step - forward ${step.overheadMs.toFixed(1)} ms` });
  const loadBars = [];
  for (const visit of ['cold', 'warm']) {
    const r = find((x) => x.row === 'studio-visit' && x.visit === visit);
    if (!r) continue;
    loadBars.push({ label: `${visit} visit: page open → model ready`, value: r.openToReadyMs / 1000, kind: 'load' });
    loadBars.push({ label: `${visit} visit: page open → first image`, value: r.openToFirstImageMs / 1000, kind: 'first' });
  }
  const first = find((r) => r.row === 'first-vs-later' && r.visit === 'cold') ?? find((r) => r.row === 'first-vs-later');
  if (first) {
    const warm = find((r) => r.row === 'first-vs-later' && r.visit === 'warm');
    loadBars.push({ label: 'first image after a cold load (engine)', value: first.firstMs / 1000, kind: 'first', note: `${first.ratio.toFixed(2)}x a later one${warm ? `; warm visit ${warm.ratio.toFixed(2)}x` : ''}` });
    loadBars.push({ label: 'a later image (median)', value: first.laterMs / 1000, kind: 'load' });
  }
  const a = panel({ title: 'Transformer forward at batch 2 (one CFG step), ms', bars: stepBars, unit: 'ms', y: 62, width, floor: native ? 2 * native.ms : undefined, floorLabel: native ? `the fastest, ${threads(native.threads)}` : '' });
  const b = panel({ title: 'Studio, seconds', bars: loadBars, unit: 's', y: 62 + a.height + 10, width });
  const gemmBars = [];
  for (const r of rows.filter((x) => x.row === 'gemm-floor')) {
    gemmBars.push({ label: `MatMuls only: native, ${threads(r.threads)}`, value: r.nativeMs, kind: 'native', note: `${r.nativeGflops.toFixed(0)} GFLOP/s` });
    gemmBars.push({ label: `MatMuls only: WASM, ${threads(r.threads)}`, value: r.wasmMs, kind: 'wasm', note: `${r.wasmGflops.toFixed(0)} GFLOP/s, ${r.vsNative.toFixed(2)}x native` });
  }
  const g = gemmBars.length
    ? panel({ title: `The floor: a graph of only MatMuls (the MLP's shapes, ${rows.find((x) => x.row === 'gemm-floor').shape}), ms`, bars: gemmBars, unit: 'ms', y: 62 + a.height + 10 + b.height + 10, width })
    : { svg: '', height: 0 };
  const height = 62 + a.height + 10 + b.height + 10 + g.height + (g.height ? 10 : 0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<style>
.title { font-size: 15px; font-weight: 600; fill: #222; }
.label { font-size: 12.5px; fill: #333; }
.value { font-size: 12px; fill: #444; }
.native { fill: #6b7280; } .wasm { fill: #2563eb; } .wasmalt { fill: #93c5fd; } .studio { fill: #7c3aed; }
.load { fill: #10b981; } .first { fill: #f59e0b; }
.floor { stroke: #dc2626; stroke-dasharray: 4 3; stroke-width: 1.5; } .floorlabel { font-size: 11px; fill: #dc2626; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="26" font-size="17" font-weight="700" fill="#111">${esc(title)}</text>
<text x="16" y="46" font-size="12.5" fill="#555">${esc(subtitle)}</text>
${a.svg}
${b.svg}
${g.svg}
</svg>
`;
}

import type { BackendInfo, DeviceReport, GenerateTimings } from '../engine/protocol';
import { selectShownImage } from '../store/selectors';
import { useStudio } from '../store/store';
import './RunTools.css';

const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
const bytes = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`);
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

const W = 320;
const H = 96;
const PAD = { left: 36, right: 4, top: 6, bottom: 16 };

/** Milliseconds per step as bars (our own SVG); steps that also decoded a preview are marked. */
export function StepChart({ stepMs, previewSteps }: { stepMs: number[]; previewSteps: Set<number> }) {
  const max = Math.max(...stepMs, 1e-3);
  const n = stepMs.length;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / n;
  const bar = Math.max(1, slot * 0.8);
  const sorted = [...stepMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(n / 2)];
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  return (
    <svg className="step-chart" data-testid="timing-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Milliseconds per step, ${n} steps: median ${ms(median)}, slowest ${ms(max)}`}>
      <line className="axis" x1={PAD.left} y1={PAD.top + plotH} x2={W - PAD.right} y2={PAD.top + plotH} />
      <line className="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={PAD.top + plotH} />
      <text className="tick" x={PAD.left - 4} y={PAD.top + 8} textAnchor="end">
        {ms(max)}
      </text>
      <text className="tick" x={PAD.left - 4} y={PAD.top + plotH} textAnchor="end">
        0
      </text>
      <line className="median" x1={PAD.left} y1={y(median)} x2={W - PAD.right} y2={y(median)} />
      {stepMs.map((v, i) => {
        const step = n > 0 ? i + 1 : 0;
        return (
          <rect
            key={i}
            data-testid="timing-bar"
            data-step={step}
            data-ms={v.toFixed(3)}
            data-preview={previewSteps.has(i)}
            className={previewSteps.has(i) ? 'bar preview' : 'bar'}
            x={PAD.left + i * slot + (slot - bar) / 2}
            y={y(v)}
            width={bar}
            height={Math.max(0.5, PAD.top + plotH - y(v))}
          >
            <title>{`Step ${step}: ${ms(v)}${previewSteps.has(i) ? ' (with a preview decode)' : ''}`}</title>
          </rect>
        );
      })}
      <text className="tick" x={PAD.left} y={H - 3}>
        1
      </text>
      <text className="tick" x={W - PAD.right} y={H - 3} textAnchor="end">
        {n}
      </text>
    </svg>
  );
}

function Totals({ t }: { t: GenerateTimings }) {
  return (
    <dl className="runtool-facts" data-testid="timing-totals">
      <dt>Text encode</dt>
      <dd data-testid="timing-encode">{ms(t.encodeMs)}</dd>
      <dt>Denoise</dt>
      <dd data-testid="timing-denoise">
        {ms(t.denoiseMs)} ({ms(t.msPerStep)} per step)
      </dd>
      <dt>Decode</dt>
      <dd data-testid="timing-decode">{ms(t.decodeMs)}</dd>
      <dt>Total</dt>
      <dd data-testid="timing-total">{ms(t.totalMs)}</dd>
      {t.readbacks !== undefined && (
        <>
          <dt>GPU reads</dt>
          <dd>
            {t.readbacks} ({t.denoiseReadbacks ?? 0} while denoising)
          </dd>
        </>
      )}
    </dl>
  );
}

export function DeviceFacts({ backend }: { backend: BackendInfo }) {
  const r: DeviceReport | undefined = backend.report;
  const gpu = r?.webgpu;
  return (
    <dl className="runtool-facts" data-testid="device-report" data-backend={backend.backend}>
      <dt>Backend</dt>
      <dd data-testid="device-backend">{backend.backend === 'webgpu' ? 'WebGPU' : `WASM (${backend.threads} thread${backend.threads === 1 ? '' : 's'})`}</dd>
      {backend.fallbackReason && (
        <>
          <dt>Why not WebGPU</dt>
          <dd>{backend.fallbackReason}</dd>
        </>
      )}
      <dt>WebGPU adapter</dt>
      <dd data-testid="device-adapter">
        {gpu ? [gpu.vendor, gpu.architecture, gpu.description].filter(Boolean).join(' / ') || 'unnamed adapter' : (r?.webgpuMissing ?? backend.adapter ?? 'not reported')}
        {gpu?.isFallbackAdapter ? ' (software fallback)' : ''}
      </dd>
      {gpu && (
        <>
          <dt>shader-f16</dt>
          <dd data-testid="device-f16">{yesNo(gpu.features.includes('shader-f16'))}</dd>
          <dt>Features</dt>
          <dd className="small">{gpu.features.join(', ') || 'none'}</dd>
          <dt>maxBufferSize</dt>
          <dd data-testid="device-max-buffer">{bytes(gpu.limits.maxBufferSize)}</dd>
          <dt>maxStorageBufferBindingSize</dt>
          <dd data-testid="device-max-binding">{bytes(gpu.limits.maxStorageBufferBindingSize)}</dd>
        </>
      )}
      {r && (
        <>
          <dt>WASM</dt>
          <dd data-testid="device-wasm">
            {r.wasm.threads} thread{r.wasm.threads === 1 ? '' : 's'}
            {r.wasm.hardwareConcurrency ? ` of ${r.wasm.hardwareConcurrency} cores` : ''}, SIMD {yesNo(r.wasm.simd)}, cross-origin isolated {yesNo(r.wasm.crossOriginIsolated)}
          </dd>
        </>
      )}
    </dl>
  );
}

/** Steps (0-based, within the run's own steps) that also decoded a preview. */
export function previewStepIndices(numInferenceSteps: number, previewEvery: number, steps: number): Set<number> {
  const k = numInferenceSteps - steps; // image-to-image skips the first k
  const out = new Set<number>();
  if (previewEvery <= 0) return out;
  for (let i = 0; i < steps; i++) {
    const step = k + i + 1;
    if (step < numInferenceSteps && (step - k) % previewEvery === 0) out.add(i);
  }
  return out;
}

/** The shown image's run: ms per step, the totals, and the device and backend it ran on. */
export function TimingPanel() {
  const shown = useStudio(selectShownImage);
  const backend = useStudio((s) => s.model.backend);
  if (!shown) return null;
  const t = shown.timings;
  const stepMs = t.stepMs ?? [];
  return (
    <section className="panel runtool timing" aria-label="Run report" data-testid="timing-panel" data-steps={stepMs.length}>
      <div className="runtool-head">
        <h2>Run report</h2>
        <span className="muted small">seed {shown.params.seed}</span>
      </div>
      {stepMs.length > 0 ? <StepChart stepMs={stepMs} previewSteps={previewStepIndices(shown.params.numInferenceSteps, shown.params.previewEvery, stepMs.length)} /> : <p className="muted small">No per-step timings for this image.</p>}
      <Totals t={t} />
      {backend && <DeviceFacts backend={backend} />}
    </section>
  );
}

/** Human-readable numbers shared by the reducer's notices and the components. */

/** 1234 -> "1.2 s": short enough for a status line. */
export const formatSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** "1.23 s · 45 ms/step" */
export const formatTimings = (totalMs: number, msPerStep: number) =>
  `${(totalMs / 1000).toFixed(2)} s · ${Math.round(msPerStep)} ms/step`;

const UNITS = ['B', 'kB', 'MB', 'GB'];

/** Decimal units, like browsers' download UIs: 1_500_000 -> "1.5 MB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

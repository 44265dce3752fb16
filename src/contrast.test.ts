/**
 * Placeholder text must be readable (WCAG 2.x AA: contrast >= 4.5:1 against the field). The colours
 * are read from styles.css itself: the ::placeholder rule's colour and the text fields' background,
 * resolved through the :root custom properties.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const css = fs.readFileSync(path.resolve('src/styles.css'), 'utf8');

function rule(selectorPart: string): string {
  const m = new RegExp(`[^{}]*${selectorPart.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^{}]*\\{([^}]*)\\}`).exec(css);
  if (!m) throw new Error(`no rule for ${selectorPart} in styles.css`);
  return m[1];
}

function colour(body: string, property: string): string {
  const m = new RegExp(`(?:^|[;\\s])${property}:\\s*([^;]+);`).exec(body);
  if (!m) throw new Error(`no ${property} in ${body}`);
  const value = m[1].trim();
  const v = /^var\((--[\w-]+)\)$/.exec(value);
  if (!v) return value;
  const root = new RegExp(`${v[1]}:\\s*(#[0-9a-fA-F]{6})`).exec(rule(':root'));
  if (!root) throw new Error(`${v[1]} is not a #rrggbb colour in :root`);
  return root[1];
}

/** WCAG relative luminance of #rrggbb. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const contrast = (a: string, b: string) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};

describe('placeholder contrast', () => {
  it('computes WCAG contrast like the specification (white on black 21:1, #777 on white 4.48:1)', () => {
    expect(contrast('#ffffff', '#000000')).toBeCloseTo(21, 5);
    expect(contrast('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
  });

  it('the text fields\' placeholders reach 4.5:1 on their background', () => {
    const fg = colour(rule('textarea::placeholder'), 'color');
    const bg = colour(rule("input[type='text']"), 'background');
    expect(contrast(fg, bg)).toBeGreaterThanOrEqual(4.5);
  });
});

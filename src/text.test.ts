import { describe, expect, it } from 'vitest';
import { cleanText, LABEL_MAX, labelText } from './text';

describe('labelText: a prompt as an ARIA label (fault table 2b)', () => {
  it('keeps a short prompt as it is, cleaned', () => {
    expect(labelText('a red star')).toBe('a red star');
    expect(labelText('a red\r\nstar,\tblue sky\u0007')).toBe('a red\nstar,\tblue sky');
    expect(labelText('')).toBe('');
  });

  it('cuts a 10,000-character prompt at a word and says how long it was', () => {
    const prompt = 'a small red star at the top left, '.repeat(300).slice(0, 10_000);
    const label = labelText(prompt);
    expect(label.length).toBeLessThanOrEqual(LABEL_MAX + ' (10,000 characters in all)'.length + 1);
    expect(label.endsWith('… (10,000 characters in all)')).toBe(true);
    const kept = label.slice(0, label.indexOf('…'));
    expect(prompt.startsWith(kept)).toBe(true);
    // at a word: the next character of the prompt is a space or a comma's space
    expect(prompt[kept.length]).toMatch(/[ ,]/);
  });

  it('cuts a prompt without spaces at the limit, never inside an emoji (a surrogate pair)', () => {
    const label = labelText('😀'.repeat(500));
    expect(label).toBe(`${'😀'.repeat(LABEL_MAX)}… (500 characters in all)`);
    expect(labelText('x'.repeat(LABEL_MAX))).toBe('x'.repeat(LABEL_MAX));
  });

  it('counts what is left after cleaning', () => {
    expect(labelText(`${'\u0000'.repeat(300)}ok`)).toBe('ok');
    expect(labelText(`${'word\n'.repeat(100)}`)).toBe(`${'word\n'.repeat(39)}word… (500 characters in all)`);
    expect(cleanText('a\r\nb')).toBe('a\nb');
  });
});

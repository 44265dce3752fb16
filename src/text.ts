/**
 * Input hygiene for prompt text: what the store keeps, the engine conditions on, the PNG metadata
 * carries and the image's ARIA label reads is all the same cleaned text, so a restored PNG makes
 * the same image and no invisible character reaches another tool.
 */

/** Line breaks other than \n: CRLF, a lone CR, NEL (U+0085), LINE and PARAGRAPH SEPARATOR. */
const LINE_BREAKS = /\r\n|[\r\u0085\u2028\u2029]/g;

/**
 * Removed outright:
 * - C0 and C1 control characters and DEL, except \t and \n (NUL, BEL, ESC of an ANSI colour code…);
 * - bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): an unbalanced RLO flips
 *   how the rest of a line displays in other tools. LRM/RLM (U+200E/U+200F) stay: they only mark;
 * - the byte order mark / zero width no-break space (U+FEFF).
 * ZWJ (U+200D) and variation selectors stay: emoji sequences need them.
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** The text with other line breaks turned into \n and unsafe characters removed (see UNSAFE). */
export function cleanText(text: string): string {
  return text.replace(LINE_BREAKS, '\n').replace(UNSAFE, '');
}


/** The longest prompt an ARIA label or a tooltip carries: a screen reader reads a label whole. */
export const LABEL_MAX = 200;

/**
 * A prompt as a label: cleaned (see cleanText), and past `max` characters cut at a word (never
 * inside a surrogate pair) with how long the whole prompt is, so a 10,000-character prompt is not
 * read out in full (fault table 2b).
 */
export function labelText(text: string, max = LABEL_MAX): string {
  const clean = cleanText(text);
  const chars = [...clean];
  if (chars.length <= max) return clean;
  let cut = chars.slice(0, max).join('');
  const space = cut.search(/\s\S*$/);
  if (space >= max * 0.75) cut = cut.slice(0, space);
  return `${cut.trimEnd()}… (${chars.length.toLocaleString('en-US')} characters in all)`;
}

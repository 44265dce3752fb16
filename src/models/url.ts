/**
 * The page URL's model choice: `?model=` (repo id or folder URL), `?revision=`, `?hub=` (read by
 * store/params.ts' modelUrlFromSearch) and `?t5=on|off` (SD3's T5, absent: the engine decides).
 */
import { DEFAULT_HUB } from '../store/params';

/** SD3's optional T5: the components left out without it (families/sd3 `droppable`). */
export const T5_COMPONENTS = ['text_encoder_3', 'tokenizer_3'];

/** `?t5=` as the load's skipComponents: off -> T5 left out, on -> nothing left out, absent -> undefined (decide). */
export function loadOptionsFromSearch(search: string): { skipComponents?: string[] } | undefined {
  const t5 = new URLSearchParams(search).get('t5');
  if (t5 === 'off') return { skipComponents: [...T5_COMPONENTS] };
  if (t5 === 'on') return { skipComponents: [] };
  return undefined;
}

export interface ModelChoice {
  /** The `?model=` value; null: the embedded model. */
  model: string | null;
  hub?: string | null;
  revision?: string | null;
  /** true/false: T5 asked for or left out; undefined: no choice (the engine decides). */
  t5?: boolean;
}

/** The page URL with this model chosen (other parameters kept). */
export function urlWithModel(href: string, choice: ModelChoice): string {
  const url = new URL(href);
  const q = url.searchParams;
  for (const k of ['model', 'revision', 't5']) q.delete(k);
  if (choice.model !== null) {
    q.set('model', choice.model);
    if (choice.revision && choice.revision !== 'main') q.set('revision', choice.revision);
    if (choice.hub !== undefined) {
      if (choice.hub && choice.hub.replace(/\/+$/, '') !== DEFAULT_HUB) q.set('hub', choice.hub);
      else if (choice.hub !== null) q.delete('hub');
    }
    if (choice.t5 !== undefined) q.set('t5', choice.t5 ? 'on' : 'off');
  }
  return url.href;
}

/** The hub repo ids resolve against: the page's `?hub=`, or the Hugging Face Hub. */
export function hubFromSearch(search: string): string {
  return (new URLSearchParams(search).get('hub')?.trim() || DEFAULT_HUB).replace(/\/+$/, '');
}

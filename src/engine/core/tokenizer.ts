/**
 * The one module that imports transformers.js: tokenizers built from a model folder's verified
 * tokenizer.json + tokenizer_config.json (handed over as parsed JSON, so transformers.js makes no
 * request and reads no global cache). The text encoder graphs run in our own ORT sessions.
 */
import { BertTokenizer, CLIPTokenizer, PreTrainedTokenizer, Qwen2Tokenizer, T5Tokenizer } from '@huggingface/transformers';
import { modelError } from '../errors';

const CLASSES: Record<string, new (json: object, config: object) => PreTrainedTokenizer> = {
  BertTokenizer,
  CLIPTokenizer,
  T5Tokenizer,
  Qwen2Tokenizer,
};

export interface TokenIds {
  /** [B, L] int64, as text encoder graphs take them. */
  data: BigInt64Array;
  dims: [number, number];
}

export class TextTokenizer {
  private constructor(private tok: PreTrainedTokenizer) {}

  /** `tokenizer_class` picks the class (a trailing "Fast" is dropped, as transformers does). */
  static create(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>, where: string): TextTokenizer {
    const name = String(tokenizerConfig.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
    const cls = CLASSES[name] ?? PreTrainedTokenizer;
    try {
      return new TextTokenizer(new cls(tokenizerJson as object, tokenizerConfig));
    } catch (e) {
      throw modelError(`Could not build the tokenizer from ${where}: ${(e as Error).message}`, 'The folder needs a valid tokenizer.json and tokenizer_config.json (training/export.py writes them).');
    }
  }

  /**
   * Ids exactly as the model sees them: truncated and padded to maxLength. With `keepEnd`, a text
   * longer than maxLength keeps its closing special token (<|endoftext|>, </s>) as Python's
   * transformers does; transformers.js 4.3.1 truncates after adding it and would drop it.
   */
  encode(texts: string[], maxLength: number, options: { keepEnd?: boolean } = {}): TokenIds {
    if (!options.keepEnd) {
      const enc = this.tok(texts, { padding: 'max_length', truncation: true, max_length: maxLength });
      const ids = enc.input_ids;
      const flat = ids.data as ArrayLike<bigint | number>;
      const data = flat instanceof BigInt64Array ? flat : BigInt64Array.from(Array.from(flat, (x) => BigInt(x)));
      return { data, dims: [ids.dims[0], ids.dims[1]] };
    }
    const data = new BigInt64Array(texts.length * maxLength);
    const pad = BigInt(this.padId());
    texts.forEach((text, b) => {
      let ids = this.tok.encode(text);
      if (ids.length > maxLength) ids = [...ids.slice(0, maxLength - 1), ids[ids.length - 1]];
      for (let i = 0; i < maxLength; i++) data[b * maxLength + i] = i < ids.length ? BigInt(ids[i]) : pad;
    });
    return { data, dims: [texts.length, maxLength] };
  }

  /**
   * The chat template of tokenizer_config.json rendered for `messages` (text, not ids), with extra
   * template variables (e.g. enable_thinking); null when the tokenizer has no chat template.
   */
  applyChatTemplate(messages: { role: string; content: string }[], variables: Record<string, unknown> = {}): string | null {
    if (!(this.tok as unknown as { chat_template?: unknown }).chat_template) return null;
    try {
      return this.tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true, ...variables }) as unknown as string;
    } catch (e) {
      throw modelError(`The tokenizer's chat template failed: ${(e as Error).message}`, 'Check "chat_template" in tokenizer_config.json.');
    }
  }

  /** Ids of one text, as many as it takes up to maxLength (no padding: [1, L] int64). */
  encodeUnpadded(text: string, maxLength: number): TokenIds {
    const ids = this.tok.encode(text).slice(0, maxLength);
    return { data: BigInt64Array.from(ids, (x) => BigInt(x)), dims: [1, ids.length] };
  }

  /** The id padding uses (the tokenizer's pad token; CLIP-G's is "!", CLIP-L's <|endoftext|>). */
  padId(): number {
    const id = (this.tok as unknown as { pad_token_id?: number }).pad_token_id;
    if (typeof id !== 'number') throw modelError('The tokenizer has no pad token.', 'Set "pad_token" in tokenizer_config.json.');
    return id;
  }
}

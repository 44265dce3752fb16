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

  /** Ids exactly as the model sees them: truncated and padded to maxLength. */
  encode(texts: string[], maxLength: number): TokenIds {
    const enc = this.tok(texts, { padding: 'max_length', truncation: true, max_length: maxLength });
    const ids = enc.input_ids;
    const flat = ids.data as ArrayLike<bigint | number>;
    const data = flat instanceof BigInt64Array ? flat : BigInt64Array.from(Array.from(flat, (x) => BigInt(x)));
    return { data, dims: [ids.dims[0], ids.dims[1]] };
  }
}

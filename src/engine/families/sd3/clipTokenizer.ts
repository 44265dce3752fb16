/**
 * CLIP's tokenizer.json, built from the slow tokenizer's files (vocab.json + merges.txt +
 * tokenizer_config.json) that SD3 repos ship for CLIP-L and CLIP-G. transformers.js reads only
 * tokenizer.json, so the pipeline transformers' CLIPTokenizerFast would build is written out here:
 * NFC + whitespace collapse + lowercase, CLIP's split pattern, byte-level BPE with '</w>' word ends,
 * <|startoftext|> ... <|endoftext|> around every text. The pad token ('!' for CLIP-G) is special.
 */
import { modelError } from '../../errors';

const SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

const tokenName = (t: unknown): string | undefined => (typeof t === 'string' ? t : typeof t === 'object' && t !== null ? (t as { content?: string }).content : undefined);

export function clipTokenizerJson(vocab: Record<string, number>, mergesTxt: string, config: Record<string, unknown>, where: string): object {
  const bos = tokenName(config.bos_token) ?? '<|startoftext|>';
  const eos = tokenName(config.eos_token) ?? '<|endoftext|>';
  const unk = tokenName(config.unk_token) ?? eos;
  const pad = tokenName(config.pad_token) ?? eos;
  const special = [...new Set([bos, eos, unk, pad])];
  for (const t of special) {
    if (!Object.hasOwn(vocab, t)) throw modelError(`${where}vocab.json has no token ${JSON.stringify(t)} (named in tokenizer_config.json).`, 'Use the tokenizer files of one CLIP export.');
  }
  const merges = mergesTxt.split('\n').filter((l) => l.trim() && !l.startsWith('#version'));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special
      .map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))
      .sort((a, b) => a.id - b.id),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [eos, vocab[eos]], cls: [bos, vocab[bos]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}

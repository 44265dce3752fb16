"""A tiny tokenizer in the format of Qwen3's (Qwen2TokenizerFast, the Z-Image text encoder's), built
deterministically, with a pure-Python reference encoder (no `tokenizers`/`transformers`/`regex` here)
and the chat text diffusers' ZImagePipeline makes of a prompt.

- Byte-level BPE like Qwen2/Qwen3: NFC, then Qwen2's split pattern (contractions, letters with one
  leading non-letter, single digits, punctuation runs, newlines, spaces) with behaviour "Isolated",
  bytes mapped to printable characters, no end-of-word suffix, no BOS/EOS added. Vocab order as
  Qwen's: the 256 byte characters (so "!" is id 0), one token per merge, then the 26 added tokens of
  Qwen3 in their order (<|endoftext|>, <|im_start|>, <|im_end|>, ..., <think>, </think>). Added tokens
  (special or not) are split out of the text before anything else.
- The chat template is our own Jinja, written to give what Qwen3's template gives for a list of
  plain messages: `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message, then with
  add_generation_prompt `<|im_start|>assistant\\n`, plus an empty think block
  `<think>\\n\\n</think>\\n\\n` only when enable_thinking is false. diffusers' ZImagePipeline passes
  enable_thinking=True, so no think block."""
import math
import unicodedata
from collections import Counter

from replicas.tokenizers import BYTE_ENCODER, CAPTIONS, WHITESPACE

# Qwen3's added tokens, in id order; `special` as Qwen3's tokenizer.json marks them.
ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]
ADDITIONAL_SPECIAL = [t for t, s in ADDED_TOKENS[1:14] if s]

QWEN2_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Our own template (see the module docstring): same text as Qwen3's for plain user/assistant messages.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)
MAX_SEQUENCE_LENGTH = 512  # diffusers' ZImagePipeline max_sequence_length; the webnn demo's maxSequenceLength


def chat_text(prompt, enable_thinking=True):
    """What tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
    add_generation_prompt=True, enable_thinking=...) returns (checked against transformers.js)."""
    text = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    return text if enable_thinking else text + "<think>\n\n</think>\n\n"


# ---- pre-tokenizer: Qwen2's split pattern, written out as a scanner ----------------------------
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _L(ch):
    return unicodedata.category(ch).startswith("L")


def _N(ch):
    return unicodedata.category(ch).startswith("N")


def _S(ch):
    return ch in WHITESPACE


def qwen_pre_tokenize(text):
    """Every match of QWEN2_SPLIT_REGEX, leftmost alternative first, as the regex engine finds them
    (the pattern covers every character, so nothing is dropped)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        low = text[i:i + 3].lower()
        c = next((c for c in _CONTRACTIONS if low.startswith(c)), None)
        if c:  # (?i:'s|'t|'re|'ve|'m|'ll|'d)
            j = i + len(c)
        elif _L(ch) or (i + 1 < n and ch not in "\r\n" and not _L(ch) and not _N(ch) and _L(text[i + 1])):
            j = i + 1  # [^\r\n\p{L}\p{N}]?\p{L}+
            while j < n and _L(text[j]):
                j += 1
        elif _N(ch):  # \p{N}
            j = i + 1
        elif (not _S(ch) and not _L(ch) and not _N(ch)) or (ch == " " and i + 1 < n and not _S(text[i + 1])
                                                           and not _L(text[i + 1]) and not _N(text[i + 1])):
            j = i + 1 if ch == " " else i  # ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            while j < n and not _S(text[j]) and not _L(text[j]) and not _N(text[j]):
                j += 1
            while j < n and text[j] in "\r\n":
                j += 1
        else:  # a whitespace run: \s*[\r\n]+ | \s+(?!\S) | \s+
            k = i
            while k < n and _S(text[k]):
                k += 1
            nl = [m for m in range(i, k) if text[m] in "\r\n"]
            if nl:
                j = nl[-1] + 1
            elif k == n or k - i == 1:
                j = k
            else:
                j = k - 1
        out.append(text[i:j])
        i = j
    return out


def _byte_chars(piece):
    return [BYTE_ENCODER[b] for b in piece.encode("utf-8")]


def learn_merges(captions, num_merges):
    """Classic byte-level BPE training on the pre-tokenized captions; ties broken by the pair's text."""
    words = Counter()
    for c in captions:
        for w in qwen_pre_tokenize(unicodedata.normalize("NFC", c)):
            words[tuple(_byte_chars(w))] += 1
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for word, f in words.items():
            for a, b in zip(word, word[1:]):
                pairs[a, b] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = Counter()
        for word, f in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += f
        words = merged
    return merges


class QwenBPETokenizer:
    """The reference encoder and the files (tokenizer.json, tokenizer_config.json) of the tiny Qwen3."""

    def __init__(self, merges):
        base = list(BYTE_ENCODER.values())
        self.vocab_list = base + ["".join(m) for m in merges]
        self.vocab = {t: i for i, t in enumerate(self.vocab_list)}
        assert len(self.vocab) == len(self.vocab_list), "duplicate tokens in the vocab"
        self.added = {t: len(self.vocab_list) + k for k, (t, _) in enumerate(ADDED_TOKENS)}
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.pad_token, self.eos_token = "<|endoftext|>", "<|im_end|>"
        self.pad_id = self.added[self.pad_token]

    @property
    def size(self):
        return len(self.vocab_list) + len(ADDED_TOKENS)

    def bpe(self, piece):
        parts = _byte_chars(piece)
        while len(parts) > 1:
            rank, _ = min((self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:])))
            if rank == math.inf:
                break
            first, second = self.merges[rank]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    def encode(self, text, max_length=None):
        """Ids as the fast tokenizer gives them (no special tokens added, no padding); truncated to
        max_length like diffusers' tokenizer(..., truncation=True) (the mask then drops the pads)."""
        ids, i = [], 0
        while i < len(text):  # added tokens first, the longest at a position wins
            hit = max((t for t in self.added if text.startswith(t, i)), key=len, default=None)
            if hit:
                ids.append(self.added[hit])
                i += len(hit)
                continue
            j = min([k for k in (text.find(t, i) for t in self.added) if k >= 0] + [len(text)])
            for w in qwen_pre_tokenize(unicodedata.normalize("NFC", text[i:j])):
                ids += [self.vocab[t] for t in self.bpe(w)]
            i = j
        return ids[:max_length] if max_length else ids

    # ---- files ----
    def tokenizer_json(self):
        added = [{"id": self.added[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": s} for t, s in ADDED_TOKENS]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
                byte_level]},
            "post_processor": byte_level,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [[a, b] for a, b in self.merges]},
        }

    def tokenizer_config(self, chat_template=CHAT_TEMPLATE):
        decoder = {str(self.added[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                        "single_word": False, "special": s} for t, s in ADDED_TOKENS}
        cfg = {"add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
               "additional_special_tokens": ADDITIONAL_SPECIAL, "bos_token": None, "clean_up_tokenization_spaces": False,
               "eos_token": self.eos_token, "errors": "replace", "extra_special_tokens": {},
               "model_max_length": 131072, "pad_token": self.pad_token, "split_special_tokens": False,
               "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}
        if chat_template is not None:
            cfg["chat_template"] = chat_template
        return cfg

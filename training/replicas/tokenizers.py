"""Tiny tokenizers in the real SD3 formats, built deterministically, with a pure-Python reference
encoder for each (no `tokenizers`/`transformers` here): the ids it gives are what diffusers'
StableDiffusion3Pipeline feeds its text encoders (truncation keeps the closing end token).

- CLIP (tokenizer/, tokenizer_2/): byte-level BPE like openai/clip-vit-large-patch14: NFC +
  whitespace collapse + lowercase, CLIP's split regex, bytes mapped to printable characters,
  `</w>` on the last character of a word. Vocab order as CLIP's: the 256 byte characters (so "!" is
  id 0), the same with `</w>`, one token per merge, then `<|startoftext|>`, `<|endoftext|>` (the
  highest id, which is what CLIP's argmax pooling relies on). Merges learned here from CAPTIONS.
  The pad token is a special token: with CLIP-G's "!" every "!" in a prompt is split out as id 0.
- T5 (tokenizer_3/): SentencePiece-style Unigram: `<pad>` 0, `</s>` 1, `<unk>` 2, pieces, then 100
  `<extra_id_N>`; NFKC, whitespace split, "▁" prefix per word, Viterbi over piece log-probabilities
  (here counts from CAPTIONS), consecutive unknown characters fused into one `<unk>` (as the Rust
  Unigram does), `</s>` appended.

`encode_js_style` reproduces what transformers.js 4.3.1 does (it truncates after adding the special
tokens, so a prompt over the limit loses its end token) so the golden file can record both."""
import math
import re
import unicodedata
from collections import Counter

CAPTIONS = [
    "a photo of a cat sitting on a red sofa in a sunny living room",
    "a watercolor painting of a lighthouse on a rocky coast at sunset",
    "an astronaut riding a horse on the moon, digital art",
    "a bowl of fresh fruit on a wooden table, still life, oil painting",
    "a small red star at the top left on a light blue background",
    "a large blue circle in the center on a white background",
    "portrait of an old man with a grey beard, dramatic lighting, 35mm photo",
    "a cozy cabin in a snowy forest at night with warm light in the windows",
    "a futuristic city skyline with flying cars and neon signs, cyberpunk",
    "a cute corgi puppy playing in the grass, high quality photograph",
    "a bowl of ramen with an egg and green onions, food photography",
    "a sign that says hello world, written in chalk on a blackboard",
    "the mountains are reflected in a calm lake in the morning",
    "a dragon flying over a medieval castle, fantasy illustration",
    "two dogs running on the beach at sunrise, waves in the background",
    "a vase of yellow flowers next to an open window",
    "an ancient temple in the jungle covered with moss and vines",
    "a robot reading a book in a library, soft light, detailed",
    "a bicycle leaning against a brick wall in a quiet street",
    "a cup of coffee with latte art on a marble counter",
    "a green apple, a yellow banana and an orange on a plate",
    "a black and white photo of a train crossing a bridge",
    "a child flying a kite in a field of tall grass on a windy day",
    "an owl sitting on a branch under the full moon",
    "a sailing boat on the open sea during a storm, dramatic clouds",
    "a colorful hot air balloon floating above the hills",
    "a plate of pancakes with berries and maple syrup",
    "the inside of a spaceship with glowing control panels",
    "a fox in the snow looking at the camera, wildlife photo",
    "a pixel art scene of a village with houses and trees",
    "It's a beautiful day; let's go outside! We're happy, they've said, I'm sure you'll agree.",
    "Highly detailed, 4k, 8k, trending on artstation, sharp focus, 1024x1024 render",
    "Café au lait, crème brûlée and a croissant in Paris",
]

# ---- CLIP byte-level BPE ----------------------------------------------------------------------
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
WHITESPACE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}
CLIP_SPLIT_REGEX = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode():
    """GPT-2/CLIP's map of the 256 bytes to printable characters, in CLIP's vocab order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()


def _is_letter(ch):
    return unicodedata.category(ch).startswith("L")


def _is_number(ch):
    return unicodedata.category(ch).startswith("N")


def clip_normalize(text):
    """tokenizer.json normalizer: NFC, Replace(\\s+ -> " "), Lowercase."""
    text = unicodedata.normalize("NFC", text)
    out, in_ws = [], False
    for ch in text:
        if ch in WHITESPACE:
            if not in_ws:
                out.append(" ")
            in_ws = True
        else:
            out.append(ch)
            in_ws = False
    return "".join(out).lower()


def clip_pre_tokenize(text):
    """All matches of CLIP_SPLIT_REGEX, leftmost-first (whitespace is dropped)."""
    words, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith(BOS, i) or text.startswith(EOS, i):
            w = BOS if text.startswith(BOS, i) else EOS
        elif any(text.startswith(c, i) for c in _CONTRACTIONS):
            w = next(c for c in _CONTRACTIONS if text.startswith(c, i))
        elif _is_letter(ch):
            j = i
            while j < n and _is_letter(text[j]):
                j += 1
            w = text[i:j]
        elif _is_number(ch):
            w = ch
        elif ch not in WHITESPACE:
            j = i
            while j < n and not (text[j] in WHITESPACE or _is_letter(text[j]) or _is_number(text[j])):
                j += 1
            w = text[i:j]
        else:
            i += 1
            continue
        words.append(w)
        i += len(w)
    return words


def _byte_chars(word):
    return [BYTE_ENCODER[b] for b in word.encode("utf-8")]


def learn_clip_merges(captions, num_merges):
    """Classic BPE training on the pre-tokenized captions; ties broken by the pair's text."""
    words = Counter()
    for c in captions:
        for w in clip_pre_tokenize(clip_normalize(c)):
            chars = _byte_chars(w)
            words[tuple(chars[:-1] + [chars[-1] + "</w>"])] += 1
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


class CLIPBPETokenizer:
    """The reference encoder. pad_token: "<|endoftext|>" (CLIP-L) or "!" (CLIP-G, id 0)."""

    def __init__(self, merges, pad_token, model_max_length=77):
        base = list(BYTE_ENCODER.values())
        self.vocab_list = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + [BOS, EOS]
        self.vocab = {t: i for i, t in enumerate(self.vocab_list)}
        assert len(self.vocab) == len(self.vocab_list), "duplicate tokens in the CLIP vocab"
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.pad_token, self.model_max_length = pad_token, model_max_length
        self.bos_id, self.eos_id, self.pad_id = self.vocab[BOS], self.vocab[EOS], self.vocab[pad_token]

    def bpe(self, word):
        parts = _byte_chars(word)
        parts[-1] += "</w>"
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == math.inf:
                break
            first, second = self.merges[rank]
            out, i = [], 0
            while i < len(parts):  # merge every occurrence, left to right
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    @property
    def specials(self):
        """Strings split out of the text before BPE. transformers registers the pad token as a special
        token, so with pad "!" (CLIP-G) every "!" of a prompt is id 0, never merged (diffusers issue
        #4153: "! !! !!!" -> six 0s; open_clip gives 256, 748, 995)."""
        return [BOS, EOS] + ([self.pad_token] if self.pad_token not in (BOS, EOS) else [])

    def tokenize(self, text):
        """Ids without bos/eos (special-token strings in the text become their ids)."""
        ids = []
        for k, section in enumerate(re.split("(" + "|".join(map(re.escape, self.specials)) + ")", text)):
            if k % 2:
                ids.append(self.vocab[section])
                continue
            for w in clip_pre_tokenize(clip_normalize(section)):
                ids += [self.vocab[t] for t in self.bpe(w)]
        return ids

    def encode(self, text, max_length=None):
        """diffusers: padding="max_length", truncation=True -> [bos] + ids[:L-2] + [eos] + pads."""
        L = max_length or self.model_max_length
        ids = [self.bos_id] + self.tokenize(text)[:L - 2] + [self.eos_id]
        return ids + [self.pad_id] * (L - len(ids))

    def encode_js_style(self, text, max_length=None):
        """transformers.js 4.3.1: special tokens added first, then truncated (end token lost)."""
        L = max_length or self.model_max_length
        ids = ([self.bos_id] + self.tokenize(text) + [self.eos_id])[:L]
        return ids + [self.pad_id] * (L - len(ids))

    # ---- files ----
    def tokenizer_json(self):
        special = [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                    "normalized": False, "special": True} for t in sorted(self.specials, key=self.vocab.get)]
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Lowercase"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": CLIP_SPLIT_REGEX}, "behavior": "Removed", "invert": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "RobertaProcessing", "sep": [EOS, self.eos_id], "cls": [BOS, self.bos_id],
                               "trim_offsets": False, "add_prefix_space": False},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": EOS, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [" ".join(m) for m in self.merges]},
        }

    def tokenizer_config(self):
        decoder = {str(self.vocab[t]): {"content": t, "lstrip": False, "normalized": True, "rstrip": False,
                                        "single_word": False, "special": True} for t in (BOS, EOS)}
        if self.pad_token not in (BOS, EOS):
            decoder = {str(self.pad_id): {"content": self.pad_token, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True}, **decoder}
        return {"add_prefix_space": False, "added_tokens_decoder": decoder, "bos_token": BOS,
                "clean_up_tokenization_spaces": True, "do_lower_case": True, "eos_token": EOS, "errors": "replace",
                "model_max_length": self.model_max_length, "pad_token": self.pad_token,
                "tokenizer_class": "CLIPTokenizer", "unk_token": EOS}

    def special_tokens_map(self):
        tok = lambda t: {"content": t, "lstrip": False, "normalized": t in (BOS, EOS), "rstrip": False,  # noqa: E731
                         "single_word": False}
        return {"bos_token": tok(BOS), "eos_token": tok(EOS), "pad_token": tok(self.pad_token), "unk_token": tok(EOS)}

    def merges_txt(self):
        return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges)


# ---- T5 Unigram -------------------------------------------------------------------------------
SPIECE = "\u2581"  # ▁
T5_SPECIALS = ["<pad>", "</s>", "<unk>"]
T5_EXTRA_IDS = 100
T5_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" "éèêàâçôûüöäßñíóú")


def learn_t5_pieces(captions, num_words=160, num_subwords=120):
    """Pieces with log-probability scores: "▁" + frequent words, frequent inner n-grams (2-4 chars),
    "▁" and single characters; a tiny per-piece offset keeps every score distinct."""
    words = Counter()
    for c in captions:
        words.update(unicodedata.normalize("NFKC", c).split())
    counts = Counter()
    for w, f in words.most_common(num_words):
        counts[SPIECE + w] += f
    grams = Counter()
    for w, f in words.items():
        for n in (2, 3, 4):
            for i in range(1, len(w) - n + 1):
                grams[w[i:i + n]] += f
        for n in (2, 3):
            grams[SPIECE + w[:n]] += f
    for g, f in sorted(grams.items(), key=lambda kv: (-kv[1], kv[0]))[:num_subwords]:
        counts[g] += f
    counts[SPIECE] += sum(words.values())
    chars = Counter(ch for w, f in words.items() for ch in w for _ in range(f))
    for ch in T5_CHARS:
        counts[ch] += chars[ch] + 1
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(p, math.log(f / total) - 1e-4 * i) for i, (p, f) in enumerate(ordered)]


class T5UnigramTokenizer:
    def __init__(self, pieces, model_max_length=512):
        self.vocab_list = ([(t, 0.0) for t in T5_SPECIALS] + list(pieces)
                           + [(f"<extra_id_{i}>", 0.0) for i in reversed(range(T5_EXTRA_IDS))])
        self.vocab = {p: i for i, (p, _) in enumerate(self.vocab_list)}
        assert len(self.vocab) == len(self.vocab_list), "duplicate T5 pieces"
        self.scores = [s for _, s in self.vocab_list]
        self.pad_id, self.eos_id, self.unk_id = 0, 1, 2
        self.unk_score = min(self.scores) - 10.0
        self.model_max_length = model_max_length
        self.max_piece = max(len(p) for p, _ in self.vocab_list)
        self.specials = [p for p, _ in self.vocab_list if p in T5_SPECIALS or p.startswith("<extra_id_")]

    def viterbi(self, word):
        """Best segmentation; the first best predecessor wins ties (as the Rust and JS lattices)."""
        n = len(word)
        best = [(-math.inf, -1, -1)] * (n + 1)  # (score, start, id) of the best path ending here
        best[0] = (0.0, -1, -1)
        for start in range(n):
            if best[start][0] == -math.inf:
                continue
            has_single = False
            for end in range(start + 1, min(n, start + self.max_piece) + 1):
                pid = self.vocab.get(word[start:end])
                if pid is None:
                    continue
                has_single |= end == start + 1
                cand = best[start][0] + self.scores[pid]
                if cand > best[end][0]:
                    best[end] = (cand, start, pid)
            if not has_single:
                cand = best[start][0] + self.unk_score
                if cand > best[start + 1][0]:
                    best[start + 1] = (cand, start, self.unk_id)
        out, pos = [], n
        while pos > 0:
            _, start, pid = best[pos]
            out.append((pid, word[start:pos]))
            pos = start
        return out[::-1]

    def tokenize(self, text, fuse_unk=True):
        """Ids without </s>. fuse_unk: consecutive unknown characters give one <unk> (Rust Unigram)."""
        ids = []
        for k, section in enumerate(re.split("(" + "|".join(map(re.escape, self.specials)) + ")", text)):
            if k % 2:
                ids.append(self.vocab[section])
                continue
            for w in unicodedata.normalize("NFKC", section).split():
                word_ids = [pid for pid, _ in self.viterbi(SPIECE + w)]
                if fuse_unk:
                    word_ids = [p for i, p in enumerate(word_ids) if not (p == self.unk_id and i and word_ids[i - 1] == self.unk_id)]
                ids += word_ids
        return ids

    def encode(self, text, max_length=256):
        """diffusers: padding="max_length", max_length=256, truncation=True: ids[:L-1] + [</s>] + pads."""
        ids = self.tokenize(text)[:max_length - 1] + [self.eos_id]
        return ids + [self.pad_id] * (max_length - len(ids))

    def encode_js_style(self, text, max_length=256):
        """transformers.js 4.3.1: </s> appended first, then truncated (a long prompt loses it)."""
        ids = (self.tokenize(text) + [self.eos_id])[:max_length]
        return ids + [self.pad_id] * (max_length - len(ids))

    # ---- files ----
    def tokenizer_json(self):
        added = [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for t in self.specials]
        meta = {"type": "Metaspace", "replacement": SPIECE, "prepend_scheme": "always", "split": True}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFKC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, meta]},
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                        {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                               "special_tokens": {"</s>": {"id": "</s>", "ids": [self.eos_id], "tokens": ["</s>"]}}},
            "decoder": meta,
            "model": {"type": "Unigram", "unk_id": self.unk_id, "vocab": [[p, s] for p, s in self.vocab_list],
                      "byte_fallback": False},
        }

    def tokenizer_config(self):
        decoder = {str(self.vocab[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                        "single_word": False, "special": True} for t in self.specials}
        extras = [f"<extra_id_{i}>" for i in range(T5_EXTRA_IDS)]
        return {"add_prefix_space": True, "added_tokens_decoder": decoder, "additional_special_tokens": extras,
                "clean_up_tokenization_spaces": True, "eos_token": "</s>", "extra_ids": T5_EXTRA_IDS, "legacy": True,
                "model_max_length": self.model_max_length, "pad_token": "<pad>", "sp_model_kwargs": {},
                "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>"}

    def special_tokens_map(self):
        return {"additional_special_tokens": [f"<extra_id_{i}>" for i in range(T5_EXTRA_IDS)],
                "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}

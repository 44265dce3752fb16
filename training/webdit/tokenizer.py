"""WordPiece tokenizer, written to match transformers.js (BertNormalizer -> BertPreTokenizer ->
WordPiece -> BertProcessing, then truncate by slicing to max_length and pad with [PAD]).

The same tokenizer.json drives both sides; tests compare ids for many prompts (fixtures)."""
import json
import unicodedata

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = [PAD, UNK, CLS, SEP]

# JavaScript's \s (ECMAScript WhiteSpace + LineTerminator).
_JS_SPACE = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {chr(c) for c in range(0x2000, 0x200B)}


def _is_js_space(ch):
    return ch in _JS_SPACE


def _is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_punct(ch):
    cp = ord(ch)
    if 0x21 <= cp <= 0x2F or 0x3A <= cp <= 0x40 or 0x5B <= cp <= 0x60 or 0x7B <= cp <= 0x7E:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk_bmp(cp):
    # transformers.js tests UTF-16 code units, so only BMP ranges ever match.
    return 19968 <= cp <= 40959 or 13312 <= cp <= 19903 or 63744 <= cp <= 64255


def normalize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if _is_js_space(ch) else ch)
    text = "".join(f" {c} " if _is_cjk_bmp(ord(c)) else c for c in out)
    text = text.lower()
    text = unicodedata.normalize("NFD", text)
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def pre_tokenize(text):
    words, cur = [], []
    for ch in text.strip(''.join(_JS_SPACE)):
        if _is_js_space(ch):
            if cur:
                words.append("".join(cur)); cur = []
        elif _is_punct(ch):
            if cur:
                words.append("".join(cur)); cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


class WordPieceTokenizer:
    def __init__(self, vocab, max_length):
        self.vocab = list(vocab)
        self.ids = {t: i for i, t in enumerate(self.vocab)}
        self.max_length = max_length
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (self.ids[t] for t in SPECIALS)

    def wordpiece(self, word):
        chars = list(word)
        if len(chars) > 100:
            return [UNK]
        pieces, start = [], 0
        while start < len(chars):
            end, cur = len(chars), None
            while start < end:
                sub = "".join(chars[start:end])
                if start > 0:
                    sub = "##" + sub
                if sub in self.ids:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                return [UNK]
            pieces.append(cur)
            start = end
        return pieces

    def tokens(self, text):
        return [p for w in pre_tokenize(normalize(text)) for p in self.wordpiece(w)]

    def encode(self, text):
        ids = [self.cls_id] + [self.ids[t] for t in self.tokens(text)] + [self.sep_id]
        ids = ids[: self.max_length]
        return ids + [self.pad_id] * (self.max_length - len(ids))

    # ---- building and saving -------------------------------------------------------------
    @staticmethod
    def build(texts, max_length, min_count=1):
        counts = {}
        for t in texts:
            for w in pre_tokenize(normalize(t)):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= min_count)
        chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
        vocab = SPECIALS + chars + ["##" + c for c in chars] + [w for w in words if w not in chars]
        return WordPieceTokenizer(vocab, max_length)

    def save(self, folder):
        tok = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [],  # none: typed "[PAD]" stays text, as in Python
            "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                           "strip_accents": None, "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": [SEP, self.sep_id], "cls": [CLS, self.cls_id]},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordPiece", "unk_token": UNK, "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": self.ids},
        }
        cfg = {"tokenizer_class": "BertTokenizer", "model_max_length": self.max_length, "do_lower_case": True,
               "pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP,
               "padding_side": "right", "clean_up_tokenization_spaces": True}
        with open(f"{folder}/tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False)
        with open(f"{folder}/tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)

    @staticmethod
    def load(folder):
        with open(f"{folder}/tokenizer.json", encoding="utf-8") as f:
            tok = json.load(f)
        with open(f"{folder}/tokenizer_config.json", encoding="utf-8") as f:
            cfg = json.load(f)
        vocab = sorted(tok["model"]["vocab"], key=tok["model"]["vocab"].get)
        return WordPieceTokenizer(vocab, cfg["model_max_length"])

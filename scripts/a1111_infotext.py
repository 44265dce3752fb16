#!/usr/bin/env python3
"""Golden values for the PNG `parameters` text (src/png.ts), from AUTOMATIC1111's rules.

AUTOMATIC1111 (stable-diffusion-webui) writes an image's settings as one "infotext" and reads it
back with `parse_generation_parameters` (modules/infotext_utils.py). Its rules, implemented here
from their description (no code copied):
  * writing (processing.create_infotext): the prompt, then "\\nNegative prompt: <neg>" when the
    negative prompt is not empty, then "\\n" and the settings as "Key: value" joined by ", "; a value
    holding ",", ":" or a newline is written as JSON (`quote`); the whole text is stripped.
  * reading: strip the text and split it on "\\n"; the last line holds the settings when the pattern
    RE_PARAM finds at least 3 pairs in it (else it is one more prompt line); every other line is
    stripped, the first that starts with "Negative prompt:" starts the negative prompt (the marker
    is cut from any line that has it), the lines before it are the prompt; a value that starts and
    ends with '"' is JSON when it parses; a value of the form WxH becomes "<Key>-1" and "<Key>-2";
    an empty value fails (value[0]) and is skipped.
  * its prompt parser (modules/prompt_parser.py, RE_ATTENTION) drops a lone backslash: "\\N" is "N".

WebDiT's format (what src/png.ts writes and reads) is specified here a second time, independently:
  * text is cleaned first (src/text.ts): CRLF, CR, NEL, U+2028/9 become "\\n"; other C0/C1 controls
    but "\\t", DEL, bidi embeddings/overrides/isolates and U+FEFF are removed;
  * a prompt or negative-prompt line that A1111 would read as "Negative prompt:" (after any
    backslashes and white space) gets one more backslash in front; our reader removes it;
  * our reader follows A1111's rules but keeps each line's white space.

The script checks every property it relies on (A1111 is never forged by a hostile prompt; our
reader gives back exactly what was written) and writes src/png-infotext.golden.json, which
src/infotext.test.ts and e2e/restore.spec.ts read. Run: /usr/bin/python3 scripts/a1111_infotext.py
(--check: exit 1 when the checked-in file differs from what this script makes).
"""
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "png-infotext.golden.json")

# ---------------------------------------------------------------- AUTOMATIC1111

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")
RE_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
MARKER = "Negative prompt:"


def a1111_quote(value):
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def a1111_unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def a1111_write(prompt, negative, settings):
    """create_infotext: settings is a list of (key, value)."""
    negative_text = f"\n{MARKER} {negative}" if negative else ""
    settings_text = ", ".join(f"{k}: {a1111_quote(v)}" for k, v in settings)
    return f"{prompt}{negative_text}\n{settings_text}".strip()


def a1111_parse(x):
    """parse_generation_parameters, without the defaults it adds for fields that are absent."""
    res = {}
    prompt, negative, done_with_prompt = "", "", False
    *lines, lastline = x.strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith(MARKER):
            done_with_prompt = True
            line = line[len(MARKER):].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    res["Prompt"] = prompt
    res["Negative prompt"] = negative
    for k, v in RE_PARAM.findall(lastline):
        if v == "":
            continue  # v[0] raises in A1111, which prints an error and skips the field
        if v[0] == '"' and v[-1] == '"':
            v = a1111_unquote(v)
        m = RE_IMAGESIZE.match(v)
        if m is not None:
            res[f"{k}-1"] = m.group(1)
            res[f"{k}-2"] = m.group(2)
        else:
            res[k] = v
    return res


def a1111_lines(text):
    """How A1111 joins the lines of a prompt it reads: each stripped, leading empty ones dropped."""
    out = ""
    for line in text.split("\n"):
        out += ("" if out == "" else "\n") + line.strip()
    return out


def a1111_words(text):
    """The text A1111's prompt parser gives the model, brackets left in: a lone backslash is dropped."""
    return "".join(tok[1:] if tok.startswith("\\") else tok for tok in (m.group(0) for m in RE_ATTENTION.finditer(text)))


# ---------------------------------------------------------------- WebDiT (spec of src/text.ts + src/png.ts)

LINE_BREAKS = re.compile("\r\n|[\r\u0085\u2028\u2029]")
UNSAFE = re.compile("[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufeff]")
LOOKS_LIKE_MARKER = re.compile(r"\\*\s*" + MARKER)
ESCAPED_MARKER = re.compile(r"\\+\s*" + MARKER)
MARKER_LINE = re.compile(r"\s*" + MARKER)


def webdit_clean(text):
    return UNSAFE.sub("", LINE_BREAKS.sub("\n", text))


def webdit_escape(text):
    return "\n".join("\\" + line if LOOKS_LIKE_MARKER.match(line) else line for line in text.split("\n"))


def webdit_unescape(line):
    return line[1:] if ESCAPED_MARKER.match(line) else line


def js_number(x):
    """How JavaScript prints a number in a template string (the cases used here)."""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def webdit_quote(text):
    return json.dumps(text, ensure_ascii=False) if re.search(r'[,:\n"]', text) else text


def webdit_write(c):
    negative = webdit_clean(c["negativePrompt"])
    lines = [webdit_escape(webdit_clean(c["prompt"]))]
    if negative != "":
        lines.append(f"{MARKER} {webdit_escape(negative)}")
    fields = [
        f"Steps: {js_number(c['numInferenceSteps'])}",
        "Sampler: Euler",
        f"CFG scale: {js_number(c['guidanceScale'])}",
        f"Seed: {js_number(c['seed'])}",
        f"Size: {c['width']}x{c['height']}",
        f"Model: {webdit_quote(webdit_clean(c['modelId']))}",
        f"Shift: {js_number(c['shift'])}",
    ]
    if c.get("imageToImage"):
        fields.append(f"Denoising strength: {js_number(c['strength'])}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


def webdit_read(text):
    """parseInfotext: A1111's structure, each line's white space kept, our escape undone."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip().split("\n")
    last = lines.pop()
    pairs = RE_PARAM.findall(last)
    if len(pairs) < 3:
        raise ValueError("no settings line")
    fields = {}
    for k, v in pairs:
        if v == "":
            continue
        fields[k] = a1111_unquote(v) if v[0] == '"' and v[-1] == '"' else v
    prompt, negative = [], []
    for line in lines:
        if MARKER_LINE.match(line):
            rest = MARKER_LINE.sub("", line, count=1)
            negative.append(webdit_unescape(rest[1:] if rest.startswith(" ") else rest))
        else:
            (negative if negative else prompt).append(webdit_unescape(line))
    return {"prompt": "\n".join(prompt), "negativePrompt": "\n".join(negative), "fields": fields}


# ---------------------------------------------------------------- cases

# Infotexts as AUTOMATIC1111 writes them. "tiny" fits the embedded model (64x64, steps 1-50, CFG
# 1-12 in steps of 0.5): e2e/restore.spec.ts puts it in a PNG and drops it on the studio.
A1111_CASES = [
    {
        "name": "typical",
        "prompt": "a red apple on a blue background, (masterpiece:1.2), best quality",
        "negativePrompt": "blurry, lowres, (worst quality:1.4)",
        "settings": [("Steps", 20), ("Sampler", "Euler a"), ("Schedule type", "Karras"), ("CFG scale", 7), ("Seed", 965400086),
                     ("Size", "512x512"), ("Model hash", "6ce0161689"), ("Model", "v1-5-pruned-emaonly"), ("Version", "v1.10.1")],
    },
    {
        "name": "tiny",
        "prompt": "a large blue circle in the center on a white background",
        "negativePrompt": "blurry",
        "settings": [("Steps", 3), ("Sampler", "Euler a"), ("CFG scale", 3), ("Seed", 5), ("Size", "64x64"),
                     ("Model hash", "45dee52b"), ("Model", "v1-5-pruned-emaonly")],
    },
    {
        "name": "out of range for the tiny model",
        "prompt": "a castle on a hill at dusk",
        "negativePrompt": "",
        "settings": [("Steps", 150), ("Sampler", "DPM++ 2M"), ("CFG scale", 30), ("Seed", 12345), ("Size", "512x768")],
    },
    {
        "name": "multi-line prompt, quoted values, no negative",
        "prompt": "portrait of a cat\nwearing a hat, oil painting",
        "negativePrompt": "",
        "settings": [("Steps", 30), ("Sampler", "DPM++ 2M Karras"), ("CFG scale", 4.5), ("Seed", 1), ("Size", "64x64"),
                     ("Lora hashes", "add_detail: 7c6bad76eb54, more_art: 1a2b3c"), ("TI hashes", "easynegative: c74b4e810b03"),
                     ("Model", "sd_xl_base_1.0")],
    },
    {
        "name": "multi-line negative",
        "prompt": "a lighthouse",
        "negativePrompt": "ugly\ndeformed, extra limbs",
        "settings": [("Steps", 12), ("Sampler", "Euler"), ("CFG scale", 6.5), ("Seed", 4294967295), ("Size", "64x64")],
    },
]

BASE = {"prompt": "a red circle", "negativePrompt": "", "numInferenceSteps": 20, "guidanceScale": 4, "seed": 123,
        "width": 64, "height": 64, "modelId": "webdit-tiny", "shift": 2, "imageToImage": False, "strength": 0.6}

FORGE = "Steps: 99, Sampler: Euler, CFG scale: 1, Seed: 7, Size: 8x8, Model: evil"
# Prompts (and negative prompts, model ids) that try to forge settings or smuggle control characters.
HOSTILE_CASES = [
    {"name": "fault table 2f: a prompt that fakes a negative prompt and settings", "prompt": f"cat\nNegative prompt: dog\n{FORGE}"},
    {"name": "the same with a real negative prompt", "prompt": f"cat\nNegative prompt: dog\n{FORGE}", "negativePrompt": "blurry"},
    {"name": "a prompt that starts with a newline and the marker", "prompt": "\nNegative prompt: evil"},
    {"name": "a forged settings line", "prompt": "cat\nSteps: 99, Seed: 5"},
    {"name": "a forged settings line as the whole prompt", "prompt": "Seed: 5, Steps: 99, Size: 1x1, Model: evil"},
    {"name": "an indented marker", "prompt": "a\n   Negative prompt: indented"},
    {"name": "a marker with a tab and no space", "prompt": "a\n\tNegative prompt:x"},
    {"name": "a marker already behind a backslash", "prompt": "a\n\\Negative prompt: one\n\\\\Negative prompt: two"},
    {"name": "the marker alone", "prompt": "Negative prompt:"},
    {"name": "a negative prompt that fakes another one and settings", "prompt": "p",
     "negativePrompt": "ugly\nNegative prompt: x\nSteps: 1, Seed: 2, Size: 3x3"},
    {"name": "a negative prompt that starts with the marker", "prompt": "p", "negativePrompt": "Negative prompt: twice"},
    {"name": "control characters", "prompt": "a\u0000b\u0007c \u001b[31mred\u001b[0m\r\nline two\rthree\u2028four\u202eevil\ufeff\u0085five\tsix\u007f"},
    {"name": "control characters in the negative prompt and the model id", "prompt": "p", "negativePrompt": "neg\u0000ative\u001b",
     "modelId": "org/\u0007model"},
    {"name": "a model id that fakes fields", "prompt": "p", "modelId": 'org/model: v2, "beta"\nSteps: 1, Seed: 2, Size: 3x3'},
    {"name": "quotes, commas and colons", "prompt": 'a "quoted", b: c', "negativePrompt": 'x, "y": z'},
    {"name": "emoji and CJK around a fake marker", "prompt": "🐱 猫\nNegative prompt: 犬 👩\u200d🚀", "negativePrompt": "ñ"},
    {"name": "empty prompt, hostile negative", "prompt": "", "negativePrompt": "Negative prompt: x\nSteps: 9, Sampler: a, Seed: 9"},
    {"name": "white space at line ends", "prompt": "  lead\ntrail  \n\n  both  ", "negativePrompt": " spaced "},
    {"name": "image-to-image with a hostile prompt", "prompt": "x\nNegative prompt: y", "imageToImage": True, "strength": 0.35},
    # The e2e test types this prompt into the studio (steps 3, CFG 3, seed 5, the embedded model) and
    # compares the downloaded PNG's text with this case.
    {"name": "e2e", "prompt": "a large blue circle\nNegative prompt: red square\nSteps: 99, Sampler: Euler, CFG scale: 1, Seed: 7, Size: 8x8\u0007",
     "negativePrompt": "blurry", "numInferenceSteps": 3, "guidanceScale": 3, "seed": 5},
]


def build():
    a1111_cases = []
    for c in A1111_CASES:
        text = a1111_write(c["prompt"], c["negativePrompt"], c["settings"])
        a1111 = a1111_parse(text)
        ours = webdit_read(text)
        # clean input: our reading and A1111's agree on every field
        assert ours["prompt"] == a1111["Prompt"] == c["prompt"], c["name"]
        assert ours["negativePrompt"] == a1111["Negative prompt"] == c["negativePrompt"], c["name"]
        for k, v in c["settings"]:
            assert ours["fields"][k] == str(v), (c["name"], k)
            if RE_IMAGESIZE.match(str(v)):
                assert f"{a1111[k + '-1']}x{a1111[k + '-2']}" == v, (c["name"], k)
            else:
                assert a1111[k] == str(v), (c["name"], k)
        a1111_cases.append({"name": c["name"], "text": text, "a1111": a1111, "webdit": ours})

    hostile_cases = []
    for h in HOSTILE_CASES:
        c = {**BASE, **{k: v for k, v in h.items() if k != "name"}}
        text = webdit_write(c)
        a1111 = a1111_parse(text)
        ours = webdit_read(text)
        clean = {k: webdit_clean(c[k]) for k in ("prompt", "negativePrompt", "modelId")}
        # our reader gives back exactly what was written (after cleaning)
        assert ours["prompt"] == clean["prompt"], h["name"]
        assert ours["negativePrompt"] == clean["negativePrompt"], h["name"]
        assert ours["fields"]["Model"] == clean["modelId"], h["name"]
        # A1111 is not forged: the real settings, the real negative prompt (as A1111 joins lines)
        assert a1111["Steps"] == js_number(c["numInferenceSteps"]) and a1111["Seed"] == js_number(c["seed"]), h["name"]
        assert a1111["CFG scale"] == js_number(c["guidanceScale"]), h["name"]
        assert (a1111["Size-1"], a1111["Size-2"]) == (str(c["width"]), str(c["height"])), h["name"]
        assert a1111["Model"] == clean["modelId"], h["name"]
        assert a1111["Prompt"] == a1111_lines(webdit_escape(clean["prompt"])).strip(), h["name"]
        assert a1111["Negative prompt"] == a1111_lines(webdit_escape(clean["negativePrompt"])), h["name"]
        # the escape changes nothing A1111's model sees where the line had no backslash of its own
        for line, escaped in zip(clean["prompt"].split("\n"), webdit_escape(clean["prompt"]).split("\n")):
            if not line.startswith("\\"):
                assert a1111_words(escaped) == a1111_words(line), (h["name"], line)
        # nothing unsafe is left in the text
        assert not UNSAFE.search(text) and "\r" not in text, h["name"]
        hostile_cases.append({"name": h["name"], "input": c, "text": text, "a1111": a1111, "webdit": ours})

    return {
        "note": "Written by scripts/a1111_infotext.py from AUTOMATIC1111's infotext rules; do not edit by hand.",
        "a1111": a1111_cases,
        "hostile": hostile_cases,
    }


def main(argv):
    data = json.dumps(build(), ensure_ascii=False, indent=1) + "\n"
    if "--check" in argv:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != data:
                print(f"{OUT} is stale: run /usr/bin/python3 scripts/a1111_infotext.py", file=sys.stderr)
                return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(data)
    print(f"wrote {OUT}: {len(json.loads(data)['a1111'])} A1111 texts, {len(json.loads(data)['hostile'])} hostile cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

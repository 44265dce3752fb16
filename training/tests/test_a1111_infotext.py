"""The PNG `parameters` golden file (src/png-infotext.golden.json) is what scripts/a1111_infotext.py
makes now: its A1111 rules and WebDiT spec checks pass, and the checked-in JSON is not stale."""
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("a1111_infotext", os.path.join(ROOT, "scripts", "a1111_infotext.py"))
infotext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(infotext)


def test_golden_file_is_current():
    with open(infotext.OUT, encoding="utf-8") as f:
        assert json.load(f) == infotext.build()


def test_a1111_reader_matches_its_documented_example():
    # the example in parse_generation_parameters' docstring
    text = ("girl with an artist's beret, determined, blue eyes\n"
            "Negative prompt: ugly, fat, (((deformed))), [blurry]\n"
            "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b")
    res = infotext.a1111_parse(text)
    assert res["Prompt"] == "girl with an artist's beret, determined, blue eyes"
    assert res["Negative prompt"] == "ugly, fat, (((deformed))), [blurry]"
    assert (res["Steps"], res["Sampler"], res["CFG scale"], res["Seed"]) == ("20", "Euler a", "7", "965400086")
    assert (res["Size-1"], res["Size-2"], res["Model hash"]) == ("512", "512", "45dee52b")


def test_unescaped_forgery_fools_a1111_and_the_escape_stops_it():
    forged = "cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, CFG scale: 4, Seed: 1, Size: 64x64"
    assert infotext.a1111_parse(forged)["Negative prompt"] == "dog"
    case = {**infotext.BASE, "prompt": "cat\nNegative prompt: dog"}
    res = infotext.a1111_parse(infotext.webdit_write(case))
    assert res["Prompt"] == "cat\n\\Negative prompt: dog" and res["Negative prompt"] == ""
    assert infotext.a1111_words("\\Negative prompt: dog") == "Negative prompt: dog"

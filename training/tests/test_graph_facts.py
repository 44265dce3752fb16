"""The graph facts golden (src/engine/core/__fixtures__/graph-facts.json) is what graph_facts.py
computes from the committed graphs now: a replica rebuilt without regenerating it fails here."""
import json
import os

from replicas import graph_facts


def test_golden_is_current():
    with open(graph_facts.OUT) as f:
        committed = json.load(f)["graphs"]
    now = {os.path.relpath(p, graph_facts.ROOT): graph_facts.facts(p) for p in graph_facts.GRAPHS}
    assert committed == now


def test_float16_io_and_external_weights_are_covered():
    facts = {p: graph_facts.facts(p) for p in graph_facts.GRAPHS}
    assert any(f["float16_io"] for f in facts.values())
    assert all(f["largest_initializer"] >= 0 for f in facts.values())

"""Probe references (the real-data row's probe values): run like probes, a failure is NaN with
a note, a probe without one is left out, pictures are not kept; a reference must be callable."""

from __future__ import annotations

import math

import torch

from ganbench.evaluation.probing import run_references
from ganbench.probes import ProbeResult, ReferenceContext
from ganbench.specs import ProbeSpec, spec_problem


def _context(spec, config):
    return ReferenceContext(0, config, None, None, torch.Generator(), torch.device("cpu"))


def _nothing(probe):
    raise AssertionError("compute is not called for the reference row")


def test_references_fill_their_columns_and_tables_and_a_failure_is_nan_with_a_note():
    seen = []

    def good(ref):
        seen.append(ref.seed)
        return ProbeResult({"a": 0.5}, tables={"t": [{"x": 1}], "stray": [{"x": 2}]}, pictures={"p.png": b"png"})

    def bad(ref):
        raise RuntimeError("no data")

    probes = [
        (ProbeSpec("good", ("a",), _nothing, tables=("t",), reference=good), None),
        (ProbeSpec("bad", ("b",), _nothing, reference=bad), None),
        (ProbeSpec("none", ("c",), _nothing), None),
    ]
    outcome = run_references(probes, _context)
    assert outcome.values["a"] == 0.5 and math.isnan(outcome.values["b"]) and "c" not in outcome.values
    # the failure is the failing probe's note; a reference that breaks the contract is noted as a
    # variant's probe output is (undeclared table, a picture that is not a PNG)
    assert outcome.notes["b"] == "bad failed: RuntimeError: no data"
    assert "undeclared table 'stray'" in outcome.notes["probe good"] and set(outcome.notes) == {"b", "probe good"}
    assert outcome.tables == {"t": [{"x": 1}]} and outcome.pictures == {} and seen == [0]


def test_a_reference_must_be_callable():
    problem = spec_problem(ProbeSpec("p", ("a",), _nothing, reference="real"), ProbeSpec)
    assert problem == "reference must be callable or None, got str"

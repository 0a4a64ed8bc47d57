"""Report speed (pytest-benchmark): `ganbench report` of a run of 7 variants x 5 seeds x 3
evaluations, built from a synthetic run directory (the synthetic_run fixture in tests/conftest.py). The default test
run executes it once as a smoke test; measure with --benchmark-enable."""

import pytest

from ganbench.report.render import build_report

pytestmark = pytest.mark.slow


def test_report_of_7_variants_5_seeds_3_evaluations(benchmark, synthetic_run, tmp_path):
    run = synthetic_run(variants=7, seeds=5, evals=3)
    written = benchmark.pedantic(lambda: build_report(run, tmp_path / "out"), rounds=3, warmup_rounds=1)
    assert written["html"].stat().st_size > 100_000 and written["md"].is_file()

"""What a checkpoint is bound to: the run's fingerprint."""

from ganbench.config import RunConfig
from ganbench.harness.job import run_fingerprint
from ganbench.harness.plan import plan_run


def fingerprint(registry, tmp_path, **overrides):
    config = RunConfig(variants=("cgan",), budget="10steps", out=str(tmp_path), device="cpu", **overrides)
    return run_fingerprint(plan_run(config, registry))


def test_fingerprint_compares_hyperparameters_as_typed_values(registry, tmp_path):
    spelled_one_way = fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "1e-4"}})
    assert fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "0.0001"}}) == spelled_one_way


def test_fingerprint_changes_with_a_hyperparameter(registry, tmp_path):
    assert fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "1e-4"}}) != fingerprint(registry, tmp_path)

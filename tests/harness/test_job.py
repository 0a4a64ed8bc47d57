"""What a checkpoint is bound to: the run's fingerprint; what loading a bad one says."""

import pytest
import torch

from ganbench.config import RunConfig
from ganbench.errors import UsageError
from ganbench.harness.job import load_checkpoint, run_fingerprint
from ganbench.harness.plan import plan_run


def fingerprint(registry, tmp_path, **overrides):
    config = RunConfig(variants=("cgan",), budget="10steps", out=str(tmp_path), device="cpu", **overrides)
    return run_fingerprint(plan_run(config, registry))


def test_fingerprint_compares_hyperparameters_as_typed_values(registry, tmp_path):
    spelled_one_way = fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "1e-4"}})
    assert fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "0.0001"}}) == spelled_one_way


def test_fingerprint_changes_with_a_hyperparameter(registry, tmp_path):
    assert fingerprint(registry, tmp_path, set={"cgan": {"lr_g": "1e-4"}}) != fingerprint(registry, tmp_path)


class Payload:
    """Unpickling it would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _planted(path, marker):
    torch.save({"format": "ganbench-checkpoint/1", "x": Payload(marker)}, path)


def _cut(path, marker):
    torch.save({"format": "ganbench-checkpoint/1", "w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:500])


def _garbage(path, marker):
    path.write_bytes(b"not a checkpoint at all")


@pytest.mark.parametrize("make", [_planted, _cut, _garbage], ids=["planted-pickle", "cut-short", "garbage"])
@pytest.mark.parametrize("from_bytes", [False, True], ids=["file", "bytes"])  # the Ray executor hands the bytes
def test_a_bad_checkpoint_is_one_line_without_torchs_advice_to_unpickle_it(tmp_path, make, from_bytes):
    path, marker = tmp_path / "cgan-seed0.pt", tmp_path / "ran"
    make(path, marker)
    with pytest.raises(UsageError) as err:
        load_checkpoint(path, "cgan", 0, "fingerprint", path.read_bytes() if from_bytes else None)
    message = str(err.value)
    assert message.startswith(f"checkpoint {path} is unreadable: damaged, or not a ganbench checkpoint (")
    assert message.endswith("; delete it to restart cgan seed 0 from the beginning")
    assert "\n" not in message and "\x1b" not in message
    assert "weights_only" not in message and "trust" not in message and "arbitrary code" not in message
    assert not marker.exists()

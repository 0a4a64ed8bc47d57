"""ganbench.testing catches the mistakes plugin authors make."""

import math
import re

import pytest
import torch
from ganbench_plugins.cgan import CGAN
from ganbench_plugins.dcgan import DCGAN

from ganbench import ProbeSpec, VariantSpec
from ganbench.adversarial import GANConfig
from ganbench.errors import UsageError
from ganbench.testing import (
    batch_source,
    build_variant,
    check_generate,
    check_labels_honoured,
    check_metric,
    check_probe,
    check_train_step,
    make_evaluation,
    make_probe_context,
    run_metric,
    run_probe,
    train_variant,
)


class IgnoresLabels(CGAN):
    def generate(self, z, labels):
        return super().generate(z, torch.zeros_like(labels))  # always class 0


class LeaksGraph(DCGAN):
    def train_step(self, data):
        losses = super().train_step(data)
        return {k: v.clone().requires_grad_() for k, v in losses.items()}


class ReadsNoData(DCGAN):
    def train_step(self, data):
        return {"loss": torch.zeros(())}


class OutOfRange(DCGAN):
    def generate(self, z, labels):
        return 2 * super().generate(z, labels).sign()  # -2 and 2: outside [-1, 1]


class WrongShape(DCGAN):
    def generate(self, z, labels):
        return super().generate(z, labels)[:, :, :14]


def test_a_generator_that_ignores_labels_is_caught(fashion):
    with pytest.raises(AssertionError, match="labels are ignored"):
        check_labels_honoured(build_variant(VariantSpec("x", IgnoresLabels, GANConfig, conditional=True), fashion))
    check_labels_honoured(build_variant(VariantSpec("y", CGAN, GANConfig, conditional=True), fashion))


def test_undetached_losses_and_no_data_are_caught(fashion):
    v = build_variant(VariantSpec("x", LeaksGraph, GANConfig), fashion)
    with pytest.raises(AssertionError, match="must be detached"):
        check_train_step(v, batch_source(v, fashion))
    v = build_variant(VariantSpec("x", ReadsNoData, GANConfig), fashion)
    with pytest.raises(AssertionError, match="consumed no real batch"):
        check_train_step(v, batch_source(v, fashion))


def test_check_generate_checks_shape_and_range(fashion):
    v = build_variant("dcgan", fashion)
    images = check_generate(v, conditional=False, n=7)
    assert images.shape == (7, 1, 28, 28)
    with pytest.raises(AssertionError, match=r"in \[-1, 1\]"):
        check_generate(build_variant(VariantSpec("x", OutOfRange, GANConfig), fashion), conditional=False)
    with pytest.raises(AssertionError, match=r"shape \(20, 1, 14, 28\), expected \(20, 1, 28, 28\)"):
        check_generate(build_variant(VariantSpec("x", WrongShape, GANConfig), fashion), conditional=False)


# --- metrics and probes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cgan_evaluation(fashion, cache_dir):
    return make_evaluation("cgan", fashion, n=200, cache_dir=cache_dir)


def test_make_evaluation_samples_a_trained_variant_or_the_train_split(fashion, cache_dir, cgan_evaluation):
    ev = cgan_evaluation
    assert ev.variant == "cgan" and ev.samples.dtype == torch.uint8 and ev.samples.shape == (200, 1, 28, 28)
    assert torch.bincount(ev.labels).tolist() == [20] * 10 and ev.final and ev.options is None
    untrained = make_evaluation("cgan", fashion, n=200, steps=0, cache_dir=cache_dir)
    assert not torch.equal(untrained.samples, ev.samples)  # the 20 steps trained it
    real = make_evaluation(None, fashion, n=200, cache_dir=cache_dir)
    assert real.variant == "real-data" and real.labels is not None
    rows = [(fashion.train_images == image).flatten(1).all(1).nonzero() for image in real.samples[:5]]
    assert all(len(r) >= 1 for r in rows)  # train-split images themselves
    assert math.isnan(run_metric("inception-fid", real).values["fid_inception"])  # no weights: NaN with its note


def test_check_metric_returns_the_values_and_names_each_broken_contract(fixtures_dir, cgan_evaluation):
    third = [str(fixtures_dir / "plugin_third_party.py")]
    low = check_metric("bright-fraction", cgan_evaluation, options={"threshold": 0.1}, plugin_files=third)
    high = check_metric("bright-fraction", cgan_evaluation, options={"threshold": "0.9"}, plugin_files=third)
    assert 0 <= high.values["bright_fraction"] < low.values["bright_fraction"] <= 1
    assert len(low.per_class["bright_fraction"]) == 10  # a conditional variant's samples: per class
    with pytest.raises(UsageError, match=r"--set bright-fraction.threshold=2: threshold must be"):
        check_metric("bright-fraction", cgan_evaluation, options={"threshold": 2}, plugin_files=third)
    bad = [str(fixtures_dir / "plugin_bad_outputs.py")]
    expected = {
        "undeclared": "returned undeclared column(s) stray_value",
        "missing": "absent_value: metric missing did not return it",
        "silent-nan": "metric silent-nan returned NaN without a reason",
        "text": "metric text returned a str 'high', not a float",
        "tensor": "metric tensor returned a torch.Tensor, not a float (return .item())",
        "bad-per-class": "per_class 'class_value' has 2 values, not one per class (10)",
    }
    for metric, message in expected.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            check_metric(metric, cgan_evaluation, plugin_files=bad)
    with pytest.raises(ZeroDivisionError):  # the author sees the traceback
        check_metric("raising", cgan_evaluation, plugin_files=bad)
    # run_metric runs it as a run does: NaN and the row's note instead
    assert run_metric("raising", cgan_evaluation, plugin_files=bad).notes == {
        "raised_value": "raising failed: ZeroDivisionError: division by zero"
    }
    assert check_metric("good", cgan_evaluation, plugin_files=bad).values["good_value"] > 0


@pytest.fixture(scope="module")
def walk_context(fashion, cache_dir, fixtures_dir):
    return make_probe_context(
        "latent-walk", "dcgan", fashion, options={"steps": 5}, cache_dir=cache_dir,
        plugin_files=[str(fixtures_dir / "plugin_third_party.py")],
    )  # fmt: skip


def test_a_probe_runs_as_in_a_run_with_its_table_and_picture(walk_context, fixtures_dir):
    third = [str(fixtures_dir / "plugin_third_party.py")]
    assert walk_context.config.steps == 5 and walk_context.spec.name == "dcgan" and walk_context.attributes is not None
    outcome = check_probe("latent-walk", walk_context, plugin_files=third)
    rows = outcome.tables["walk"]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert outcome.values["walk_change"] == pytest.approx(sum(r["change"] for r in rows) / 4)
    picture = outcome.pictures["latent-walk"]["walk.png"]
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    again = run_probe("latent-walk", walk_context, plugin_files=third)  # the same generator seed: the same walk
    assert again.tables == outcome.tables and again.notes == {}


def test_check_probe_names_each_broken_contract_and_run_probe_notes_it(walk_context, fixtures_dir, cache_dir):
    bad = [str(fixtures_dir / "plugin_bad_outputs.py")]
    context = make_probe_context(
        "messy-probe", "dcgan", trained=walk_context.variant, cache_dir=cache_dir, plugin_files=bad
    )
    with pytest.raises(AssertionError) as caught:
        check_probe("messy-probe", context, plugin_files=bad)
    message = str(caught.value)
    for part in (
        "probe_tensor: probe messy-probe returned a torch.Tensor, not a float",
        "returned undeclared table 'unannounced', not saved (declared tables: messy_rows)",
        "table 'messy_rows' row 0 is a str, not a mapping of column to value; not saved",
        "picture not-png.png is a bytes b'GIF89a...', not PNG bytes",
        "picture name '../escape.png' is not a plain file name ending in .png",
    ):
        assert part in message, part
    outcome = run_probe("messy-probe", context, plugin_files=bad)
    assert outcome.values["probe_messy"] == 0.75 and math.isnan(outcome.values["probe_tensor"])
    assert outcome.tables == {} and outcome.pictures == {}
    assert set(outcome.notes) == {"probe_tensor", "probe messy-probe"}
    good = run_probe("good-probe", context, plugin_files=bad)
    assert (
        good.values == {"probe_good": 0.25}
        and good.notes == {}
        and good.tables == {"good_rows": [{"i": 0, "value": 0.25}]}
    )


def test_a_probe_that_changes_the_variant_is_caught(fashion, cache_dir):
    def meddles(probe):
        with torch.no_grad():
            next(probe.variant.networks()["generator"].parameters()).add_(1.0)
        return {"meddled": 1.0}

    meddler = ProbeSpec("meddler", ("meddled",), meddles)
    context = make_probe_context(
        meddler, "dcgan", fashion, trained=train_variant("dcgan", fashion, steps=1), cache_dir=cache_dir
    )
    with pytest.raises(AssertionError, match="changed the variant's generator"):
        check_probe(meddler, context)


def test_xdist_groups_reach_the_scheduler(tmp_path):
    """`--dist loadgroup` keeps an xdist_group on one worker only when pytest-xdist can tag the
    node ids (pytest 9.2 broke that silently): the Ray tests and the module-fixture groups rely on it."""
    import subprocess
    import sys

    (tmp_path / "test_grouped.py").write_text(
        "import pytest\n\n@pytest.mark.xdist_group('g')\n@pytest.mark.parametrize('i', range(4))\ndef test_x(i):\n    pass\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
         "-o", "addopts=", str(tmp_path / "test_grouped.py")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    passed = [line for line in out.stdout.splitlines() if "PASSED" in line]
    assert len(passed) == 4, out.stdout + out.stderr
    assert len({line.split()[0] for line in passed}) == 1, out.stdout  # one worker ran them all
    assert all(line.rstrip().endswith("@g") for line in passed), out.stdout

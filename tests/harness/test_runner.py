import json
import math

import pandas as pd
import pytest
import torch

import ganbench
from ganbench import columns as C
from ganbench.config import RunConfig
from ganbench.errors import UsageError
from ganbench.harness.rundir import (
    CONFIG_JSON,
    JOBS_CSV,
    METRICS_CSV,
    METRICS_PARQUET,
    PER_CLASS_CSV,
    SAMPLING_TABLE,
    SUMMARY_CSV,
    TRAIN_LOG_CSV,
)
from ganbench.harness.job import run_fingerprint
from ganbench.harness.plan import plan_run
from ganbench.registry import load_registry

REQUIRED = [
    "variant", "dataset", "seed", "eval_index", "step", "images_seen", "train_seconds", "status", "fid_domain",
    "kid_domain", "precision_domain", "recall_domain", "density_domain", "coverage_domain", "ifid_domain",
    "fid_inception", "fd_dinov2", "class_consistency", "class_coverage", "train_img_per_s", "gen_img_per_s", "peak_mem_mb",
]  # fmt: skip


@pytest.mark.slow
def test_run_writes_every_table_with_finite_metrics(run_kwargs):
    result = ganbench.run(variants="dcgan,cgan,acgan", **run_kwargs)
    out = result.run_dir
    for name in (METRICS_CSV, METRICS_PARQUET, SUMMARY_CSV, PER_CLASS_CSV, TRAIN_LOG_CSV, JOBS_CSV, CONFIG_JSON):
        assert (out / name).is_file(), name
    frame = pd.read_csv(out / METRICS_CSV)
    assert all(c in frame.columns for c in REQUIRED)
    # the same table in both formats (CSV reads an empty note back as a missing value)
    pd.testing.assert_frame_equal(frame.fillna({C.NOTE: ""}), pd.read_parquet(out / METRICS_PARQUET), check_dtype=False)
    jobs = pd.read_csv(out / JOBS_CSV)
    assert jobs.variant.tolist() == ["dcgan", "cgan", "acgan"] and (jobs.status == C.STATUS_OK).all()
    trained = frame[frame.status == C.STATUS_OK]
    assert sorted(trained.variant.unique()) == ["acgan", "cgan", "dcgan"]
    assert len(trained) == 3 * 2  # 3 variants x 2 evaluation points
    assert trained.fid_domain.notna().all() and (trained.fid_domain > 0).all()
    assert trained.groupby("variant").step.max().tolist() == [20, 20, 20]
    assert (trained.images_seen == trained.step * 64).all()
    assert trained[trained.variant != "dcgan"].class_consistency.between(0, 1).all()
    assert trained[trained.variant == "dcgan"].class_consistency.isna().all()
    assert trained.class_coverage.between(0, 1).all()
    assert trained.coverage_domain.between(0, 1).all() and (trained.density_domain >= 0).all()
    assert (trained[trained.variant != "dcgan"].ifid_domain > 0).all()
    assert trained[trained.variant == "dcgan"].ifid_domain.isna().all()
    assert trained[trained.variant == "dcgan"].note.str.contains("ifid_domain: unconditional variant").all()
    assert (trained.train_img_per_s > 0).all() and (trained.gen_img_per_s > 0).all() and (trained.peak_mem_mb > 0).all()
    # fid_inception cannot download its weights here: NaN with the reason in the note
    final = trained[trained.eval_index == 2]
    assert final.fid_inception.isna().all() and final.note.str.contains("fid_inception").all()
    # fd_dinov2 without --dinov2-weights: NaN, and the note says why (never a download attempt)
    assert final.fd_dinov2.isna().all() and final.note.str.contains("fd_dinov2: no --dinov2-weights FILE given").all()
    # the real-data reference row sits in the same table
    ref = frame[frame.variant == C.REAL_DATA].iloc[0]
    assert ref.status == C.STATUS_REFERENCE and ref.fid_domain < trained.fid_domain.min()
    # its intra-class FID: the train split's images of each class, with their true labels
    assert 0 < ref.ifid_domain < trained.ifid_domain.min() and ref.coverage_domain > trained.coverage_domain.max()
    # per-class table: one row per class per conditional evaluation
    per_class = pd.read_csv(out / PER_CLASS_CSV)
    assert len(per_class[per_class.variant == "cgan"]) == 2 * 10
    assert per_class[per_class.variant == "cgan"].ifid_domain.notna().all()
    assert per_class[per_class.variant == C.REAL_DATA].ifid_domain.notna().all()
    assert per_class.class_name.iloc[0] == "T-shirt/top"
    # summary: one row per variant, mean over seeds
    summary = pd.read_csv(out / SUMMARY_CSV)
    assert summary.variant.tolist() == [C.REAL_DATA, "dcgan", "cgan", "acgan"]
    cgan = summary.set_index("variant").loc["cgan"]
    assert cgan.fid_domain_mean == pytest.approx(final.set_index("variant").loc["cgan"].fid_domain)
    for variant in ("dcgan", "cgan", "acgan"):
        assert (out / "samples" / f"{variant}-seed0.png").is_file()
        assert (out / "checkpoints" / f"{variant}-seed0.pt").is_file()
    config = json.loads((out / CONFIG_JSON).read_text())
    assert config["run"]["budget"] == "20steps" and config["variants"]["cgan"]["config"]["lr_g"] == 2e-4
    assert config["classifier"]["test_accuracy"] >= 0.91 and config["environment"]["torch"]
    assert config["dinov2"] is None and config["run"]["dinov2_weights"] is None


@pytest.mark.slow
def test_two_runs_with_the_same_seed_and_a_steps_budget_give_identical_tables(run_kwargs, tmp_path):
    frames = []
    for name in ("a", "b"):
        kwargs = {**run_kwargs, "out": tmp_path / name, "checkpoints": False, "seeds": "0,1"}
        frames.append(ganbench.run(variants="cgan,acgan", **kwargs).metrics)
    a, b = (f.drop(columns=list(C.TIMING_COLUMNS)) for f in frames)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 1 + 2 * 2 * 2
    # and different seeds give different results
    cgan = a[a.variant == "cgan"].set_index(["seed", "eval_index"]).fid_domain
    assert cgan.loc[(0, 2)] != cgan.loc[(1, 2)]


@pytest.mark.slow
def test_rerun_from_config_json_gives_the_same_table(run_kwargs, tmp_path):
    first = ganbench.run(variants="cgan", **{**run_kwargs, "checkpoints": False})
    config = json.loads((first.run_dir / CONFIG_JSON).read_text())["run"]
    config["out"] = str(tmp_path / "again")
    second = ganbench.run(RunConfig.from_mapping(config))
    drop = list(C.TIMING_COLUMNS)
    pd.testing.assert_frame_equal(first.metrics.drop(columns=drop), second.metrics.drop(columns=drop))


@pytest.mark.slow
def test_a_diverging_variant_ends_cleanly_and_the_others_finish(run_kwargs, fixtures_dir):
    registry = load_registry([fixtures_dir / "plugin_nan.py"])
    result = ganbench.run(variants="nan-gan,cgan", set={"nan-gan": {"nan_at": 3}}, registry=registry, **run_kwargs)
    frame = result.metrics
    nan = frame[frame.variant == "nan-gan"]
    assert nan.status.tolist() == [C.STATUS_DIVERGED] and nan.step.tolist() == [3]
    assert nan.images_seen.tolist() == [3 * 64]  # the images of the steps it took, not of its log window
    assert "non-finite loss at step 3" in nan.note.iloc[0]
    log = pd.read_csv(result.run_dir / TRAIN_LOG_CSV)
    assert log[log.variant == "nan-gan"].step.tolist() == [2, 3]  # up to and including the diverged step
    cgan = frame[frame.variant == "cgan"]
    assert cgan.status.tolist() == [C.STATUS_OK, C.STATUS_OK] and cgan.fid_domain.notna().all()
    assert result.summary.set_index("variant").loc["nan-gan", "status"] == "diverged"


def test_a_failing_variant_is_recorded_and_the_others_finish(run_kwargs, fixtures_dir):
    plugin = fixtures_dir / "plugin_failing.py"
    result = ganbench.run(variants="failing,dcgan", plugin=[plugin], **run_kwargs)
    assert result.unfinished[[C.VARIANT, C.STATUS]].values.tolist() == [["failing", C.STATUS_FAILED]]
    by_variant = result.metrics.set_index("variant")
    assert by_variant.loc["failing", "status"] == C.STATUS_FAILED
    assert "RuntimeError: out of cheese" in by_variant.loc["failing", "note"]
    assert (result.metrics[result.metrics.variant == "dcgan"].status == C.STATUS_OK).all()


def test_plugins_through_every_hook_run_end_to_end(run_kwargs, fixtures_dir):
    result = ganbench.run(
        variants="linear",
        plugin=[fixtures_dir / "plugin_all_hooks.py"],
        **{**run_kwargs, "dataset": "fashion-mnist-tiny", "probes": "latent-sensitivity"},
    )
    frame = result.metrics
    row = frame[frame.variant == "linear"].iloc[-1]
    assert row.dataset == "fashion-mnist-tiny" and row.status == C.STATUS_OK
    assert "mean_intensity" in frame.columns and 0 < row.mean_intensity < 1
    assert math.isfinite(row.fid_domain)
    # the probe ran at the final evaluation only, with its table beside the metrics
    linear = frame[frame.variant == "linear"]
    assert linear.latent_sensitivity.isna().tolist() == [True, False] and row.latent_sensitivity > 0
    table = pd.read_csv(result.run_dir / "sensitivity.csv")
    assert table.latent.tolist() == list(range(8)) and (table.eval_index == 2).all()
    assert row.latent_sensitivity == pytest.approx(table.gradient_norm.mean())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"variants": "cgan,nope"},
            "unknown variant 'nope'; accepted: acgan, cgan, cgan-pd, cgan-wgangp, dcgan, r1gan, sngan, srgan, wgan, wgan-gp",
        ),
        ({"variants": ""}, "no variants given"),
        ({"variants": "cgan", "dataset": "cifar"}, "unknown dataset 'cifar'"),
        ({"variants": "cgan", "set": ["cgan.lr=1"]}, "cgan has no setting 'lr'"),
        ({"variants": "cgan", "set": ["dcgan.lr_g=1"]}, "--set names dcgan, which is neither a variant in --variants"),
        ({"variants": "cgan", "probes": "nope"}, "unknown probe 'nope'; accepted: "),
        ({"variants": "cgan", "probes": "", "set": ["steering.steps=3"]}, "nor a probe that runs (none)"),
        ({"variants": "cgan", "metrics": "fid"}, "unknown metric 'fid'; accepted: class-consistency"),
        ({"variants": "cgan", "device": "tpu"}, "device 'tpu'"),
    ],
)
def test_bad_input_fails_before_anything_is_computed(kwargs, message, run_kwargs):
    with pytest.raises(UsageError) as err:
        ganbench.run(**{**run_kwargs, **kwargs})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not run_kwargs["out"].exists()


def test_a_run_with_other_options_is_refused_with_a_diff_and_nothing_changes(run_kwargs, tree_digest):
    ganbench.run(variants="dcgan", **{**run_kwargs, "metrics": "class-consistency"})
    before = tree_digest(run_kwargs["out"])
    with pytest.raises(UsageError) as err:
        ganbench.run(variants="cgan", **run_kwargs)
    message = str(err.value)
    assert (
        "holds a run with other options (variants: ['dcgan'] -> ['cgan']; metrics: ['class-consistency'] -> [])"
        in message
    )
    assert "ganbench run --resume" in message and "\n" not in message
    assert tree_digest(run_kwargs["out"]) == before


def test_changed_hyperparameters_are_named_in_the_diff(run_kwargs):
    kwargs = {**run_kwargs, "budget": "2steps", "evals": 1, "metrics": "class-consistency"}
    ganbench.run(variants="cgan", set={"cgan": {"lr_g": "1e-4"}}, **kwargs)
    ganbench.run(variants="cgan", set={"cgan": {"lr_g": 0.0001}}, **kwargs)  # the same value, typed otherwise
    with pytest.raises(UsageError, match=r"cgan.lr_g: 0.0001 -> 0.001"):
        ganbench.run(variants="cgan", set={"cgan": {"lr_g": "1e-3"}}, **kwargs)


@pytest.mark.slow
def test_the_same_run_again_resumes_and_keeps_finished_jobs(run_kwargs, monkeypatch):
    kwargs = {**run_kwargs, "metrics": "class-consistency"}
    first = ganbench.run(variants="dcgan,cgan", **kwargs)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished job was trained again")

    monkeypatch.setattr("ganbench.harness.trainer.Trainer.fit", no_training)
    again = ganbench.run(variants="dcgan,cgan", **kwargs)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    record = json.loads((run_kwargs["out"] / CONFIG_JSON).read_text())
    assert len(record["resumed"]) == 1 and record["started"]


def test_resume_takes_the_runs_own_options(run_kwargs):
    first = ganbench.run(variants="cgan", **{**run_kwargs, "metrics": "class-consistency", "budget": "3steps"})
    again = ganbench.run(resume=run_kwargs["out"])
    pd.testing.assert_frame_equal(first.metrics, again.metrics)


@pytest.mark.slow
def test_a_failed_job_is_run_again_on_resume_from_its_checkpoint(run_kwargs, tmp_path, monkeypatch):
    plugin = tmp_path / "flaky.py"
    plugin.write_text(
        "import os\n"
        "from ganbench import VariantSpec, hookimpl\n"
        "from ganbench_plugins.dcgan import DCGAN\n"
        "from ganbench.adversarial import GANConfig\n"
        "class Flaky(DCGAN):\n"
        "    def train_step(self, data):\n"
        "        if os.environ.get('FLAKY') and data.images_seen >= 10 * 64:\n"
        "            raise RuntimeError('worker lost')\n"
        "        return super().train_step(data)\n"
        "@hookimpl\n"
        "def ganbench_register_variants(register):\n"
        "    register(VariantSpec('flaky', Flaky, GANConfig))\n"
    )
    kwargs = {**run_kwargs, "metrics": "class-consistency", "plugin": [plugin]}
    whole = ganbench.run(variants="flaky", **{**kwargs, "out": tmp_path / "whole"})
    monkeypatch.setenv("FLAKY", "1")  # as if its machine went away after step 10
    failed = ganbench.run(variants="flaky", **kwargs)
    monkeypatch.delenv("FLAKY")
    assert failed.jobs.status.tolist() == [C.STATUS_FAILED] and failed.metrics.status.tolist()[-1] == C.STATUS_FAILED
    resumed = ganbench.run(variants="flaky", **kwargs)
    assert resumed.jobs.status.tolist() == [C.STATUS_OK]
    drop = list(C.TIMING_COLUMNS)
    pd.testing.assert_frame_equal(whole.metrics.drop(columns=drop), resumed.metrics.drop(columns=drop))


def test_a_corrupted_checkpoint_is_one_line_and_nothing_runs(run_kwargs, tree_digest):
    kwargs = {**run_kwargs, "metrics": "class-consistency", "budget": "4steps"}
    ganbench.run(variants="cgan", **kwargs)
    jobs = run_kwargs["out"] / JOBS_CSV
    jobs.write_text(jobs.read_text().replace(",ok,", ",interrupted,"))  # as if it had stopped
    checkpoint = run_kwargs["out"] / "checkpoints" / "cgan-seed0.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    before = tree_digest(run_kwargs["out"])
    with pytest.raises(UsageError) as err:
        ganbench.run(variants="cgan", **kwargs)
    assert f"checkpoint {checkpoint} is unreadable" in str(err.value) and "\n" not in str(err.value)
    assert "delete it to restart cgan seed 0 from the beginning" in str(err.value)
    assert tree_digest(run_kwargs["out"]) == before


def test_a_foreign_checkpoint_is_refused(run_kwargs):
    kwargs = {**run_kwargs, "metrics": "class-consistency", "budget": "4steps", "seeds": "0,1"}
    ganbench.run(variants="cgan", **kwargs)
    out = run_kwargs["out"]
    jobs = out / JOBS_CSV
    jobs.write_text(jobs.read_text().replace(",ok,", ",interrupted,"))
    (out / "checkpoints" / "cgan-seed0.pt").write_bytes((out / "checkpoints" / "cgan-seed1.pt").read_bytes())
    with pytest.raises(UsageError, match="belongs to cgan seed 1, not cgan seed 0"):
        ganbench.run(variants="cgan", **kwargs)


def test_a_pickle_planted_as_a_checkpoint_never_runs(run_kwargs, tmp_path):
    kwargs = {**run_kwargs, "metrics": "class-consistency", "budget": "4steps"}
    ganbench.run(variants="cgan", **kwargs)
    jobs = run_kwargs["out"] / JOBS_CSV
    jobs.write_text(jobs.read_text().replace(",ok,", ",interrupted,"))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"format": "ganbench-checkpoint/1", "x": Payload()}, run_kwargs["out"] / "checkpoints" / "cgan-seed0.pt")
    with pytest.raises(UsageError, match="is unreadable"):
        ganbench.run(variants="cgan", **kwargs)
    assert not marker.exists()


def test_metric_selection(run_kwargs):
    frame = ganbench.run(variants="cgan", **{**run_kwargs, "metrics": "class-consistency"}).metrics
    ok = frame[frame.status == C.STATUS_OK]
    assert ok.class_consistency.notna().all() and ok.fid_domain.isna().all()


@pytest.mark.slow
def test_super_resolution_run_reports_the_bicubic_baseline_beside_it(run_kwargs):
    result = ganbench.run(variants="srgan", **{**run_kwargs, "budget": "15steps", "evals": 1})
    frame = result.metrics.set_index("variant")
    baseline, srgan = frame.loc["bicubic-x2"], frame.loc["srgan"]
    assert baseline.status == C.STATUS_REFERENCE and srgan.status == C.STATUS_OK
    for row in (baseline, srgan):
        for column in ("psnr", "ssim", "fid_domain", "class_consistency"):
            assert math.isfinite(row[column]), column
        assert 0 < row.ssim <= 1 and 0 <= row.class_consistency <= 1
    assert baseline.psnr > 15  # dB; a 15-step SRGAN is still far below it, the 3-minute one above
    assert C.REAL_DATA not in frame.index  # no generation variant: no real-data row
    assert (result.run_dir / "samples" / "srgan-seed0.png").is_file()


@pytest.mark.slow
def test_classifier_content_loss_is_flagged_as_not_held_out(run_kwargs):
    result = ganbench.run(variants="srgan", set={"srgan": {"content": "classifier"}}, **{**run_kwargs, "evals": 1})
    row = result.metrics.set_index("variant").loc["srgan"]
    assert row.status == C.STATUS_OK and "not held out" in row.note


def test_critic_steps_are_recorded_and_budgets_count_generator_steps(run_kwargs):
    frame = ganbench.run(variants="wgan,dcgan", **{**run_kwargs, "budget": "4steps", "evals": 1}).metrics
    by_variant = frame.set_index("variant")
    assert by_variant.loc["wgan", "step"] == by_variant.loc["dcgan", "step"] == 4
    assert by_variant.loc["wgan", "critic_steps"] == 5 and by_variant.loc["dcgan", "critic_steps"] == 1
    assert by_variant.loc["wgan", "images_seen"] == 4 * 5 * 64 and by_variant.loc["dcgan", "images_seen"] == 4 * 64


@pytest.mark.slow
def test_a_third_party_probe_through_an_entry_point_produces_its_column(run_kwargs, tmp_path, monkeypatch):
    (tmp_path / "brightness_probe.py").write_text(
        "import torch\n"
        "from ganbench import ProbeSpec, hookimpl\n"
        "def brightness(probe):\n"
        "    z = torch.randn(16, probe.variant.z_dim, generator=probe.generator)\n"
        "    with torch.no_grad():\n"
        "        return {'brightness': probe.variant.generate(z, None).mean().item()}\n"
        "@hookimpl\n"
        "def ganbench_register_probes(register):\n"
        "    register(ProbeSpec('brightness', ('brightness',), brightness))\n"
    )
    dist = tmp_path / "brightness_probe-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brightness-probe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ganbench]\nbrightness = brightness_probe\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(environ={})
    assert registry.probes["brightness"].plugin == "brightness"
    kwargs = {**run_kwargs, "metrics": "class-consistency", "probes": "brightness", "budget": "2steps", "evals": 1}
    row = ganbench.run(variants="dcgan", registry=registry, **kwargs).metrics.set_index("variant").loc["dcgan"]
    assert -1 <= row.brightness <= 1 and row.status == C.STATUS_OK


SMALL_PROBES = {
    "steering": {"latents": 8}, "path-length": {"samples": 100}, "label-swap": {"latents": 10},
    "cas": {"samples": 300, "epochs": 1}, "memorisation": {"samples": 200},
}  # fmt: skip


@pytest.mark.slow
def test_built_in_probes_run_at_the_final_evaluation_with_tables_and_pictures(run_kwargs):
    result = ganbench.run(variants="dcgan,cgan", set=SMALL_PROBES, **{**run_kwargs, "probes": None})
    frame = result.metrics[result.metrics.status == C.STATUS_OK].set_index(["variant", "eval_index"])
    probe_columns = [*C.STEER_COLUMNS, *C.STEER_PLAIN_COLUMNS, C.PPL_DOMAIN, *C.MEMORISATION_COLUMNS]
    for variant in ("dcgan", "cgan"):
        assert frame.loc[(variant, 1), probe_columns].isna().all()  # not at earlier evaluations
        final = frame.loc[(variant, 2)]
        assert final[probe_columns].notna().all() and final.probe_seconds > 0
        assert 0 <= final.steer_disentanglement <= 1 and 0 <= final.steer_success <= 1
    for column in (C.SWAP_CONSISTENCY, C.CAS):  # label swap and CAS: conditional variants only
        assert math.isnan(frame.loc[("dcgan", 2), column]) and 0 <= frame.loc[("cgan", 2), column] <= 1
    steering = pd.read_csv(result.run_dir / "steering.csv")
    per_variant = steering.groupby("variant").size().to_dict()
    assert per_variant == {"dcgan": (4 + 10) * 2, "cgan": 4 * 2}  # attributes (and classes when unconditional) x modes
    assert (steering.eval_index == 2).all()
    folder = result.run_dir / "probes" / "cgan-seed0"  # a folder per probe
    assert sorted(p.name for p in folder.iterdir()) == ["label-swap", "memorisation", "steering"]
    assert [p.name for p in (folder / "label-swap").iterdir()] == ["label-swap.png"]
    assert [p.name for p in (folder / "memorisation").iterdir()] == ["memorisation.png"]
    assert sorted(p.name for p in (folder / "steering").iterdir()) == [
        f"steering-{a}.png" for a in ("area", "height", "ink", "width")
    ]
    record = json.loads((result.run_dir / CONFIG_JSON).read_text())
    assert record["judges"]["judge"]["mean_attribute_accuracy"] > 0.85
    assert record["probes"]["steering"]["config"]["latents"] == 8


@pytest.mark.slow
def test_the_real_data_row_holds_the_references_of_the_probes_that_have_one(run_kwargs, cache_dir, fashion):
    """CAS and memorisation give the real-data row their value on real data (the classifier
    trained on as many real training images; the held-out test half as samples) and their
    tables' rows; the probes without a reference leave NaN there."""
    from ganbench_plugins import probes as P

    from ganbench.harness.job import PROBE_SEED_OFFSET
    from ganbench.probes import REFERENCE_SEED, ReferenceContext

    probes = ("cas", "memorisation", "path-length")
    small = {name: SMALL_PROBES[name] for name in probes}
    result = ganbench.run(variants="cgan", set=small, **{**run_kwargs, "probes": ",".join(probes)})
    ref = result.metrics.set_index(C.VARIANT).loc[C.REAL_DATA]
    generator = torch.Generator().manual_seed(REFERENCE_SEED + PROBE_SEED_OFFSET)
    context = ReferenceContext(
        REFERENCE_SEED, P.CASConfig(samples=300, epochs=1), fashion, None, generator, torch.device("cpu")
    )
    assert ref[C.CAS] == P.reference_cas(context).values[C.CAS]  # computed here, without the cache
    assert 0.2 < ref[C.CAS] <= 1  # 300 real images, 5 steps: above chance (0.1)
    assert all(0 <= ref[c] <= 0.1 for c in (C.MEMORISED_SHARE_DOMAIN, C.MEMORISED_SHARE_PIXEL))
    assert all(0.9 < ref[c] < 1.1 for c in (C.NN_RATIO_DOMAIN, C.NN_RATIO_PIXEL))
    assert math.isnan(ref[C.PPL_DOMAIN]) and ref.probe_seconds > 0
    cas = pd.read_csv(result.run_dir / "cas.csv")
    assert cas.groupby(C.VARIANT).size().to_dict() == {C.REAL_DATA: 10, "cgan": 10}
    assert (cas[cas.variant == C.REAL_DATA].train_images == 30).all()  # 300 balanced over 10 classes
    memorisation = pd.read_csv(result.run_dir / "memorisation.csv")
    assert sorted(memorisation[memorisation.variant == C.REAL_DATA].space) == ["domain", "pixel"]
    assert not (result.run_dir / "probes" / f"{C.REAL_DATA}-seed-1").exists()  # no pictures for the row


@pytest.mark.slow
def test_resample_scores_the_final_generator_again_on_an_independent_draw(run_kwargs, tmp_path):
    result = ganbench.run(variants="cgan,dcgan", **{**run_kwargs, "resample": True})
    sampling = pd.read_csv(result.run_dir / f"{SAMPLING_TABLE}.csv")
    assert sampling[[C.VARIANT, C.DRAW]].values.tolist() == [["cgan", 0], ["cgan", 1], ["dcgan", 0], ["dcgan", 1]]
    assert (sampling.eval_index == 2).all() and sampling.sampling_seed.tolist() == [1_000_003, 3_000_017] * 2
    columns = [C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN, C.CLASS_CONSISTENCY, C.CLASS_COVERAGE]
    assert C.FID_INCEPTION not in sampling  # final-only: not scored again
    final = result.metrics[result.metrics.eval_index == 2].set_index(C.VARIANT)
    for variant, draws in sampling.groupby(C.VARIANT):
        main, again = draws.set_index(C.DRAW).loc[0], draws.set_index(C.DRAW).loc[1]
        assert main[C.STEP] == again[C.STEP] == final.loc[variant, C.STEP]
        for column in columns:  # draw 0 is the main evaluation: metrics.csv's final row
            assert main[column] == pytest.approx(final.loc[variant, column], rel=1e-12, nan_ok=True), column
        assert again[C.FID_DOMAIN] != main[C.FID_DOMAIN] and math.isfinite(again[C.FID_DOMAIN])
    record = json.loads((result.run_dir / CONFIG_JSON).read_text())
    assert record["run"]["resample"] is True
    off = ganbench.run(variants="cgan", **{**run_kwargs, "out": tmp_path / "off", "resample": False})
    assert not (off.run_dir / f"{SAMPLING_TABLE}.csv").exists()
    assert json.loads((off.run_dir / CONFIG_JSON).read_text())["run"]["resample"] is False


def test_the_run_fingerprint_holds_resample_but_not_the_seeds(registry, tmp_path):
    """A checkpoint is resumed only by a run that computes the same: --resample changes that; the
    run's other seeds do not (seeds are added to a run, its unfinished jobs keep their checkpoints)."""

    def fingerprint(**overrides):
        config = RunConfig(variants=("cgan",), out=tmp_path, device="cpu", **overrides)
        return run_fingerprint(plan_run(config, registry))

    assert fingerprint(resample=True) != fingerprint(resample=False)
    assert fingerprint(seeds=(0, 1, 2)) == fingerprint(seeds=(0,)) == fingerprint(seeds=tuple(range(10)))


def test_the_run_fingerprint_holds_a_metrics_options(tmp_path, fixtures_dir):
    """Metric options change what a run computes, as a probe's do: a checkpoint made with one
    threshold is not resumed with another; the default written out is the default."""
    plugin = str(fixtures_dir / "plugin_third_party.py")
    registry = load_registry([plugin], environ={})

    def plan(**overrides):
        config = RunConfig(variants=("cgan",), out=tmp_path, device="cpu", probes=(), **overrides)
        return plan_run(config, registry)

    default, explicit = plan(), plan(set={"bright-fraction": {"threshold": "0.5"}})
    strict = plan(set={"bright-fraction": {"threshold": "0.8"}})
    assert strict.metric_options["bright-fraction"].threshold == 0.8
    assert default.metric_options["bright-fraction"].threshold == 0.5
    assert run_fingerprint(default) == run_fingerprint(explicit) != run_fingerprint(strict)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"bright-fraction": {"threshold": "2"}}, "--set bright-fraction.threshold=2: threshold must be in [0, 1]"),
        ({"bright-fraction": {"treshold": "0.2"}}, "bright-fraction has no setting 'treshold'; accepted: threshold"),
        ({"bright-fraction": {"threshold": "high"}}, "--set bright-fraction.threshold=high: could not convert"),
        ({"latent-walk": {"steps": "1"}}, "--set latent-walk.steps=1: steps must be >= 2"),
        ({"ink": {"x": "1"}}, "--set names ink, which is neither a variant in --variants (cgan) nor a probe that runs"),
    ],
)
def test_bad_metric_options_are_refused_when_the_run_is_planned(overrides, message, run_kwargs, fixtures_dir):
    kwargs = {**run_kwargs, "plugin": [fixtures_dir / "plugin_third_party.py"], "probes": "latent-walk"}
    with pytest.raises(UsageError) as err:
        ganbench.run(variants="cgan", set=overrides, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not run_kwargs["out"].exists()


def test_a_metrics_options_reach_it_are_recorded_and_a_resume_with_others_is_refused(
    run_kwargs, fixtures_dir, cache_dir
):
    from ganbench.testing import make_evaluation, run_metric

    plugin = fixtures_dir / "plugin_third_party.py"
    kwargs = {**run_kwargs, "plugin": [plugin], "metrics": "bright-fraction,class-consistency", "budget": "2steps",
              "evals": 1, "eval_samples": 100}  # fmt: skip
    result = ganbench.run(variants="cgan", set={"bright-fraction": {"threshold": "0.8"}}, **kwargs)
    record = json.loads((result.run_dir / CONFIG_JSON).read_text())
    assert record["metrics"]["bright-fraction"]["config"] == {"threshold": 0.8}
    assert record["metrics"]["class-consistency"]["config"] == {}
    # the reference row is the train split scored as ganbench.testing scores it: the same number
    real = result.metrics.set_index(C.VARIANT).loc[C.REAL_DATA]
    evaluation = make_evaluation(None, n=100, cache_dir=cache_dir)
    ours = run_metric("bright-fraction", evaluation, options={"threshold": 0.8}, plugin_files=[plugin])
    default = run_metric("bright-fraction", evaluation, plugin_files=[plugin])
    assert real.bright_fraction == ours.values["bright_fraction"] != default.values["bright_fraction"]
    with pytest.raises(UsageError) as err:
        ganbench.run(variants="cgan", set={"bright-fraction": {"threshold": "0.7"}}, **kwargs)
    assert "other options (bright-fraction.threshold: 0.8 -> 0.7)" in str(err.value)


def test_a_broken_metric_or_probe_is_noted_in_the_row_and_the_others_are_kept(run_kwargs, fixtures_dir):
    plugin = fixtures_dir / "plugin_bad_outputs.py"
    kwargs = {**run_kwargs, "plugin": [plugin], "budget": "2steps", "evals": 1, "eval_samples": 100,
              "probes": "good-probe,messy-probe"}  # fmt: skip
    result = ganbench.run(variants="dcgan", **kwargs)
    row = result.metrics.set_index(C.VARIANT).loc["dcgan"]
    assert row.status == C.STATUS_OK and math.isfinite(row.fid_domain) and 0 < row.good_value < 1
    assert row.declared_value == 1.0 and row.present_value == 3.0 and row.probe_good == 0.25 and row.probe_messy == 0.75
    for column in ("absent_value", "nan_value", "text_value", "tensor_value", "raised_value", "probe_tensor"):
        assert math.isnan(row[column]), column
    assert "stray_value" not in result.metrics.columns
    for part in (
        "metric undeclared: returned undeclared column(s) stray_value, ignored (declared: declared_value)",
        "absent_value: metric missing did not return it",
        "nan_value: metric silent-nan returned NaN without a reason",
        "text_value: metric text returned a str 'high', not a float",
        "tensor_value: metric tensor returned a torch.Tensor, not a float (return .item())",
        "raised_value: raising failed: ZeroDivisionError: division by zero",
        "metric bad-per-class: per_class 'class_value' has 2 values, not one per class (10); ignored",
        "probe_tensor: probe messy-probe returned a torch.Tensor, not a float",
        "probe messy-probe: table 'messy_rows' row 0 is a str, not a mapping of column to value; not saved",
        "returned undeclared table 'unannounced', not saved",
        "picture not-png.png is a bytes b'GIF89a...', not PNG bytes",
    ):
        assert part in row.note, part
    assert "good_value" not in row.note and "probe_good" not in row.note
    assert pd.read_csv(result.run_dir / "good_rows.csv")["value"].tolist() == [0.25]
    assert not (result.run_dir / "messy_rows.csv").exists() and not (result.run_dir / "probes").exists()

"""The fast path (--precision, --compile): honoured by AdversarialVariant and srgan, recorded in
the rows and the fingerprint, and off by default."""

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

import ganbench
from ganbench import columns as C
from ganbench.config import RunConfig, variant_config
from ganbench.errors import UsageError
from ganbench.fastpath import warm_up
from ganbench.harness import trainer as trainer_module
from ganbench.harness.job import run_fingerprint
from ganbench.harness.plan import plan_run
from ganbench.harness.rundir import METRICS_CSV, TRAIN_LOG_CSV
from ganbench.harness.seeding import seed_everything
from ganbench.testing import batch_source, resolve_spec
from ganbench.variant import VariantContext

BUILT_INS = ["dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan"]


def build(name, splits, device="cpu", **settings):
    """A built-in variant as the harness builds it, with the context's fast-path settings."""
    spec = resolve_spec(name)
    torch.manual_seed(0)
    context = VariantContext(
        splits.image_shape, splits.num_classes, torch.device(device), None, spec.conditional, **settings
    )
    return spec.build(context, variant_config(name, spec.config, {}))


def train(variant, splits, steps):
    source = batch_source(variant, splits)
    variant.train(True)
    return [variant.train_step(source) for _ in range(steps)]


def test_bf16_run_trains_and_its_rows_record_the_setting(run_kwargs):
    result = ganbench.run(variants="dcgan", precision="bf16", **run_kwargs)
    rows = result.metrics[result.metrics[C.VARIANT] == "dcgan"]
    assert list(rows[C.STATUS]) == [C.STATUS_OK, C.STATUS_OK]
    assert set(rows[C.PRECISION]) == {"bf16"} and set(rows[C.COMPILED]) == {False}
    assert result.metrics[C.COMPILE_SECONDS].isna().all()  # no --compile, no warm-up
    assert rows[C.FID_DOMAIN].notna().all()
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["run"]["precision"] == "bf16" and config["run"]["compile"] is False


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp", "srgan"])
def test_default_training_is_explicit_fp32(name, fashion):
    default = train(build(name, fashion), fashion, 2)
    explicit = train(build(name, fashion, precision="fp32", compile=False), fashion, 2)
    for a, b in zip(default, explicit):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
@pytest.mark.parametrize("name", ["acgan", "cgan-wgangp"])
def test_train_step_runs_the_networks_in_the_precision(name, precision, dtype, fashion):
    v = build(name, fashion, precision=precision)
    seen = []
    parts = [v.generator.backbone, v.discriminator.trunk, *v.discriminator.heads.values()]
    for part in parts:
        part.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    losses = train(v, fashion, 1)[0]
    assert seen and set(seen) == {dtype}
    assert all(loss.dtype == torch.float32 and torch.isfinite(loss) for loss in losses.values())
    assert all(p.dtype == torch.float32 for p in v.generator.parameters())  # fp32 master weights


def test_srgan_train_step_runs_its_networks_in_bf16(fashion):
    v = build("srgan", fashion, precision="bf16")
    seen = []
    for net in (v.generator.tail, v.discriminator.trunk):
        net.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    train(v, fashion, 1)
    assert seen and set(seen) == {torch.bfloat16}


def test_evaluation_generates_in_fp32_under_bf16(fashion):
    v = build("cgan", fashion, precision="bf16")
    train(v, fashion, 1)
    with v.evaluating():
        images = v.generate(v.sample_latent(10), torch.arange(10))
    assert images.dtype == torch.float32


class HostRead(AssertionError):
    pass


@pytest.mark.parametrize("name", BUILT_INS)
def test_train_step_never_reads_tensors_on_the_host(name, fashion, monkeypatch):
    """No .item(), .cpu(), .tolist() or Python branching on a tensor's value in a training step
    (on a GPU each is a host synchronisation). The optimisers' own step counters are exempt:
    torch keeps them on the CPU."""
    v = build(name, fashion, precision="bf16")
    source = batch_source(v, fashion)
    v.train(True)
    inside_optimizer = []
    for opt in v.optimizers().values():
        opt.register_step_pre_hook(lambda *a: inside_optimizer.append(True))
        opt.register_step_post_hook(lambda *a: inside_optimizer.pop())

    def forbid(method):
        original = getattr(torch.Tensor, method)

        def guarded(self, *args, **kwargs):
            if not inside_optimizer:
                raise HostRead(f"train_step called Tensor.{method}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, guarded)

    for method in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        forbid(method)
    losses = v.train_step(source)
    monkeypatch.undo()
    assert all(torch.isfinite(loss) for loss in losses.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", BUILT_INS)
def test_cuda_train_step_does_not_synchronise(name, fashion):
    v = build(name, fashion, device="cuda", precision="bf16")
    source = batch_source(v, fashion)
    v.train(True)
    v.train_step(source)  # first step: lazy initialisation (cuDNN, optimiser state) may synchronise
    torch.cuda.set_sync_debug_mode("error")
    try:
        v.train_step(source)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("raw", ["fp8", "fp16", "half"])
def test_unknown_precision_is_a_usage_error_naming_the_accepted_values(raw):
    with pytest.raises(UsageError, match=rf"precision '{raw}' is not supported; accepted: fp32, bf16"):
        RunConfig.from_mapping({"variants": "dcgan", "precision": raw})


def test_cli_refuses_an_unknown_precision(ganbench_cli, tmp_path):
    out = ganbench_cli("run", "--variants", "dcgan", "--precision", "fp8", cwd=tmp_path)
    assert out.returncode == 2 and "accepted: fp32, bf16" in out.stderr, out.stderr


@pytest.mark.parametrize("setting", [{"precision": "bf16"}, {"compile": True}])
def test_fast_path_settings_change_the_run_fingerprint(setting, registry, tmp_path):
    def fingerprint(**overrides):
        config = RunConfig(variants=("dcgan",), out=tmp_path, device="cpu", **overrides)
        return run_fingerprint(plan_run(config, registry))

    assert fingerprint(**setting) != fingerprint()


def equal(a, b):
    """Bit-identical nested state (tensors, numbers, lists, dicts)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return a == b


def steps_after(name, splits, steps, warm, **settings):
    """Losses of ``steps`` training steps of a freshly built variant, after a warm-up or not;
    then the variant, its batch source and the global RNGs' next values."""
    seed_everything(0)
    v = build(name, splits, **settings)
    source = batch_source(v, splits)
    v.train(True)
    if warm:
        warm_up(v, source)
    losses = [v.train_step(source) for _ in range(steps)]
    return losses, v, source, (torch.rand(3), random.random(), np.random.rand())


def assert_same_run(a, b):
    (losses_a, va, sa, rng_a), (losses_b, vb, sb, rng_b) = a, b
    assert all(equal(x, y) for x, y in zip(losses_a, losses_b))
    assert equal(va.state_dict(), vb.state_dict())  # weights, batch-norm statistics, optimiser state
    grads = [[p.grad for n in v.networks().values() for p in n.parameters()] for v in (va, vb)]
    assert all((x is None and y is None) or equal(x, y) for x, y in zip(*grads))
    assert equal(sa.state_dict(), sb.state_dict())  # the same batches consumed
    assert equal(rng_a[0], rng_b[0]) and rng_a[1:] == rng_b[1:]  # the same random numbers drawn


@pytest.mark.parametrize("name", BUILT_INS)
def test_warm_up_changes_nothing_the_run_computes(name, fashion):
    """--compile's warm-up step (compilation before the budget's clock) consumes none of the
    job's batches or random numbers and leaves weights, batch-norm statistics, clipped weights,
    gradients and optimiser state as they were: the steps after it are bit-identical."""
    assert_same_run(steps_after(name, fashion, 1, warm=False), steps_after(name, fashion, 1, warm=True))


@pytest.mark.slow
def test_compiled_warm_up_compiles_the_step_and_changes_nothing(fashion):
    """After the warm-up a compiled dcgan's training steps compile nothing more, and compute
    exactly what a compiled dcgan without the warm-up computes."""
    from torch._dynamo.utils import counters
    from torch._inductor.utils import fresh_cache

    graphs = []

    def run(warm):
        torch._dynamo.reset()
        with fresh_cache():  # each compiles from scratch, not from the other's cache
            seed_everything(0)
            v = build("dcgan", fashion, compile=True)
            source = batch_source(v, fashion)
            v.train(True)
            if warm:
                warm_up(v, source)
            before = counters["stats"]["unique_graphs"]
            losses = [v.train_step(source) for _ in range(3)]
            graphs.append(counters["stats"]["unique_graphs"] - before)
            return losses, v, source, (torch.rand(3), random.random(), np.random.rand())

    assert_same_run(run(warm=False), run(warm=True))
    assert graphs[0] > 0 and graphs[1] == 0, graphs  # compiled in its first step / in the warm-up


def compiled_run(kwargs):
    from torch._inductor.utils import fresh_cache

    torch._dynamo.reset()
    with fresh_cache():  # compile from scratch: an earlier test's compiled graphs are not reused
        result = ganbench.run(variants="dcgan", compile=True, **kwargs)
    return result, result.metrics[result.metrics[C.VARIANT] == "dcgan"].iloc[-1]


@pytest.mark.slow
def test_compiled_variant_trains_and_its_rows_record_it(run_kwargs, monkeypatch):
    """A steps budget under --compile: the same steps and, bit for bit, the same losses and
    metrics with the warm-up before the clock as without it (compiling inside the first step)."""
    kwargs = {**run_kwargs, "budget": "4steps", "evals": 1, "eval_samples": 50, "log_every": 2}
    result, row = compiled_run(kwargs)
    assert row[C.STATUS] == C.STATUS_OK and bool(row[C.COMPILED]) is True and row[C.STEP] == 4
    assert row[C.COMPILE_SECONDS] > 0
    log = pd.read_csv(result.run_dir / TRAIN_LOG_CSV)
    assert len(log) == 2 and torch.isfinite(torch.tensor(log[["d_loss", "g_loss"]].to_numpy())).all()
    monkeypatch.setattr(trainer_module, "warm_up", lambda variant, source: None)
    unwarmed, unwarmed_row = compiled_run({**kwargs, "out": kwargs["out"].with_name("unwarmed")})
    assert unwarmed_row[C.STEP] == 4 and unwarmed_row[C.COMPILE_SECONDS] < row[C.COMPILE_SECONDS]
    unwarmed_log = pd.read_csv(unwarmed.run_dir / TRAIN_LOG_CSV)
    pd.testing.assert_frame_equal(log.drop(columns=[C.TRAIN_SECONDS]), unwarmed_log.drop(columns=[C.TRAIN_SECONDS]))
    a, b = (pd.read_csv(r.run_dir / METRICS_CSV).drop(columns=list(C.TIMING_COLUMNS)) for r in (result, unwarmed))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_seconds_budget_excludes_compilation(run_kwargs):
    """A 5-second budget under --compile, compilation taking far longer: the job still trains
    several steps, and train_seconds (what the budget counts) does not hold compile_seconds.
    (Before the warm-up the first step compiled, past the budget, and the job ended there.)"""
    kwargs = {**run_kwargs, "budget": "5s", "evals": 1, "eval_samples": 50, "log_every": 1}
    _, row = compiled_run(kwargs)
    seconds = row[[C.STEP, C.TRAIN_SECONDS, C.COMPILE_SECONDS]].to_dict()
    assert row[C.STATUS] == C.STATUS_OK and row[C.COMPILE_SECONDS] > 5, seconds  # compiling outlasts the budget
    assert row[C.STEP] > 1 and 5 <= row[C.TRAIN_SECONDS] < row[C.COMPILE_SECONDS], seconds

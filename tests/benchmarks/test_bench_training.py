"""Throughput benchmarks (pytest-benchmark). The default test run executes each once as a
smoke test (--benchmark-disable); measure with:

    python -m pytest tests/benchmarks --benchmark-enable --benchmark-columns=median,iqr,ops

docs/performance.md records the numbers and the machine.
"""

import pytest
import torch
from ganbench_plugins.metrics import CLASS_JUDGEMENT, DENSITY_COVERAGE, DOMAIN_FIDELITY, INTRA_CLASS_FID

from ganbench.config import variant_config
from ganbench.evaluation import Evaluation, generate_samples, run_metrics
from ganbench.evaluation.fidelity import InceptionWeights
from ganbench.testing import batch_source, build_variant, resolve_spec
from ganbench.variant import VariantContext

STEPS_PER_ROUND = 10
pytestmark = pytest.mark.slow  # timed with --benchmark-enable; smoke tests otherwise


@pytest.mark.parametrize("name", ["dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan"])
def test_train_steps(benchmark, name, fashion):
    """One round = 10 training steps of batch 64 (640 real images; 3200 for the 5-critic-step WGANs)."""
    time_train_steps(benchmark, build_variant(name, fashion), fashion)


def time_train_steps(benchmark, v, fashion):
    """Time rounds of STEPS_PER_ROUND training steps of ``v``; its losses must stay finite."""
    source = batch_source(v, fashion)
    v.train(True)

    def steps():
        for _ in range(STEPS_PER_ROUND):
            losses = v.train_step(source)
        return losses

    losses = benchmark.pedantic(steps, rounds=5, warmup_rounds=1)  # runs once under --benchmark-disable
    assert torch.isfinite(torch.stack(list(losses.values()))).all()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_steps_by_precision(benchmark, precision, fashion):
    """dcgan, one round = 10 training steps of batch 64, under --precision (bf16: autocast)."""
    spec = resolve_spec("dcgan")
    torch.manual_seed(0)
    context = VariantContext(fashion.image_shape, fashion.num_classes, torch.device("cpu"), precision=precision)
    time_train_steps(benchmark, spec.build(context, variant_config("dcgan", spec.config, {})), fashion)


def test_evaluation_of_10k_samples(benchmark, fashion, classifier, cache_dir):
    """Generate 10k samples and compute every default metric but fid_inception (final only):
    fid/kid/precision/recall/density/coverage/ifid_domain and the class metrics."""
    v = build_variant("cgan", fashion)
    cpu = torch.device("cpu")

    def evaluate():
        samples, labels, _ = generate_samples(v, 10_000, 10, True, seed=1)
        ev = Evaluation("cgan", "generation", samples, labels, fashion, classifier, cpu, cache_dir, False,
                        lambda: InceptionWeights(None, "not measured"))  # fmt: skip
        return run_metrics(ev, [DOMAIN_FIDELITY, DENSITY_COVERAGE, INTRA_CLASS_FID, CLASS_JUDGEMENT])

    result = benchmark.pedantic(evaluate, rounds=3, warmup_rounds=1)
    assert result.values["fid_domain"] > 0 and result.values["ifid_domain"] > 0 and not result.notes

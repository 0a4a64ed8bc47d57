"""ganbench's training step against a plain PyTorch loop of the same networks (reference_loop.py).

The timed test alternates rounds of the two in one process and reports both rates and their
ratio (ganbench / reference) in the benchmark's extra_info and on stdout (``-s``):

    python -m pytest tests/benchmarks/test_bench_reference.py --benchmark-enable -s

The default run (--benchmark-disable) executes one round of each, as a smoke test.
"""

import statistics
import time

import pytest
import torch
from reference_loop import ReferenceLoop, loader_batches

from ganbench.testing import batch_source, build_variant

VARIANTS = ["dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan"]
IMAGES_PER_ROUND = 320  # 5 steps of batch 64; 1 step of a 5-critic-step WGAN


def rate(step, steps: int, images: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        losses = step()
    assert torch.isfinite(torch.stack(list(losses.values()))).all()
    return images / (time.perf_counter() - start)


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_against_reference_loop(benchmark, name, fashion):
    """One round = a round of ganbench's train_step and one of the reference loop, in alternating order."""
    v = build_variant(name, fashion)
    ref = ReferenceLoop(name, v)
    source = batch_source(v, fashion)
    next_batch = loader_batches(fashion.train_images, fashion.train_labels, v.batch_size)
    v.train(True)
    steps = max(1, IMAGES_PER_ROUND // (v.batch_size * v.critic_steps))
    images = steps * v.batch_size * v.critic_steps
    rates: dict[str, list[float]] = {"ganbench": [], "reference": []}
    runs = {"ganbench": lambda: v.train_step(source), "reference": lambda: ref.step(next_batch)}

    def one_round():
        order = list(runs) if len(rates["ganbench"]) % 2 == 0 else list(reversed(runs))
        for key in order:
            rates[key].append(rate(runs[key], steps, images))

    benchmark.pedantic(one_round, rounds=6, warmup_rounds=1)  # once under --benchmark-disable
    ours, theirs = statistics.median(rates["ganbench"]), statistics.median(rates["reference"])
    benchmark.extra_info.update(ganbench_img_per_s=ours, reference_img_per_s=theirs, ratio=ours / theirs)
    print(f"\n{name}: ganbench {ours:.0f} img/s, reference {theirs:.0f} img/s, ratio {ours / theirs:.2f}")


@pytest.mark.parametrize("name", VARIANTS)
def test_reference_loop_computes_the_same_step(name, fashion):
    """From the same weights, batches and RNG state, two reference steps give ganbench's losses
    and weights: the speed comparison is between two ways of computing the same thing."""
    v = build_variant(name, fashion)
    ref = ReferenceLoop(name, v)
    ours_source, their_source = batch_source(v, fashion), batch_source(v, fashion)

    def next_batch():
        batch = their_source.next()
        return batch.images, batch.labels

    v.train(True)
    torch.manual_seed(1)
    ours = [v.train_step(ours_source) for _ in range(2)]
    torch.manual_seed(1)
    theirs = [ref.step(next_batch) for _ in range(2)]
    assert [{k: float(x) for k, x in s.items()} for s in ours] == [{k: float(x) for k, x in s.items()} for s in theirs]
    for a, b in zip(v.generator.parameters(), ref.G.parameters()):
        assert torch.equal(a, b)

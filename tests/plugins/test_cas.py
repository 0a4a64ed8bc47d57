"""The classification accuracy score probe: on real training images (its reference) it is what
the same small classifier reaches in a plain training loop written here; on an untrained
generator's samples it is near chance; per-class values and the reference's cache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins import probes as P

from ganbench import columns as C
from ganbench.cas import CASNet, balanced_subset, draw_seed
from ganbench.probes import ProbeContext, ReferenceContext
from ganbench.testing import build_variant

K = 10
CPU = torch.device("cpu")


def reference(fashion, config, seed=0, cache_dir=None):
    return ReferenceContext(
        seed,
        config,
        fashion,
        judge=None,
        generator=torch.Generator().manual_seed(seed),
        device=CPU,
        cache_dir=cache_dir,
    )


def plain_loop_accuracy(images, labels, test_images, test_labels, *, seed, epochs, batch_size, lr):
    """The recipe of ganbench/cas.py's docstring as most training code writes it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CASNet((1, 28, 28), K)
    x, y = images.float() / 127.5 - 1, labels
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        predicted = net(test_images.float() / 127.5 - 1).argmax(1)
    return (predicted == test_labels).double().mean().item()


def test_a_balanced_subset_takes_distinct_images_evenly_from_each_class(fashion):
    idx = balanced_subset(fashion.train_labels, 1003, K, torch.Generator().manual_seed(0))
    counts = torch.bincount(fashion.train_labels[idx], minlength=K).tolist()
    assert counts == [101, 101, 101] + [100] * 7 and len(set(idx.tolist())) == 1003
    again = balanced_subset(fashion.train_labels, 1003, K, torch.Generator().manual_seed(0))
    other = balanced_subset(fashion.train_labels, 1003, K, torch.Generator().manual_seed(1))
    assert torch.equal(idx, again) and not torch.equal(idx, other)
    with pytest.raises(ValueError, match="class 0 has 6000 training images, 6001 are needed"):
        balanced_subset(fashion.train_labels, 60010, K, torch.Generator())


@pytest.mark.slow
def test_on_real_training_images_it_is_the_accuracy_of_a_plain_training_loop(fashion, tmp_path):
    config = P.CASConfig(samples=4000, epochs=3, batch_size=64, lr=2e-3)
    rng = torch.get_rng_state()
    result = P.reference_cas(reference(fashion, config, cache_dir=tmp_path))
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone

    g = torch.Generator().manual_seed(0)  # as the reference's context: the seed first, then the images
    seed = draw_seed(g)
    idx = balanced_subset(fashion.train_labels, 4000, K, g)
    expected = plain_loop_accuracy(
        fashion.train_images[idx], fashion.train_labels[idx], fashion.test_images, fashion.test_labels,
        seed=seed, epochs=3, batch_size=64, lr=2e-3,
    )  # fmt: skip
    assert result.values[C.CAS] == pytest.approx(expected, abs=0.01)
    assert expected > 0.8  # a real classifier: far above chance on real images

    rows = result.tables["cas"]
    assert [r[C.CLASS_NAME] for r in rows] == list(fashion.class_names)
    assert [r["train_images"] for r in rows] == [400] * K
    assert all(0 <= r[C.CAS] <= 1 for r in rows)
    # the test split has 1000 images per class: the overall accuracy is the mean of the classes'
    assert sum(r[C.CAS] for r in rows) / K == pytest.approx(result.values[C.CAS], abs=1e-9)
    # cached per data, options and seed: the second call trains nothing and gives the same
    assert len(list((tmp_path / "features").glob("cas-reference-*.pt"))) == 1
    again = P.reference_cas(reference(fashion, config, cache_dir=tmp_path))
    assert again.values == result.values and again.tables == result.tables


def context(fashion, registry, name, config, seed=0):
    return ProbeContext(
        name=name,
        seed=seed,
        variant=build_variant(name, fashion),
        spec=registry.variant(name),
        config=config,
        data=fashion,
        attributes=None,
        judge=None,
        steering=None,
        generator=torch.Generator().manual_seed(seed),
        device=CPU,
    )


@pytest.mark.slow
def test_on_an_untrained_generator_it_is_near_chance(fashion, registry):
    config = P.CASConfig(samples=4000, epochs=3)
    result = P.compute_cas(context(fashion, registry, "cgan", config))
    assert 0 <= result.values[C.CAS] <= 0.2
    rows = result.tables["cas"]
    assert len(rows) == K and all(0 <= r[C.CAS] <= 1 for r in rows)
    assert [r["train_images"] for r in rows] == [400] * K  # balanced requested labels


@pytest.mark.slow
def test_the_same_seed_gives_the_same_score_and_another_seed_another(fashion, registry):
    config = P.CASConfig(samples=300, epochs=1)
    first = P.compute_cas(context(fashion, registry, "cgan", config, seed=3))
    assert P.compute_cas(context(fashion, registry, "cgan", config, seed=3)).values == first.values
    other = P.compute_cas(context(fashion, registry, "cgan", config, seed=4))
    assert other.tables["cas"] != first.tables["cas"]


def test_an_unconditional_variant_has_no_score(fashion, registry):
    result = P.compute_cas(context(fashion, registry, "dcgan", P.CASConfig(samples=100, epochs=1)))
    assert math.isnan(result.values[C.CAS]) and result.notes[C.CAS] == "unconditional variant"
    assert not P.CAS_SCORE.applies_to(registry.variant("dcgan")) and P.CAS_SCORE.applies_to(registry.variant("cgan"))


@pytest.mark.parametrize("key, value", [("samples", 0), ("epochs", 0), ("batch_size", -1), ("lr", 0.0)])
def test_options_must_be_positive(key, value):
    with pytest.raises(ValueError, match=f"{key} must be positive"):
        P.CASConfig(**{key: value})

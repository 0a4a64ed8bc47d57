"""The memorisation probe: copies of training images are memorised (share 1, ratio 0), unseen
test images score the option's percentile (ratio 1), an untrained generator memorises nothing;
the nearest-neighbour search against torch.cdist; the per-dataset cache."""

from __future__ import annotations

import io

import pytest
import torch
from ganbench_plugins import probes as P
from PIL import Image
from torch import nn

from ganbench import VariantSpec
from ganbench import columns as C
from ganbench import memorisation as M
from ganbench.data import to_float
from ganbench.evaluation.judges import HeldOutJudge
from ganbench.probes import ProbeContext, ReferenceContext
from ganbench.testing import build_variant, make_context
from ganbench.variant import GenerativeVariant

CPU = torch.device("cpu")
SHARES = (C.MEMORISED_SHARE_DOMAIN, C.MEMORISED_SHARE_PIXEL)
RATIOS = (C.NN_RATIO_DOMAIN, C.NN_RATIO_PIXEL)


@pytest.fixture(scope="module")
def judge(classifier, fashion, tmp_path_factory):
    """The judge as the harness builds it, without attribute heads: the held-out classifier's features."""
    return HeldOutJudge(classifier, nn.Linear(128, 0), fashion.class_names, (), tmp_path_factory.mktemp("judge"))


class Replays(GenerativeVariant):
    """A hand-made generator that draws one of a fixed set of uint8 images, picked by z: a
    memoriser when the set is the train split, an ideal generator when it is unseen real data."""

    z_dim = 4
    images: torch.Tensor

    def networks(self):
        return {}

    def optimizers(self):
        return {}

    def train_step(self, data):
        raise NotImplementedError

    def generate(self, z, labels):
        pick = (z[:, 0].abs() * 1e6).long() % len(self.images)
        return to_float(self.images[pick])


def replaying(fashion, images):
    variant = Replays(make_context(fashion), None)
    variant.images = images
    return variant, VariantSpec("replays", Replays)


def probe(fashion, variant, spec, judge, cache_dir, config=None, seed=0):
    return ProbeContext(
        name=spec.name,
        seed=seed,
        variant=variant,
        spec=spec,
        config=config or P.MemorisationConfig(),
        data=fashion,
        attributes=None,
        judge=judge,
        steering=judge,
        generator=torch.Generator().manual_seed(seed),
        device=CPU,
        cache_dir=cache_dir,
    )


def test_nearest_finds_what_torch_cdist_finds():
    g = torch.Generator().manual_seed(0)
    train, queries = torch.rand(20000, 64, generator=g), torch.rand(700, 64, generator=g)
    distances, index = M.nearest(queries, train)  # several query and train blocks
    expected = torch.cdist(queries.double(), train.double()).min(1)
    assert torch.equal(index, expected.indices)
    assert torch.allclose(distances.double(), expected.values, atol=1e-5)
    copies, where = M.nearest(train[[5, 17, 19999]], train)
    assert where.tolist() == [5, 17, 19999] and copies.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.slow
def test_copies_of_training_images_are_memorised(fashion, judge, cache_dir):
    variant, spec = replaying(fashion, fashion.train_images)
    result = P.compute_memorisation(probe(fashion, variant, spec, judge, cache_dir))
    assert all(result.values[c] == 1.0 for c in SHARES)
    assert result.values[C.NN_RATIO_PIXEL] == 0.0  # the pixel distance of a copy is exactly 0
    assert 0 <= result.values[C.NN_RATIO_DOMAIN] < 1e-3  # features of one image in two batches
    rows = {r["space"]: r for r in result.tables["memorisation"]}
    assert set(rows) == {"domain", "pixel"} and rows["pixel"]["images"] == 2000
    assert rows["pixel"]["calibration_images"] == 5000 and rows["pixel"]["threshold"] > 0
    picture = Image.open(io.BytesIO(result.pictures["memorisation.png"]))
    cell = (28 + 2) * 2  # make_grid's padding, drawn at scale 2
    assert picture.height == 8 * cell + 2 * 2 and picture.width > 2 * cell  # 8 pairs, and the labels' margin


@pytest.mark.slow
@pytest.mark.parametrize("percentile", [5.0, 20.0])
def test_unseen_test_images_score_the_percentile(fashion, judge, cache_dir, percentile):
    """The held-out half of the test split is not what the threshold was taken from: its share
    is the percentile up to sampling noise (binomial sd 0.003 at 5%, 5000 images; the threshold's
    own error is about as large), its ratio 1 up to the noise of two medians."""
    config = P.MemorisationConfig(percentile=percentile)
    ref = ReferenceContext(0, config, fashion, judge, torch.Generator().manual_seed(0), CPU, cache_dir)
    result = P.reference_memorisation(ref)
    for column in SHARES:
        assert result.values[column] == pytest.approx(percentile / 100, abs=0.02), column
    for column in RATIOS:
        assert result.values[column] == pytest.approx(1.0, abs=0.03), column
    # drawn as samples (2000 of that half), through the search itself rather than the cache
    _, held_out = M.halves(len(fashion.test_images))
    variant, spec = replaying(fashion, fashion.test_images[held_out])
    drawn = P.compute_memorisation(probe(fashion, variant, spec, judge, cache_dir, config))
    for column in SHARES:
        assert drawn.values[column] == pytest.approx(percentile / 100, abs=0.025), column
    for column in RATIOS:
        assert drawn.values[column] == pytest.approx(1.0, abs=0.05), column


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_an_untrained_generator_memorises_nothing(fashion, registry, judge, cache_dir, name):
    variant, spec = build_variant(name, fashion), registry.variant(name)
    result = P.compute_memorisation(probe(fashion, variant, spec, judge, cache_dir))
    assert all(result.values[c] <= 0.01 for c in SHARES)
    assert all(result.values[c] > 1 for c in RATIOS)  # farther from the data than real images are


def test_without_judge_features_only_the_pixels_are_scored(fashion, cache_dir):
    variant, spec = replaying(fashion, fashion.train_images)
    result = P.compute_memorisation(
        probe(fashion, variant, spec, object(), cache_dir, P.MemorisationConfig(samples=50))
    )
    assert result.values[C.MEMORISED_SHARE_PIXEL] == 1.0
    assert all(result.values[c] != result.values[c] for c in (C.MEMORISED_SHARE_DOMAIN, C.NN_RATIO_DOMAIN))
    assert "features" in result.notes[C.NN_RATIO_DOMAIN]


def test_the_distances_are_cached_per_dataset_and_feature_map(fashion, judge, tmp_path, classifier):
    small = fashion.__class__(
        "tiny", fashion.train_images[:3000], fashion.train_labels[:3000], fashion.test_images[:500],
        fashion.test_labels[:500], fashion.class_names,
    )  # fmt: skip
    first = M.build_spaces(small, judge.features, CPU, tmp_path)
    files = sorted(p.name for p in (tmp_path / "features").glob("memorisation-*.pt"))
    assert len(files) == 2 and all(p.startswith("memorisation-tiny-") for p in files)
    again = M.build_spaces(small, judge.features, CPU, tmp_path)
    for name in M.SPACES:
        assert torch.equal(first[name].calibration, again[name].calibration)
        assert torch.equal(first[name].held_out, again[name].held_out)
    # another feature map is another cache file; the pixels' is shared
    other = nn.Linear(784, 16)
    M.build_spaces(small, lambda x: other(x.flatten(1)), CPU, tmp_path)
    assert len(list((tmp_path / "features").glob("memorisation-*.pt"))) == 3
    # the cached distances are what the search gives for those images
    _, held_out = M.halves(500)
    distances, _ = first[M.PIXEL].nearest(small.test_images[held_out])
    assert torch.allclose(distances, first[M.PIXEL].held_out)


@pytest.mark.parametrize("options", [{"samples": 0}, {"percentile": 0}, {"percentile": 100}, {"pairs": -1}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        P.MemorisationConfig(**options)

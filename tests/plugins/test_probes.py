"""The built-in probes as pure computations over a ProbeContext: hand-made judges (linear in the
pixels), hand-made attributes, and built-in variant networks (untrained) or hand-made generators."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch_fidelity
from ganbench_plugins import probes as P
from ganbench_plugins.cgan import CGAN
from PIL import Image
from torch import nn
from torch_fidelity import GenerativeModelModuleWrapper

from ganbench import VariantSpec
from ganbench import columns as C
from ganbench.adversarial import GANConfig
from ganbench.attributes import Attributes
from ganbench.data import to_float
from ganbench.probes import ProbeContext
from ganbench.steering import probabilities
from ganbench.testing import build_variant, make_context
from ganbench.variant import GenerativeVariant

K = 10
PIXELS = 28 * 28


class LinearJudge:
    """A Judge whose logits are affine in the pixels: ``attribute_logits = x @ A.T + a``,
    ``class_logits = x @ W.T + b`` (x flattened, in [-1, 1]); ``features`` (for path length)
    when given a (D, pixels) matrix: tanh(x @ F.T)."""

    def __init__(self, attribute_names, A, a, W=None, b=None, F=None, class_names=None):
        self.attribute_names = tuple(attribute_names)
        self.class_names = tuple(class_names or (f"class {k}" for k in range(K)))
        self.A, self.a = A, a
        self.W = torch.zeros(len(self.class_names), PIXELS) if W is None else W
        self.b = torch.zeros(len(self.class_names)) if b is None else b
        if F is not None:
            self.features = lambda x: torch.tanh(self._flat(x) @ F.T)

    @staticmethod
    def _flat(x):
        return (to_float(x) if x.dtype == torch.uint8 else x).flatten(1)

    def attribute_logits(self, x):
        return self._flat(x) @ self.A.T + self.a

    def class_logits(self, x):
        return self._flat(x) @ self.W.T + self.b


def mean_ink(images):
    """(N, 1): mean pixel value of uint8 images, in [0, 1]."""
    return images.float().mean((1, 2, 3))[:, None] / 255


def measured(names, measure, thresholds):
    none = torch.zeros(1, len(names), dtype=torch.bool)
    return Attributes(tuple(names), none, none, measure, torch.as_tensor(thresholds, dtype=torch.float32))


def annotated(names):
    none = torch.zeros(1, len(names), dtype=torch.bool)
    return Attributes(tuple(names), none, none)


@pytest.fixture
def context(fashion):
    """``context(variant, spec, config, judge, steering=None, attributes=None, seed=0)``: a
    ProbeContext as the harness builds it (steering defaults to the judge)."""

    def make(variant, spec, config, judge, steering=None, attributes=None, seed=0):
        return ProbeContext(
            name=spec.name,
            seed=seed,
            variant=variant,
            spec=spec,
            config=config,
            data=fashion,
            attributes=attributes,
            judge=judge,
            steering=steering or judge,
            generator=torch.Generator().manual_seed(seed),
            device=torch.device("cpu"),
        )

    return make


@pytest.fixture
def vivid(fashion, registry):
    """``vivid(name)``: an untrained built-in variant whose output layer's weights are scaled
    30x, so that its images vary (an untrained DCGAN generator draws uniform grey, +-1 grey
    level, which the judges see as one image once rounded to uint8)."""

    def make(name):
        variant = build_variant(name, fashion)
        last = [m for m in variant.generator.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
        with torch.no_grad():
            last.weight.mul_(30)
        return variant, registry.variant(name)

    return make


def standardised(variant, labels, directions, scale):
    """Attribute logits ``scale * (x . u - mean) / std`` for each row u of ``directions``, with
    the mean and std over the variant's own samples: steep enough to steer by, centred so that
    about half of the samples have each attribute."""
    with variant.evaluating():
        x = variant.generate(variant.sample_latent(256, torch.Generator().manual_seed(123)), labels).flatten(1)
    projection = x @ directions.T
    mean, std = projection.mean(0), projection.std(0)
    return scale * directions / std[:, None], -scale * mean / std


BUILT_IN = ("steering", "label-swap", "path-length", "cas", "memorisation")


def test_registered_probes_fill_the_probe_columns(registry):
    assert tuple(r.spec.name for r in registry.probes.values() if r.plugin == "ganbench.probes") == BUILT_IN
    probes = {name: registry.probe(name) for name in BUILT_IN}
    assert tuple(c for p in probes.values() for c in p.columns) == C.PROBE_COLUMNS
    conditional = {name: p.applies_to(registry.variant("cgan")) for name, p in probes.items()}
    unconditional = {name: p.applies_to(registry.variant("dcgan")) for name, p in probes.items()}
    assert conditional == dict.fromkeys(BUILT_IN, True)
    assert unconditional == {**conditional, "label-swap": False, "cas": False}
    with_reference = {name for name, p in probes.items() if p.reference is not None}
    assert with_reference == {"cas", "memorisation"}


def test_penalised_steering_leaks_less_than_plain_on_the_same_latents(vivid, context):
    """The judge is the steering classifier and its class head is constant, so the leakage the
    judge measures is exactly the change of the other attribute that the penalty charges for.
    The two attribute directions overlap (pixel cosine 0.8): plain ascent on one drags the other
    along. Both modes take the same first step (the penalty's gradient is 0 at z0); after it the
    penalised update is the plain one minus w * eta * grad |p_other - p_other(z0)|, a descent
    direction of that change, so (to first order in eta) every later step moves the other
    attribute less: leakage is lower for each target, on the same latents."""
    variant, spec = vivid("cgan")
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(2, PIXELS, generator=g)
    u, v = u / u.norm(), v - (v @ u) * u
    directions = torch.stack([u, 0.8 * u + 0.6 * v / v.norm()])
    A, a = standardised(variant, torch.arange(256) % K, directions, scale=3.0)
    judge = LinearJudge(("a", "b"), A, a)
    config = P.SteeringConfig(latents=16)  # default penalty 0.1, 10 steps
    rows = P.compute_steering(context(variant, spec, config, judge, attributes=annotated(("a", "b")))).tables[
        "steering"
    ]
    leakage = {(r["target"], r["mode"]): r["leakage"] for r in rows}
    for target in ("a", "b"):
        assert leakage[target, "plain"] > 0.05  # plain steering does drag the other attribute
        assert leakage[target, "penalised"] < leakage[target, "plain"]


class OnePass(LinearJudge):
    """A LinearJudge whose heads can only be run together, by ``logits`` (counted)."""

    calls = 0

    def logits(self, x):
        self.calls += 1
        return LinearJudge.class_logits(self, x), LinearJudge.attribute_logits(self, x)

    def class_logits(self, x):
        raise AssertionError("a head was run on its own beside logits")

    attribute_logits = class_logits


def test_a_classifier_with_logits_is_run_once_per_batch():
    g = torch.Generator().manual_seed(4)
    heads = dict(A=torch.randn(2, PIXELS, generator=g), a=torch.zeros(2), W=torch.randn(K, PIXELS, generator=g))
    x = torch.rand(3, 1, 28, 28, generator=g) * 2 - 1
    one_pass = OnePass(("a", "b"), **heads)
    expected = probabilities(LinearJudge(("a", "b"), **heads), x, ("b", "a"))
    assert torch.equal(probabilities(one_pass, x, ("b", "a")), expected) and one_pass.calls == 1


@pytest.fixture
def steered_dcgan(vivid, context):
    """An untrained dcgan left in training mode (batch norm would update its running statistics
    on any forward pass in that mode), steered with a random linear judge; the state before."""
    variant, spec = vivid("dcgan")
    variant.train(True)
    state = {k: t.clone() for k, t in variant.generator.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    judge = LinearJudge(("ink", "top"), torch.randn(2, PIXELS, generator=g) / 28, torch.zeros(2))
    rng = torch.get_rng_state()
    config = P.SteeringConfig(latents=4, steps=2, strip=2)
    result = P.compute_steering(context(variant, spec, config, judge, attributes=annotated(("ink", "top"))))
    return variant, state, rng, result


def test_steering_leaves_every_generator_weight_and_buffer_unchanged(steered_dcgan):
    variant, before, _, result = steered_dcgan
    assert result.values[C.STEER_LATENT_DISTANCE] > 0  # the latents did move
    after = variant.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in variant.generator.parameters())


def test_steering_leaves_the_global_rng_untouched(steered_dcgan):
    _, _, rng, _ = steered_dcgan
    assert torch.equal(torch.get_rng_state(), rng)


class Checkerboard(GenerativeVariant):
    """A hand-made generator: a flat image, bright (0.5) or dark (-0.5) by the sign of z0, plus
    a checkerboard of amplitude 0.2 * tanh(z1). The checkerboard's pixels sum to zero, so z1
    changes no image's mean ink; the sign gives z0 no gradient."""

    z_dim = 2

    def networks(self):
        return {}

    def optimizers(self):
        return {}

    def train_step(self, data):
        raise NotImplementedError

    @staticmethod
    def checker():
        """(28, 28): +1 and -1 alternating."""
        return (torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2 * 2.0 - 1

    def generate(self, z, labels):
        flat = 0.5 * torch.sign(z[:, 0])[:, None, None, None]
        return (flat + 0.2 * torch.tanh(z[:, 1])[:, None, None, None] * self.checker()).clamp(-1, 1)


def test_a_checkerboard_that_fools_both_classifiers_gains_without_verified_gain(fashion, context):
    """Both classifiers read "ink" from the checkerboard's strength, which moves no grey level of
    mean ink: the judge sees a gain, the pixels none (every image stays far from the threshold)."""
    variant = Checkerboard(make_context(fashion), None)
    spec = VariantSpec("checkerboard", Checkerboard)
    checker = Checkerboard.checker().flatten()[None] / PIXELS
    steering = LinearJudge(("ink",), 20 * checker, torch.zeros(1))
    judge = LinearJudge(("ink",), 15 * checker, torch.tensor([-0.5]))
    attributes = measured(("ink",), mean_ink, [0.5])
    result = P.compute_steering(context(variant, spec, P.SteeringConfig(latents=64), judge, steering, attributes))
    assert result.values[C.STEER_GAIN] > 0.1
    assert result.values[C.STEER_VERIFIED_GAIN] == 0.0


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_steering_table_has_a_row_per_target_and_mode_with_classes_only_when_unconditional(
    name, fashion, registry, context
):
    variant, spec = build_variant(name, fashion), registry.variant(name)
    g = torch.Generator().manual_seed(2)
    judge = LinearJudge(("ink", "dark"), torch.randn(2, PIXELS, generator=g), torch.zeros(2))
    attributes = measured(("ink", "dark"), lambda x: torch.cat([mean_ink(x), 1 - mean_ink(x)], 1), [0.5, 0.5])
    config = P.SteeringConfig(latents=2, steps=1, strip=1)
    result = P.compute_steering(context(variant, spec, config, judge, attributes=attributes))
    targets = ["ink", "dark"] + ([] if spec.conditional else list(fashion.class_names))
    rows = result.tables["steering"]
    assert sorted((r["target"], r["mode"]) for r in rows) == sorted((t, m) for t in targets for m in P.MODES)
    assert len(result.pictures) == len(targets)


def test_steering_strip_has_plain_and_penalised_rows_and_a_column_per_step(vivid, context):
    variant, spec = vivid("cgan")
    judge = LinearJudge(("ink",), torch.ones(1, PIXELS) / PIXELS, torch.zeros(1))
    config = P.SteeringConfig(latents=8, steps=3, strip=2)
    result = P.compute_steering(context(variant, spec, config, judge, attributes=annotated(("ink",))))
    picture = Image.open(io.BytesIO(result.pictures["steering-ink.png"]))
    cell = (28 + 2) * 2  # make_grid's 2-pixel padding, drawn at scale 2
    assert picture.height == 2 * 2 * cell + 2 * 2  # 2 latents x (plain, penalised)
    assert picture.width > (3 + 1) * cell  # steps 0..3 (and the row labels' margin)


def test_annotated_attributes_have_no_verified_gain(vivid, context):
    variant, spec = vivid("cgan")
    judge = LinearJudge(("ink",), torch.ones(1, PIXELS) / PIXELS, torch.zeros(1))
    config = P.SteeringConfig(latents=4, steps=2)
    result = P.compute_steering(context(variant, spec, config, judge, attributes=annotated(("ink",))))
    assert math.isnan(result.values[C.STEER_VERIFIED_GAIN]) and C.STEER_VERIFIED_GAIN in result.notes
    assert not math.isnan(result.values[C.STEER_GAIN])


class IgnoresLabels(CGAN):
    def generate(self, z, labels):
        return super().generate(z, torch.zeros_like(labels))


class DrawsItsLabel(GenerativeVariant):
    """A hand-made conditional generator: a dark image with row 2 * label lit, plus noise from z."""

    z_dim = 8

    def networks(self):
        return {}

    def optimizers(self):
        return {}

    def train_step(self, data):
        raise NotImplementedError

    def generate(self, z, labels):
        images = torch.full((len(z), 1, 28, 28), -1.0) + 0.1 * torch.tanh(z[:, :1, None, None])
        images[torch.arange(len(z)), 0, 2 * labels] = 1.0
        return images.clamp(-1, 1)


@pytest.fixture
def row_reader():
    """A judge whose class k is the brightness of row 2k."""
    W = torch.zeros(K, 28, 28)
    for k in range(K):
        W[k, 2 * k] = 1.0
    return LinearJudge((), torch.zeros(0, PIXELS), torch.zeros(0), W=W.flatten(1))


def test_label_swap_of_a_generator_that_ignores_labels_is_one_in_k(fashion, row_reader, context):
    spec = VariantSpec("ignores-labels", IgnoresLabels, GANConfig, conditional=True)
    variant = build_variant(spec, fashion)
    result = P.compute_label_swap(context(variant, spec, P.LabelSwapConfig(latents=20), row_reader))
    assert result.values[C.SWAP_CONSISTENCY] == pytest.approx(1 / K)


def test_label_swap_of_a_generator_that_follows_labels_is_one(fashion, row_reader, context):
    spec = VariantSpec("draws-its-label", DrawsItsLabel, conditional=True)
    variant = DrawsItsLabel(make_context(fashion, conditional=True), None)
    result = P.compute_label_swap(context(variant, spec, P.LabelSwapConfig(latents=20), row_reader))
    assert result.values[C.SWAP_CONSISTENCY] == 1.0


@pytest.fixture
def feature_judge():
    """A judge with 128-d features: tanh of a fixed random projection of the pixels."""
    g = torch.Generator().manual_seed(3)
    return LinearJudge((), torch.zeros(0, PIXELS), torch.zeros(0), F=torch.randn(128, PIXELS, generator=g) / 28)


class Generate(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.generator = variant.generator
        self.variant = variant

    def forward(self, z, labels=None):
        return self.variant.generate(z, labels)


def test_ppl_domain_equals_a_direct_torch_fidelity_call(fashion, registry, feature_judge, context, monkeypatch):
    variant, spec = build_variant("dcgan", fashion), registry.variant("dcgan")
    config = P.PathLengthConfig(samples=300)
    ours = P.compute_path_length(context(variant, spec, config, feature_judge, seed=5)).values[C.PPL_DOMAIN]

    # torch-fidelity 0.4.0 trims with np.percentile(interpolation=...), the old name of method=
    percentile = np.percentile
    monkeypatch.setattr(np, "percentile", lambda *a, interpolation, **kw: percentile(*a, method=interpolation, **kw))
    with variant.frozen():
        direct = torch_fidelity.calculate_metrics(
            input1=GenerativeModelModuleWrapper(Generate(variant), 100, "normal", 0),
            input1_model_num_samples=300,
            ppl=True,
            ppl_epsilon=1e-4,
            ppl_sample_similarity=P.register_ppl_similarity(),
            ppl_sample_similarity_resize=None,
            ppl_sample_similarity_dtype="float32",
            rng_seed=5,
            batch_size=P.PPL_BATCH,
            cuda=False,
            cache=False,
            verbose=False,
            ganbench_features=feature_judge.features,
        )
    assert ours == direct[torch_fidelity.KEY_METRIC_PPL_MEAN]


def test_ppl_domain_sees_the_float_images(fashion, registry, feature_judge, context):
    """An epsilon of 1e-4 moves an untrained generator's pixels by far less than a grey level:
    quantised to uint8, almost every pair would be identical and the path length 0."""
    variant, spec = build_variant("dcgan", fashion), registry.variant("dcgan")
    result = P.compute_path_length(context(variant, spec, P.PathLengthConfig(samples=100), feature_judge))
    assert result.values[C.PPL_DOMAIN] > 0


def test_ppl_domain_is_nan_with_a_note_without_judge_features(fashion, registry, row_reader, context):
    variant, spec = build_variant("dcgan", fashion), registry.variant("dcgan")
    result = P.compute_path_length(context(variant, spec, P.PathLengthConfig(samples=100), row_reader))
    assert math.isnan(result.values[C.PPL_DOMAIN]) and "features" in result.notes[C.PPL_DOMAIN]

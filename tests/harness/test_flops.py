"""FLOPs of a training step: what they count, that counting them changes nothing, and FLOP budgets."""

import dataclasses
import json
import math
from decimal import Decimal

import pytest
import torch
from torch import nn

import ganbench
from ganbench import columns as C
from ganbench.data import BatchSource
from ganbench.harness import flops
from ganbench.harness.seeding import capture_rng, seed_everything
from ganbench.losses import gradient_penalty
from ganbench.testing import make_context


@pytest.fixture
def fresh(monkeypatch):
    """An empty cache: every count in the test is really made."""
    monkeypatch.setattr(flops, "_counted", {})


@pytest.fixture
def step_flops(registry, fashion):
    """``step_flops(name, **overrides)``: FLOPs of one CPU training step of a built-in variant."""

    def count(name, **overrides):
        spec = registry.variant(name)
        context = make_context(fashion, conditional=spec.conditional)
        return flops.train_step_flops(
            spec, spec.config(**overrides), context, fashion.train_images, fashion.train_labels
        )

    return count


def test_every_critic_step_is_counted(step_flops):
    one, two, five = (step_flops("wgan", critic_steps=k) for k in (1, 2, 5))
    critic_step = two - one
    assert critic_step > 0 and five == one + 4 * critic_step


def test_a_wgan_gp_step_costs_more_than_its_five_critic_steps_of_dcgan(step_flops):
    assert step_flops("wgan-gp") > 5 * step_flops("dcgan")


def test_the_gradient_penaltys_double_backward_is_counted():
    critic = nn.Sequential(nn.Conv2d(1, 8, 3), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 26 * 26, 1))
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    penalty = flops.count_flops(lambda: gradient_penalty(critic, real, fake))  # forward and input gradient
    with_backward = flops.count_flops(lambda: gradient_penalty(critic, real, fake).backward())
    assert with_backward - penalty > penalty  # backward through both: at least twice their cost again


def test_counting_leaves_every_rng_as_it_was(step_flops, fresh):
    seed_everything(3)
    before = capture_rng()
    step_flops("cgan")
    after = capture_rng()
    assert torch.equal(before["torch"], after["torch"])
    assert (
        torch.equal(before["numpy"]["keys"], after["numpy"]["keys"]) and before["numpy"]["pos"] == after["numpy"]["pos"]
    )
    assert torch.equal(before["python"]["state"], after["python"]["state"])


def _losses(registry, fashion, count_before):
    """Three steps of a seeded dcgan, as a job runs it; the step's FLOPs counted first or not."""
    spec = registry.variant("dcgan")
    context = make_context(fashion)
    seed_everything(0)
    if count_before:
        flops.train_step_flops(spec, spec.config(), context, fashion.train_images, fashion.train_labels)
    variant = spec.build(context, spec.config())
    source = BatchSource(fashion.train_images, fashion.train_labels, variant.batch_size, 0)
    return [{k: v.item() for k, v in variant.train_step(source).items()} for _ in range(3)]


def test_counting_does_not_change_a_jobs_losses(registry, fashion, fresh):
    assert _losses(registry, fashion, count_before=True) == _losses(registry, fashion, count_before=False)


def test_a_variant_is_counted_once_per_config(registry, fashion, fresh):
    spec = registry.variant("dcgan")
    built = []

    def build(context, config):
        built.append(config)
        return spec.build(context, config)

    counted = dataclasses.replace(spec, build=build)
    context = make_context(fashion)
    for config in (spec.config(), spec.config(), spec.config(batch_size=32)):
        flops.train_step_flops(counted, config, context, fashion.train_images, fashion.train_labels)
    assert built == [spec.config(), spec.config(batch_size=32)]


def _gflop(value: int) -> str:
    return f"{Decimal(value) / 10**9}GFLOP"  # exact: no float rounding between the budget and k steps


@pytest.mark.slow
def test_a_flop_budget_stops_each_variant_at_the_first_step_that_reaches_it(step_flops, run_kwargs):
    dcgan, wgan = step_flops("dcgan"), step_flops("wgan")
    budget = 6 * dcgan  # exactly 6 dcgan steps; 2 wgan steps (5 critic steps each) pass it
    result = ganbench.run(**{**run_kwargs, "variants": "dcgan,wgan", "budget": _gflop(budget)})
    jobs = result.jobs.set_index(C.VARIANT)
    assert jobs.loc["dcgan", C.STEP] == 6 and jobs.loc["wgan", C.STEP] == math.ceil(budget / wgan)
    for name, cost in (("dcgan", dcgan), ("wgan", wgan)):
        rows = result.metrics[result.metrics[C.VARIANT] == name]
        assert (rows[C.TRAIN_FLOPS] == rows[C.STEP] * cost).all()


@pytest.mark.slow
def test_every_run_records_the_flops_of_a_step_and_of_each_row(step_flops, run_kwargs):
    result = ganbench.run(**{**run_kwargs, "variants": "cgan", "budget": "4steps"})
    cost = step_flops("cgan")
    record = json.loads((result.run_dir / "config.json").read_text())
    assert record["variants"]["cgan"]["train_step_flops"] == cost
    rows = result.metrics.set_index(C.VARIANT)
    assert rows.loc["cgan", C.TRAIN_FLOPS].tolist() == [2 * cost, 4 * cost]
    assert math.isnan(rows.loc[C.REAL_DATA, C.TRAIN_FLOPS])

import math
import time

import torch

from ganbench import columns as C
from ganbench.budget import Budget
from ganbench.harness.seeding import restore_rng, seed_everything
from ganbench.harness.trainer import Trainer
from ganbench.testing import batch_source, build_variant


def make_trainer(fashion, budget, evals=1, variant="cgan", overrides=None, **kwargs):
    seed_everything(0)
    v = build_variant(variant, fashion, overrides=overrides)
    calls = []
    trainer = Trainer(
        v, batch_source(v, fashion), Budget.parse(budget), evals,
        on_eval=lambda state, final: calls.append((state.step, state.images_seen, state.eval_index, final)),
        **kwargs,
    )  # fmt: skip
    return trainer, calls


def test_steps_budget_is_exact_and_evaluations_are_spread(fashion):
    trainer, calls = make_trainer(fashion, "7steps", evals=3)
    outcome = trainer.fit()
    assert outcome.status == C.STATUS_OK
    assert outcome.state.step == 7 and outcome.state.images_seen == 7 * 64
    assert [(s, i, f) for s, _, i, f in calls] == [(3, 1, False), (5, 2, False), (7, 3, True)]


def test_more_evaluations_than_steps_collapse(fashion):
    trainer, calls = make_trainer(fashion, "2steps", evals=5)
    trainer.fit()
    assert [(s, f) for s, _, _, f in calls] == [(1, False), (2, True)]


def test_kimg_budget_stops_at_the_first_step_past_it(fashion):
    trainer, calls = make_trainer(fashion, "1kimg", evals=1, overrides={"batch_size": "100"})
    outcome = trainer.fit()
    assert outcome.state.images_seen == 1000 and outcome.state.step == 10 and calls[-1][3]


def test_seconds_budget_is_met_within_one_step_and_excludes_evaluation(fashion):
    def slow_eval(state, final):
        time.sleep(0.5)

    seed_everything(0)
    v = build_variant("cgan", fashion)
    trainer = Trainer(v, batch_source(v, fashion), Budget.parse("2s"), 3, on_eval=slow_eval)
    start = time.perf_counter()
    outcome = trainer.fit()
    wall = time.perf_counter() - start
    state = outcome.state
    step_time = state.train_seconds / state.step
    # Stated tolerance (docs/budgets): training stops at the first step that ends past the budget.
    assert 2.0 <= state.train_seconds <= 2.0 + max(0.5, 3 * step_time)
    assert wall >= state.train_seconds + 3 * 0.5  # the three evaluations took wall time, not budget


def test_losses_are_read_back_at_log_points(fashion):
    points = []
    trainer, _ = make_trainer(fashion, "12steps", evals=1, on_log=points.append, log_every=5)
    trainer.fit()
    assert [p.step for p in points] == [5, 10, 12]
    assert set(points[0].losses) == {"d_loss", "g_loss"} and all(math.isfinite(v) for v in points[0].losses.values())


def test_a_non_finite_loss_ends_the_run_as_diverged_at_its_step(fashion):
    from conftest import FIXTURES

    from ganbench.registry import load_registry

    spec = load_registry([FIXTURES / "plugin_nan.py"]).variant("nan-gan")
    seed_everything(0)
    v = build_variant(spec, fashion, overrides={"nan_at": "7"})
    calls = []
    trainer = Trainer(
        v, batch_source(v, fashion), Budget.parse("100steps"), 4, lambda s, f: calls.append(s.step), log_every=50
    )
    outcome = trainer.fit()
    assert outcome.status == C.STATUS_DIVERGED
    assert outcome.state.step == 7 and "non-finite loss at step 7" in outcome.note and "g_loss=nan" in outcome.note
    assert calls == []  # it diverged before the first evaluation point (step 25)


def test_checkpoint_holds_everything_to_continue_exactly(fashion, tmp_path):
    path = tmp_path / "ckpt.pt"
    trainer, _ = make_trainer(fashion, "4steps", evals=2, checkpoint=path)
    trainer.fit()
    state = torch.load(path, weights_only=True)  # plain tensors and numbers only
    assert state["state"]["step"] == 4 and state["state"]["eval_index"] == 2
    assert set(state["variant"]["networks"]) == {"generator", "discriminator"}
    assert state["budget"] == {"kind": "steps", "amount": 4.0, "text": "4steps"}

    # Continue the original for two steps, and a fresh copy restored from the checkpoint.
    original = [trainer.variant.train_step(trainer.source)["g_loss"].item() for _ in range(2)]
    v = build_variant("cgan", fashion, seed=123)
    v.load_state_dict(state["variant"])
    source = batch_source(v, fashion, seed=456)
    source.load_state_dict(state["source"])
    restore_rng(state["rng"])
    v.train(True)
    resumed = [v.train_step(source)["g_loss"].item() for _ in range(2)]
    assert resumed == original

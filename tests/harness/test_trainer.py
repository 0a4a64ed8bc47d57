import copy
import math
import time

import pytest
import torch

from ganbench import columns as C
from ganbench.budget import Budget
from ganbench.harness.seeding import restore_rng, seed_everything
from ganbench.harness.trainer import Trainer
from ganbench.registry import load_registry
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


@pytest.mark.slow
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
    # each evaluation (three, or fewer if one slow step crossed two points) took wall time, not budget
    assert wall >= state.train_seconds + state.eval_index * 0.5


def test_losses_are_read_back_at_log_points(fashion):
    points = []
    trainer, _ = make_trainer(fashion, "12steps", evals=1, on_log=points.append, log_every=5)
    trainer.fit()
    assert [p.step for p in points] == [5, 10, 12]
    assert set(points[0].losses) == {"d_loss", "g_loss"} and all(math.isfinite(v) for v in points[0].losses.values())


@pytest.fixture
def diverging(fashion, fixtures_dir):
    """A cgan whose losses turn NaN at step 7, with its trainer (100 steps, 4 evaluations)."""
    spec = load_registry([fixtures_dir / "plugin_nan.py"]).variant("nan-gan")
    seed_everything(0)
    v = build_variant(spec, fashion, overrides={"nan_at": "7"})
    calls, points = [], []
    trainer = Trainer(
        v, batch_source(v, fashion), Budget.parse("100steps"), 4, lambda s, f: calls.append(s.step), points.append, 50
    )
    return trainer, calls, points


def test_a_non_finite_loss_ends_the_run_as_diverged_at_its_step(diverging):
    trainer, calls, _ = diverging
    outcome = trainer.fit()
    assert outcome.status == C.STATUS_DIVERGED
    assert outcome.state.step == 7 and "non-finite loss at step 7" in outcome.note and "g_loss=nan" in outcome.note
    assert calls == []  # it diverged before the first evaluation point (step 25)


def test_a_diverged_run_counts_the_images_of_its_last_step_and_logs_up_to_it(diverging):
    trainer, _, points = diverging
    outcome = trainer.fit()
    assert outcome.state.images_seen == 7 * 64
    assert [(p.step, p.images_seen) for p in points] == [(6, 6 * 64), (7, 7 * 64)]
    assert math.isfinite(points[0].losses["g_loss"]) and math.isnan(points[1].losses["g_loss"])


def test_checkpoint_holds_everything_to_continue_exactly(fashion, tmp_path):
    path = tmp_path / "ckpt.pt"
    trainer, _ = make_trainer(fashion, "4steps", evals=2, on_checkpoint=lambda t: torch.save(t.state_dict(), path))
    trainer.fit()
    state = torch.load(path, weights_only=True)  # plain tensors and numbers only
    assert state["state"]["step"] == 4 and state["state"]["eval_index"] == 2 and state["state"]["finished"]
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


def test_a_restored_trainer_continues_the_same_schedule_and_losses(fashion):
    whole_points, first_points, second_points, saved = [], [], [], []
    whole, whole_evals = make_trainer(fashion, "9steps", evals=3, log_every=2, on_log=whole_points.append)
    whole.fit()

    def save_then_die(trainer):
        saved.append(copy.deepcopy(trainer.state_dict()))
        raise StopIteration  # the process dies right after its first checkpoint

    first, first_evals = make_trainer(
        fashion, "9steps", evals=3, log_every=2, on_log=first_points.append, on_checkpoint=save_then_die
    )
    with pytest.raises(StopIteration):
        first.fit()
    second, second_evals = make_trainer(fashion, "9steps", evals=3, log_every=2, on_log=second_points.append)
    for _ in range(2):  # move weights, optimiser, batch order and RNG away: all must come from the checkpoint
        second.variant.train_step(second.source)
    second.load_state_dict(saved[0])
    second.fit()
    assert [c[0] for c in whole_evals] == [c[0] for c in first_evals + second_evals] == [3, 6, 9]
    assert [(p.step, p.losses) for p in whole_points] == [(p.step, p.losses) for p in first_points + second_points]


def test_a_restored_trainer_refuses_another_budget(fashion):
    trainer, _ = make_trainer(fashion, "2steps")
    state = trainer.state_dict()
    other, _ = make_trainer(fashion, "3steps")
    with pytest.raises(ValueError, match="made under budget 2steps, not 3steps"):
        other.load_state_dict(state)

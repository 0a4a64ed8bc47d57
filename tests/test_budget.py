import pytest

from ganbench.budget import FLOPS, KIMG, SECONDS, STEPS, Budget
from ganbench.errors import UsageError


@pytest.mark.parametrize(
    "text, kind, amount",
    [
        ("90s", SECONDS, 90), ("2m", SECONDS, 120), ("1.5min", SECONDS, 90), ("1h", SECONDS, 3600),
        ("2000steps", STEPS, 2000), ("1 step", STEPS, 1), ("60kimg", KIMG, 60), ("0.5kimg", KIMG, 0.5),
        (" 30 S ", SECONDS, 30),
    ],
)  # fmt: skip
def test_parse(text, kind, amount):
    budget = Budget.parse(text)
    assert (budget.kind, budget.amount) == (kind, amount)
    assert str(budget) == text.strip()


@pytest.mark.parametrize("text", ["90", "abc", "10 parsecs", "0s", "-5s", "2.5steps", "", "s"])
def test_bad_budgets_say_what_is_accepted(text):
    with pytest.raises(UsageError, match="budget") as err:
        Budget.parse(text)
    assert "\n" not in str(err.value)


def test_fraction_counts_the_budget_unit():
    assert Budget.parse("100steps").fraction(steps=25, images_seen=10**6, train_seconds=10**6) == 0.25
    assert Budget.parse("2kimg").fraction(steps=10**6, images_seen=500, train_seconds=10**6) == 0.25
    assert Budget.parse("1m").fraction(steps=10**6, images_seen=10**6, train_seconds=15) == 0.25


@pytest.mark.parametrize(
    "text, amount",
    [("2PFLOP", 2e15), ("500TFLOP", 5e14), ("1.5tflop", 1.5e12), ("30 GFlop", 3e10), ("0.25EFLOP", 2.5e17)],
)
def test_parse_flops(text, amount):
    budget = Budget.parse(text)
    assert (budget.kind, budget.amount) == (FLOPS, amount)


@pytest.mark.parametrize("text", ["2FLOP", "2PFLOPS", "3kflop", "0TFLOP", "1.5 P FLOP"])
def test_bad_flop_budgets_name_the_accepted_units(text):
    with pytest.raises(UsageError, match="budget") as err:
        Budget.parse(text)
    assert "TFLOP" in str(err.value) and "\n" not in str(err.value)


def test_a_flop_budget_counts_the_flops_spent():
    budget = Budget.parse("1TFLOP")
    assert budget.fraction(steps=10**6, images_seen=10**6, train_seconds=10**6, flops=2.5e11) == 0.25
    with pytest.raises(ValueError, match="FLOPs spent"):
        budget.fraction(steps=1, images_seen=64, train_seconds=1.0)

import pytest

from ganbench.budget import KIMG, SECONDS, STEPS, Budget
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

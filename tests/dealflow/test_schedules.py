"""Payment schedules compile into milestones whose amounts add up to the total exactly, and
every mistake names its schedule entry."""

from __future__ import annotations

import copy

import pytest
import yaml

from dealflow.schedules import percent_bps, split_largest_remainder
from dealflow.specs import SpecError, load_spec, parse_spec
from tests.dealflow.test_models import VALID
from tests.paths import EXAMPLES

BASE = {key: value for key, value in VALID.items() if key != "milestones"}


def scheduled(total: object, *entries: dict, **changes: object) -> dict:
    return {**copy.deepcopy(BASE), "total": total, "schedule": list(entries), **changes}


def entry(key: str, **fields: object) -> dict:
    return {"key": key, "title": key.capitalize(), **fields}


def refusal(data: dict) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "spec.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("amount", "weights", "shares"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (100_001, [3333, 3333, 3334], [33_330, 33_330, 33_341]),
        (10, [5000, 5000], [5, 5]),
        (1, [5000, 5000], [1, 0]),
        (7, [1, 2, 4], [1, 2, 4]),
        (1_000, [1, 1, 1, 1, 1, 1, 1], [143, 143, 143, 143, 143, 143, 142]),
    ],
)
def test_largest_remainder_adds_up_exactly(amount: int, weights: list[int], shares: list[int]) -> None:
    assert split_largest_remainder(amount, weights) == shares
    assert sum(shares) == amount


@pytest.mark.parametrize(("written", "bps"), [(25, 2500), (33.33, 3333), ("12.5", 1250), (100, 10_000), (0.01, 1)])
def test_percentages_in_basis_points(written: object, bps: int) -> None:
    assert percent_bps(written) == bps


def test_a_deposit_and_percentages_of_the_total() -> None:
    spec = parse_spec(
        scheduled(
            1_000_000,
            entry("deposit", percent=25, deposit=True),
            entry("design", percent=33.33, due_in_days=14),
            entry("build", percent=41.67, due="2027-03-01"),
        ),
        "spec.yaml",
    )
    assert [(m.key, m.amount, m.deposit) for m in spec.milestones] == [
        ("deposit", 250_000, True),
        ("design", 333_300, False),
        ("build", 416_700, False),
    ]
    assert spec.total_amount == 1_000_000


def test_fixed_amounts_come_off_the_total_before_the_percentages_split_the_rest() -> None:
    spec = parse_spec(
        scheduled(
            100_000,
            entry("deposit", amount=10_001, deposit=True),
            entry("a", percent=33.33, due="2027-01-01"),
            entry("b", percent=33.33, due="2027-02-01"),
            entry("c", percent=33.34, due="2027-02-01"),
        ),
        "spec.yaml",
    )
    amounts = [m.amount for m in spec.milestones]
    assert amounts == [10_001, 29_997, 29_997, 30_005]
    assert sum(amounts) == 100_000


def test_zero_decimal_currency_splits_whole_yen() -> None:
    spec = parse_spec(
        scheduled(1_000, *(entry(f"m{n}", percent=33.33 if n < 2 else 33.34, due_in_days=n + 1) for n in range(3)), currency="jpy"),
        "spec.yaml",
    )
    assert [m.amount for m in spec.milestones] == [333, 333, 334]


def test_fixed_amounts_by_date_must_make_the_total() -> None:
    ok = parse_spec(
        scheduled(300, entry("a", amount=100, due="2027-01-01"), entry("b", amount=200, due="2027-01-02")),
        "spec.yaml",
    )
    assert [m.amount for m in ok.milestones] == [100, 200]
    assert refusal(scheduled(300, entry("a", amount=100, due="2027-01-01"), entry("b", amount=100, due="2027-01-02"))) == [
        "schedule: the amounts add up to USD 2.00, the total is USD 3.00"
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (scheduled(100, entry("a", percent=50, due_in_days=1), entry("b", percent=49.99, due_in_days=2)),
         "schedule: the percentages add up to 99.99 %, not 100 % exactly"),
        (scheduled(100, entry("a", percent=33.333, due_in_days=1)), "schedule[0].percent: at most two decimals (33.33, not 33.333)"),
        (scheduled(100, entry("a", percent=0, due_in_days=1)), "schedule[0].percent: must be above 0 and at most 100"),
        (scheduled(100, entry("a", percent=True, due_in_days=1)), "schedule[0].percent: must be a number of percent"),
        (scheduled(100, entry("a", percent=50, amount=50, due_in_days=1)), "schedule[0]: give exactly one of 'percent' and 'amount'"),
        (scheduled(100, entry("a", amount=1.5, due_in_days=1)), "schedule[0].amount: must be an integer number of minor units (cents)"),
        (scheduled(-5, entry("a", percent=100, due_in_days=1)), "total: must be above 0"),
        (scheduled("100", entry("a", percent=100, due_in_days=1)), "total: must be an integer number of minor units"),
        ({**BASE, "schedule": [entry("a", percent=100, due_in_days=1)]}, "total: a schedule needs the deal's total (minor units)"),
        (scheduled(100), "schedule: must be a list of 1 to 20 entries"),
        (scheduled(100, "deposit"), "schedule: each entry must be a mapping"),
        (scheduled(100, entry("a", percent=100, due_in_days=1), milestones=[]), "milestones: give either milestones or a total and a schedule, not both"),
        (scheduled(1, entry("a", percent=50, due_in_days=1), entry("b", percent=50, due_in_days=2)), "schedule[1].percent: 50 % of USD 0.01 is less than USD 0.01"),
        (scheduled(100, entry("a", amount=100, due_in_days=1), entry("b", percent=100, due_in_days=2)), "schedule: the fixed amounts (USD 1.00) leave nothing of the total (USD 1.00) for the percentages"),
        (scheduled(100, entry("a", percent=50, due="2027-02-01"), entry("b", percent=50, due="2027-01-01")),
         "schedule[1].due: 2027-01-01 comes before schedule[0].due (2027-02-01); the schedule must be in order"),
        (scheduled(100, entry("a", percent=50, due_in_days=9), entry("b", percent=50, due_in_days=3)), "schedule[1].due_in_days: 3 comes before schedule[0].due_in_days (9)"),
        (scheduled(100, entry("a", percent=50, due_in_days=1), entry("b", percent=50)), "schedule[1]: Value error, give either 'due' (a date) or 'due_in_days'"),
        (scheduled(100, entry("a", percent=50, due_in_days=1), entry("b", percent=50, deposit=True)), "schedule[1].deposit: only the first milestone can be a deposit"),
        (scheduled(100, entry("a", percent=100, due_in_days=1, colour="red")), "schedule[0].colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_schedule_names_its_entry(data: dict, expected: str) -> None:
    assert any(expected in problem for problem in refusal(data)), refusal(data)


def test_the_example_schedule_loads_and_adds_up() -> None:
    spec = load_spec(EXAMPLES / "brand-refresh-schedule.yaml")
    raw = yaml.safe_load((EXAMPLES / "brand-refresh-schedule.yaml").read_text())
    assert spec.total_amount == raw["total"]
    assert spec.milestones[0].deposit

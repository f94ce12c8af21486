"""The deal's terms as pure rules: when a payment is due, late fees (integer math, rounded half
up, capped), the reminder cadence, and what a spec may say about them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from dealflow.models import DealSpec
from dealflow.specs import validation_problems
from dealflow.terms import (
    LATE_FEE_MONTH,
    LateFee,
    describe_late_fee,
    late_fee_each,
    next_late_fee,
    payment_due_at,
    reminder_times,
)
from tests.dealflow.test_models import VALID, with_change

T0 = datetime(2027, 1, 10, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def problems(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        DealSpec.model_validate(data)
    return validation_problems(caught.value)


def test_a_payment_is_due_on_its_date_or_when_its_link_goes_out_if_later() -> None:
    due = datetime(2027, 1, 20, tzinfo=UTC)
    assert payment_due_at(due, T0, deposit=False) == due
    assert payment_due_at(due, due + DAY, deposit=False) == due + DAY
    assert payment_due_at(due, T0, deposit=True) == T0
    assert payment_due_at(None, T0, deposit=False) == T0


@pytest.mark.parametrize(
    ("terms", "amount", "each"),
    [
        (LateFee(percent_bps=150), 100_000, 1_500),
        (LateFee(percent_bps=250), 101, 3),  # 2.525 rounds half up to 3
        (LateFee(percent_bps=250), 99, 2),  # 2.475 rounds to 2
        (LateFee(percent_bps=1), 49, 0),  # less than half a cent: no fee
        (LateFee(fixed=5_000), 1, 5_000),
    ],
)
def test_one_late_fee_in_minor_units(terms: LateFee, amount: int, each: int) -> None:
    assert late_fee_each(terms, amount) == each


def test_a_one_off_fee_comes_once_after_the_grace() -> None:
    terms = LateFee(fixed=2_500, grace="2d")
    first = next_late_fee(terms, 100_000, T0, applied=0, added=0)
    assert first is not None and (first.at, first.amount) == (T0 + 2 * DAY, 2_500)
    assert next_late_fee(terms, 100_000, T0, applied=1, added=2_500) is None


def test_a_monthly_fee_comes_every_30_days_up_to_its_cap() -> None:
    terms = LateFee(percent_bps=200, repeat="monthly", cap=5_000, grace="1d")
    fees = []
    applied = added = 0
    while (fee := next_late_fee(terms, 100_000, T0, applied, added)) is not None:
        fees.append((fee.at - T0, fee.amount))
        applied, added = applied + 1, added + fee.amount
    assert fees == [(DAY, 2_000), (DAY + LATE_FEE_MONTH, 2_000), (DAY + 2 * LATE_FEE_MONTH, 1_000)]


def test_a_fee_too_small_to_charge_is_never_scheduled() -> None:
    assert next_late_fee(LateFee(percent_bps=1), 49, T0, 0, 0) is None


def test_reminders_of_a_cadence_after_the_link_in_order() -> None:
    due = T0 + 10 * DAY
    offsets = [timedelta(0), -7 * DAY, 2 * DAY, -14 * DAY, timedelta(0)]
    assert reminder_times(offsets, due, T0) == [due - 7 * DAY, due, due + 2 * DAY]
    assert reminder_times([-10 * DAY], due, T0) == []  # not at the link's own moment


def test_late_fees_read_as_the_client_reads_them() -> None:
    once = LateFee(percent_bps=250, grace="3d")
    assert describe_late_fee(once, 100_000, "usd") == "2.5 % (USD 25.00), once, 3 days after the due date"
    monthly = LateFee(fixed=500, repeat="monthly", cap=1_500, grace="36h")
    assert describe_late_fee(monthly, 100_000, "jpy") == (
        "JPY 500 every 30 days from 36 hours after the due date, at most JPY 1,500 in all"
    )


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("policy", {"late_fee": {"grace": "3d"}}, "policy.late_fee: Value error, give exactly one of 'percent_bps' and 'fixed'"),
        ("policy", {"late_fee": {"fixed": 100, "percent_bps": 100}}, "give exactly one of"),
        ("policy", {"late_fee": {"fixed": 100, "repeat": "monthly"}}, "a monthly late fee needs a 'cap'"),
        ("policy", {"late_fee": {"fixed": 0}}, "policy.late_fee.fixed: Input should be greater than 0"),
        ("policy", {"late_fee": {"percent_bps": 10_001}}, "policy.late_fee.percent_bps: Input should be less than or equal to 10000"),
        ("milestones.0.late_fee", {"fixed": 100, "grace": "-1d"}, "milestones[0].late_fee.grace: Value error, must be longer than zero"),
        ("policy", {"reminders": []}, "policy.reminders: List should have at least 1 item"),
        (
            "milestones.1.late_fee",
            {"fixed": 99_700_000},
            "milestones[1].late_fee: with its late fees, milestone 'build' could come to USD 1,000,500.00, more than one payment can be (USD 999,999.99)",
        ),
        (
            "policy",
            {"late_fee": {"percent_bps": 10_000, "repeat": "monthly", "cap": 99_900_000}},
            "policy.late_fee: with its late fees, milestone 'design' could come to USD 1,000,500.00",
        ),
        ("policy", {"reminders": ["tomorrow"]}, "policy.reminders[0]"),
    ],
)
def test_bad_terms_name_their_field(path: str, value: object, expected: str) -> None:
    assert any(expected in problem for problem in problems(with_change(path, value)))


def test_terms_a_spec_may_give() -> None:
    spec = DealSpec.model_validate(
        with_change(
            "policy",
            {"reminders": ["-7d", 0, "2d", "+3d"], "late_fee": {"percent_bps": 150}},
        )
    )
    assert spec.policy.reminders == [-7 * DAY, timedelta(0), 2 * DAY, 3 * DAY]
    assert spec.late_fee_of(spec.milestones[0]) == LateFee(percent_bps=150)
    assert DealSpec.model_validate_json(spec.model_dump_json()) == spec


DEPOSIT = {"key": "deposit", "title": "Deposit", "amount": 50_000, "deposit": True}


def test_a_deposit_is_the_first_milestone_and_due_at_signature() -> None:
    spec = DealSpec.model_validate({**VALID, "milestones": [DEPOSIT, *VALID["milestones"]]})
    assert spec.milestones[0].deposit and spec.total_amount == 550_000
    assert problems({**VALID, "milestones": [*VALID["milestones"], DEPOSIT]}) == [
        (
            "(spec): Value error, milestones[2].deposit: only the first milestone can be a "
            "deposit (it is due at signature)"
        )
    ]
    assert problems({**VALID, "milestones": [{**DEPOSIT, "due_in_days": 3}]}) == [
        "milestones[0]: Value error, a deposit is due at signature: give it no 'due' or 'due_in_days'"
    ]


def test_a_deposit_held_for_the_first_milestone_needs_one_and_a_captured_payment() -> None:
    held = {"deposit_release": "with_first_milestone"}
    assert "needs a milestone after the deposit" in problems(
        {**VALID, "milestones": [DEPOSIT], "policy": held}
    )[0]
    assert "a card hold lapses after 7 days" in problems(
        {**VALID, "milestones": [DEPOSIT, *VALID["milestones"]], "policy": {**held, "capture": "on_approval"}}
    )[0]

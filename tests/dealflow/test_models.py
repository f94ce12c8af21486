"""DealSpec enforces every rule, and each violation names its field."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from dealflow.models import DealSpec
from dealflow.specs import SpecError, load_spec, validation_problems
from tests.paths import EXAMPLES

VALID = {
    "deal_id": "acme-site",
    "title": "Acme site",
    "currency": "usd",
    "client": {"name": "Dana", "email": "dana@acme.example"},
    "vendor": {"name": "Northwind", "email": "billing@northwind.example"},
    "sow": "Build the Acme website in three milestones.",
    "milestones": [
        {"key": "design", "title": "Design", "amount": 150000, "due_in_days": 14},
        {"key": "build", "title": "Build", "amount": 350000, "due": "2027-03-01"},
    ],
}


def with_change(path: str, value: object) -> dict:
    """VALID with one field (dotted path, list indexes as numbers) replaced or, for ..., removed."""
    spec = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: object = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]  # type: ignore[index]
    key = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]  # type: ignore[attr-defined]
    else:
        node[key] = value  # type: ignore[index]
    return spec


def problems(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        DealSpec.model_validate(data)
    return validation_problems(caught.value)


def test_valid_spec_and_derived_values() -> None:
    spec = DealSpec.model_validate(VALID)
    assert spec.workflow_id == "deal-acme-site"
    assert spec.total_amount == 500000
    assert spec.policy.review_window == timedelta(days=14)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("milestones.0.amount", -5, "milestones[0].amount: Input should be greater than 0"),
        ("milestones.0.amount", 0, "milestones[0].amount: Input should be greater than 0"),
        ("milestones.0.amount", 100_000_000, "milestones[0].amount: Input should be less than or equal to 99999999"),
        ("milestones.0.amount", 1500.5, "milestones[0].amount: Input should be a valid integer"),
        ("milestones.0.amount", "1500", "milestones[0].amount: Input should be a valid integer"),
        ("currency", "btc", "currency: Input should be"),
        ("currency", "USD", "currency: Input should be"),
        ("deal_id", "Bad Id!", "deal_id: String should match pattern"),
        ("client.email", "not-an-email", "client.email: value is not a valid email address"),
        ("vendor.stripe_account", "acc_123", "vendor.stripe_account: String should match pattern"),
        ("vendor.fulfillment_url", "ftp://x", "vendor.fulfillment_url: URL scheme should be"),
        ("milestones", [], "milestones: List should have at least 1 item"),
        ("milestones.0.due_in_days", ..., "milestones[0]: Value error, give either 'due'"),
        ("milestones.1.due_in_days", 3, "milestones[1]: Value error, give only one of 'due' and 'due_in_days'"),
        ("milestones.1.key", "design", "milestones: Value error, milestone key 'design' is used twice"),
        ("sow", "short", "sow: String should have at least 20 characters"),
        ("policy", {"max_revisions": 11}, "policy.max_revisions: Input should be less than or equal to 10"),
        ("policy", {"review_window": "-3d"}, "policy.review_window"),
        ("policy", {"review_window": 0}, "policy.review_window: Value error, must be longer than zero"),
        ("policy", {"sign_window": "99999999w"}, "policy.sign_window: Value error, must be at most 3650 days (10 years) long"),
        ("policy", {"fund_window": 10**20}, "policy.fund_window: Value error, must be at most 3650 days"),
        ("policy", {"payout_recheck": float("inf")}, "policy.payout_recheck: Value error, a duration must be a finite number"),
        ("policy", {"reminders": ["-3651d"]}, "policy.reminders[0]: Value error, must be at most 3650 days"),
        ("milestones.0.due", "9999-12-31", "milestones[0].due: Input should be less than 3000-01-01"),
        ("policy", {"capture_before_lapse": "8d"}, "policy: Value error, capture_before_lapse must be at most 7 days"),
        ("policy", {"checkout_session_ttl": "10m"}, "policy: Value error, checkout_session_ttl must be between"),
        ("policy", {"capture": "later"}, "policy.capture: Input should be 'on_funding' or 'on_approval'"),
        ("policy", {"platform_fee_bps": -1}, "policy.platform_fee_bps: Input should be greater than or equal to 0"),
        ("policy", {"platform_fee_bps": 5_001}, "policy.platform_fee_bps: Input should be less than or equal to 5000"),
        ("policy", {"platform_fee_fixed": 2.5}, "policy.platform_fee_fixed: Input should be a valid integer"),
        ("policy", {"platform_fee_fixed": 10**9}, "(spec): Value error, policy.platform_fee_bps/platform_fee_fixed: the platform fee"),
        ("title", ..., "title: Field required"),
        ("unexpected", 1, "unexpected: Extra inputs are not permitted"),
    ],
)
def test_each_rule_names_its_field(path: str, value: object, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(with_change(path, value))), problems(
        with_change(path, value)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"payment_methods": ["sepa_debit"]}, "(spec): Value error, payment_methods: 'sepa_debit' collects only EUR, the deal is in USD"),
        ({"payment_methods": ["card", "card"]}, "(spec): Value error, payment_methods: lists a payment method twice"),
        ({"payment_methods": []}, "payment_methods: List should have at least 1 item"),
        ({"payment_methods": ["cheque"]}, "payment_methods[0]: Input should be 'card', 'us_bank_account' or 'sepa_debit'"),
        (
            {"payment_methods": ["us_bank_account"], "policy": {"capture": "on_approval"}},
            "(spec): Value error, payment_methods: 'us_bank_account' cannot hold money until approval",
        ),
        ({"currency": "eur", "payment_methods": ["us_bank_account"]}, "(spec): Value error, payment_methods: 'us_bank_account' collects only USD"),
        ({"policy": {"sepa_debit_days": 0}}, "policy.sepa_debit_days: Input should be greater than or equal to 1"),
    ],
)
def test_payment_methods_must_be_able_to_collect_the_deal(change: dict, expected: str) -> None:
    found = problems({**VALID, **change})
    assert any(p.startswith(expected) for p in found), found


def test_a_milestone_may_allow_a_bank_debit_of_its_own() -> None:
    milestones = copy.deepcopy(VALID["milestones"])
    milestones[1]["payment_methods"] = ["card", "us_bank_account"]
    spec = DealSpec.model_validate({**VALID, "milestones": milestones})
    assert spec.payment_methods_of(spec.milestones[0]) == ["card"]
    assert spec.payment_methods_of(spec.milestones[1]) == ["card", "us_bank_account"]
    milestones[1]["payment_methods"] = ["sepa_debit"]
    assert problems({**VALID, "milestones": milestones}) == [
        "(spec): Value error, milestones[1].payment_methods: 'sepa_debit' collects only EUR, the deal is in USD"
    ]


def test_twenty_one_milestones_refused() -> None:
    many = [{"key": f"m{i}", "title": f"M{i}", "amount": 100, "due_in_days": 1} for i in range(21)]
    assert problems(with_change("milestones", many)) == ["milestones: List should have at most 20 items after validation, not 21"]


def test_durations_accept_units_and_seconds() -> None:
    spec = DealSpec.model_validate(with_change("policy", {"review_window": "36h", "sign_window": 90, "demo": True}))
    assert spec.policy.review_window == timedelta(hours=36)
    assert spec.policy.sign_window == timedelta(seconds=90)
    assert DealSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    "name", ["website-redesign.yaml", "data-audit.json", "brand-refresh-schedule.yaml"]
)
def test_examples_are_valid(name: str) -> None:
    assert load_spec(EXAMPLES / name).total_amount > 0


def test_load_spec_reports_syntax_and_shape(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("deal_id: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(broken)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(listing)

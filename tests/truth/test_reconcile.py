"""Reconciliation against the offline Stripe sandbox, through the unmodified stripe library.

Money is made on the sandbox the way dealflow makes it (a Checkout Session with the deal in its
metadata, paid with the test card) and recorded through the ledger activity; the test then
breaks the agreement one way at a time and expects each difference to be named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import stripe
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from dealflow.messages import PaymentKind, PaymentRecord
from dealflow.modes import MoneyMode
from dealflow.serve import serve_app
from dealflow.settings import Settings
from stripe_sandbox.app import create_app as create_sandbox
from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.control import SandboxControl
from tests.stray_payments import pay_outside_dealflow
from truth.reconcile import StripeSide, configured_account, reconcile


@dataclass
class Sandbox:
    client: stripe.StripeClient
    control: SandboxControl
    side: StripeSide


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with serve_app(create_sandbox(SandboxConfig())) as url, SandboxControl(url) as control:
        account = configured_account(
            Settings(_env_file=None, STRIPE_API_KEY="sk_test_reconcile_tests", STRIPE_API_BASE=url)
        )
        assert account.mode is MoneyMode.SANDBOX
        client = account.client()
        yield Sandbox(client, control, StripeSide(client))


async def record(
    pool: asyncpg.Pool, kind: PaymentKind, stripe_id: str, deal_id: str, amount: int
) -> None:
    payment = PaymentRecord(
        stripe_id=stripe_id,
        deal_id=deal_id,
        milestone_key="m1",
        kind=kind,
        amount=amount,
        currency="usd",
        livemode=False,
        sandbox=True,
        status="succeeded",
        occurred_at=datetime.now(UTC),
    )
    assert await ActivityEnvironment().run(LedgerActivities(pool).record_payment, payment)


async def charge_of(sandbox: Sandbox, intent_id: str) -> str:
    """The charge a payment's transfer is made from (its funds are pending for days)."""
    charge = (await sandbox.client.v1.payment_intents.retrieve_async(intent_id)).latest_charge
    assert isinstance(charge, str)
    return charge


async def test_ledger_and_sandbox_agree_then_each_difference_is_named(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    intent_a = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-a", 120_000)
    intent_b = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-b", 45_000)
    refund = await sandbox.client.v1.refunds.create_async(
        {"payment_intent": intent_b, "amount": 5_000}
    )
    transfer = await sandbox.client.v1.transfers.create_async(
        {
            "amount": 100_000,
            "currency": "usd",
            "destination": "acct_1Vendor",
            "metadata": {"deal_id": "deal-a", "milestone_key": "m1"},
            "source_transaction": await charge_of(sandbox, intent_a),
        }
    )

    # Only deal-a's charge is in the ledger so far: the rest is missing from it.
    await record(db_pool, PaymentKind.CHARGE, intent_a, "deal-a", 120_000)
    result = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert result.exit_code == 1
    assert {
        (d.problem, d.kind, d.stripe_id, d.stripe_amount, d.deal_id) for d in result.differences
    } == {
        ("missing_in_ledger", "charge", intent_b, 45_000, "deal-b"),
        ("missing_in_ledger", "refund", refund.id, 5_000, "deal-b"),
        ("missing_in_ledger", "transfer", transfer.id, 100_000, "deal-a"),
    }

    await record(db_pool, PaymentKind.CHARGE, intent_b, "deal-b", 45_000)
    await record(db_pool, PaymentKind.REFUND, refund.id, "deal-b", 5_000)
    await record(db_pool, PaymentKind.TRANSFER, transfer.id, "deal-a", 100_000)
    agreed = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert (agreed.exit_code, agreed.differences, agreed.ledger_checked, agreed.stripe_checked) == (
        0,
        [],
        4,
        4,
    )

    # A wrong amount in the ledger, and a refund Stripe never made.
    await db_pool.execute("UPDATE payments SET amount = 4_500 WHERE stripe_id = $1", refund.id)
    await record(db_pool, PaymentKind.REFUND, "re_NeverMadeOnStripe", "deal-a", 7_000)
    broken = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert broken.exit_code == 1
    assert {
        (d.problem, d.stripe_id, d.ledger_amount, d.stripe_amount) for d in broken.differences
    } == {
        ("amount_differs", refund.id, 4_500, 5_000),
        ("missing_in_stripe", "re_NeverMadeOnStripe", 7_000, None),
    }
    differs = next(d for d in broken.differences if d.problem == "amount_differs")
    assert differs.describe() == (
        f"amount_differs: refund {refund.id} (deal-b/m1) ledger USD 45.00, Stripe USD 50.00"
    )


async def test_other_modes_and_other_periods_are_left_alone(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    intent = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-c", 9_900)
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-c", 9_900)
    # Test-mode money in the same ledger is another account's business.
    await db_pool.execute(
        """INSERT INTO payments (stripe_id, kind, deal_id, milestone_key, amount, currency, livemode, sandbox, status, occurred_at)
           VALUES ('pi_TestModeElsewhere', 'charge', 'deal-t', 'm1', 100, 'usd', false, false, 'succeeded', now())"""
    )
    assert (await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)).differences == []

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX, since=tomorrow)
    assert (later.ledger_checked, later.stripe_checked, later.exit_code) == (0, 0, 0)


async def test_money_that_belongs_to_no_deal_is_not_dealflows(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    intent = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-d", 2_000)
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-d", 2_000)
    await sandbox.client.v1.transfers.create_async(
        {
            "amount": 500,
            "currency": "usd",
            "destination": "acct_1Other",
            "source_transaction": await charge_of(sandbox, intent),
        }
    )
    result = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert (result.stripe_checked, result.differences) == (1, [])


def test_period_includes_both_days_and_refuses_a_backwards_one() -> None:
    from datetime import date

    from truth.reconcile import PeriodError, period

    start, end = period(date(2026, 3, 1), date(2026, 3, 31))
    assert (start, end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with pytest.raises(PeriodError, match="^--until"):
        period(date(2026, 3, 2), date(2026, 3, 1))

"""Reconciliation against the offline Stripe sandbox, through the unmodified stripe library.

Money is made on the sandbox the way dealflow makes it (a Checkout Session with the deal in its
metadata, paid with the test card) and recorded through the ledger activity, each charge with
the fee and net of its balance transaction; the test then breaks the agreement one way at a
time and expects each difference to be named.
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
from truth.comparison import reconcile
from truth.stripe_side import StripeSide, configured_account


@dataclass
class Sandbox:
    client: stripe.StripeClient
    control: SandboxControl
    side: StripeSide


#: The connected accounts these tests transfer to.
VENDORS = ("acct_1Vendor", "acct_1Other")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    app = create_sandbox(SandboxConfig())
    async with serve_app(app) as url, SandboxControl(url, token=app.state.control_token) as control:
        issued = app.state.store.state.api_key
        account = configured_account(
            Settings(_env_file=None, STRIPE_API_KEY=issued, STRIPE_API_BASE=url)
        )
        assert account.mode is MoneyMode.SANDBOX
        for vendor in VENDORS:
            await control.create_account(vendor)
        client = account.client()
        yield Sandbox(client, control, StripeSide(client))


async def record(
    pool: asyncpg.Pool,
    kind: PaymentKind,
    stripe_id: str,
    deal_id: str,
    amount: int,
    *,
    client: stripe.StripeClient | None = None,
) -> None:
    """A ledger row as the workflow writes it; given the `client`, a charge keeps the fee and
    net of its balance transaction, read as the payment activities read them."""
    fees = {}
    if client is not None:
        intent = await client.v1.payment_intents.retrieve_async(
            stripe_id, {"expand": ["latest_charge.balance_transaction"]}
        )
        transaction = intent.latest_charge.balance_transaction
        fees = {
            "fee": transaction.fee,
            "net": transaction.net,
            "fee_currency": transaction.currency,
        }
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
        **fees,
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
    await record(db_pool, PaymentKind.CHARGE, intent_a, "deal-a", 120_000, client=sandbox.client)
    result = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert result.exit_code == 1
    assert {
        (d.problem, d.kind, d.stripe_id, d.stripe_amount, d.deal_id) for d in result.differences
    } == {
        ("missing_in_ledger", "charge", intent_b, 45_000, "deal-b"),
        ("missing_in_ledger", "refund", refund.id, 5_000, "deal-b"),
        ("missing_in_ledger", "transfer", transfer.id, 100_000, "deal-a"),
    }

    await record(db_pool, PaymentKind.CHARGE, intent_b, "deal-b", 45_000, client=sandbox.client)
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
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-c", 9_900, client=sandbox.client)
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
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-d", 2_000, client=sandbox.client)
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


async def test_a_fee_that_differs_or_was_never_recorded_is_named(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    intent = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-f", 50_000)
    old = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-g", 1_000)
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-f", 50_000, client=sandbox.client)
    await record(db_pool, PaymentKind.CHARGE, old, "deal-g", 1_000)  # before fees were read
    await db_pool.execute(
        "UPDATE payments SET fee = fee + 1, net = net - 1 WHERE stripe_id = $1", intent
    )
    result = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert {
        (d.problem, d.stripe_id, d.ledger_amount, d.stripe_amount) for d in result.differences
    } == {("fee_differs", intent, 50_000, 50_000), ("fee_differs", old, 1_000, 1_000)}
    # 2.9 % + 0.30 of 500.00 is 14.80 (the ledger says 14.81), of 10.00 it is 0.59.
    assert {d.stripe_id: d.describe() for d in result.differences} == {
        intent: f"fee_differs: charge {intent} (deal-f/m1) ledger fee USD 14.81, net USD 485.19,"
        " Stripe fee USD 14.80, net USD 485.20",
        old: f"fee_differs: charge {old} (deal-g/m1) ledger no fee,"
        " Stripe fee USD 0.59, net USD 9.41",
    }


async def test_transfers_missing_on_either_side_are_named_across_pages(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    """Pages of two, so every sweep reads several pages."""
    intent = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-h", 90_000)
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-h", 90_000, client=sandbox.client)
    charge = (await sandbox.client.v1.payment_intents.retrieve_async(intent)).latest_charge
    transfers = [
        await sandbox.client.v1.transfers.create_async(
            {
                "amount": 10_000 + n,
                "currency": "usd",
                "destination": "acct_1Vendor",
                "source_transaction": charge,
                "metadata": {"deal_id": "deal-h", "milestone_key": "m1"},
            }
        )
        for n in range(5)
    ]
    for transfer in transfers[:4]:
        await record(db_pool, PaymentKind.TRANSFER, transfer.id, "deal-h", transfer.amount)
    await record(db_pool, PaymentKind.TRANSFER, "tr_NeverMadeOnStripe", "deal-h", 3_000)
    result = await reconcile(db_pool, StripeSide(sandbox.client, page_size=2), MoneyMode.SANDBOX)
    assert {(d.problem, d.kind, d.stripe_id) for d in result.differences} == {
        ("missing_in_ledger", "transfer", transfers[4].id),
        ("missing_in_stripe", "transfer", "tr_NeverMadeOnStripe"),
    }
    assert (result.ledger_checked, result.stripe_checked) == (6, 6)


async def test_a_charge_captured_in_the_period_is_met_through_its_balance_transaction(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    """Authorized before the period, captured in it: the charges list of the period does not
    show it, its balance transaction does."""
    metadata = {"deal_id": "deal-late", "milestone_key": "m1"}
    held = await sandbox.client.v1.payment_intents.create_async(
        {"amount": 7_700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
         "capture_method": "manual", "metadata": metadata}
    )  # fmt: skip
    await record(db_pool, PaymentKind.AUTHORIZATION, held.id, "deal-late", 7_700)
    await sandbox.control.advance_clock(2 * 86_400)
    await sandbox.client.v1.payment_intents.capture_async(held.id)
    since = datetime.fromtimestamp(await sandbox.control.now() - 60, UTC)

    unrecorded = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX, since=since)
    assert [(d.problem, d.kind, d.stripe_id) for d in unrecorded.differences] == [
        ("missing_in_ledger", "charge", held.id)
    ]
    await record(db_pool, PaymentKind.CHARGE, held.id, "deal-late", 7_700, client=sandbox.client)
    assert (
        await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX, since=since)
    ).differences == []


async def test_a_transfer_reversal_is_checked_both_ways(
    db_pool: asyncpg.Pool, sandbox: Sandbox
) -> None:
    deal = {"deal_id": "deal-r", "milestone_key": "m1"}
    intent = await pay_outside_dealflow(sandbox.client, sandbox.control, "deal-r", 60_000)
    await record(db_pool, PaymentKind.CHARGE, intent, "deal-r", 60_000, client=sandbox.client)
    transfer = await sandbox.client.v1.transfers.create_async(
        {"amount": 50_000, "currency": "usd", "destination": "acct_1Vendor", "metadata": deal,
         "source_transaction": await charge_of(sandbox, intent)}
    )  # fmt: skip
    await record(db_pool, PaymentKind.TRANSFER, transfer.id, "deal-r", 50_000)
    await sandbox.control.advance_clock(86_400)  # Stripe's reversal comes a day later
    reversal = await sandbox.client.v1.transfers.reversals.create_async(
        transfer.id, {"amount": 20_000, "metadata": deal}
    )

    unrecorded = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)
    assert [(d.problem, d.kind, d.stripe_id) for d in unrecorded.differences] == [
        ("missing_in_ledger", "transfer_reversal", reversal.id)
    ]
    await record(db_pool, PaymentKind.TRANSFER_REVERSAL, reversal.id, "deal-r", 20_000)
    assert (await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX)).differences == []

    # A period that holds the ledger's rows but ends before the reversal on Stripe's clock: the
    # sweep misses the reversal, and it is read from its transfer instead.
    now = datetime.now(UTC)
    window = {"since": now - timedelta(minutes=5), "until": now + timedelta(hours=1)}
    await db_pool.execute("UPDATE payments SET amount = 19_999 WHERE stripe_id = $1", reversal.id)
    result = await reconcile(db_pool, sandbox.side, MoneyMode.SANDBOX, **window)
    assert result.ledger_checked == 3
    assert [(d.problem, d.stripe_id, d.ledger_amount, d.stripe_amount) for d in result.differences] == [
        ("amount_differs", reversal.id, 19_999, 20_000)
    ]


def test_period_includes_both_days_and_refuses_a_backwards_one() -> None:
    from datetime import date

    from truth.reconcile import PeriodError, period

    start, end = period(date(2026, 3, 1), date(2026, 3, 31))
    assert (start, end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with pytest.raises(PeriodError, match="^--until"):
        period(date(2026, 3, 2), date(2026, 3, 1))

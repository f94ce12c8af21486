"""The sandbox's own side of balance transactions: its card pricing, funds net of the fee that
wait two days before they are available (also across a restart), and Stripe's limit on nested
expansions."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_sandbox.currencies import SUPPORTED
from stripe_sandbox.fees import CARD_PRICING, card_fee
from tests.stripe_contract.harness import running_sandbox

TWO_DAYS = 2 * 86_400


def test_every_currency_the_sandbox_takes_has_a_card_price() -> None:
    assert CARD_PRICING.keys() == SUPPORTED


@pytest.mark.parametrize(
    ("amount", "currency", "fee"),
    [
        (10_000, "usd", 290 + 30),
        (155, "usd", 4 + 30),  # 4.495 cents: down
        (500, "usd", 15 + 30),  # 14.5 cents: half up
        (1, "usd", 0 + 30),
        (20_000, "eur", 300 + 25),
        (20_000, "gbp", 300 + 20),
        (1_000, "jpy", 36),  # zero-decimal: whole yen, no fixed part
    ],
)
def test_card_fees_round_to_the_nearest_minor_unit_half_up(
    amount: int, currency: str, fee: int
) -> None:
    assert card_fee(amount, currency) == fee


async def pending_charge(client: stripe.StripeClient) -> stripe.BalanceTransaction:
    intent = await client.v1.payment_intents.create_async(
        {"amount": 5_000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True},
    )
    read = await client.v1.payment_intents.retrieve_async(
        intent.id, {"expand": ["latest_charge.balance_transaction"]}
    )
    return read.latest_charge.balance_transaction


async def test_charge_funds_become_available_two_days_later_also_after_a_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        transaction = await pending_charge(first.client())
        assert transaction.status == "pending"
        money = await first.control.money()
        # The balance is net of Stripe's fee: 5000 less 175, pending for now.
        assert (money["pending"], money["available"]) == ({"usd": 4_825}, {"usd": 0})
        assert (await first.control.advance_clock(TWO_DAYS - 60))["available_funds"] == []
    async with running_sandbox(state_file=state_file) as second:
        transactions = second.client().v1.balance_transactions
        assert (await transactions.retrieve_async(transaction.id)).status == "pending"
        advanced = await second.control.advance_clock(60)
        assert advanced["available_funds"] == [transaction.id]
        assert (await transactions.retrieve_async(transaction.id)).status == "available"
        money = await second.control.money()
        assert (money["pending"], money["available"]) == ({"usd": 0}, {"usd": 4_825})
        assert (await second.control.advance_clock(TWO_DAYS))["available_funds"] == []


async def test_expansions_go_at_most_four_levels_deep() -> None:
    async with running_sandbox() as sandbox:
        client = sandbox.client()
        transaction = await pending_charge(client)
        four = "data.source.payment_intent.latest_charge"  # `data.` of a list is one level
        page = await client.v1.balance_transactions.list_async(
            {"source": transaction.source, "expand": [four]}
        )
        assert page.data[0].source.payment_intent.latest_charge.id == transaction.source
        for call, five in (
            (client.v1.balance_transactions.list_async, four + ".balance_transaction"),
            (client.v1.charges.list_async, "data.payment_intent.latest_charge.payment_intent.x"),
        ):
            with pytest.raises(stripe.InvalidRequestError) as raised:
                await call({"expand": [five]})
            assert raised.value.param == "expand"
        deep = await client.v1.balance_transactions.retrieve_async(
            transaction.id, {"expand": ["source.payment_intent.latest_charge.balance_transaction"]}
        )
        assert deep.source.payment_intent.latest_charge.balance_transaction.id == transaction.id

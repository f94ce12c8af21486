"""Stripe's balance transactions and the list endpoints dealflow reconciles with, through the
`stripe` library, on the sandbox and (with STRIPE_TEST_API_KEY) on real Stripe test mode.

What holds on any account is checked on both: a captured charge, a refund and a transfer each
have a balance transaction naming its source, whose net is its amount less its fee, and the
fee is the sum of its details. The exact fee depends on the account's pricing, so the sandbox's
card rate (2.9 % + 30 cents for USD) is checked on the sandbox only.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.stripe_contract.targets import Target, paid_intent, vendor_account

BALANCE = ["latest_charge.balance_transaction"]


def check_shape(transaction: stripe.BalanceTransaction, *, type: str, source: str) -> None:
    assert transaction.id.startswith("txn_")
    assert (transaction.object, transaction.type, transaction.source) == (
        "balance_transaction",
        type,
        source,
    )
    assert transaction.net == transaction.amount - transaction.fee
    assert transaction.fee == sum(detail.amount for detail in transaction.fee_details)
    assert transaction.status in ("pending", "available")
    assert transaction.available_on >= transaction.created


async def test_a_charge_has_a_balance_transaction_with_its_fee_and_net(target: Target) -> None:
    intent = await paid_intent(target, 10_000)
    expanded = await target.client.v1.payment_intents.retrieve_async(intent.id, {"expand": BALANCE})
    charge = expanded.latest_charge
    transaction = charge.balance_transaction
    check_shape(transaction, type="charge", source=charge.id)
    assert transaction.amount == 10_000 and transaction.currency == "usd"
    assert transaction.fee > 0
    assert {detail.type for detail in transaction.fee_details} >= {"stripe_fee"}
    again = await target.client.v1.balance_transactions.retrieve_async(transaction.id)
    assert (again.id, again.fee, again.net) == (transaction.id, transaction.fee, transaction.net)
    if target.name == "sandbox":
        assert (transaction.fee, transaction.net, transaction.status) == (320, 9_680, "pending")
        assert transaction.available_on == transaction.created + 2 * 86_400
        assert [detail.to_dict() for detail in transaction.fee_details] == [
            {
                "amount": 320,
                "application": None,
                "currency": "usd",
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]


async def test_an_authorization_has_none_until_captured_then_the_capture_has_one(
    target: Target,
) -> None:
    held = await paid_intent(target, 2_000, capture_method="manual")
    charge = await target.client.v1.charges.retrieve_async(held.latest_charge)
    assert charge.balance_transaction is None
    captured = await target.client.v1.payment_intents.capture_async(
        held.id, {"amount_to_capture": 1_500, "expand": BALANCE}
    )
    transaction = captured.latest_charge.balance_transaction
    check_shape(transaction, type="charge", source=captured.latest_charge.id)
    assert transaction.amount == 1_500
    if target.name == "sandbox":
        assert transaction.fee == 44 + 30  # 2.9 % of 1,500 is 43.5, rounded half up


async def test_a_refund_takes_its_amount_out_and_keeps_the_fee(target: Target) -> None:
    intent = await paid_intent(target, 3_000)
    refund = await target.client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 1_000}
    )
    read = await target.client.v1.refunds.retrieve_async(
        refund.id, {"expand": ["balance_transaction"]}
    )
    check_shape(read.balance_transaction, type="refund", source=refund.id)
    assert (read.balance_transaction.amount, read.balance_transaction.fee) == (-1_000, 0)


async def test_a_transfer_takes_its_amount_out_and_a_reversal_brings_it_back(
    target: Target,
) -> None:
    target.sandbox("a transfer needs a connected account on the Stripe account")
    paid = await paid_intent(target, 5_000)
    transfer = await target.client.v1.transfers.create_async(
        {"amount": 2_500, "currency": "usd", "destination": await vendor_account(target),
         "source_transaction": paid.latest_charge, "expand": ["balance_transaction"]}
    )  # fmt: skip
    check_shape(transfer.balance_transaction, type="transfer", source=transfer.id)
    assert (transfer.balance_transaction.amount, transfer.balance_transaction.net) == (
        -2_500,
        -2_500,
    )
    reversal = await target.client.v1.transfers.reversals.create_async(
        transfer.id, {"amount": 1_000, "expand": ["balance_transaction"]}
    )
    check_shape(reversal.balance_transaction, type="transfer_refund", source=reversal.id)
    assert (reversal.balance_transaction.amount, reversal.balance_transaction.net) == (1_000, 1_000)
    assert reversal.balance_transaction.reporting_category == "transfer_reversal"


async def ids(list_call: Any, params: dict[str, Any]) -> list[str]:
    page = await list_call(params)
    return [item.id async for item in page.auto_paging_iter()]


async def test_lists_select_by_created_and_page_newest_first(target: Target) -> None:
    first = await paid_intent(target, 1_100)
    second = await paid_intent(target, 1_200)
    charges = [
        await target.client.v1.charges.retrieve_async(intent.latest_charge)
        for intent in (first, second)
    ]
    window = {"gte": charges[0].created, "lte": charges[1].created}
    listed = await ids(target.client.v1.charges.list_async, {"created": window, "limit": 1})
    assert listed.index(charges[1].id) < listed.index(charges[0].id)
    assert (
        await ids(
            target.client.v1.charges.list_async, {"created": {"gt": charges[1].created + 3600}}
        )
        == []
    )

    by_source = await target.client.v1.balance_transactions.list_async(
        {"source": charges[0].id, "expand": ["data.source"]}
    )
    assert [t.source.id for t in by_source.data] == [charges[0].id]
    assert by_source.data[0].source.payment_intent == first.id
    transactions = await ids(
        target.client.v1.balance_transactions.list_async, {"created": window, "limit": 1}
    )
    assert {charges[0].balance_transaction, charges[1].balance_transaction} <= set(transactions)


async def test_refunds_and_transfers_are_listed_by_created(target: Target) -> None:
    intent = await paid_intent(target, 4_000)
    refund = await target.client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 400}
    )
    since = {"gte": refund.created}
    assert refund.id in await ids(target.client.v1.refunds.list_async, {"created": since})
    if target.name == "sandbox":
        transfer = await target.client.v1.transfers.create_async(
            {
                "amount": 300,
                "currency": "usd",
                "destination": await vendor_account(target),
                "source_transaction": intent.latest_charge,
            }
        )
        listed = await ids(target.client.v1.transfers.list_async, {"created": since})
        assert transfer.id in listed


async def test_a_field_that_cannot_be_expanded_is_refused_with_its_path(target: Target) -> None:
    intent = await paid_intent(target, 900)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.payment_intents.retrieve_async(
            intent.id, {"expand": ["latest_charge.outcome"]}
        )
    assert raised.value.http_status == 400
    assert "latest_charge.outcome" in str(raised.value.user_message)

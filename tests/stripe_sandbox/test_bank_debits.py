"""Bank debits in the sandbox, through Stripe's API, the hosted page and `/_sandbox/`: a debit
completes the session unpaid and processing, and settles succeeded or failed with Stripe's
events; its money reaches the balance only when it succeeded, net of the debit fee."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from stripe_sandbox.control import (
    TEST_ACH_FAILS,
    TEST_IBAN_PAYS,
    SandboxControlError,
)
from stripe_sandbox.fees import payment_fee
from tests.stripe_contract.harness import RunningSandbox, running_sandbox, session_params

ACH = {"payment_method_types": ["card", "us_bank_account"]}


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox() as running:
        yield running


def _sepa_params(amount: int) -> dict:
    params = session_params(amount, payment_method_types=["sepa_debit"])
    params["line_items"][0]["price_data"]["currency"] = "eur"
    return params


async def _types(sandbox: RunningSandbox, object_id: str) -> list[str]:
    return [event.type for event in sandbox.receiver.about(object_id)]


async def test_the_page_offers_bank_debit_and_paying_by_bank_is_processing(
    sandbox: RunningSandbox,
) -> None:
    client = sandbox.client()
    session = await client.v1.checkout.sessions.create_async(session_params(250_000, **ACH))
    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
        assert 'value="us_bank_account"' in page.text
        assert 'name="cardNumber"' in page.text
        paid = await browser.post(
            session.url, data={"paymentMethod": "us_bank_account", "bankAccount": "000123456789"}
        )
    assert paid.status_code == 303
    stored = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (stored.status, stored.payment_status) == ("complete", "unpaid")
    assert stored.payment_intent
    intent = await client.v1.payment_intents.retrieve_async(
        str(stored.payment_intent), {"expand": ["latest_charge"]}
    )
    assert intent.status == "processing"
    assert intent.latest_charge.payment_method_details.type == "us_bank_account"
    await sandbox.receiver.wait_for(session.id, "checkout.session.completed")
    money = await sandbox.control.money()
    assert not [m for m in money["movements"] if m.get("payment_intent") == intent.id]


async def test_a_debit_that_succeeds_funds_the_balance_net_of_the_debit_fee(
    sandbox: RunningSandbox,
) -> None:
    client = sandbox.client()
    session = await client.v1.checkout.sessions.create_async(session_params(250_000, **ACH))
    paid = await sandbox.control.pay_by_bank(session.id)
    intent_id = paid["payment_intent"]["id"]
    before = (await sandbox.control.money())["pending"].get("usd", 0)

    await sandbox.control.settle_debit(intent_id)
    await sandbox.receiver.wait_for(session.id, "checkout.session.async_payment_succeeded")
    await sandbox.receiver.wait_for(intent_id, "payment_intent.succeeded")
    stored = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (stored.status, stored.payment_status) == ("complete", "paid")
    intent = await client.v1.payment_intents.retrieve_async(
        intent_id, {"expand": ["latest_charge.balance_transaction"]}
    )
    assert (intent.status, intent.amount_received) == ("succeeded", 250_000)
    fee = payment_fee(250_000, "usd", "us_bank_account")
    assert fee == 500  # 0.8 %, capped at USD 5.00
    transaction = intent.latest_charge.balance_transaction
    assert (transaction.fee, transaction.net, transaction.status) == (fee, 250_000 - fee, "pending")
    after = (await sandbox.control.money())["pending"]["usd"]
    assert after - before == 250_000 - fee
    await sandbox.receiver.wait_for(intent.latest_charge.id, "charge.succeeded")
    assert sorted(await _types(sandbox, intent_id)) == [
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.succeeded",
    ]
    assert sorted(await _types(sandbox, intent.latest_charge.id)) == [
        "charge.pending",
        "charge.succeeded",
    ]


async def test_a_debit_that_fails_leaves_no_money_and_says_why(sandbox: RunningSandbox) -> None:
    client = sandbox.client()
    session = await client.v1.checkout.sessions.create_async(session_params(90_000, **ACH))
    paid = await sandbox.control.pay_by_bank(session.id, account=TEST_ACH_FAILS)
    intent_id = paid["payment_intent"]["id"]
    assert paid["outcome"] == "processing"

    await sandbox.control.settle_debit(intent_id)
    await sandbox.receiver.wait_for(session.id, "checkout.session.async_payment_failed")
    await sandbox.receiver.wait_for(intent_id, "payment_intent.payment_failed")
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "account_closed"
    assert "closed" in intent.last_payment_error.message
    stored = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (stored.status, stored.payment_status) == ("complete", "unpaid")
    money = await sandbox.control.money()
    assert not [m for m in money["movements"] if m.get("payment_intent") == intent_id]
    with pytest.raises(SandboxControlError, match="only a processing PaymentIntent settles"):
        await sandbox.control.settle_debit(intent_id, "succeeded")


async def test_a_sepa_debit_settles_when_the_clock_reaches_its_processing_days(
    sandbox: RunningSandbox,
) -> None:
    client = sandbox.client()
    session = await client.v1.checkout.sessions.create_async(_sepa_params(80_000))
    paid = await sandbox.control.pay_by_bank(
        session.id, method="sepa_debit", account=TEST_IBAN_PAYS
    )
    intent_id = paid["payment_intent"]["id"]
    assert intent_id not in (await sandbox.control.advance_clock(4 * 86_400))["settled_debits"]
    assert intent_id in (await sandbox.control.advance_clock(86_400))["settled_debits"]
    await sandbox.receiver.wait_for(session.id, "checkout.session.async_payment_succeeded")
    intent = await client.v1.payment_intents.retrieve_async(
        intent_id, {"expand": ["latest_charge.balance_transaction"]}
    )
    assert intent.status == "succeeded"
    assert intent.latest_charge.balance_transaction.fee == payment_fee(80_000, "eur", "sepa_debit")


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        (
            session_params(5000, payment_method_types=["sepa_debit"]),
            "payment_method_types",
            "invalid for one or more payment method types: sepa_debit",
        ),
        (
            session_params(
                5000,
                payment_method_types=["us_bank_account"],
                payment_intent_data={"capture_method": "manual"},
            ),
            "payment_intent_data[capture_method]",
            "does not support capture_method manual",
        ),
    ],
    ids=["currency", "manual-capture"],
)
async def test_sessions_refuse_bank_debits_that_cannot_collect(
    sandbox: RunningSandbox, params: dict, param: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await sandbox.client().v1.checkout.sessions.create_async(params)
    assert error.value.param == param
    assert message in str(error.value)


async def test_a_session_is_paid_only_by_a_method_it_offers(sandbox: RunningSandbox) -> None:
    card_only = await sandbox.client().v1.checkout.sessions.create_async(session_params(5000))
    with pytest.raises(SandboxControlError, match="does not accept us_bank_account"):
        await sandbox.control.pay_by_bank(card_only.id)
    bank_only = await sandbox.client().v1.checkout.sessions.create_async(
        session_params(5000, payment_method_types=["us_bank_account"])
    )
    with pytest.raises(SandboxControlError, match="does not accept card"):
        await sandbox.control.pay(bank_only.id)
    async with httpx.AsyncClient() as browser:
        page = await browser.get(bank_only.url)
    assert 'name="cardNumber"' not in page.text

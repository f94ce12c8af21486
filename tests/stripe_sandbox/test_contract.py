"""Stripe's API contract, driven only through the `stripe` library.

Every test runs against the offline sandbox, and again against real Stripe test mode when
STRIPE_TEST_API_KEY is set, so anyone with a Stripe account can check the two agree. Parts that
need the sandbox's controls (paying a Checkout Session from code, disputes, the clock) or a
webhook endpoint Stripe can reach are skipped for real Stripe, saying why.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from stripe_sandbox.control import (
    TEST_CARD_DECLINED,
    TEST_CARD_INSUFFICIENT_FUNDS,
    SandboxControlError,
)
from tests.stripe_contract.harness import eventually, session_params
from tests.stripe_contract.targets import Target, key, paid_intent, vendor_account

# --------------------------------------------------------------------------- authentication


async def test_a_key_that_is_not_a_secret_key_is_refused(target: Target) -> None:
    with pytest.raises(stripe.AuthenticationError) as raised:
        await target.other_client("not_a_stripe_key").v1.events.list_async({"limit": 1})
    assert raised.value.http_status == 401
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"


async def test_a_test_key_the_account_did_not_issue_is_refused(target: Target) -> None:
    stranger = target.other_client("sk_test_" + "0" * 99)
    with pytest.raises(stripe.AuthenticationError) as raised:
        await stranger.v1.events.list_async({"limit": 1})
    assert raised.value.http_status == 401
    assert "Invalid API Key provided: sk_test_" in str(raised.value.user_message)
    assert (await target.client.v1.events.list_async({"limit": 1})).object == "list"


async def test_the_sandbox_refuses_live_keys(target: Target) -> None:
    target.sandbox("real Stripe cannot be asked to refuse a live key without having one")
    with pytest.raises(stripe.AuthenticationError) as raised:
        await target.other_client("sk_live_51abcdefghijklmnop").v1.events.list_async({"limit": 1})
    assert "test keys" in str(raised.value.user_message)


async def test_requests_without_authorization_get_stripes_401(target: Target) -> None:
    target.sandbox("checks the raw HTTP answer of the sandbox")
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{target.api_base}/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You did not provide an API key")


# --------------------------------------------------------------------------- checkout sessions


async def test_checkout_session_create_retrieve_and_list(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    created = await sessions.create_async(
        session_params(
            2500,
            customer_email="client@example.com",
            client_reference_id="deal-1:m1",
            metadata={"deal_id": "deal-1", "milestone_key": "m1"},
            payment_intent_data={"metadata": {"deal_id": "deal-1", "milestone_key": "m1"}},
        )
    )
    assert created.id.startswith("cs_test_")
    assert created.object == "checkout.session"
    assert (created.status, created.payment_status, created.livemode) == ("open", "unpaid", False)
    assert (created.amount_total, created.currency, created.mode) == (2500, "usd", "payment")
    assert created.client_reference_id == "deal-1:m1"
    assert created.customer_email == "client@example.com"
    assert created.metadata.to_dict() == {"deal_id": "deal-1", "milestone_key": "m1"}
    assert created.url and created.url.startswith("http")
    assert created.expires_at > created.created

    retrieved = await sessions.retrieve_async(created.id)
    assert (retrieved.id, retrieved.amount_total, retrieved.status) == (created.id, 2500, "open")

    listed = await sessions.list_async({"limit": 5})
    assert listed.object == "list"
    assert created.id in [session.id for session in listed.data]


async def test_expire_endpoint_closes_an_open_session_once(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    session = await sessions.create_async(session_params())
    expired = await sessions.expire_async(session.id)
    assert expired.status == "expired"
    assert expired.url is None
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sessions.expire_async(session.id)
    assert raised.value.http_status == 400
    if target.receiver is not None:
        event = await target.receiver.wait_for(session.id, "checkout.session.expired")
        assert event.data.object.status == "expired"


# --------------------------------------------------------------------------- parameters and errors


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        (session_params(bogus="x"), "bogus", "parameter_unknown"),
        (
            {
                **session_params(),
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 1,
                            "product_data": {"name": "x"},
                            "colour": "red",
                        },
                    }
                ],
            },
            "line_items[0][price_data][colour]",
            "parameter_unknown",
        ),
        (
            {
                **session_params(),
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": "ten",
                            "product_data": {"name": "x"},
                        },
                    }
                ],
            },
            "line_items[0][price_data][unit_amount]",
            "parameter_invalid_integer",
        ),
        (
            {
                **session_params(),
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"unit_amount": 500, "product_data": {"name": "x"}},
                    }
                ],
            },
            "line_items[0][price_data][currency]",
            "parameter_missing",
        ),
    ],
    ids=["unknown", "unknown-nested", "malformed-integer", "missing-nested"],
)
async def test_bad_parameters_are_invalid_requests_naming_the_param(
    target: Target, params: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.checkout.sessions.create_async(params)
    assert raised.value.http_status == 400
    assert raised.value.param == param
    assert raised.value.code == code
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"


async def test_unknown_objects_are_404_resource_missing(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.checkout.sessions.retrieve_async("cs_test_doesnotexist")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.payment_intents.retrieve_async("pi_doesnotexist")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    for resource, object_id in (
        (target.client.v1.charges, "ch_doesnotexist"),
        (target.client.v1.refunds, "re_doesnotexist"),
        (target.client.v1.disputes, "dp_doesnotexist"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await resource.retrieve_async(object_id)
        assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


async def test_unrecognized_urls_are_404_invalid_requests(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.raw_request_async("get", "/v1/no_such_things")
    assert raised.value.http_status == 404
    assert "Unrecognized request URL" in str(raised.value.user_message)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("mode=payment&line_items[0[quantity]=1", "line_items[0[quantity]"),
        ("mode=payment&metadata=x&metadata[deal]=y", "metadata"),
        ("mode=payment&line_items=1", "line_items"),
    ],
    ids=["unbalanced-brackets", "value-and-hash", "array-expected"],
)
async def test_malformed_form_bodies_name_the_param(target: Target, body: str, param: str) -> None:
    target.sandbox("sends hand-made form bodies the stripe library would never produce")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{target.api_base}/v1/checkout/sessions",
            content=body,
            headers={
                "Authorization": f"Bearer {target.api_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


# --------------------------------------------------------------------------- idempotency


async def test_same_idempotency_key_and_params_replay_the_first_response(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    idempotency_key = key()
    first = await sessions.create_async(session_params(1200), {"idempotency_key": idempotency_key})
    again = await sessions.create_async(session_params(1200), {"idempotency_key": idempotency_key})
    assert again.id == first.id
    assert again.last_response.headers.get("idempotent-replayed") == "true"


async def test_same_idempotency_key_with_other_params_is_an_idempotency_error(
    target: Target,
) -> None:
    sessions = target.client.v1.checkout.sessions
    idempotency_key = key()
    await sessions.create_async(session_params(1200), {"idempotency_key": idempotency_key})
    with pytest.raises(stripe.IdempotencyError) as raised:
        await sessions.create_async(session_params(1300), {"idempotency_key": idempotency_key})
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


async def test_errors_are_replayed_for_the_same_idempotency_key(target: Target) -> None:
    params = {
        "amount": 700,
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclined",
        "payment_method_types": ["card"],
        "confirm": True,
    }
    idempotency_key = key()
    with pytest.raises(stripe.CardError) as first:
        await target.client.v1.payment_intents.create_async(
            params, {"idempotency_key": idempotency_key}
        )
    with pytest.raises(stripe.CardError) as second:
        await target.client.v1.payment_intents.create_async(
            params, {"idempotency_key": idempotency_key}
        )
    first_intent = first.value.json_body["error"]["payment_intent"]["id"]
    assert second.value.json_body["error"]["payment_intent"]["id"] == first_intent
    assert second.value.headers.get("idempotent-replayed") == "true"


# --------------------------------------------------------------------------- card outcomes


async def test_a_good_card_pays(target: Target) -> None:
    intent = await paid_intent(target, 1500)
    assert intent.id.startswith("pi_")
    assert (intent.status, intent.amount_received, intent.livemode) == ("succeeded", 1500, False)
    assert intent.latest_charge.startswith("ch_")


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
async def test_declined_cards_are_card_errors(
    target: Target, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as raised:
        await paid_intent(target, 900, payment_method=payment_method)
    error = raised.value
    assert (error.http_status, error.code) == (402, "card_declined")
    body = error.json_body["error"]
    assert (body["type"], body["decline_code"]) == ("card_error", decline_code)
    assert body["payment_intent"]["status"] == "requires_payment_method"


# --------------------------------------------------------------------------- capture and cancel


async def test_manual_capture_holds_until_captured(target: Target) -> None:
    intents = target.client.v1.payment_intents
    held = await paid_intent(target, 1000, capture_method="manual")
    assert (held.status, held.amount_capturable, held.amount_received) == (
        "requires_capture",
        1000,
        0,
    )
    captured = await intents.capture_async(held.id, {"amount_to_capture": 600})
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        600,
        0,
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await intents.capture_async(held.id)
    assert raised.value.code == "payment_intent_unexpected_state"


async def test_cancel_voids_an_authorization_once(target: Target) -> None:
    intents = target.client.v1.payment_intents
    held = await paid_intent(target, 1000, capture_method="manual")
    canceled = await intents.cancel_async(held.id, {"cancellation_reason": "requested_by_customer"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await intents.cancel_async(held.id)
    assert raised.value.code == "payment_intent_unexpected_state"
    stated = raised.value.json_body["error"]["payment_intent"]
    assert (stated["id"], stated["status"]) == (held.id, "canceled")
    if target.receiver is not None:
        await target.receiver.wait_for(held.id, "payment_intent.canceled")


# --------------------------------------------------------------------------- refunds


async def test_partial_then_full_refund(target: Target) -> None:
    refunds = target.client.v1.refunds
    intent = await paid_intent(target, 1000)
    partial = await refunds.create_async(
        {"payment_intent": intent.id, "amount": 300, "reason": "requested_by_customer"}
    )
    assert partial.id.startswith("re_")
    assert (partial.amount, partial.status, partial.payment_intent) == (300, "succeeded", intent.id)
    rest = await refunds.create_async({"payment_intent": intent.id})
    assert rest.amount == 700
    assert (await refunds.retrieve_async(partial.id)).amount == 300
    listed = await refunds.list_async({"payment_intent": intent.id})
    assert {refund.id for refund in listed.data} == {partial.id, rest.id}
    charge = await target.client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await refunds.create_async({"payment_intent": intent.id})
    assert raised.value.code == "charge_already_refunded"
    if target.receiver is not None:
        receiver = target.receiver
        await receiver.wait_for(partial.id, "refund.created")
        await receiver.wait_for(rest.id, "refund.created")
        refunded = await eventually(
            lambda: (
                [e for e in receiver.about(charge.id) if e.type == "charge.refunded"][1:]
                and [
                    e.data.object.amount_refunded
                    for e in receiver.about(charge.id)
                    if e.type == "charge.refunded"
                ]
            ),
            what="two charge.refunded events",
        )
        assert refunded == [300, 1000]


async def test_a_charge_carries_its_payment_intents_metadata(target: Target) -> None:
    metadata = {"deal_id": "deal-charge", "milestone_key": "m1"}
    intent = await paid_intent(target, 1800, metadata=metadata)
    charge = await target.client.v1.charges.retrieve_async(intent.latest_charge)
    assert charge.id.startswith("ch_")
    assert (charge.object, charge.payment_intent, charge.livemode) == ("charge", intent.id, False)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.currency) == (
        1800,
        1800,
        0,
        "usd",
    )
    assert (charge.captured, charge.refunded, charge.disputed, charge.status) == (
        True,
        False,
        False,
        "succeeded",
    )
    assert charge.metadata.to_dict() == metadata
    expanded = await target.client.v1.charges.retrieve_async(
        charge.id, {"expand": ["payment_intent"]}
    )
    assert expanded.payment_intent.id == intent.id


async def test_a_refund_reads_back_with_its_charge_and_no_livemode(target: Target) -> None:
    intent = await paid_intent(target, 1000)
    created = await target.client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 400, "metadata": {"purpose": "duplicate"}}
    )
    refund = await target.client.v1.refunds.retrieve_async(created.id)
    assert (refund.object, refund.amount, refund.currency, refund.status) == (
        "refund",
        400,
        "usd",
        "succeeded",
    )
    assert (refund.charge, refund.payment_intent) == (intent.latest_charge, intent.id)
    assert refund.metadata.to_dict() == {"purpose": "duplicate"}
    # Stripe's refund object has no livemode: the key's mode says which money moved.
    assert "livemode" not in refund
    expanded = await target.client.v1.refunds.retrieve_async(created.id, {"expand": ["charge"]})
    assert expanded.charge.amount_refunded == 400


async def test_refund_webhooks_name_objects_that_read_back(target: Target) -> None:
    _, receiver = target.sandbox("webhooks need an endpoint Stripe can reach")
    intent = await paid_intent(target, 1500)
    refund = await target.client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 500}
    )
    created = await receiver.wait_for(refund.id, "refund.created")
    refunded = await receiver.wait_for(intent.latest_charge, "charge.refunded")
    again = await target.client.v1.refunds.retrieve_async(created.data.object.id)
    charge = await target.client.v1.charges.retrieve_async(refunded.data.object.id)
    assert (again.amount, again.charge) == (500, charge.id)
    assert (charge.amount_refunded, charge.refunded, charge.payment_intent) == (
        500,
        False,
        intent.id,
    )


async def test_dispute_webhooks_name_disputes_that_read_back(target: Target) -> None:
    control, receiver = target.sandbox("disputes are opened through the sandbox's controls")
    intent = await paid_intent(target, 3100, metadata={"deal_id": "deal-dispute"})
    opened = await control.open_dispute(payment_intent=intent.id, reason="fraudulent")
    event = await receiver.wait_for(opened["id"], "charge.dispute.created")
    dispute = await target.client.v1.disputes.retrieve_async(event.data.object.id)
    assert dispute.id.startswith("dp_")
    assert (dispute.object, dispute.livemode, dispute.status, dispute.reason) == (
        "dispute",
        False,
        "needs_response",
        "fraudulent",
    )
    assert (dispute.amount, dispute.currency) == (3100, "usd")
    assert (dispute.charge, dispute.payment_intent) == (intent.latest_charge, intent.id)
    assert dispute.evidence_details.due_by > dispute.created
    assert dispute.evidence_details.has_evidence is False
    charge = await target.client.v1.charges.retrieve_async(dispute.charge)
    assert (charge.disputed, charge.metadata.to_dict()) == (True, {"deal_id": "deal-dispute"})
    expanded = await target.client.v1.disputes.retrieve_async(
        dispute.id, {"expand": ["charge", "payment_intent"]}
    )
    assert (expanded.charge.id, expanded.payment_intent.id) == (charge.id, intent.id)

    await control.close_dispute(dispute.id, "lost")
    closed = await receiver.wait_for(dispute.id, "charge.dispute.closed")
    assert (await target.client.v1.disputes.retrieve_async(closed.data.object.id)).status == "lost"


async def test_refunding_more_than_was_paid_is_refused(target: Target) -> None:
    intent = await paid_intent(target, 1000)
    with pytest.raises(stripe.InvalidRequestError):
        await target.client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1001})


# --------------------------------------------------------------------------- events


async def test_events_are_listed_and_retrieved(target: Target) -> None:
    intent = await paid_intent(target, 1100)

    async def listed() -> stripe.Event | None:
        page = await target.client.v1.events.list_async(
            {"type": "payment_intent.succeeded", "limit": 20}
        )
        return next((event for event in page.data if event.data.object.id == intent.id), None)

    event = await eventually(listed, timeout=30, what="payment_intent.succeeded in /v1/events")
    assert event.id.startswith("evt_")
    assert (event.object, event.livemode) == ("event", False)
    assert event.api_version
    retrieved = await target.client.v1.events.retrieve_async(event.id)
    assert (retrieved.id, retrieved.type, retrieved.data.object.amount) == (
        event.id,
        "payment_intent.succeeded",
        1100,
    )


# --------------------------------------------------------------------------- transfers


async def test_transfers_to_a_connected_account(target: Target) -> None:
    control, _ = target.sandbox(
        "a transfer needs a connected account and available balance on the Stripe account"
    )
    intent = await paid_intent(target, 5000)
    assert isinstance(intent.latest_charge, str)
    vendor = await vendor_account(target)
    transfer = await target.client.v1.transfers.create_async(
        {
            "amount": 4000,
            "currency": "usd",
            "destination": vendor,
            "transfer_group": "deal-7:m1",
            "source_transaction": intent.latest_charge,
        }
    )
    assert transfer.id.startswith("tr_")
    assert (transfer.amount, transfer.destination, transfer.transfer_group) == (
        4000,
        vendor,
        "deal-7:m1",
    )
    assert transfer.source_transaction == intent.latest_charge
    grouped = {"transfer_group": "deal-7:m1", "destination": vendor}
    assert [t.id for t in (await target.client.v1.transfers.list_async(grouped)).data] == [transfer.id]
    money = await control.money()
    assert {"kind": "transfer", "object_id": transfer.id, "amount": 4000} in [
        {field: entry[field] for field in ("kind", "object_id", "amount")}
        for entry in money["movements"]
    ]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.transfers.create_async(
            {"amount": 100, "currency": "usd", "destination": "bob"}
        )
    assert (raised.value.code, raised.value.param) == ("resource_missing", "destination")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.transfers.create_async(
            {"amount": 100, "currency": "usd", "destination": "acct_1NobodyOnboardedThis"}
        )
    assert (raised.value.code, raised.value.param) == ("resource_missing", "destination")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.transfers.create_async(
            {
                "amount": 1001,
                "currency": "usd",
                "destination": vendor,
                "source_transaction": intent.latest_charge,
            }
        )
    assert (raised.value.code, raised.value.param) == ("balance_insufficient", "amount")


async def test_card_money_is_pending_for_two_days_before_a_plain_transfer(target: Target) -> None:
    control, _ = target.sandbox("the sandbox's clock moves the pending balance")
    await paid_intent(target, 5000)
    plain = {"amount": 3000, "currency": "usd", "destination": await vendor_account(target)}
    before = await control.money()
    assert before["pending"]["usd"] >= 5000
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.transfers.create_async(plain)
    assert raised.value.code == "balance_insufficient"
    assert "still pending" in str(raised.value)
    await control.advance_clock(2 * 86_400)
    after = await control.money()
    assert after["pending"]["usd"] == 0
    assert after["available"]["usd"] == before["available"]["usd"] + before["pending"]["usd"]
    await target.client.v1.transfers.create_async(plain)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.transfers.create_async(
            {**plain, "amount": after["available"]["usd"] - 3000 + 1}
        )
    assert raised.value.code == "balance_insufficient"


# --------------------------------------------------------------------------- hosted checkout (sandbox)


@pytest.mark.parametrize(
    ("card", "decline_code"),
    [(TEST_CARD_DECLINED, "generic_decline"), (TEST_CARD_INSUFFICIENT_FUNDS, "insufficient_funds")],
)
async def test_a_declined_card_leaves_the_session_open(
    target: Target, card: str, decline_code: str
) -> None:
    control, receiver = target.sandbox(
        "paying a Checkout Session needs Stripe's hosted page in a browser"
    )
    session = await target.client.v1.checkout.sessions.create_async(session_params(3000))
    declined = await control.pay(session.id, card)
    assert declined["outcome"] == "declined"
    assert declined["error"]["decline_code"] == decline_code
    intent_id = declined["payment_intent"]["id"]
    failed = await receiver.wait_for(intent_id, "payment_intent.payment_failed")
    assert failed.data.object.last_payment_error.decline_code == decline_code
    still_open = await target.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (still_open.status, still_open.payment_status) == ("open", "unpaid")

    paid = await control.pay(session.id, "4242 4242 4242 4242")
    assert paid["outcome"] == "paid"
    assert paid["payment_intent"]["id"] == intent_id
    completed = await receiver.wait_for(session.id, "checkout.session.completed")
    assert (completed.data.object.payment_status, completed.data.object.payment_intent) == (
        "paid",
        intent_id,
    )


async def test_a_paid_session_carries_metadata_to_its_payment_intent_and_webhooks(
    target: Target,
) -> None:
    control, receiver = target.sandbox(
        "paying a Checkout Session needs Stripe's hosted page in a browser"
    )
    metadata = {"deal_id": "deal-9", "milestone_key": "m2"}
    session = await target.client.v1.checkout.sessions.create_async(
        session_params(
            4200,
            metadata=metadata,
            client_reference_id="deal-9:m2",
            payment_intent_data={"metadata": metadata},
        )
    )
    await control.pay(session.id)
    completed = await receiver.wait_for(session.id, "checkout.session.completed")
    assert completed.data.object.metadata.to_dict() == metadata
    assert completed.data.object.client_reference_id == "deal-9:m2"
    intent = await target.client.v1.payment_intents.retrieve_async(
        completed.data.object.payment_intent
    )
    assert (intent.status, intent.amount_received, intent.metadata.to_dict()) == (
        "succeeded",
        4200,
        metadata,
    )
    succeeded = await receiver.wait_for(intent.id, "payment_intent.succeeded")
    assert succeeded.data.object.metadata.to_dict() == metadata


async def test_manual_capture_checkout_session(target: Target) -> None:
    control, receiver = target.sandbox(
        "paying a Checkout Session needs Stripe's hosted page in a browser"
    )
    session = await target.client.v1.checkout.sessions.create_async(
        session_params(8000, payment_intent_data={"capture_method": "manual"})
    )
    outcome = await control.pay(session.id)
    assert outcome["outcome"] == "authorized"
    completed = await receiver.wait_for(session.id, "checkout.session.completed")
    # Stripe reports a held (uncaptured) payment as complete but not yet paid.
    assert (completed.data.object.status, completed.data.object.payment_status) == (
        "complete",
        "unpaid",
    )
    intent_id = completed.data.object.payment_intent
    updated = await receiver.wait_for(intent_id, "payment_intent.amount_capturable_updated")
    assert (updated.data.object.status, updated.data.object.amount_capturable) == (
        "requires_capture",
        8000,
    )
    captured = await target.client.v1.payment_intents.capture_async(intent_id)
    assert (captured.status, captured.amount_received) == ("succeeded", 8000)
    await receiver.wait_for(intent_id, "payment_intent.succeeded")


async def test_sessions_expire_when_the_clock_passes_expires_at(target: Target) -> None:
    control, receiver = target.sandbox("moving the clock is a sandbox control")
    now = await control.now()
    session = await target.client.v1.checkout.sessions.create_async(
        session_params(expires_at=now + 31 * 60)
    )
    assert session.id not in (await control.advance_clock(30 * 60))["expired_sessions"]
    advanced = await control.advance_clock(2 * 60)
    assert session.id in advanced["expired_sessions"]
    assert (await target.client.v1.checkout.sessions.retrieve_async(session.id)).status == "expired"
    await receiver.wait_for(session.id, "checkout.session.expired")
    with pytest.raises(SandboxControlError, match="expired and can no longer be paid"):
        await control.pay(session.id)


async def test_expires_at_must_be_between_30_minutes_and_24_hours(target: Target) -> None:
    control, _ = target.sandbox("the boundary is checked against the sandbox clock")
    now = await control.now()
    for expires_at in (now + 29 * 60, now + 25 * 3600):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await target.client.v1.checkout.sessions.create_async(
                session_params(expires_at=expires_at)
            )
        assert raised.value.param == "expires_at"


async def test_authorizations_lapse_after_seven_days(target: Target) -> None:
    control, receiver = target.sandbox("moving the clock is a sandbox control")
    held = await paid_intent(target, 2000, capture_method="manual")
    lapsed = await control.advance_clock(7 * 86400 + 1)
    assert held.id in lapsed["lapsed_authorizations"]
    canceled = await receiver.wait_for(held.id, "payment_intent.canceled")
    assert (canceled.data.object.status, canceled.data.object.cancellation_reason) == (
        "canceled",
        "automatic",
    )
    with pytest.raises(stripe.InvalidRequestError):
        await target.client.v1.payment_intents.capture_async(held.id)


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_disputes_open_and_close(target: Target, outcome: str) -> None:
    control, receiver = target.sandbox("disputes are opened through the sandbox's controls")
    intent = await paid_intent(target, 2500)
    dispute = await control.open_dispute(payment_intent=intent.id, reason="product_not_received")
    assert dispute["id"].startswith("dp_")
    created = await receiver.wait_for(dispute["id"], "charge.dispute.created")
    assert (created.data.object.amount, created.data.object.charge) == (2500, intent.latest_charge)
    assert created.data.object.status == "needs_response"
    closed = await control.close_dispute(dispute["id"], outcome)
    assert closed["status"] == outcome
    event = await receiver.wait_for(dispute["id"], "charge.dispute.closed")
    assert event.data.object.status == outcome
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.refunds.create_async({"payment_intent": intent.id})
    assert raised.value.code == "charge_disputed"


async def test_the_money_log_records_every_movement_cent_for_cent(target: Target) -> None:
    control, _ = target.sandbox("the money log is the sandbox's own record")
    before = len((await control.money())["movements"])
    held = await paid_intent(target, 1000, capture_method="manual")
    await target.client.v1.payment_intents.capture_async(held.id, {"amount_to_capture": 900})
    paid = await paid_intent(target, 500)
    refund = await target.client.v1.refunds.create_async({"payment_intent": paid.id, "amount": 200})
    movements = (await control.money())["movements"][before:]
    # Stripe's card fee (2.9 % + 30 cents, rounded half up) leaves with each capture.
    assert [(m["kind"], m["amount"]) for m in movements] == [
        ("authorization", 1000),
        ("capture", 900),
        ("stripe_fee", 26 + 30),
        ("authorization_released", 100),
        ("charge", 500),
        ("stripe_fee", 15 + 30),
        ("refund", 200),
    ]
    assert movements[-1]["object_id"] == refund.id
    assert movements[0]["payment_intent"] == held.id


async def test_a_transfer_is_reversed_while_the_connected_account_holds_it(target: Target) -> None:
    control, _ = target.sandbox("connected account balances are the sandbox's")
    intent = await paid_intent(target, 5000)
    vendor = (await control.create_account("acct_1Reversal"))["id"]
    transfer = await target.client.v1.transfers.create_async(
        {
            "amount": 4000,
            "currency": "usd",
            "destination": vendor,
            "source_transaction": intent.latest_charge,
        }
    )
    reversals = target.client.v1.transfers.reversals
    reversal = await reversals.create_async(
        transfer.id, {"amount": 1500, "metadata": {"purpose": "refund"}}
    )
    assert reversal.id.startswith("trr_")
    assert (reversal.amount, reversal.transfer, reversal.currency) == (1500, transfer.id, "usd")
    reread = await target.client.v1.transfers.retrieve_async(transfer.id)
    assert (reread.amount_reversed, reread.reversed) == (1500, False)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await reversals.create_async(transfer.id, {"amount": 2501})
    assert raised.value.param == "amount"
    assert await control.pay_out_account("acct_1Reversal", 2000) == 500
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await reversals.create_async(transfer.id, {"amount": 600})
    assert raised.value.code == "balance_insufficient"
    assert "acct_1Reversal" in str(raised.value)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await reversals.create_async(transfer.id)  # all that is left of the transfer: 2,500
    assert raised.value.code == "balance_insufficient"
    last = await reversals.create_async(transfer.id, {"amount": 500})
    assert last.amount == 500
    listed = await reversals.list_async(transfer.id)
    assert [(r.id, r.metadata.to_dict()) for r in listed.data] == [
        (last.id, {}),
        (reversal.id, {"purpose": "refund"}),
    ]
    money = await control.money()
    assert money["accounts"]["acct_1Reversal:usd"] == 0
    assert (await control.create_account("acct_1Reversal"))["id"] == vendor
    with pytest.raises(SandboxControlError) as unknown:
        await control.pay_out_account("acct_1NeverRegistered", 100)
    assert unknown.value.status_code == 404
    assert [e["kind"] for e in money["movements"]][-3:] == [
        "transfer_reversal",
        "account_payout",
        "transfer_reversal",
    ]

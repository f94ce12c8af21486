"""`activities/payments.py` against the Stripe sandbox, run as Temporal runs it (ActivityEnvironment,
with the workflow id and attempt number a retry would have)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.checkout import CLIENT_METADATA
from activities.payments import PaymentActivities
from activities.stripe_client import idempotency_key
from activities.stripe_errors import (
    CARD_DECLINED,
    STRIPE_AUTHENTICATION,
    STRIPE_IDEMPOTENCY_CONFLICT,
    STRIPE_INVALID_REQUEST,
    STRIPE_NOT_CONFIGURED,
    STRIPE_RATE_LIMITED,
    STRIPE_UNAVAILABLE,
    classify,
)
from dealflow.links import PortalLinks, verify_token
from dealflow.messages import (
    CaptureMethod,
    ChargeState,
    CreateCheckoutInput,
    DisputeState,
    ExpireCheckoutInput,
    PaymentIntentAction,
    RefundInput,
    RefundState,
    ReverseTransferInput,
    TransferInput,
)
from dealflow.serve import free_port, serve_app
from tests.stripe_contract.harness import RunningSandbox, running_sandbox

#: The key the tests' sandbox issues (and the only one it accepts).
SANDBOX_KEY = "sk_test_payments_activities"
SECRET_KEY = "portal-link-signing-key-for-tests"
PORTAL = "http://portal.test"


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(api_key=SANDBOX_KEY) as running:
        yield running


def payments(
    api_base: str | None, *, api_key: str | None = SANDBOX_KEY, retries: int = 0
) -> PaymentActivities:
    return PaymentActivities(
        api_key=api_key,
        api_base=api_base,
        links=PortalLinks(PORTAL, SECRET_KEY, days=30),
        max_network_retries=retries,
    )


def attempt(workflow_id: str, number: int = 1) -> ActivityEnvironment:
    """The environment of activity attempt `number` inside workflow `workflow_id`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(), workflow_id=workflow_id, attempt=number
    )
    return env


async def checkout(
    sandbox: RunningSandbox,
    deal_id: str,
    *,
    generation: int = 1,
    amount: int = 50_000,
    capture: CaptureMethod = CaptureMethod.AUTOMATIC,
    client_email: str = "client@example.com",
) -> CreateCheckoutInput:
    now = datetime.fromtimestamp(await sandbox.control.now(), UTC)
    return CreateCheckoutInput(
        deal_id=deal_id,
        milestone_key="m1",
        generation=generation,
        title="Milestone 1: discovery",
        amount=amount,
        currency="usd",
        client_email=client_email,
        capture_method=capture,
        expires_at=now + timedelta(hours=2),
    )


async def expect_error(call: Any, error_type: str, *, retryable: bool) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await call
    assert raised.value.type == error_type
    assert raised.value.non_retryable is (not retryable)
    return raised.value


# --------------------------------------------------------------------------- checkout sessions


async def test_checkout_session_carries_the_deal_on_session_and_payment_intent(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "deal-shape")
    session = await attempt("deal-deal-shape").run(activities.create_checkout_session, input)
    assert session.session_id.startswith("cs_test_")
    assert session.url.startswith(f"{sandbox.url}/c/pay/")
    assert session.expires_at == input.expires_at.replace(microsecond=0)
    assert session.livemode is False

    stored = await sandbox.client().v1.checkout.sessions.retrieve_async(session.session_id)
    metadata = {"deal_id": "deal-shape", "milestone_key": "m1", "generation": "1"}
    assert stored.metadata.to_dict() == metadata
    assert stored.client_reference_id == "deal-shape:m1"
    assert (stored.amount_total, stored.currency, stored.customer_email) == (50_000, "usd", None)
    customer = await sandbox.client().v1.customers.retrieve_async(stored.customer)
    assert customer.email == "client@example.com"
    for url, query in (
        (stored.success_url, {"paid": ["1"]}),
        (stored.cancel_url, {"checkout": ["cancelled"]}),
    ):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PORTAL}/portal/deal-shape"
        params = parse_qs(parts.query)
        verify_token(SECRET_KEY, "deal-shape", params.pop("token")[0])
        assert params == query

    outcome = await sandbox.control.pay(session.session_id)
    intent = await attempt("deal-deal-shape").run(
        activities.retrieve_payment_intent, outcome["payment_intent"]["id"]
    )
    assert (intent.status, intent.amount_received, intent.metadata) == (
        "succeeded",
        50_000,
        metadata,
    )
    assert outcome["payment_intent"]["transfer_group"] == "deal-shape:m1"
    assert outcome["payment_intent"]["customer"] == outcome["charge"]["customer"] == customer.id
    assert outcome["session"]["customer_details"]["email"] == "client@example.com"
    state = await attempt("deal-deal-shape").run(
        activities.retrieve_checkout_session, session.session_id
    )
    assert (state.status, state.payment_status, state.payment_intent_id) == (
        "complete",
        "paid",
        intent.payment_intent_id,
    )
    assert (state.amount_total, state.currency, state.metadata) == (50_000, "usd", metadata)


async def test_a_retried_create_returns_the_same_session(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "deal-retry")
    first = await attempt("deal-deal-retry", 1).run(activities.create_checkout_session, input)
    retried = await attempt("deal-deal-retry", 2).run(activities.create_checkout_session, input)
    assert retried == first
    replacement = await attempt("deal-deal-retry", 1).run(
        activities.create_checkout_session, input.model_copy(update={"generation": 2})
    )
    assert replacement.session_id != first.session_id
    listed = await sandbox.client().v1.checkout.sessions.list_async({"limit": 100})
    mine = [s.id for s in listed.data if s.client_reference_id == "deal-retry:m1"]
    assert sorted(mine) == sorted([first.session_id, replacement.session_id])


async def test_idempotency_keys_name_workflow_milestone_action_and_generation() -> None:
    assert idempotency_key("deal-a", "m1", "checkout", "g2") == "dealflow:deal-a:m1:checkout:g2"
    long_key = idempotency_key("deal-" + "x" * 300, "m1", "checkout", "g1")
    assert len(long_key) <= 255
    assert long_key == idempotency_key("deal-" + "x" * 300, "m1", "checkout", "g1")


async def test_the_same_key_for_other_parameters_is_an_idempotency_conflict(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "deal-conflict")
    await attempt("deal-deal-conflict").run(activities.create_checkout_session, input)
    changed = input.model_copy(update={"amount": 1})
    await expect_error(
        attempt("deal-deal-conflict", 2).run(activities.create_checkout_session, changed),
        STRIPE_IDEMPOTENCY_CONFLICT,
        retryable=False,
    )


async def test_expiring_a_superseded_session_is_idempotent(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    old = await attempt("deal-deal-expire").run(
        activities.create_checkout_session, await checkout(sandbox, "deal-expire")
    )
    expire = ExpireCheckoutInput(
        deal_id="deal-expire", milestone_key="m1", session_id=old.session_id
    )
    first = await attempt("deal-deal-expire").run(activities.expire_checkout_session, expire)
    assert (first.status, first.payment_status) == ("expired", "unpaid")
    again = await attempt("deal-deal-expire", 2).run(activities.expire_checkout_session, expire)
    assert again == first
    expired_events = await sandbox.client().v1.events.list_async(
        {"type": "checkout.session.expired", "limit": 100}
    )
    assert [e.data.object.id for e in expired_events.data].count(old.session_id) == 1


async def test_expiring_a_session_that_was_paid_meanwhile_reports_it_complete(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "deal-raced")
    session = await attempt("deal-deal-raced").run(activities.create_checkout_session, input)
    await sandbox.control.pay(session.session_id)
    state = await attempt("deal-deal-raced").run(
        activities.expire_checkout_session,
        ExpireCheckoutInput(
            deal_id="deal-raced", milestone_key="m1", session_id=session.session_id
        ),
    )
    assert (state.status, state.payment_status) == ("complete", "paid")


# --------------------------------------------------------------------------- the client's customer


async def session_customer(sandbox: RunningSandbox, session_id: str) -> str:
    session = await sandbox.client().v1.checkout.sessions.retrieve_async(session_id)
    assert session.customer is not None and session.customer_email is None
    return session.customer


async def client_customers(sandbox: RunningSandbox, email: str) -> list[str]:
    listed = await sandbox.client().v1.customers.list_async({"email": email, "limit": 100})
    return [customer.id for customer in listed.data]


async def test_every_session_of_a_client_names_one_customer(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    stranger = await sandbox.client().v1.customers.create_async({"email": "ana@example.com"})
    first = await attempt("deal-deal-ana-1").run(
        activities.create_checkout_session,
        await checkout(sandbox, "ana-1", client_email="ana@example.com"),
    )
    customer_id = await session_customer(sandbox, first.session_id)
    assert customer_id != stranger.id, "a Customer dealflow did not make is not the client's"
    customer = await sandbox.client().v1.customers.retrieve_async(customer_id)
    assert (customer.email, customer.metadata.to_dict()) == (
        "ana@example.com",
        {CLIENT_METADATA: "ana@example.com"},
    )

    later_milestone = await attempt("deal-deal-ana-1").run(
        activities.create_checkout_session,
        await checkout(sandbox, "ana-1", client_email="ana@example.com", generation=2),
    )
    other_deal = await attempt("deal-deal-ana-2").run(
        activities.create_checkout_session,
        await checkout(sandbox, "ana-2", client_email="  Ana@Example.COM "),
    )
    for session in (later_milestone, other_deal):
        assert await session_customer(sandbox, session.session_id) == customer_id
    assert await client_customers(sandbox, "ana@example.com") == [customer_id, stranger.id]

    other_client = await attempt("deal-deal-bo").run(
        activities.create_checkout_session,
        await checkout(sandbox, "bo", client_email="bo@example.com"),
    )
    bo = await session_customer(sandbox, other_client.session_id)
    assert bo != customer_id
    assert await client_customers(sandbox, "bo@example.com") == [bo]


async def test_deals_of_a_new_client_created_at_once_settle_on_one_customer(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    inputs = [
        await checkout(sandbox, f"cy-{number}", client_email="cy@example.com")
        for number in range(5)
    ]
    sessions = await asyncio.gather(
        *(
            attempt(f"deal-{input.deal_id}").run(activities.create_checkout_session, input)
            for input in inputs
        )
    )
    named = {await session_customer(sandbox, session.session_id) for session in sessions}
    assert len(named) == 1
    assert await client_customers(sandbox, "cy@example.com") == list(named)
    events = await sandbox.client().v1.events.list_async({"type": "customer.*", "limit": 100})
    mine = [e for e in events.data if e.data.object.email == "cy@example.com"]
    created = [e for e in mine if e.type == "customer.created"]
    deleted = [e for e in mine if e.type == "customer.deleted"]
    assert len(created) - len(deleted) == 1


async def test_a_retried_session_reuses_the_customer_its_first_attempt_made(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "dee", client_email="dee@example.com")
    first = await attempt("deal-deal-dee", 1).run(activities.create_checkout_session, input)
    retried = await attempt("deal-deal-dee", 2).run(activities.create_checkout_session, input)
    assert retried == first
    assert await client_customers(sandbox, "dee@example.com") == [
        await session_customer(sandbox, first.session_id)
    ]


def payout(deal_id: str, account: str, amount: int, charge: str | None) -> TransferInput:
    """Milestone m1's transfer to `account`, from `charge`."""
    return TransferInput(
        deal_id=deal_id,
        milestone_key="m1",
        destination_account=account,
        amount=amount,
        currency="usd",
        source_transaction=charge,
    )


def clawback(deal_id: str, transfer_id: str, amount: int) -> ReverseTransferInput:
    """Part of m1's transfer taken back after a refund of the released milestone."""
    return ReverseTransferInput(
        deal_id=deal_id,
        milestone_key="m1",
        transfer_id=transfer_id,
        amount=amount,
        purpose="re_after_release",
    )


# --------------------------------------------------------------------------- money


async def test_a_double_payment_is_refunded_once(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-double")
    first = await workflow.run(
        activities.create_checkout_session, await checkout(sandbox, "deal-double", amount=7000)
    )
    second = await workflow.run(
        activities.create_checkout_session,
        await checkout(sandbox, "deal-double", amount=7000, generation=2),
    )
    paid_first = await sandbox.control.pay(first.session_id)
    paid_second = await sandbox.control.pay(second.session_id)
    extra_intent = paid_second["payment_intent"]["id"]
    refund = RefundInput(
        deal_id="deal-double",
        milestone_key="m1",
        payment_intent_id=extra_intent,
        reason="duplicate",
        purpose="duplicate",
    )
    result = await workflow.run(activities.refund_payment, refund)
    assert result.refund_id.startswith("re_")
    assert (result.amount, result.currency, result.status, result.livemode) == (
        7000,
        "usd",
        "succeeded",
        False,
    )
    retried = await attempt("deal-deal-double", 2).run(activities.refund_payment, refund)
    assert retried == result

    movements = (await sandbox.control.money())["movements"]
    mine = [
        (m["kind"], m["amount"], m["payment_intent"])
        for m in movements
        if m["metadata"].get("deal_id") == "deal-double"
    ]
    # Stripe keeps its fee (2.9 % + 30 cents) of the charge it refunded.
    assert mine == [
        ("charge", 7000, paid_first["payment_intent"]["id"]),
        ("stripe_fee", 233, paid_first["payment_intent"]["id"]),
        ("charge", 7000, extra_intent),
        ("stripe_fee", 233, extra_intent),
        ("refund", 7000, extra_intent),
    ]
    stored = await sandbox.client().v1.refunds.retrieve_async(result.refund_id)
    assert stored.metadata.to_dict() == {
        "deal_id": "deal-double",
        "milestone_key": "m1",
        "purpose": "duplicate",
    }
    assert stored.reason == "duplicate"


async def test_an_authorization_is_captured_before_it_lapses(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-hold")
    input = await checkout(sandbox, "deal-hold", capture=CaptureMethod.MANUAL, amount=12_000)
    session = await workflow.run(activities.create_checkout_session, input)
    outcome = await sandbox.control.pay(session.session_id)
    intent_id = outcome["payment_intent"]["id"]
    held = await workflow.run(activities.retrieve_payment_intent, intent_id)
    assert (held.status, held.amount_capturable, held.amount_received) == (
        "requires_capture",
        12_000,
        0,
    )
    action = PaymentIntentAction(
        deal_id="deal-hold", milestone_key="m1", payment_intent_id=intent_id
    )
    captured = await workflow.run(activities.capture_payment, action)
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        12_000,
        0,
    )
    assert captured.latest_charge is not None
    retried = await attempt("deal-deal-hold", 2).run(activities.capture_payment, action)
    assert retried.status == "succeeded"


async def test_capturing_a_lapsed_authorization_is_not_retried() -> None:
    async with running_sandbox(api_key=SANDBOX_KEY) as sandbox:
        activities = payments(sandbox.url)
        workflow = attempt("deal-deal-lapse")
        input = await checkout(sandbox, "deal-lapse", capture=CaptureMethod.MANUAL)
        session = await workflow.run(activities.create_checkout_session, input)
        intent_id = (await sandbox.control.pay(session.session_id))["payment_intent"]["id"]
        await sandbox.control.advance_clock(8 * 86400)
        action = PaymentIntentAction(
            deal_id="deal-lapse", milestone_key="m1", payment_intent_id=intent_id
        )
        error = await expect_error(
            workflow.run(activities.capture_payment, action),
            STRIPE_INVALID_REQUEST,
            retryable=False,
        )
        assert "status of canceled" in error.message


async def test_cancel_authorization_is_idempotent(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-void")
    input = await checkout(sandbox, "deal-void", capture=CaptureMethod.MANUAL)
    session = await workflow.run(activities.create_checkout_session, input)
    intent_id = (await sandbox.control.pay(session.session_id))["payment_intent"]["id"]
    # Someone (an operator, a previous run) voided it already: the activity reports, not fails.
    await sandbox.client().v1.payment_intents.cancel_async(intent_id)
    action = PaymentIntentAction(
        deal_id="deal-void", milestone_key="m1", payment_intent_id=intent_id
    )
    state = await workflow.run(activities.cancel_authorization, action)
    assert (state.status, state.amount_capturable) == ("canceled", 0)


async def test_transfer_to_a_connected_account(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-payout")
    session = await workflow.run(
        activities.create_checkout_session, await checkout(sandbox, "deal-payout", amount=9000)
    )
    await sandbox.control.pay(session.session_id)
    await sandbox.control.create_account("acct_1VendorPayout")
    state = await workflow.run(activities.retrieve_checkout_session, session.session_id)
    assert state.payment_intent_id
    intent = await workflow.run(activities.retrieve_payment_intent, state.payment_intent_id)
    transfer = payout("deal-payout", "acct_1VendorPayout", 9000, intent.latest_charge)
    result = await workflow.run(activities.transfer_to_vendor, transfer)
    assert result.transfer_id.startswith("tr_")
    assert (result.amount, result.currency, result.livemode) == (9000, "usd", False)
    assert (
        await attempt("deal-deal-payout", 2).run(activities.transfer_to_vendor, transfer) == result
    )
    movements = (await sandbox.control.money())["movements"]
    transfers = [
        m
        for m in movements
        if m["kind"] == "transfer" and m["metadata"].get("deal_id") == "deal-payout"
    ]
    assert [
        (m["object_id"], m["amount"], m["destination"], m["transfer_group"]) for m in transfers
    ] == [(result.transfer_id, 9000, "acct_1VendorPayout", "deal-payout:m1")]
    stripe_copy = await sandbox.client().v1.transfers.retrieve_async(result.transfer_id)
    assert stripe_copy.source_transaction == intent.latest_charge

    reversal = clawback("deal-payout", result.transfer_id, 2500)
    taken = await workflow.run(activities.reverse_transfer, reversal)
    assert taken.reversal_id.startswith("trr_") and taken.amount == 2500
    again = await attempt("deal-deal-payout", 2).run(activities.reverse_transfer, reversal)
    assert again == taken, "a retry is the same reversal"
    await sandbox.control.pay_out_account("acct_1VendorPayout", 6000)
    with pytest.raises(ApplicationError) as refused:
        await workflow.run(
            activities.reverse_transfer, reversal.model_copy(update={"purpose": "dp_later"})
        )
    assert refused.value.non_retryable and "Insufficient funds" in refused.value.message


async def test_money_leaves_once_when_a_retry_comes_after_stripe_forgot_its_key() -> None:
    """Stripe keeps an idempotency key about 24 hours; a refund, transfer or reversal retried
    later (Stripe down a day, a repaired deal's rerun) finds what the first attempt made."""
    async with running_sandbox(api_key=SANDBOX_KEY) as sandbox:
        activities = payments(sandbox.url)
        first, later = attempt("deal-deal-late"), attempt("deal-deal-late", 9)
        sessions = [
            await first.run(
                activities.create_checkout_session,
                await checkout(sandbox, "deal-late", amount=8000, generation=generation),
            )
            for generation in (1, 2)
        ]
        paid, refunded = [
            (await sandbox.control.pay(session.session_id))["payment_intent"]
            for session in sessions
        ]
        await sandbox.control.create_account("acct_1VendorLate")
        transfer = payout("deal-late", "acct_1VendorLate", 7000, paid["latest_charge"])
        refund = RefundInput(
            deal_id="deal-late",
            milestone_key="m1",
            payment_intent_id=refunded["id"],
            amount=3000,
            reason="duplicate",
            purpose="duplicate",
        )
        made = await first.run(activities.transfer_to_vendor, transfer)
        reversal = clawback("deal-late", made.transfer_id, 1500)
        taken = await first.run(activities.reverse_transfer, reversal)
        given = await first.run(activities.refund_payment, refund)
        await sandbox.control.advance_clock(25 * 3600)

        assert await later.run(activities.transfer_to_vendor, transfer) == made
        assert await later.run(activities.reverse_transfer, reversal) == taken
        assert (await later.run(activities.refund_payment, refund)).refund_id == given.refund_id
        movements = (await sandbox.control.money())["movements"]

    moved = [
        (m["kind"], m["amount"])
        for m in movements
        if m["kind"] in ("transfer", "transfer_reversal", "refund")
    ]
    assert moved == [("transfer", 7000), ("transfer_reversal", 1500), ("refund", 3000)]


# --------------------------------------------------------------------------- fees and net


@asynccontextmanager
async def counting_proxy(upstream: str) -> AsyncIterator[tuple[str, list[str]]]:
    """(base URL, requests seen): a pass-through in front of the sandbox that notes every
    request as "METHOD /path", to show how many calls an activity makes."""
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=upstream) as http:

        async def forward(request: Request) -> Response:
            seen.append(f"{request.method} {request.url.path}")
            answer = await http.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k != "host"},
            )
            return Response(
                answer.content,
                status_code=answer.status_code,
                headers={k: v for k, v in answer.headers.items() if k.lower() in PASSED_HEADERS},
            )

        app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
        async with serve_app(app) as url:
            yield url, seen


PASSED_HEADERS = ("content-type", "request-id", "idempotent-replayed", "stripe-version")


async def paid_session(
    sandbox: RunningSandbox, deal_id: str, amount: int, capture: CaptureMethod
) -> str:
    """The payment intent of a Checkout Session the client paid (or authorized)."""
    session = await attempt(f"deal-{deal_id}").run(
        payments(sandbox.url).create_checkout_session,
        await checkout(sandbox, deal_id, amount=amount, capture=capture),
    )
    return (await sandbox.control.pay(session.session_id))["payment_intent"]["id"]


async def test_a_payment_is_read_with_its_fee_and_net_in_one_call(sandbox: RunningSandbox) -> None:
    intent_id = await paid_session(sandbox, "deal-fee", 50_000, CaptureMethod.AUTOMATIC)
    async with counting_proxy(sandbox.url) as (url, seen):
        state = await attempt("deal-deal-fee").run(payments(url).retrieve_payment_intent, intent_id)
    assert seen == [f"GET /v1/payment_intents/{intent_id}"]
    # 2.9 % of 500.00 is 14.50, plus 0.30.
    assert (state.fee, state.net, state.fee_currency) == (1_480, 48_520, "usd")
    charge = await sandbox.client().v1.charges.retrieve_async(
        state.latest_charge, {"expand": ["balance_transaction"]}
    )
    assert (charge.balance_transaction.fee, charge.balance_transaction.net) == (1_480, 48_520)


async def test_a_capture_comes_back_with_the_fee_of_what_it_captured_in_one_call(
    sandbox: RunningSandbox,
) -> None:
    intent_id = await paid_session(sandbox, "deal-capture-fee", 12_000, CaptureMethod.MANUAL)
    workflow = attempt("deal-deal-capture-fee")
    held = await workflow.run(payments(sandbox.url).retrieve_payment_intent, intent_id)
    assert (held.status, held.fee, held.net, held.fee_currency) == (
        "requires_capture",
        None,
        None,
        None,
    )
    action = PaymentIntentAction(
        deal_id="deal-capture-fee", milestone_key="m1", payment_intent_id=intent_id
    )
    async with counting_proxy(sandbox.url) as (url, seen):
        captured = await workflow.run(payments(url).capture_payment, action)
    assert seen == [f"POST /v1/payment_intents/{intent_id}/capture"]
    assert (captured.status, captured.fee, captured.net) == ("succeeded", 348 + 30, 11_622)


async def test_a_capture_sent_before_fees_were_read_still_reports_its_fee(
    sandbox: RunningSandbox,
) -> None:
    """A worker from before this change captured with the same key but without `expand`; the
    retry on a new worker meets an idempotency conflict and reads the intent instead."""
    intent_id = await paid_session(sandbox, "deal-old-capture", 9_000, CaptureMethod.MANUAL)
    key = idempotency_key("deal-deal-old-capture", "m1", "capture", intent_id)
    await sandbox.client().v1.payment_intents.capture_async(
        intent_id, options={"idempotency_key": key}
    )
    action = PaymentIntentAction(
        deal_id="deal-old-capture", milestone_key="m1", payment_intent_id=intent_id
    )
    captured = await attempt("deal-deal-old-capture", 2).run(
        payments(sandbox.url).capture_payment, action
    )
    assert (captured.status, captured.amount_received, captured.fee) == (
        "succeeded",
        9_000,
        261 + 30,
    )


# --------------------------------------------------------------------------- read-backs


async def test_refund_and_charge_read_back_with_the_deal(sandbox: RunningSandbox) -> None:
    """What a refund.created or charge.refunded webhook names, re-read before money changes."""
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-readback")
    session = await workflow.run(
        activities.create_checkout_session, await checkout(sandbox, "deal-readback", amount=6000)
    )
    intent_id = (await sandbox.control.pay(session.session_id))["payment_intent"]["id"]
    refunded = await workflow.run(
        activities.refund_payment,
        RefundInput(
            deal_id="deal-readback",
            milestone_key="m1",
            payment_intent_id=intent_id,
            amount=2500,
            reason="requested_by_customer",
            purpose="cancel",
        ),
    )

    refund = await workflow.run(activities.retrieve_refund, refunded.refund_id)
    assert refund == RefundState(
        refund_id=refunded.refund_id,
        payment_intent_id=intent_id,
        charge_id=refund.charge_id,
        amount=2500,
        currency="usd",
        status="succeeded",
        livemode=False,
        metadata={"deal_id": "deal-readback", "milestone_key": "m1", "purpose": "cancel"},
    )
    assert refund.charge_id is not None
    charge = await workflow.run(activities.retrieve_charge, refund.charge_id)
    assert charge == ChargeState(
        charge_id=refund.charge_id,
        payment_intent_id=intent_id,
        amount=6000,
        amount_captured=6000,
        amount_refunded=2500,
        currency="usd",
        refunded=False,
        livemode=False,
        metadata={"deal_id": "deal-readback", "milestone_key": "m1", "generation": "1"},
        disputed=False,
    )


async def test_a_dispute_reads_back_with_its_charge_and_deadline(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url)
    workflow = attempt("deal-deal-chargeback")
    session = await workflow.run(
        activities.create_checkout_session, await checkout(sandbox, "deal-chargeback", amount=8000)
    )
    paid = await sandbox.control.pay(session.session_id)
    opened = await sandbox.control.open_dispute(
        payment_intent=paid["payment_intent"]["id"], reason="product_not_received"
    )

    dispute = await workflow.run(activities.retrieve_dispute, opened["id"])
    assert dispute == DisputeState(
        dispute_id=opened["id"],
        charge_id=paid["charge"]["id"],
        payment_intent_id=paid["payment_intent"]["id"],
        amount=8000,
        currency="usd",
        status="needs_response",
        reason="product_not_received",
        livemode=False,
        evidence_due_by=datetime.fromtimestamp(opened["evidence_details"]["due_by"], UTC),
    )
    charge = await workflow.run(activities.retrieve_charge, dispute.charge_id)
    assert (charge.disputed, charge.metadata["deal_id"]) == (True, "deal-chargeback")


@pytest.mark.parametrize(
    ("activity_name", "object_id"),
    [
        ("retrieve_charge", "ch_unknown"),
        ("retrieve_refund", "re_unknown"),
        ("retrieve_dispute", "dp_unknown"),
    ],
)
async def test_an_unknown_object_is_a_non_retryable_invalid_request(
    sandbox: RunningSandbox, activity_name: str, object_id: str
) -> None:
    retrieve = getattr(payments(sandbox.url), activity_name)
    error = await expect_error(
        attempt("deal-deal-unknown").run(retrieve, object_id),
        STRIPE_INVALID_REQUEST,
        retryable=False,
    )
    assert (error.details[0]["http_status"], error.details[0]["code"]) == (404, "resource_missing")


@pytest.mark.parametrize(
    "activity_name", ["retrieve_charge", "retrieve_refund", "retrieve_dispute"]
)
async def test_a_read_back_during_a_stripe_outage_is_retried(
    sandbox: RunningSandbox, activity_name: str
) -> None:
    retrieve = getattr(payments(sandbox.url), activity_name)
    await sandbox.control.set_faults(fail_next=[500])
    try:
        await expect_error(
            attempt("deal-deal-outage").run(retrieve, "ch_any"),
            STRIPE_UNAVAILABLE,
            retryable=True,
        )
    finally:
        await sandbox.control.reset_faults()


# --------------------------------------------------------------------------- error classification


async def test_no_stripe_key_is_a_loud_non_retryable_error() -> None:
    activities = payments(None, api_key=None)
    input = CreateCheckoutInput(
        deal_id="deal-nokey",
        milestone_key="m1",
        generation=1,
        title="M1",
        amount=100,
        currency="usd",
        client_email="client@example.com",
        capture_method=CaptureMethod.AUTOMATIC,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    error = await expect_error(
        attempt("deal-deal-nokey").run(activities.create_checkout_session, input),
        STRIPE_NOT_CONFIGURED,
        retryable=False,
    )
    assert "STRIPE_API_KEY is not set" in error.message


async def test_an_invalid_request_is_not_retried(sandbox: RunningSandbox) -> None:
    transfer = payout("deal-bad", "bob", 100, None)
    error = await expect_error(
        attempt("deal-deal-bad").run(payments(sandbox.url).transfer_to_vendor, transfer),
        STRIPE_INVALID_REQUEST,
        retryable=False,
    )
    assert error.details[0]["param"] == "destination"


async def test_a_bad_key_is_not_retried(sandbox: RunningSandbox) -> None:
    activities = payments(sandbox.url, api_key="sk_live_not_for_the_sandbox")
    await expect_error(
        attempt("deal-deal-key").run(activities.retrieve_payment_intent, "pi_any"),
        STRIPE_AUTHENTICATION,
        retryable=False,
    )


async def test_a_declined_card_is_not_retried(sandbox: RunningSandbox) -> None:
    with pytest.raises(stripe.CardError) as raised:
        await sandbox.client().v1.payment_intents.create_async(
            {
                "amount": 500,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
                "confirm": True,
            }
        )
    error = classify(raised.value)
    assert (error.type, error.non_retryable) == (CARD_DECLINED, True)
    assert error.details[0]["decline_code"] == "insufficient_funds"


async def test_rate_limits_are_retried_and_the_retry_creates_the_session_once(
    sandbox: RunningSandbox,
) -> None:
    activities = payments(sandbox.url)
    input = await checkout(sandbox, "deal-busy")
    await sandbox.control.set_faults(fail_next=[429])
    try:
        await expect_error(
            attempt("deal-deal-busy", 1).run(activities.create_checkout_session, input),
            STRIPE_RATE_LIMITED,
            retryable=True,
        )
    finally:
        await sandbox.control.reset_faults()
    second = await attempt("deal-deal-busy", 2).run(activities.create_checkout_session, input)
    third = await attempt("deal-deal-busy", 3).run(activities.create_checkout_session, input)
    assert second == third


async def test_server_errors_are_retried(sandbox: RunningSandbox) -> None:
    input = await checkout(sandbox, "deal-5xx")
    await sandbox.control.set_faults(fail_next=[500])
    try:
        await expect_error(
            attempt("deal-deal-5xx").run(payments(sandbox.url).create_checkout_session, input),
            STRIPE_UNAVAILABLE,
            retryable=True,
        )
    finally:
        await sandbox.control.reset_faults()


async def test_connection_errors_are_retried() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    await expect_error(
        attempt("deal-deal-down").run(payments(closed).retrieve_checkout_session, "cs_test_any"),
        STRIPE_UNAVAILABLE,
        retryable=True,
    )

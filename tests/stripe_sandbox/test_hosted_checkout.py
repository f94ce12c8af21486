"""The hosted checkout page at `session.url`, used as a customer's browser uses it, and the
example script that knows only Stripe's public API, run unchanged against the sandbox."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from dealflow.serve import free_port
from tests.paths import EXAMPLES
from tests.stripe_contract.harness import (
    WEBHOOK_SECRET,
    RunningSandbox,
    running_sandbox,
    session_params,
)

SCRIPT = EXAMPLES / "stripe_public_api_check.py"
CARD_FORM = {"cardExpiry": "12 / 34", "cardCvc": "123", "billingName": "Ada Client"}


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox() as running:
        yield running


async def test_the_page_shows_the_amount_and_a_card_form(sandbox: RunningSandbox) -> None:
    session = await sandbox.client().v1.checkout.sessions.create_async(session_params(5000))
    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
    assert page.status_code == 200
    assert "TEST MODE" in page.text
    assert "USD 50.00" in page.text
    assert 'name="cardNumber"' in page.text
    assert f'action="/c/pay/{session.id}"' in page.text


async def test_a_declined_card_shows_the_decline_and_a_good_card_then_pays(
    sandbox: RunningSandbox,
) -> None:
    session = await sandbox.client().v1.checkout.sessions.create_async(session_params(5000))
    async with httpx.AsyncClient() as browser:
        declined = await browser.post(
            session.url, data={"cardNumber": "4000 0000 0000 0002", **CARD_FORM}
        )
        assert declined.status_code == 402
        assert "Your card was declined." in declined.text
        assert (
            await sandbox.client().v1.checkout.sessions.retrieve_async(session.id)
        ).status == "open"

        paid = await browser.post(
            session.url, data={"cardNumber": "4242 4242 4242 4242", **CARD_FORM}
        )
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://example.com/paid?session={session.id}"
    stored = await sandbox.client().v1.checkout.sessions.retrieve_async(session.id)
    assert (stored.status, stored.payment_status) == ("complete", "paid")
    await sandbox.receiver.wait_for(session.id, "checkout.session.completed")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"cardNumber": "1234 5678", **CARD_FORM}, "Your card number is invalid."),
        (
            {"cardNumber": "4242424242424242", **CARD_FORM, "cardExpiry": "13/40"},
            "expiration date is incomplete",
        ),
        (
            {"cardNumber": "4242424242424242", **CARD_FORM, "cardCvc": "1"},
            "security code is incomplete",
        ),
    ],
    ids=["number", "expiry", "cvc"],
)
async def test_an_incomplete_form_charges_nothing(
    sandbox: RunningSandbox, form: dict[str, str], message: str
) -> None:
    session = await sandbox.client().v1.checkout.sessions.create_async(session_params(5000))
    async with httpx.AsyncClient() as browser:
        answer = await browser.post(session.url, data=form)
    assert answer.status_code == 402
    assert message in answer.text.replace("&#39;", "'")
    stored = await sandbox.client().v1.checkout.sessions.retrieve_async(session.id)
    assert (stored.status, stored.payment_intent) == ("open", None)


async def test_an_expired_link_says_so(sandbox: RunningSandbox) -> None:
    session = await sandbox.client().v1.checkout.sessions.create_async(session_params(5000))
    await sandbox.client().v1.checkout.sessions.expire_async(session.id)
    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
        paid = await browser.post(session.url, data={"cardNumber": "4242424242424242", **CARD_FORM})
    assert "This checkout link has expired." in page.text
    assert 'name="cardNumber"' not in page.text
    assert paid.status_code == 409


async def test_the_public_api_script_passes_against_the_sandbox() -> None:
    listen_port = free_port()
    webhook_url = f"http://127.0.0.1:{listen_port}/webhook"
    async with running_sandbox(webhook_url=webhook_url) as sandbox:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--api-base",
            sandbox.url,
            "--api-key",
            sandbox.api_key,
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--listen-port",
            str(listen_port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "same Idempotency-Key, other parameters: idempotency_error" in text
    assert "verified webhook evt_" in text
    assert text.strip().endswith("all checks passed")

"""dealflow/activity_timeouts.py: the derivations hold, and the activities' clients use the same
numbers the workflow's timeouts are derived from."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
import stripe
from temporalio.testing import ActivityEnvironment

import activities.ledger
import dealflow.activity_timeouts
import dealflow.mailer
from activities.delivery import ARTIFACT_TIMEOUT, WORK_ORDER_TIMEOUT
from activities.payments import PaymentActivities
from dealflow.activity_timeouts import (
    DELIVERY,
    HEARTBEAT_INTERVAL,
    LEDGER,
    MAIL,
    MARGIN,
    RECEIPTS,
    STRIPE,
    STRIPE_READ_IN_TASK,
    StripeTimeouts,
)
from dealflow.links import PortalLinks
from dealflow.mailer import Mailer, OutgoingMail
from devstack.mailsink import MailSink
from workflows import calls

FAMILIES = {
    "stripe": STRIPE,
    "stripe-read-in-task": STRIPE_READ_IN_TASK,
    "mail": MAIL,
    "delivery": DELIVERY,
    "ledger": LEDGER,
    "receipts": RECEIPTS,
}


def test_the_module_imports_only_the_standard_library() -> None:
    """The workflow imports it inside Temporal's sandbox: no side effects, no I/O libraries."""
    tree = ast.parse(Path(inspect.getfile(dealflow.activity_timeouts)).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"__future__", "abc", "dataclasses", "datetime"}


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_no_retry_starts_while_an_attempt_may_still_run(family: Any) -> None:
    assert family.attempt_timeout >= family.worst_case + MARGIN
    if family.heartbeat_timeout is not None:
        assert family.heartbeat_timeout >= 3 * HEARTBEAT_INTERVAL
        assert family.heartbeat_timeout < family.attempt_timeout


def test_stripe_worst_case_is_every_request_timing_out_after_every_backoff() -> None:
    # stripe-python sleeps min(0.5 * 2**(n-1), 5) s at most before retry n: what STRIPE assumes.
    assert (
        stripe._http_client.HTTPClient.INITIAL_DELAY,
        stripe._http_client.HTTPClient.MAX_DELAY,
    ) == (0.5, 5)
    request = timedelta(seconds=5 + 5 + 5 + 20)
    assert STRIPE.call == 3 * request + timedelta(seconds=0.5 + 1.0)
    assert STRIPE.worst_case == 5 * STRIPE.call


def _uses(client: stripe.StripeClient, settings: StripeTimeouts) -> bool:
    requestor = client._requestor
    return requestor._options.max_network_retries == settings.max_network_retries and (
        requestor._client._timeout
        == httpx.Timeout(
            connect=settings.http.connect,
            read=settings.http.read,
            write=settings.http.write,
            pool=settings.http.pool,
        )
    )


def test_the_stripe_client_uses_the_stripe_settings_and_shorter_ones_in_a_workflow_task() -> None:
    """A read the deal runs in its own workflow task (a local activity) holds that task while
    it waits: one request of at most 25 s, where a queued activity may take minutes."""
    payments = PaymentActivities(
        api_key="sk_test_settings",
        api_base=None,
        links=PortalLinks("http://portal.test", "portal-key", days=30),
    )
    queued, local = ActivityEnvironment(), ActivityEnvironment()
    local.info = dataclasses.replace(local.info, is_local=True)
    assert _uses(queued.run(lambda: payments._stripe), STRIPE)
    assert _uses(local.run(lambda: payments._stripe), STRIPE_READ_IN_TASK)
    assert _uses(payments._stripe, STRIPE)  # outside any activity
    assert STRIPE_READ_IN_TASK.attempt_timeout == timedelta(seconds=30)
    assert STRIPE_READ_IN_TASK.max_network_retries == 0


def test_the_deals_in_task_read_is_bounded_by_the_in_task_settings() -> None:
    assert calls.STRIPE.in_task is STRIPE_READ_IN_TASK


def test_vendor_calls_use_the_delivery_settings() -> None:
    for client, settings in (
        (WORK_ORDER_TIMEOUT, DELIVERY.work_order),
        (ARTIFACT_TIMEOUT, DELIVERY.artifact),
    ):
        assert (client.connect, client.write, client.pool, client.read) == (
            settings.connect,
            settings.write,
            settings.pool,
            settings.read,
        )
    assert DELIVERY.mail == MAIL


def test_ledger_statements_use_the_ledger_setting() -> None:
    assert activities.ledger.STATEMENT_TIMEOUT == LEDGER.statement_timeout


async def test_mail_waits_each_smtp_answer_for_the_mail_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[dict[str, Any]] = []

    class RecordedSMTP(aiosmtplib.SMTP):
        def __init__(self, **options: Any) -> None:
            opened.append(options)
            super().__init__(**options)

    monkeypatch.setattr(dealflow.mailer.aiosmtplib, "SMTP", RecordedSMTP)
    sink = MailSink(tmp_path)
    await sink.start()
    try:
        mailer = Mailer(smtp_url=sink.url, mail_from="deals@dealflow.test")
        await mailer.send(
            OutgoingMail(
                deal_id="deal-mail",
                kind="sign_reminder",
                to="client@example.com",
                subject="Please sign",
                message_key="sign_reminder:1",
                text="Please sign.",
                html="<p>Please sign.</p>",
            )
        )
        await mailer.close()
    finally:
        await sink.stop()
    assert [options["timeout"] for options in opened] == [MAIL.command_timeout]
    assert len(sink.messages) == 1

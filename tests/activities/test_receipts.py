"""Receipts: issued once per milestone, immutable in Postgres, and a PDF that states the money."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
from datetime import UTC, datetime

import asyncpg
import pytest
from pypdf import PdfReader
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.receipts import ReceiptActivities
from dealflow.messages import ReceiptInput, ReceiptResult


def receipt_input(**changes: object) -> ReceiptInput:
    values: dict[str, object] = {
        "deal_id": "acme-site",
        "milestone_key": "design",
        "milestone_title": "Design mock-ups",
        "deal_title": "ACME website redesign",
        "client_name": "Ada Client",
        "client_email": "ada@client.example",
        "vendor_name": "Vic Vendor",
        "vendor_email": "vic@vendor.example",
        "amount": 150_000,
        "currency": "usd",
        "livemode": False,
        "sandbox": True,
        "payment_intent_id": "pi_3Sandbox001",
        "charge_id": "ch_3Sandbox001",
        "transfer_id": "tr_1Sandbox001",
        "released_at": datetime(2026, 3, 4, 12, 30, tzinfo=UTC),
    }
    values.update(changes)
    return ReceiptInput.model_validate(values)


def pdf_text(result: ReceiptResult) -> str:
    data = base64.b64decode(result.pdf_b64)
    assert hashlib.sha256(data).hexdigest() == result.sha256
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def issue(pool: asyncpg.Pool, input: ReceiptInput) -> ReceiptResult:
    return await ActivityEnvironment().run(ReceiptActivities(pool).issue_receipt, input)


async def test_receipt_pdf_states_parties_amount_and_stripe_ids(db_pool: asyncpg.Pool) -> None:
    result = await issue(db_pool, receipt_input())

    assert re.fullmatch(r"R-\d{4}-\d{6}", result.receipt_number)
    text = pdf_text(result)
    for expected in (
        result.receipt_number,
        "USD 1,500.00",
        "Ada Client <ada@client.example>",
        "Vic Vendor <vic@vendor.example>",
        "ACME website redesign (acme-site)",
        "Design mock-ups (design)",
        "pi_3Sandbox001",
        "ch_3Sandbox001",
        "tr_1Sandbox001",
        "2026-03-04 12:30:00 UTC",
        "SANDBOX",
    ):
        assert expected in text, expected
    row = await db_pool.fetchrow(
        "SELECT * FROM receipts WHERE receipt_number = $1", result.receipt_number
    )
    assert (row["amount"], row["currency"], row["sandbox"], row["livemode"]) == (
        150_000,
        "usd",
        True,
        False,
    )
    assert bytes(row["pdf"]) == base64.b64decode(result.pdf_b64)


async def test_receipt_shows_the_platform_fee_and_the_vendor_share(db_pool: asyncpg.Pool) -> None:
    text = pdf_text(await issue(db_pool, receipt_input(platform_fee=3_780)))
    for expected in ("USD 1,500.00", "Platform fee", "USD 37.80", "Vendor share", "USD 1,462.20"):
        assert expected in text, expected
    assert "Platform fee" not in pdf_text(await issue(db_pool, receipt_input(milestone_key="dev")))


async def test_receipt_shows_the_late_fee_paid_on_top(db_pool: asyncpg.Pool) -> None:
    text = pdf_text(await issue(db_pool, receipt_input(late_fee=5_000)))
    assert "Of which late fee" in text and "USD 50.00" in text
    assert "late fee" not in pdf_text(await issue(db_pool, receipt_input(milestone_key="dev")))


@pytest.mark.parametrize(
    ("livemode", "sandbox", "label"),
    [(True, False, None), (False, False, "STRIPE TEST MODE"), (False, True, "SANDBOX")],
)
async def test_receipt_labels_money_that_is_not_real(
    db_pool: asyncpg.Pool, livemode: bool, sandbox: bool, label: str | None
) -> None:
    text = pdf_text(await issue(db_pool, receipt_input(livemode=livemode, sandbox=sandbox)))
    if label is None:
        assert "TEST MODE" not in text and "SANDBOX" not in text
    else:
        assert label in text


async def test_zero_decimal_currency_prints_without_minor_units(db_pool: asyncpg.Pool) -> None:
    text = pdf_text(await issue(db_pool, receipt_input(amount=250_000, currency="jpy")))
    assert "JPY 250,000" in text


async def test_retries_and_races_return_the_one_receipt(db_pool: asyncpg.Pool) -> None:
    first, *racing = await asyncio.gather(*(issue(db_pool, receipt_input()) for _ in range(4)))
    again = await issue(db_pool, receipt_input())

    assert all(r == first for r in [*racing, again])
    assert await db_pool.fetchval("SELECT count(*) FROM receipts") == 1
    other = await issue(db_pool, receipt_input(milestone_key="build"))
    assert other.receipt_number != first.receipt_number


async def test_a_receipt_cannot_be_changed_or_deleted(db_pool: asyncpg.Pool) -> None:
    result = await issue(db_pool, receipt_input())
    for statement in (
        "UPDATE receipts SET amount = 1 WHERE receipt_number = $1",
        "DELETE FROM receipts WHERE receipt_number = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db_pool.execute(statement, result.receipt_number)
    assert await db_pool.fetchval("SELECT amount FROM receipts") == 150_000


async def test_a_second_request_with_other_money_is_refused(db_pool: asyncpg.Pool) -> None:
    issued = await issue(db_pool, receipt_input())
    with pytest.raises(ApplicationError) as raised:
        await issue(db_pool, receipt_input(amount=90_000))
    assert re.match(
        rf"amount: receipt {issued.receipt_number} .* 150000, not 90000", raised.value.message
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"amount": 0}, "amount"), ({"livemode": True, "sandbox": True}, "sandbox")],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    db_pool: asyncpg.Pool, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await issue(db_pool, receipt_input(**changes))
    assert raised.value.message.startswith(f"{field}: ")
    assert raised.value.non_retryable
    assert await db_pool.fetchval("SELECT count(*) FROM receipts") == 0


async def test_names_outside_latin1_print_simplified_and_are_kept_exactly(
    db_pool: asyncpg.Pool,
) -> None:
    result = await issue(
        db_pool, receipt_input(client_name="Łucja Nowak—Zoë", vendor_name="東京 Studio")
    )
    text = pdf_text(result)
    assert "Lucja Nowak-Zoë" in text
    assert "?? Studio" in text
    printed = await db_pool.fetchval("SELECT printed->>'client_name' FROM receipts")
    assert printed == "Łucja Nowak—Zoë"

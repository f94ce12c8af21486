"""Reconciliation: the ledger's money against Stripe's (or the sandbox's) for a period.

Both directions are checked. Every ledger payment, refund and transfer of the period must exist
on Stripe with the same amount and currency (looked up by id, so an object made just before the
period still matches); every money object that Stripe's events of the period confirmed and
that belongs to a deal must be in the ledger (anywhere, not only in the period). Releases
without a Connect transfer have no Stripe object and are not compared. The exit code says
whether anything differed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import asyncpg
import stripe
from rich.console import Console
from rich.table import Table

from dealflow.models import format_money
from dealflow.modes import MODE_SQL, MoneyMode
from dealflow.settings import ConfigError, Settings
from truth.report import quiet_library_logs

#: Explicit, so a flaky network is retried a bounded number of times (the library's default is 2).
STRIPE_NETWORK_RETRIES = 3
STRIPE_TIMEOUT_SECONDS = 30
#: Ledger kinds that stand for a Stripe object; `release` (no Connect account) has none.
COMPARED_KINDS = ("charge", "authorization", "refund", "transfer")

Problem = Literal["missing_in_ledger", "missing_in_stripe", "amount_differs"]


@dataclass(frozen=True)
class StripeAccount:
    """The Stripe account (or sandbox) to reconcile with, and which money it holds."""

    api_key: str
    api_base: str | None
    mode: MoneyMode

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.api_base} if self.api_base else None,
            max_network_retries=STRIPE_NETWORK_RETRIES,
            http_client=stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_SECONDS),
        )


#: The offline sandbox accepts any test key; this one names who is calling in its logs.
_DEV_SANDBOX_KEY = "sk_test_dealflow_reconcile"


def configured_account(settings: Settings) -> StripeAccount:
    """STRIPE_API_KEY (and STRIPE_API_BASE); in dev without a key, the running dev stack's sandbox."""
    if settings.stripe_api_key:
        return StripeAccount(
            settings.stripe_api_key, settings.stripe_api_base, MoneyMode(settings.stripe_mode)
        )
    if settings.dev:
        from devstack.runtime import read_runtime

        runtime = read_runtime(settings.home)
        if runtime is not None and runtime.sandbox_url:
            return StripeAccount(_DEV_SANDBOX_KEY, runtime.sandbox_url, MoneyMode.SANDBOX)
    raise ConfigError(
        "STRIPE_API_KEY is not set and no `dealflow dev` stack with a sandbox is running: "
        "there is no Stripe account to reconcile with"
    )


@dataclass(frozen=True)
class Money:
    """One confirmed amount, on either side, keyed the way the ledger keys it."""

    kind: str
    stripe_id: str
    amount: int
    currency: str
    deal_id: str | None = None
    milestone_key: str | None = None


@dataclass(frozen=True)
class Difference:
    problem: Problem
    kind: str
    stripe_id: str
    currency: str
    ledger_amount: int | None
    stripe_amount: int | None
    deal_id: str | None
    milestone_key: str | None

    def describe(self) -> str:
        where = f"{self.deal_id}/{self.milestone_key}" if self.deal_id else "no deal"
        ledger = (
            "-" if self.ledger_amount is None else format_money(self.ledger_amount, self.currency)
        )
        on_stripe = (
            "-" if self.stripe_amount is None else format_money(self.stripe_amount, self.currency)
        )
        return f"{self.problem}: {self.kind} {self.stripe_id} ({where}) ledger {ledger}, Stripe {on_stripe}"


@dataclass(frozen=True)
class Reconciliation:
    mode: MoneyMode
    since: datetime | None
    until: datetime | None
    ledger_checked: int
    stripe_checked: int
    differences: list[Difference]

    @property
    def exit_code(self) -> int:
        return 1 if self.differences else 0


# --------------------------------------------------------------------------- Stripe's side


# Stripe objects arrive here as plain dicts (`StripeObject.to_dict()`).


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata") or {})


def _money(kind: str, obj: dict[str, Any], amount: int) -> Money:
    meta = _metadata(obj)
    deal_id, milestone_key = meta.get("deal_id"), meta.get("milestone_key")
    return Money(kind, obj["id"], amount, obj["currency"], deal_id, milestone_key)


def _intent_money(intent: dict[str, Any]) -> Money | None:
    """A payment intent is a charge once captured, an authorization while it waits for capture."""
    if intent["status"] == "succeeded":
        return _money("charge", intent, intent["amount_received"])
    if intent["status"] == "requires_capture":
        return _money("authorization", intent, intent["amount_capturable"])
    return None


def _refund_money(refund: dict[str, Any]) -> Money | None:
    if refund["status"] in ("failed", "canceled"):
        return None
    return _money("refund", refund, refund["amount"])


def _transfer_money(transfer: dict[str, Any]) -> Money:
    return _money("transfer", transfer, transfer["amount"])


#: Events that confirm money, and how each becomes the ledger's view of its object.
MONEY_EVENTS: dict[str, Callable[[dict[str, Any]], Money | None]] = {
    "payment_intent.succeeded": _intent_money,
    "payment_intent.amount_capturable_updated": _intent_money,
    "refund.created": _refund_money,
    "transfer.created": _transfer_money,
}


class StripeSide:
    """Reads money objects from Stripe: listed for a period, or one by id."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._v1 = client.v1

    async def listed(
        self, since: datetime | None, until: datetime | None
    ) -> AsyncIterator[tuple[Money, dict[str, Any]]]:
        """Every money object that an event created in [since, until) confirmed, once each.

        Read through `/v1/events` (which the offline sandbox serves too); Stripe keeps events
        for 30 days, so older periods are checked in the ledger-to-Stripe direction only.
        """
        created: dict[str, int] = {}
        if since:
            created["gte"] = int(since.timestamp())
        if until:
            created["lt"] = int(until.timestamp())
        params: dict[str, Any] = {"limit": 100, "types": list(MONEY_EVENTS)}
        if created:
            params["created"] = created
        seen: set[tuple[str, str]] = set()
        page = await self._v1.events.list_async(params)
        async for event in page.auto_paging_iter():
            obj = event.to_dict()["data"]["object"]
            money = MONEY_EVENTS[event["type"]](obj)
            if money is not None and (money.kind, money.stripe_id) not in seen:
                seen.add((money.kind, money.stripe_id))
                yield money, obj

    async def by_id(self, kind: str, stripe_id: str) -> Money | None:
        """The object the ledger names, as Stripe has it now; None when Stripe does not know it."""
        try:
            if kind in ("charge", "authorization"):
                intent = (await self._v1.payment_intents.retrieve_async(stripe_id)).to_dict()
                if kind == "authorization":
                    return _money(kind, intent, intent["amount"])
                return _intent_money(intent) if intent["status"] == "succeeded" else None
            if kind == "refund":
                return _refund_money((await self._v1.refunds.retrieve_async(stripe_id)).to_dict())
            return _transfer_money((await self._v1.transfers.retrieve_async(stripe_id)).to_dict())
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    async def intent_deal(self, intent_id: str) -> tuple[str | None, str | None]:
        """(deal_id, milestone_key) of a payment intent, for refunds that only name their intent."""
        meta = _metadata((await self._v1.payment_intents.retrieve_async(intent_id)).to_dict())
        return meta.get("deal_id"), meta.get("milestone_key")


# --------------------------------------------------------------------------- the comparison


async def _ledger(
    conn: asyncpg.Connection, mode: MoneyMode, since: datetime | None, until: datetime | None
) -> tuple[list[Money], set[tuple[str, str]], set[str]]:
    """(payments of the period, (kind, id) of every payment in this mode, every intent id of a deal)."""
    in_period = await conn.fetch(
        f"""SELECT kind, stripe_id, amount, currency, deal_id, milestone_key FROM payments
            WHERE kind = ANY($1::text[]) AND {MODE_SQL} = $2
              AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
            ORDER BY occurred_at, id""",
        list(COMPARED_KINDS),
        mode,
        since,
        until,
    )
    everything = await conn.fetch(
        f"SELECT kind, stripe_id FROM payments WHERE {MODE_SQL} = $1", mode
    )
    rows = [Money(**dict(r)) for r in in_period]
    known = {(r["kind"], r["stripe_id"]) for r in everything}
    intents = {r["stripe_id"] for r in everything if r["kind"] in ("charge", "authorization")}
    return rows, known, intents


async def reconcile(
    pool: asyncpg.Pool,
    stripe_side: StripeSide,
    mode: MoneyMode,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Reconciliation:
    """Compare the ledger's `mode` money with the account's for [since, until)."""
    async with pool.acquire() as conn:
        ledger_rows, known, deal_intents = await _ledger(conn, mode, since, until)

    differences: list[Difference] = []
    listed: dict[tuple[str, str], Money] = {}
    stripe_checked = 0
    async for money, obj in stripe_side.listed(since, until):
        listed[(money.kind, money.stripe_id)] = money
        if money.kind == "refund" and money.deal_id is None and obj.get("payment_intent"):
            intent_id = obj["payment_intent"]
            deal_id, milestone_key = await stripe_side.intent_deal(intent_id)
            if deal_id is None and intent_id not in deal_intents:
                continue
            money = Money(
                money.kind, money.stripe_id, money.amount, money.currency, deal_id, milestone_key
            )
        elif money.deal_id is None:
            continue  # not dealflow's: another integration on the same account
        stripe_checked += 1
        if (money.kind, money.stripe_id) not in known:
            differences.append(_difference("missing_in_ledger", ledger=None, stripe=money))

    for row in ledger_rows:
        key = (row.kind, row.stripe_id)
        on_stripe = listed.get(key) if row.kind != "authorization" else None
        if on_stripe is None:
            on_stripe = await stripe_side.by_id(row.kind, row.stripe_id)
        if on_stripe is None:
            differences.append(_difference("missing_in_stripe", ledger=row, stripe=None))
        elif (on_stripe.amount, on_stripe.currency) != (row.amount, row.currency):
            differences.append(_difference("amount_differs", ledger=row, stripe=on_stripe))
    return Reconciliation(mode, since, until, len(ledger_rows), stripe_checked, differences)


def _difference(problem: Problem, *, ledger: Money | None, stripe: Money | None) -> Difference:
    either = ledger or stripe
    assert either is not None
    return Difference(
        problem=problem,
        kind=either.kind,
        stripe_id=either.stripe_id,
        currency=either.currency,
        ledger_amount=ledger.amount if ledger else None,
        stripe_amount=stripe.amount if stripe else None,
        deal_id=either.deal_id,
        milestone_key=either.milestone_key,
    )


# --------------------------------------------------------------------------- command line


def render(result: Reconciliation, console: Console) -> None:
    period = f"{result.since or 'the beginning'} to {result.until or 'now'}"
    console.print(
        f"[bold]reconciliation[/bold] of {result.mode} money, {period}: "
        f"{result.ledger_checked} ledger payments and {result.stripe_checked} Stripe objects checked"
    )
    if not result.differences:
        console.print("[green]ledger and Stripe agree[/green]")
        return
    table = Table(
        "problem", "kind", "stripe id", "deal / milestone", "ledger", "Stripe", title="Differences"
    )
    for d in result.differences:
        table.add_row(
            d.problem,
            d.kind,
            d.stripe_id,
            f"{d.deal_id}/{d.milestone_key}" if d.deal_id else "-",
            "-" if d.ledger_amount is None else format_money(d.ledger_amount, d.currency),
            "-" if d.stripe_amount is None else format_money(d.stripe_amount, d.currency),
        )
    console.print(table)
    console.print(f"[red]{len(result.differences)} difference(s)[/red]")


def day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, UTC) if day else None


class PeriodError(ValueError):
    """The period is empty or backwards; the message names the option."""


def period(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """[since 00:00 UTC, the day after `until` 00:00 UTC): both days are included."""
    if since and until and until < since:
        raise PeriodError(f"--until: {until} is before --since {since}")
    return day_start(since), day_start(until + timedelta(days=1)) if until else None


async def _run(settings: Settings, since: date | None, until: date | None) -> Reconciliation:
    from dealflow.db import create_pool, database_url

    account = configured_account(settings)
    start, end = period(since, until)
    side = StripeSide(account.client())
    pool = await create_pool(database_url(settings), max_size=2)
    try:
        return await reconcile(pool, side, account.mode, since=start, until=end)
    finally:
        await pool.close()


def run_reconcile(
    *, since: date | None = None, until: date | None = None, settings: Settings | None = None
) -> int:
    """`dealflow reconcile`: list the differences; exit code 0 only when there are none, 1 when
    there are, 2 when reconciliation could not run (bad period, Stripe unreachable)."""
    from dealflow.settings import load_settings

    quiet_library_logs()
    console = Console()
    try:
        result = asyncio.run(_run(settings or load_settings(), since, until))
    except (PeriodError, ConfigError, stripe.StripeError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    render(result, console)
    return result.exit_code

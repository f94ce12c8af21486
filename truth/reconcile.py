"""Reconciliation: the ledger's money against Stripe's (or the sandbox's) for a period.

Both directions are checked, through Stripe's list endpoints (charges, refunds, transfers and
balance transactions created in the period, every page of each). Every ledger payment, refund
transfer and transfer reversal of the period must exist on Stripe with the same amount and
currency, and every
charge with the fee and net of its balance transaction (looked up by id when the sweep did not
meet it, so an object made just before the period still matches); every money object of the
period that belongs to a deal must be in the ledger (anywhere, not only in the period). A charge
created before the period and captured in it is met through its balance transaction. Releases
without a Connect transfer have no Stripe object and are not compared. The exit code says
whether anything differed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import asyncpg
import stripe
from rich.console import Console
from rich.table import Table

from dealflow.modes import MODE_SQL, MoneyMode
from dealflow.money import format_money
from dealflow.settings import ConfigError, Settings
from truth.report import quiet_library_logs

#: Explicit, so a flaky network is retried a bounded number of times (the library's default is 2).
STRIPE_NETWORK_RETRIES = 3
STRIPE_TIMEOUT_SECONDS = 30
#: Ledger kinds that stand for a Stripe object; `release` (no Connect account) has none.
COMPARED_KINDS = ("charge", "authorization", "refund", "transfer", "transfer_reversal")

Problem = Literal["missing_in_ledger", "missing_in_stripe", "amount_differs", "fee_differs"]
#: Balance transaction types whose source is a charge or a refund (`payment` and
#: `payment_refund` are the ones of non-card payment methods).
CHARGE_TRANSACTIONS = ("charge", "payment")
REFUND_TRANSACTIONS = ("refund", "payment_refund")


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


def configured_account(settings: Settings) -> StripeAccount:
    """STRIPE_API_KEY (and STRIPE_API_BASE); in dev without a key, the running dev stack's sandbox."""
    if settings.stripe_api_key:
        return StripeAccount(
            settings.stripe_api_key, settings.stripe_api_base, MoneyMode(settings.stripe_mode)
        )
    if settings.dev:
        from devstack.runtime import read_runtime

        runtime = read_runtime(settings.home)
        if runtime is not None and runtime.sandbox_url and runtime.sandbox_api_key:
            return StripeAccount(runtime.sandbox_api_key, runtime.sandbox_url, MoneyMode.SANDBOX)
    raise ConfigError(
        "STRIPE_API_KEY is not set and no `dealflow dev` stack with a sandbox is running: "
        "there is no Stripe account to reconcile with"
    )


@dataclass(frozen=True)
class Fees:
    """A charge's balance transaction: Stripe's fee and the net, in minor units of `currency`."""

    fee: int
    net: int
    currency: str

    def describe(self) -> str:
        return (
            f"fee {format_money(self.fee, self.currency)}, "
            f"net {format_money(self.net, self.currency)}"
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
    #: A charge's fee and net; None when unknown (not captured, or recorded before fees were read).
    fees: Fees | None = None
    #: The payment intent a refund names, to find its deal when its own metadata does not.
    payment_intent: str | None = None


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
    ledger_fees: Fees | None = None
    stripe_fees: Fees | None = None

    def _side(self, amount: int | None, fees: Fees | None) -> str:
        """What one side holds, as the difference needs it shown."""
        if self.problem == "fee_differs":
            return fees.describe() if fees else "no fee"
        return "-" if amount is None else format_money(amount, self.currency)

    @property
    def ledger(self) -> str:
        return self._side(self.ledger_amount, self.ledger_fees)

    @property
    def on_stripe(self) -> str:
        return self._side(self.stripe_amount, self.stripe_fees)

    def describe(self) -> str:
        where = f"{self.deal_id}/{self.milestone_key}" if self.deal_id else "no deal"
        return (
            f"{self.problem}: {self.kind} {self.stripe_id} ({where}) "
            f"ledger {self.ledger}, Stripe {self.on_stripe}"
        )


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


def _money(kind: str, obj: dict[str, Any], amount: int, fees: Fees | None = None) -> Money:
    meta = _metadata(obj)
    deal_id, milestone_key = meta.get("deal_id"), meta.get("milestone_key")
    return Money(kind, obj["id"], amount, obj["currency"], deal_id, milestone_key, fees)


def _fees(transaction: Any) -> Fees | None:
    """The fee and net of an expanded balance transaction (an id or None says nothing)."""
    if not isinstance(transaction, dict):
        return None
    return Fees(transaction["fee"], transaction["net"], transaction["currency"])


def _charge_money(charge: dict[str, Any], transaction: Any) -> Money | None:
    """A successful charge, keyed by its payment intent as the ledger keys it: a charge once
    captured, with its balance transaction's fee and net; an authorization until then."""
    if charge["status"] != "succeeded":
        return None
    keyed = {**charge, "id": charge.get("payment_intent") or charge["id"]}
    if charge["captured"]:
        return _money("charge", keyed, charge["amount_captured"], _fees(transaction))
    return _money("authorization", keyed, charge["amount"])


def _refund_money(refund: dict[str, Any]) -> Money | None:
    if refund["status"] in ("failed", "canceled"):
        return None
    return replace(
        _money("refund", refund, refund["amount"]), payment_intent=refund.get("payment_intent")
    )


def _transfer_money(transfer: dict[str, Any]) -> Money:
    return _money("transfer", transfer, transfer["amount"])


def _transaction_money(transaction: dict[str, Any]) -> Money | None:
    """The money object a balance transaction moved (its expanded source), if it is one the
    ledger keeps."""
    source, type = transaction["source"], transaction["type"]
    if not isinstance(source, dict):
        return None
    if type in CHARGE_TRANSACTIONS and source["object"] == "charge":
        return _charge_money(source, transaction)
    if type in REFUND_TRANSACTIONS and source["object"] == "refund":
        return _refund_money(source)
    if type == "transfer" and source["object"] == "transfer":
        return _transfer_money(source)
    if type == "transfer_refund" and source["object"] == "transfer_reversal":
        return _money("transfer_reversal", source, source["amount"])
    return None


class StripeSide:
    """Reads money objects from Stripe: listed for a period, or one by id."""

    def __init__(self, client: stripe.StripeClient, *, page_size: int = 100) -> None:
        self._v1 = client.v1
        self._page_size = page_size

    async def listed(self, since: datetime | None, until: datetime | None) -> AsyncIterator[Money]:
        """Every money object of [since, until), once each: the charges (with their balance
        transactions), refunds and transfers created in the period, and the sources of the
        balance transactions created in it."""
        created: dict[str, int] = {}
        if since:
            created["gte"] = int(since.timestamp())
        if until:
            created["lt"] = int(until.timestamp())
        sweeps: list[tuple[Any, list[str], Callable[[dict[str, Any]], Money | None]]] = [
            (self._v1.charges.list_async, ["data.balance_transaction"],
             lambda charge: _charge_money(charge, charge["balance_transaction"])),
            (self._v1.refunds.list_async, [], _refund_money),
            (self._v1.transfers.list_async, [], _transfer_money),
            (self._v1.balance_transactions.list_async, ["data.source"], _transaction_money),
        ]  # fmt: skip
        seen: set[tuple[str, str]] = set()
        period = {"created": created} if created else {}
        for list_call, expand, to_money in sweeps:
            expanded = {"expand": expand} if expand else {}
            page = await list_call({"limit": self._page_size, **period, **expanded})
            async for item in page.auto_paging_iter():
                money = to_money(item.to_dict())
                if money is not None and (money.kind, money.stripe_id) not in seen:
                    seen.add((money.kind, money.stripe_id))
                    yield money

    async def by_id(
        self, kind: str, stripe_id: str, *, transfer: str | None = None
    ) -> Money | None:
        """The object the ledger names, as Stripe has it now; None when Stripe does not know it.
        A transfer reversal is read from its `transfer`, which lists it."""
        try:
            if kind in ("charge", "authorization"):
                intent = (
                    await self._v1.payment_intents.retrieve_async(
                        stripe_id, {"expand": ["latest_charge.balance_transaction"]}
                    )
                ).to_dict()
                if kind == "authorization":
                    return _money(kind, intent, intent["amount"])
                if intent["status"] != "succeeded":
                    return None
                charge = intent["latest_charge"]
                return _money(
                    kind, intent, intent["amount_received"], _fees(charge["balance_transaction"])
                )
            if kind == "refund":
                return _refund_money((await self._v1.refunds.retrieve_async(stripe_id)).to_dict())
            if kind == "transfer_reversal":
                return await self._reversal(stripe_id, transfer)
            return _transfer_money((await self._v1.transfers.retrieve_async(stripe_id)).to_dict())
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    async def _reversal(self, reversal_id: str, transfer_id: str | None) -> Money | None:
        if transfer_id is None:
            return None
        transfer = (await self._v1.transfers.retrieve_async(transfer_id)).to_dict()
        reversal = next((r for r in transfer["reversals"]["data"] if r["id"] == reversal_id), None)
        return (
            None if reversal is None else _money("transfer_reversal", reversal, reversal["amount"])
        )

    async def intent_deal(self, intent_id: str) -> tuple[str | None, str | None]:
        """(deal_id, milestone_key) of a payment intent, for refunds that only name their intent."""
        meta = _metadata((await self._v1.payment_intents.retrieve_async(intent_id)).to_dict())
        return meta.get("deal_id"), meta.get("milestone_key")


# --------------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class LedgerSide:
    #: The payments of the period.
    rows: list[Money]
    #: (kind, id) of every payment in this mode.
    known: set[tuple[str, str]]
    #: Every payment intent of a deal.
    intents: set[str]
    #: (deal, milestone) -> its transfer, where its reversals are read.
    transfers: dict[tuple[str, str], str]


async def _ledger(
    conn: asyncpg.Connection, mode: MoneyMode, since: datetime | None, until: datetime | None
) -> LedgerSide:
    in_period = await conn.fetch(
        f"""SELECT kind, stripe_id, amount, currency, deal_id, milestone_key, fee, net, fee_currency
            FROM payments
            WHERE kind = ANY($1::text[]) AND {MODE_SQL} = $2
              AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
            ORDER BY occurred_at, id""",
        list(COMPARED_KINDS),
        mode,
        since,
        until,
    )
    everything = await conn.fetch(
        f"SELECT kind, stripe_id, deal_id, milestone_key FROM payments WHERE {MODE_SQL} = $1",
        mode,
    )
    rows = [
        Money(
            r["kind"], r["stripe_id"], r["amount"], r["currency"], r["deal_id"], r["milestone_key"],
            Fees(r["fee"], r["net"], r["fee_currency"]) if r["fee"] is not None else None,
        )
        for r in in_period
    ]  # fmt: skip
    return LedgerSide(
        rows=rows,
        known={(r["kind"], r["stripe_id"]) for r in everything},
        intents={r["stripe_id"] for r in everything if r["kind"] in ("charge", "authorization")},
        transfers={
            (r["deal_id"], r["milestone_key"]): r["stripe_id"]
            for r in everything
            if r["kind"] == "transfer"
        },
    )


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
        ledger = await _ledger(conn, mode, since, until)

    differences: list[Difference] = []
    listed: dict[tuple[str, str], Money] = {}
    stripe_checked = 0
    async for money in stripe_side.listed(since, until):
        listed[(money.kind, money.stripe_id)] = money
        if money.kind == "refund" and money.deal_id is None and money.payment_intent:
            deal_id, milestone_key = await stripe_side.intent_deal(money.payment_intent)
            if deal_id is None and money.payment_intent not in ledger.intents:
                continue
            money = replace(money, deal_id=deal_id, milestone_key=milestone_key)
        elif money.deal_id is None:
            continue  # not dealflow's: another integration on the same account
        stripe_checked += 1
        if (money.kind, money.stripe_id) not in ledger.known:
            differences.append(_difference("missing_in_ledger", ledger=None, stripe=money))

    for row in ledger.rows:
        on_stripe = listed.get((row.kind, row.stripe_id)) or await stripe_side.by_id(
            row.kind,
            row.stripe_id,
            transfer=ledger.transfers.get((row.deal_id or "", row.milestone_key or "")),
        )
        if on_stripe is None:
            differences.append(_difference("missing_in_stripe", ledger=row, stripe=None))
        elif (on_stripe.amount, on_stripe.currency) != (row.amount, row.currency):
            differences.append(_difference("amount_differs", ledger=row, stripe=on_stripe))
        elif row.kind == "charge" and on_stripe.fees != row.fees:
            differences.append(_difference("fee_differs", ledger=row, stripe=on_stripe))
    return Reconciliation(mode, since, until, len(ledger.rows), stripe_checked, differences)


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
        ledger_fees=ledger.fees if ledger else None,
        stripe_fees=stripe.fees if stripe else None,
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
            d.ledger,
            d.on_stripe,
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

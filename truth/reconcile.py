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

This module is the command (`dealflow reconcile`): `truth.stripe_side` reads Stripe,
`truth.comparison` compares, `truth.differences` holds what both sides have and what differs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import stripe
from rich.console import Console
from rich.table import Table

from dealflow.settings import ConfigError, Settings
from truth.comparison import reconcile
from truth.differences import Reconciliation
from truth.report import quiet_library_logs
from truth.stripe_side import StripeSide, configured_account


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

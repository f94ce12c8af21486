"""`dealflow vendors add | list | rotate-key | revoke | page | onboard`: vendors as accounts,
straight on Postgres (and Stripe for onboarding), so they work while the bridge is down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import asyncpg
import stripe
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dealflow.connect import onboard_vendor
from dealflow.db import create_pool, database_url
from dealflow.settings import load_settings
from dealflow.vendors import (
    NewVendor,
    VendorProblem,
    add_vendor,
    get_vendor,
    list_vendors,
    revoke_keys,
    rotate_key,
)

app = typer.Typer(help="Vendors: their API keys, their page, their Stripe Connect onboarding.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run `work` on a pool of the configured database; bad input exits 2 naming the field."""

    async def run() -> T:
        pool = await create_pool(database_url(load_settings()), max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except VendorProblem as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1 if error.not_found else 2) from error


def _show_key(api_key: str) -> None:
    console.print(f"API key (shown once, only its hash is kept): [bold]{api_key}[/bold]", soft_wrap=True)


@app.command()
def add(
    name: Annotated[str, typer.Option(help="the vendor's name, as clients see it")],
    email: Annotated[str, typer.Option(help="where the vendor's mails go")],
    stripe_account: Annotated[str | None, typer.Option(help="an existing Connect account (acct_...)")] = None,
) -> None:
    """Add a vendor; prints their id, their first API key (once) and their page link."""
    try:
        vendor = NewVendor(name=name, email=email, stripe_account=stripe_account)
    except ValidationError as error:
        first = error.errors()[0]
        err.print(f"[red]error:[/red] --{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")
        raise typer.Exit(2) from error
    record, key = _run(lambda pool: add_vendor(pool, vendor))
    console.print(f"vendor {record.vendor_id} ({record.name} <{record.email}>)")
    _show_key(key.api_key)
    console.print(f"vendor page: {load_settings().portal_links().vendor_page(record.vendor_id)}", soft_wrap=True)


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every vendor, their active keys, when a key was last used, and their Stripe readiness."""
    vendors = _run(list_vendors)
    if as_json:
        print(json.dumps([v.model_dump(mode="json") for v in vendors], indent=2))
        return
    table = Table("vendor", "name", "email", "keys", "last used", "stripe account", "can receive transfers")
    for v in vendors:
        ready = "-" if v.transfers_active is None else ("yes" if v.transfers_active else "no")
        last = f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "never"
        table.add_row(v.vendor_id, v.name, v.email, str(v.active_keys), last, v.stripe_account or "-", ready)
    console.print(table)


@app.command("rotate-key")
def rotate_key_command(vendor_id: str) -> None:
    """A new API key for the vendor (shown once); their earlier keys stop working at once."""
    key = _run(lambda pool: rotate_key(pool, vendor_id))
    _show_key(key.api_key)


@app.command()
def revoke(vendor_id: str) -> None:
    """Revoke every API key of the vendor (each is then a 401)."""
    count = _run(lambda pool: revoke_keys(pool, vendor_id))
    console.print(f"revoked {count} key(s) of {vendor_id}")


@app.command()
def page(vendor_id: str) -> None:
    """A signed link to the vendor's page: their deals, what is due, their payouts."""
    _run(lambda pool: get_vendor(pool, vendor_id))
    print(load_settings().portal_links().vendor_page(vendor_id))


@app.command()
def onboard(vendor_id: str) -> None:
    """Make the vendor's Stripe Connect account (if they have none) and an onboarding link."""
    from truth.reconcile import configured_account

    settings = load_settings()
    client = configured_account(settings).client()
    try:
        done = _run(lambda pool: onboard_vendor(pool, client, settings.portal_links(), vendor_id))
    except stripe.StripeError as error:
        err.print(f"[red]error:[/red] Stripe refused: {error.user_message or error}")
        raise typer.Exit(1) from error
    console.print(f"vendor {done.vendor_id}: Stripe account {done.account_id}")
    console.print(f"onboarding link (send it to the vendor; it lapses soon): {done.onboarding_url}", soft_wrap=True)

"""The `dealflow` command line. Each command is a thin shell over a module that does the work."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError

from dealflow.contract import (
    ACTIONS,
    DEAL_AMOUNT_CENTS,
    DEAL_CLIENT,
    DEAL_COLLECTED_CENTS,
    DEAL_STAGE,
    STATUS,
    WORKFLOW_TYPE,
    client_search_value,
)
from dealflow.deal_view import print_deal, print_spec
from dealflow.messages import DealStatus, OperatorAction
from dealflow.models import workflow_id_for
from dealflow.modes import MoneyMode
from dealflow.process import run_and_exit
from dealflow.settings import ConfigError, load_settings
from dealflow.specs import SpecError, load_spec, parse_model
from dealflow.temporal import connect
from dealflow.vendors_cli import app as vendors_app
from stripe_sandbox.config import DEFAULT_PORT as SANDBOX_PORT
from stripe_sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from dealflow.certificates import KeptCertificate

app = typer.Typer(help="dealflow: client deals as durable Temporal workflows.", no_args_is_help=True)
app.add_typer(vendors_app, name="vendors")
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


async def _client() -> Client:
    """A client that decodes payloads with DEALFLOW_PAYLOAD_KEYS, as the worker encodes them."""
    settings = load_settings()
    try:
        return await connect(settings)
    except RuntimeError as error:
        raise _fail(f"cannot reach Temporal ({error}); is the server running? see TEMPORAL_ADDRESS") from error


@app.command()
def worker() -> None:
    """Run the worker (DealWorkflow and every activity)."""
    import worker as worker_module

    worker_module.main()


@app.command("bridge")
def bridge_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the bridge: Stripe webhooks, the client portal, the vendor and admin APIs."""
    from bridge.app import run_bridge

    run_bridge(host, port)


@app.command("sandbox")
def sandbox_command(
    port: Annotated[int, typer.Option(help="port to listen on")] = SANDBOX_PORT,
    webhook_url: Annotated[
        str | None, typer.Option(help="where signed events are POSTed, e.g. http://127.0.0.1:8000/webhooks/stripe")
    ] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="whsec_ signing secret; generated when omitted")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="the sk_test_ key to issue and accept alone; generated when omitted")
    ] = None,
    state_file: Annotated[Path | None, typer.Option(help="JSON file that keeps sandbox objects across restarts")] = None,
) -> None:
    """Run the offline Stripe sandbox (sandbox money only; it accepts only the key it prints).
    Its controls need DEALFLOW_SANDBOX_TOKEN (in .dealflow/secrets.env) as a bearer token."""
    from dealflow.serve import PortInUse
    from devstack.sandbox import run_sandbox

    token = load_settings(need=("DEALFLOW_SANDBOX_TOKEN",)).require("DEALFLOW_SANDBOX_TOKEN")
    try:
        config = SandboxConfig(
            control_token=token,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            api_key=api_key,
            state_file=state_file,
        )
        run_sandbox(config, port=port)
    except (PortInUse, ValueError) as error:
        raise _fail(str(error), 2) from error


spec_app = typer.Typer(help="Deal specs.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")


@spec_app.command("check")
def spec_check(spec: Annotated[Path, typer.Argument(help="deal spec, YAML or JSON")]) -> None:
    """Validate a spec without starting it: each milestone as the deal will run it (a schedule
    compiled into amounts), or every bad field named (exit code 2)."""
    try:
        deal = load_spec(spec)
    except SpecError as error:
        err.print(f"invalid deal spec {error.source}:")
        for problem in error.problems:
            err.print(f"  - {problem}")
        raise typer.Exit(2) from error
    print_spec(console, deal)


@app.command()
def start(spec: Annotated[Path, typer.Argument(help="deal spec, YAML or JSON")]) -> None:
    """Start a deal from a spec file; prints its workflow id and Temporal UI link."""
    import starter

    raise typer.Exit(asyncio.run(starter.start_from_file(spec)))


async def _status(deal_id: str) -> DealStatus:
    client = await _client()
    try:
        return await client.get_workflow_handle(workflow_id_for(deal_id)).query(STATUS, result_type=DealStatus)
    except RPCError as error:
        raise _fail(f"deal '{deal_id}' not found: {error.message}") from error


@app.command()
def status(
    deal_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Show a deal: stage, milestones, money, next deadline and timeline."""
    result = asyncio.run(_status(deal_id))
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    print_deal(console, result)


async def _certificate(deal_id: str, version: int | None) -> KeptCertificate | None:
    from dealflow.certificates import kept_certificate
    from dealflow.db import create_pool, database_url

    pool = await create_pool(database_url(load_settings()), max_size=1)
    try:
        return await kept_certificate(pool, deal_id, version)
    finally:
        await pool.close()


@app.command()
def certificate(
    deal_id: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the PDF")],
    version: Annotated[int | None, typer.Option(min=1, help="SOW version; the latest if omitted")] = None,
) -> None:
    """Write the signing certificate of a countersigned deal (a PDF kept in the ledger)."""
    kept = asyncio.run(_certificate(deal_id, version))
    if kept is None:
        which = f"version {version}" if version else "any version"
        raise _fail(f"deal '{deal_id}' has no signing certificate of {which}")
    out.write_bytes(kept.pdf)
    console.print(f"wrote the signing certificate of version {kept.sow_version} to {out} (SHA-256 {kept.sha256})")


def _client_query(email: str) -> str:
    """The visibility query for one client's deals (`DealClient` is a keyed hash of the address)."""
    value = client_search_value(email, load_settings().client_search_secret)
    return f"{DEAL_CLIENT.name} = '{value}'"


async def _list(stage: str | None, client_email: str | None) -> list[dict[str, object]]:
    client = await _client()
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    if stage:
        query += f" AND {DEAL_STAGE.name} = '{stage}'"
    if client_email:
        query += f" AND {_client_query(client_email)}"
    rows = []
    async for execution in client.list_workflows(query):
        attributes = execution.typed_search_attributes
        rows.append(
            {
                "workflow_id": execution.id,
                "status": execution.status.name if execution.status else None,
                "stage": attributes.get(DEAL_STAGE),
                "client": attributes.get(DEAL_CLIENT),
                "amount": attributes.get(DEAL_AMOUNT_CENTS),
                "collected": attributes.get(DEAL_COLLECTED_CENTS),
                "started": execution.start_time.isoformat(),
            }
        )
    return rows


@app.command("list")
def list_deals(
    stage: Annotated[str | None, typer.Option(help="only deals in this DealStage")] = None,
    client: Annotated[str | None, typer.Option(help="only this client's deals (e-mail address)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List deals from Temporal's visibility store (search attributes)."""
    from dealflow.messages import DealStage

    if stage is not None and stage not in {s.value for s in DealStage}:
        raise _fail(f"--stage: unknown stage '{stage}'; one of {', '.join(s.value for s in DealStage)}", 2)
    if client is not None and "@" not in client:
        raise _fail(f"--client: '{client}' is not an e-mail address", 2)
    rows = asyncio.run(_list(stage, client))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("workflow", "status", "stage", "client", "amount (minor units)", "collected")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("workflow_id", "status", "stage", "client", "amount", "collected")))
    console.print(table)


@app.command()
def signal(
    deal_id: str,
    action: Annotated[str, typer.Argument(help=f"one of: {', '.join(ACTIONS)}")],
    data: Annotated[str, typer.Option(help="the action's input as JSON")] = "{}",
    operator: Annotated[
        str | None,
        typer.Option(
            envvar="DEALFLOW_OPERATOR",
            help="your name, recorded with an operator action (cancel_deal, resolve_dispute, ...)",
        ),
    ] = None,
) -> None:
    """Send a human action to a deal as a signal (for operators)."""
    model = ACTIONS.get(action)
    if model is None:
        raise _fail(f"ACTION: unknown action '{action}'; one of {', '.join(ACTIONS)}", 2)
    try:
        fields = json.loads(data)
    except json.JSONDecodeError as error:
        raise _fail(f"--data: not valid JSON ({error})", 2) from error
    if operator is not None:
        if not issubclass(model, OperatorAction):
            raise _fail(f"--operator: {action} is not an operator's action", 2)
        if isinstance(fields, dict) and fields.get("operator", operator) != operator:
            raise _fail("--operator: --data names another operator", 2)
        fields = {**fields, "operator": operator} if isinstance(fields, dict) else fields
    try:
        payload = parse_model(model, fields, "--data")
    except SpecError as error:
        raise _fail("; ".join(f"--data.{p}" for p in error.problems), 2) from error

    async def send() -> None:
        client = await _client()
        try:
            await client.get_workflow_handle(workflow_id_for(deal_id)).signal(action, payload)
        except RPCError as error:
            raise _fail(f"deal '{deal_id}': {error.message}") from error

    asyncio.run(send())
    console.print(f"sent {action} to {workflow_id_for(deal_id)}")


def _day(help: str) -> typer.models.OptionInfo:
    return typer.Option(formats=["%Y-%m-%d"], help=f"{help} (YYYY-MM-DD, UTC)")


@app.command()
def report(
    as_json: Annotated[bool, typer.Option("--json", help="JSON, money in integer minor units")] = False,
    since: Annotated[datetime | None, _day("only deals started on or after this day")] = None,
    mode: Annotated[MoneyMode | None, typer.Option(help="only this money: live, test or sandbox")] = None,
) -> None:
    """The truth report: funnel, confirmed money by state, revenue by month, durations."""
    from truth.report import run_report

    raise typer.Exit(run_report(as_json=as_json, since=since.date() if since else None, mode=mode))


@app.command()
def reconcile(
    since: Annotated[datetime | None, _day("first day of the period")] = None,
    until: Annotated[datetime | None, _day("last day of the period, included")] = None,
) -> None:
    """Compare the ledger with Stripe (or the sandbox); exit code 1 when anything differs."""
    from truth.reconcile import run_reconcile

    raise typer.Exit(run_reconcile(since=since.date() if since else None, until=until.date() if until else None))


@app.command()
def repair(
    deal_id: str,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only report; change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="reset without asking")] = False,
) -> None:
    """Reset a deal whose history no longer replays to its last good workflow task."""
    from repair.run import run_repair

    async def run() -> int:
        confirm = (lambda _: True) if yes else typer.confirm
        return await run_repair(await _client(), deal_id, dry_run=dry_run, confirm=confirm)

    raise typer.Exit(asyncio.run(run()))


@app.command("client-query")
def client_query(email: Annotated[str, typer.Argument(help="the client's e-mail address")]) -> None:
    """Print the Temporal UI query that finds one client's deals: `DealClient` holds a keyed
    hash of the address (DEALFLOW_CLIENT_SEARCH_SECRET), never the address itself."""
    if "@" not in email:
        raise _fail(f"EMAIL: '{email}' is not an e-mail address", 2)
    print(_client_query(email))


@app.command("payload-key")
def payload_key() -> None:
    """Print a new payload encryption key (`key-id:base64-key`): put it first in
    DEALFLOW_PAYLOAD_KEYS to encrypt with it, and keep the older keys after it to decrypt."""
    from dealflow.codec import new_payload_key

    print(new_payload_key())


@app.command()
def dev() -> None:
    """Run the whole stack in one terminal (Temporal, Postgres, Stripe sandbox, mail, worker, bridge)."""
    from devstack.run import main as run_dev

    raise typer.Exit(run_dev())


@app.command()
def demo(
    deals: Annotated[int, typer.Option(min=1, max=50, help="how many deals to play (the first 7 cover every path)")] = 7,
    keep_running: Annotated[
        bool | None,
        typer.Option(
            "--keep-running/--exit",
            help="keep a stack the demo started running afterwards (default: yes in a terminal)",
        ),
    ] = None,
) -> None:
    """Play deals end to end with simulated clients and vendors, on the dev stack."""
    from demo.run import main as run_demo

    raise typer.Exit(run_demo(deals, keep_running))


@app.command()
def chaos(
    deals: Annotated[int, typer.Option(min=1, max=1000, help="how many deals to play (the demo's scenarios)")] = 40,
    seed: Annotated[int, typer.Option(help="decides the faults and their moments: same seed, same plan")] = 7,
) -> None:
    """Play deals on a stack this command starts and breaks (worker and bridge kills, a Temporal
    restart, Stripe faults, forged webhooks), then check every end, replay and cent."""
    from chaos.run import main as run_chaos

    raise typer.Exit(run_chaos(deals, seed))


def _run_app() -> None:
    try:
        app()
    except ConfigError as error:
        err.print(f"[red]configuration error:[/red] {error}")
        sys.exit(2)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_and_exit(_run_app)


if __name__ == "__main__":
    main()

"""Launch a deal workflow from a spec file.

    python starter.py examples/website-redesign.yaml      (or: dealflow start SPEC)

Prints the workflow id and its Temporal UI link. An invalid spec prints every problem and exits
2; a deal id that already ran is refused (exit 1): one deal, one workflow, ever.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from dealflow.console import deal_details, deal_summary
from dealflow.contract import starting_search_attributes
from dealflow.db import create_pool, database_url
from dealflow.models import DealSpec
from dealflow.process import run_and_exit
from dealflow.settings import ConfigError, Settings, load_settings
from dealflow.specs import SpecError, load_spec
from dealflow.telemetry import start_tracing
from dealflow.temporal import connect, ui_link
from dealflow.vendors import VendorProblem, check_deal_vendor
from workflows.deal import DealWorkflow


class DealExists(RuntimeError):
    """A workflow for this deal id exists (running or finished)."""


async def start_deal(
    client: Client, spec: DealSpec, task_queue: str, client_search_secret: str | None = None
) -> WorkflowHandle:
    """Start the deal's workflow; the id policies make a second start of the same deal fail.

    `client_search_secret` (DEALFLOW_CLIENT_SEARCH_SECRET, required in production) keys the
    `DealClient` search attribute; without it the attribute is the client's address."""
    try:
        return await client.start_workflow(
            DealWorkflow.run,
            spec,
            id=spec.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={"title": spec.title},
            search_attributes=starting_search_attributes(
                spec, datetime.now(UTC), client_search_secret
            ),
            static_summary=deal_summary(spec),
            static_details=deal_details(spec),
        )
    except WorkflowAlreadyStartedError as error:
        raise DealExists(
            f"deal '{spec.deal_id}' already exists (workflow {spec.workflow_id}); "
            "choose a new deal_id: a deal is never started twice"
        ) from error


async def check_vendor(settings: Settings, spec: DealSpec) -> None:
    """A spec that names its vendor by id names one of `dealflow vendors list` (VendorProblem)."""
    if spec.vendor.vendor_id is None:
        return
    pool = await create_pool(database_url(settings), max_size=1)
    try:
        await check_deal_vendor(pool, spec.vendor)
    finally:
        await pool.close()


async def start_from_file(path: Path) -> int:
    """Validate, start and report; returns the process exit code."""
    try:
        spec = load_spec(path)
    except SpecError as error:
        print(f"invalid deal spec {error.source}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        start_tracing(settings, "dealflow-starter")
        await check_vendor(settings, spec)
        client = await connect(settings)
        handle = await start_deal(
            client, spec, settings.task_queue, settings.client_search_secret
        )
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except VendorProblem as error:
        print(f"invalid deal spec {path}:\n  - {error}", file=sys.stderr)
        return 2
    except DealExists as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # connection failures from the Temporal client
        print(f"cannot start the deal: {error}", file=sys.stderr)
        return 1
    print(f"started {handle.id}")
    print(f"Temporal UI: {ui_link(settings.temporal_ui_url, client.namespace, handle.id)}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python starter.py SPEC.yaml|SPEC.json", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(asyncio.run(start_from_file(Path(args[0]))))


if __name__ == "__main__":
    run_and_exit(main)

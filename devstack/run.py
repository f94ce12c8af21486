"""`dealflow dev`: the whole stack in one terminal, on fixed ports, persisting under `.dealflow/`.

    temporal   Temporal dev server (Web UI), or TEMPORAL_ADDRESS
    postgres   embedded PostgreSQL in .dealflow/pg, or DATABASE_URL
    sandbox    offline Stripe sandbox, or Stripe test mode with STRIPE_API_KEY
    smtp       sink keeping every mail in .dealflow/mail/, or SMTP_URL
    worker     DealWorkflow and the activities
    bridge     webhooks, portal, vendor and admin APIs, and the dev mailbox

Everything is decided and every port checked before anything starts, so a taken port is one
line naming the setting that moves it. Temporal and Postgres start at once, and the stack's code
is imported while they do; the rest starts as soon as both answer. Ctrl-C (or SIGTERM) stops the
parts in reverse order and waits for each; a second Ctrl-C stops without waiting. The Temporal
database, Postgres and the sandbox's state stay in `.dealflow/`, so the next `dealflow dev`
resumes every deal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from dealflow.contract import SEARCH_ATTRIBUTES
from dealflow.private_files import UMASK, make_private, write_private
from dealflow.secret_rules import dev_secrets_file
from dealflow.serve import PortInUse
from dealflow.settings import ConfigError, load_settings
from dealflow.temporal import connect
from devstack.logs import setup_dev_logging
from devstack.plan import HOST, DevPlan, DevStackError, check_ports, load_ports, make_plan
from devstack.postgres import embedded_postgres
from devstack.runtime import DevRuntime, bridge_alive, read_runtime, runtime_file
from devstack.temporal import DevServerConfig, DevServerFailed, temporal_dev_server

if TYPE_CHECKING:
    from devstack.stack import Stack

log = logging.getLogger("dealflow.dev")


@dataclass
class DevStack:
    plan: DevPlan
    stack: Stack
    runtime: DevRuntime


@asynccontextmanager
async def _temporal(plan: DevPlan) -> AsyncIterator[Client]:
    temporal_log = logging.getLogger("dealflow.dev.temporal")
    if plan.temporal_address is None:
        config = DevServerConfig(
            db_file=plan.home / "temporal.db", host=HOST, port=plan.ports.temporal, ui_port=plan.ports.temporal_ui
        )
        temporal_log.info("starting the dev server, history in %s", config.db_file)
        async with temporal_dev_server(config) as client:
            yield client
        return
    try:
        client = await connect(plan.settings)
    except RuntimeError as error:
        raise DevStackError(f"cannot reach Temporal at TEMPORAL_ADDRESS={plan.temporal_address}: {error}") from error
    temporal_log.info("using TEMPORAL_ADDRESS=%s, namespace %s", plan.temporal_address, client.namespace)
    await ensure_search_attributes(client)
    yield client


async def ensure_search_attributes(client: Client) -> None:
    """Register the deal search attributes on an external cluster; say how when not allowed."""
    temporal_log = logging.getLogger("dealflow.dev.temporal")
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {
            key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES if key.name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            temporal_log.info("registered search attributes %s", ", ".join(missing))
    except RPCError as error:
        temporal_log.warning(
            "could not check or register the search attributes (%s); register %s in namespace %s "
            "(temporal operator search-attribute create, or the Cloud UI)",
            error.message,
            ", ".join(key.name for key in SEARCH_ATTRIBUTES),
            client.namespace,
        )


@asynccontextmanager
async def _postgres(plan: DevPlan) -> AsyncIterator[str]:
    if plan.database_url is None:
        async with embedded_postgres(plan.home / "pg") as url:
            yield url
        return
    logging.getLogger("dealflow.dev.postgres").info("using DATABASE_URL=%s", redact_url(plan.database_url))
    yield plan.database_url


def redact_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def run_dev(plan: DevPlan) -> AsyncIterator[DevStack]:
    """Start every component of the plan; stop them in reverse when the block exits."""
    running = read_runtime(plan.home)
    if running is not None and running.pid != os.getpid() and await bridge_alive(running.bridge_url):
        raise DevStackError(f"dealflow dev already runs for {plan.home} (pid {running.pid}); stop it first")
    check_ports(plan)
    make_private(plan.home)
    async with AsyncExitStack() as resources:
        code = asyncio.ensure_future(asyncio.to_thread(_stack_code))
        client, database_url = await enter_together(resources, _temporal(plan), _postgres(plan))
        stack_module = await code
        settings = plan.settings
        config = stack_module.StackConfig(
            home=plan.home,
            database_url=database_url,
            task_queue=settings.task_queue,
            host=HOST,
            bridge_port=plan.ports.bridge,
            sandbox_port=plan.ports.sandbox,
            smtp_port=plan.ports.smtp,
            stripe_api_key=settings.stripe_api_key,
            stripe_webhook_secret=settings.stripe_webhook_secret,
            smtp_url=plan.smtp_url,
            temporal_ui_url=plan.temporal_ui_url,
            public_url=plan.public_url,
            secrets=plan.secrets,
        )
        stack = await resources.enter_async_context(stack_module.run_stack(config, client))
        runtime = DevRuntime(
            pid=os.getpid(),
            bridge_url=stack.bridge_url,
            public_url=plan.public_url,
            sandbox_url=stack.sandbox_url,
            sandbox_api_key=stack.settings.stripe_api_key if stack.sandbox_url else None,
            mail_dir=stack.mail.directory.resolve() if stack.mail else None,
            temporal_address=None if plan.temporal_address else f"{HOST}:{plan.ports.temporal}",
            temporal_ui_url=plan.temporal_ui_url,
            task_queue=settings.task_queue,
        )
        path = runtime_file(plan.home)
        write_private(path, runtime.model_dump_json(indent=2))
        resources.callback(path.unlink, missing_ok=True)
        _log_components(plan, stack)
        yield DevStack(plan, stack, runtime)
        log.info("stopping: bridge, worker, sandbox, smtp, then postgres and temporal")


def _stack_code() -> ModuleType:
    """`devstack.stack` with the bridge, the worker and the activities: a second of imports, so
    it is imported while the servers start."""
    import devstack.stack

    return devstack.stack


async def enter_together(resources: AsyncExitStack, *managers: AbstractAsyncContextManager[Any]) -> list[Any]:
    """Enter independent context managers at the same time; each joins `resources` once entered.
    When one fails the others are cancelled, and whatever had started stops with `resources`."""
    entering = [asyncio.ensure_future(resources.enter_async_context(manager)) for manager in managers]
    try:
        return list(await asyncio.gather(*entering))
    except BaseException:
        for task in entering:
            task.cancel()
        await asyncio.gather(*entering, return_exceptions=True)
        raise


def _log_components(plan: DevPlan, stack: Stack) -> None:
    if stack.sandbox_url:
        logging.getLogger("dealflow.sandbox").info(
            "offline Stripe sandbox on %s (state in %s)", stack.sandbox_url, plan.home / "sandbox.json"
        )
    else:
        logging.getLogger("dealflow.dev.stripe").info("Stripe test mode (STRIPE_API_KEY)")
    if stack.mail:
        logging.getLogger("dealflow.mailsink").info("sink on %s, mails kept in %s", stack.mail.url, stack.mail.directory)
    else:
        logging.getLogger("dealflow.mailsink").info("sending through SMTP_URL=%s", redact_url(stack.settings.smtp_url))
    logging.getLogger("dealflow.worker").info("polling task queue %r", plan.settings.task_queue)
    logging.getLogger("dealflow.bridge").info("listening on %s (links in mails: %s)", stack.bridge_url, plan.public_url)


def banner(dev: DevStack, heading: str = "dealflow dev is running.") -> str:
    """What a person needs after start: where to look, where the keys are, what to try."""
    plan, stack = dev.plan, dev.stack
    lines = ["", f"[bold]{heading}[/bold] Ctrl-C stops it; running deals resume on the next start.", ""]

    def row(label: str, value: str) -> None:
        lines.append(f"  [bold]{label:<13}[/bold] {value}")

    row("Temporal UI", f"{plan.temporal_ui_url}  (deals listed with their DealStage)")
    if plan.temporal_address is not None and "temporal_ui_url" not in plan.settings.model_fields_set:
        row("", "(for your cluster's UI link, set DEALFLOW_TEMPORAL_UI_URL)")
    row("Portal & API", f"{plan.public_url}  (API reference: {plan.public_url}/docs)")
    if stack.mail:
        row("Dev mailbox", f"{plan.public_url}/dev/mail  (files: {stack.mail.directory}/)")
    if stack.sandbox_url:
        row("Stripe", f"offline sandbox {stack.sandbox_url}  (sandbox money: nothing real moves)")
    else:
        row("Stripe", "test mode (STRIPE_API_KEY); keep its webhooks coming with:")
        row("", f"stripe listen --forward-to {plan.public_url}/webhooks/stripe")
    row("Postgres", "DATABASE_URL" if plan.database_url else f"embedded, data in {plan.home / 'pg'}")
    row("Secrets", f"{dev_secrets_file(plan.home)}  (DEALFLOW_ADMIN_TOKEN, DEALFLOW_VENDOR_TOKEN, ...)")
    if plan.temporal_address is None and plan.ports.temporal != 7233:
        row("Other shells", f"export TEMPORAL_ADDRESS={HOST}:{plan.ports.temporal}")
    lines += ["", "  Try, in another terminal:"]
    if stack.sandbox_url and stack.mail:
        lines.append("    dealflow demo                                    simulated clients and vendors, end to end")
    lines += ["    dealflow start examples/website-redesign.yaml    one deal; its SOW goes to the client by mail", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the command


class StopSignals:
    """SIGINT/SIGTERM for a command that runs a stack. Until `wait()` is reached a signal cancels
    the command at once (whatever started is stopped on the way out); while waiting, the first
    signal stops gracefully and a second one cancels without waiting."""

    def __init__(self) -> None:
        self._main = asyncio.current_task()
        self._stop = asyncio.Event()
        self._waiting = False
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)

    def _on_signal(self) -> None:
        if self._waiting and not self._stop.is_set():
            log.info("stopping (press Ctrl-C again to stop without waiting)")
            self._stop.set()
        elif self._main is not None:
            self._main.cancel()

    async def wait(self) -> None:
        self._waiting = True
        await self._stop.wait()


async def _serve(plan: DevPlan, console: Console) -> None:
    signals = StopSignals()
    try:
        async with run_dev(plan) as dev:
            console.print(banner(dev), highlight=False, soft_wrap=True)
            await signals.wait()
    except asyncio.CancelledError:
        log.info("stopped without waiting")
        return
    log.info("stopped; everything is kept in %s for the next start", plan.home)


def main() -> int:
    """`dealflow dev`; returns the exit code (2: fix a setting, 1: a component failed)."""
    os.umask(UMASK)  # what the stack and its servers write under the home is the owner's alone
    setup_dev_logging()
    console = Console()
    err = Console(stderr=True)
    try:
        plan = make_plan(load_settings(), load_ports())
        asyncio.run(_serve(plan, console))
    except (ConfigError, DevStackError, PortInUse) as error:
        err.print(f"[red]dealflow dev:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    except DevServerFailed as error:
        err.print(f"[red]dealflow dev:[/red] {error}; see the `temporal |` lines above", highlight=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

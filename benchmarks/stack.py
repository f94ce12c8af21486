"""The stack `dealflow dev` runs, in a home of its own, started and stopped by a benchmark.

The Temporal dev server as `dealflow dev` starts it (SQLite file with WAL), with its metrics
endpoint on a known port so the server's own action counter can be read; the embedded Postgres;
the SMTP sink and the Postgres pool of `devstack.stack`, in this process. The worker, the bridge
and the Stripe sandbox run as processes of their own (`python worker.py`, `dealflow bridge`,
`dealflow sandbox`) with the settings `dealflow dev` gives them, as production runs a worker and
a bridge: so each one's CPU can be read from /proc, and none waits for another's GIL.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

import worker as worker_module
from benchmarks.cpu import CpuMeter, Watched
from chaos.stack import ChildProcess, process_environment
from dealflow.serve import free_port
from devstack.postgres import embedded_postgres
from devstack.stack import Stack, StackConfig, run_stack
from devstack.temporal import DevServerConfig, temporal_dev_server

HOST = "127.0.0.1"
#: The processes whose CPU a benchmark reads: the stack's, and this one (the driver, the SMTP
#: sink and the vendors' server).
STACK_PROCESSES = ("temporal", "worker", "sandbox", "bridge", "postgres", "driver")
#: Seconds between two reads of the server's metrics that must agree.
METRICS_SETTLE_SECONDS = 1.5


@dataclass(frozen=True)
class MeteredDevServer(DevServerConfig):
    """The dev server of `dealflow dev`, with its Prometheus endpoint on `metrics_port`."""

    metrics_port: int = 0

    def command(self) -> list[str]:
        return [*super().command(), "--metrics-port", str(self.metrics_port)]

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


def parse_actions(metrics: str, namespace: str = "default") -> Counter[str]:
    """The server's `action` counter (what Temporal Cloud bills) by action type, for one namespace."""
    actions: Counter[str] = Counter()
    for line in metrics.splitlines():
        if not line.startswith("action{") or f'namespace="{namespace}"' not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        action_type = labels.split('action_type="', 1)[1].split('"', 1)[0]
        actions[action_type] += int(float(value))
    return actions


@dataclass
class BenchStack:
    home: Path
    stack: Stack
    sandbox_url: str
    webhook_secret: str
    temporal: MeteredDevServer
    processes: dict[str, Watched]
    #: The environment that gives a process this stack's settings (as the worker has them).
    environment: dict[str, str]

    def cpu_meter(self, *names: str, **more: Watched) -> CpuMeter:
        """A meter of the named stack processes (and of any others given)."""
        return CpuMeter({**{name: self.processes[name] for name in names}, **more})

    async def server_actions(self) -> Counter[str]:
        """The server's action counter once it holds still: the server reports its metrics in
        batches, so a read right after the work can miss the last of it."""
        async with httpx.AsyncClient(timeout=10) as http:

            async def read() -> Counter[str]:
                response = await http.get(self.temporal.metrics_url)
                response.raise_for_status()
                return parse_actions(response.text)

            latest = await read()
            while True:
                await asyncio.sleep(METRICS_SETTLE_SECONDS)
                previous, latest = latest, await read()
                if latest == previous:
                    return latest


def _child_pid(marker: str) -> int:
    """The pid of this process's child whose command line names `marker`."""
    for child in psutil.Process().children(recursive=True):
        if marker in " ".join(child.cmdline()):
            return child.pid
    raise RuntimeError(f"no child process runs with {marker}")


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _answers(url: str) -> Callable[[ChildProcess], Awaitable[bool]]:
    async def ready(_child: ChildProcess) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def _logged(text: str) -> Callable[[ChildProcess], Awaitable[bool]]:
    async def ready(child: ChildProcess) -> bool:
        return text in child.new_output()

    return ready


class ProcessDied(SystemExit):
    """A process of the stack exited while the benchmark ran: its figures would mean nothing
    (the script ends with this message and exit code 1)."""


@asynccontextmanager
async def stopped_if_one_dies(children: list[ChildProcess]) -> AsyncIterator[None]:
    """Run the block; if one of the processes exits meanwhile, end it with ProcessDied (naming
    the process and its log) instead of letting the deals wait for it."""
    block = asyncio.current_task()
    assert block is not None
    died: list[str] = []

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            for child in children:
                if child.process is not None and child.process.returncode is not None:
                    died.append(
                        f"the {child.name} exited (code {child.process.returncode}) while the benchmark ran; its log: {child.log_file}"
                    )
                    block.cancel()
                    return

    watcher = asyncio.create_task(watch())
    try:
        yield
    except asyncio.CancelledError:
        if died:
            raise ProcessDied(died[0]) from None
        raise
    finally:
        watcher.cancel()


@asynccontextmanager
async def bench_stack(home: Path) -> AsyncIterator[BenchStack]:
    """Start everything under `home`; stop it all, in reverse, when the block exits."""
    home.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as resources:
        temporal = MeteredDevServer(
            db_file=home / "temporal.db",
            host=HOST,
            port=free_port(HOST),
            ui_port=free_port(HOST),
            metrics_port=free_port(HOST),
        )
        client = await resources.enter_async_context(temporal_dev_server(temporal))
        database_url = await resources.enter_async_context(embedded_postgres(home / "pg"))
        bridge_port, sandbox_port = free_port(HOST), free_port(HOST)
        bridge_url = f"http://{HOST}:{bridge_port}"
        sandbox_url = f"http://{HOST}:{sandbox_port}"
        webhook_secret = "whsec_" + secrets.token_hex(24)
        api_key = "sk_test_" + secrets.token_hex(24)
        ui_url = f"http://{HOST}:{temporal.ui_port}"
        config = StackConfig(
            home, database_url, host=HOST, bridge_port=bridge_port, temporal_ui_url=ui_url,
            stripe_api_key=api_key, stripe_api_base=sandbox_url, stripe_webhook_secret=webhook_secret,
            run_worker=False, run_bridge=False,  # they run as processes of their own, below
        )  # fmt: skip
        stack = await resources.enter_async_context(run_stack(config, client))
        environment = process_environment(stack.settings, temporal.address)
        cli = [sys.executable, "-m", "dealflow.cli"]
        sandbox_command = [
            *cli, "sandbox", "--port", str(sandbox_port),
            "--webhook-url", f"{bridge_url}/webhooks/stripe",
            "--webhook-secret", webhook_secret,
            "--api-key", api_key,
            "--state-file", str(home / "sandbox.json"),
        ]  # fmt: skip
        children = [
            ChildProcess(
                "sandbox",
                sandbox_command,
                environment,
                home / "sandbox.log",
                _answers(f"{sandbox_url}/_sandbox"),
            ),
            ChildProcess(
                "worker",
                [sys.executable, worker_module.__file__],
                environment,
                home / "worker.log",
                _logged("worker polling task queue"),
            ),
            ChildProcess(
                "bridge",
                [*cli, "bridge", "--host", HOST, "--port", str(bridge_port)],
                environment,
                home / "bridge.log",
                _answers(f"{bridge_url}/healthz"),
            ),
        ]
        for child in children:
            await child.start()
            resources.push_async_callback(child.stop)
        processes = {child.name: Watched(child.process.pid) for child in children if child.process}
        processes["temporal"] = Watched(_child_pid(str(temporal.db_file)))
        processes["postgres"] = Watched(_postmaster_pid(home / "pg"), tree=True)
        processes["driver"] = Watched(psutil.Process().pid)
        async with stopped_if_one_dies(children):
            yield BenchStack(
                home, stack, sandbox_url, webhook_secret, temporal, processes, environment
            )

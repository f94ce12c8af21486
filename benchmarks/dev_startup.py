"""How long `dealflow dev` takes until every component answers, on a fresh home and an existing one.

    .venv/bin/python -m benchmarks.dev_startup [--runs 3] [--jsonl PATH]

Launches `dealflow dev` as a user does (a subprocess with its own DEALFLOW_HOME and free ports)
and, from the moment of launch, asks every component until it answers: the Temporal frontend
(gRPC health), the Temporal Web UI, the bridge's /readyz (Postgres and Temporal reachable), the
sandbox, the SMTP sink's greeting, and the worker (a poller on the deals task queue, as Temporal
sees it). It prints each component's time and the total (the slowest), then stops the stack
with Ctrl-C and times that too. Each run starts once on a fresh home and once more on the home
the first start left behind (Postgres initialised, migrations applied, history kept).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from benchmarks.figures import Report
from dealflow.serve import free_port

DEALFLOW = str(Path(sys.executable).parent / "dealflow")
HOST = "127.0.0.1"
POLL_INTERVAL = 0.02
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
TASK_QUEUE = "deals"


class DevProcess:
    """One `dealflow dev` on its own ports and home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ports = {
            name: free_port(HOST) for name in ("BRIDGE", "SANDBOX", "SMTP", "TEMPORAL", "TEMPORAL_UI")
        }
        self.process: asyncio.subprocess.Process | None = None

    def environment(self) -> dict[str, str]:
        own = ("DEALFLOW_", "TEMPORAL_", "STRIPE_", "DATABASE_URL", "SMTP_URL")
        environment = {key: value for key, value in os.environ.items() if not key.startswith(own)}
        environment.update({f"DEALFLOW_{name}_PORT": str(port) for name, port in self.ports.items()})
        environment.update(DEALFLOW_HOME=str(self.home), NO_COLOR="1", DEALFLOW_TASK_QUEUE=TASK_QUEUE)
        return environment

    async def launch(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home.parent / f"{self.home.name}-dev.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                DEALFLOW, "dev", env=self.environment(), cwd=self.home.parent,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip

    async def stop(self) -> float:
        """Ctrl-C, as a person stops it; seconds until the process exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise RuntimeError(f"dealflow dev did not stop within {STOP_TIMEOUT:.0f} s") from None
        if code != 0:
            raise RuntimeError(f"dealflow dev exited with {code}; see {self.home.parent}/{self.home.name}-dev.log")
        return time.monotonic() - started

    def url(self, name: str, path: str = "") -> str:
        return f"http://{HOST}:{self.ports[name]}{path}"


def answers_http(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(url)).status_code == 200

    return check


def answers_smtp(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            return (await asyncio.wait_for(reader.readline(), 1)).startswith(b"220")
        finally:
            writer.close()

    return check


class TemporalChecks:
    """The frontend's health and the worker's pollers, through one client once it connects."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.client: Client | None = None

    async def frontend(self) -> bool:
        if self.client is None:
            self.client = await Client.connect(self.address)
        return await self.client.service_client.check_health(timeout=timedelta(seconds=1))

    async def worker_polling(self) -> bool:
        if self.client is None:
            return False
        pollers = []
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            described = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.client.namespace, task_queue=TaskQueue(name=TASK_QUEUE), task_queue_type=kind
                )
            )
            pollers.append(bool(described.pollers))
        return all(pollers)


async def first_answer(check: Callable[[], Awaitable[bool]], started: float, process: DevProcess) -> float:
    """Seconds from `started` until `check` first returns True."""
    while True:
        assert process.process is not None
        if process.process.returncode is not None:
            raise RuntimeError(f"dealflow dev exited with {process.process.returncode} while starting")
        try:
            if await check():
                return time.monotonic() - started
        except (OSError, RuntimeError, RPCError, httpx.HTTPError, TimeoutError):
            pass
        if time.monotonic() - started > READY_TIMEOUT:
            raise RuntimeError(f"not ready within {READY_TIMEOUT:.0f} s")
        await asyncio.sleep(POLL_INTERVAL)


async def time_start(process: DevProcess) -> tuple[dict[str, float], float]:
    """Seconds to each component's first answer from launch, and seconds to stop again."""
    temporal = TemporalChecks(f"{HOST}:{process.ports['TEMPORAL']}")
    checks = {
        "temporal": temporal.frontend,
        "temporal_ui": answers_http(process.url("TEMPORAL_UI")),
        "bridge": answers_http(process.url("BRIDGE", "/readyz")),
        "sandbox": answers_http(process.url("SANDBOX", "/_sandbox")),
        "smtp": answers_smtp(process.ports["SMTP"]),
        "worker": temporal.worker_polling,
    }
    started = time.monotonic()
    await process.launch()
    try:
        times = await asyncio.gather(*(first_answer(check, started, process) for check in checks.values()))
    except BaseException:
        await process.stop()
        raise
    return dict(zip(checks, times, strict=True)), await process.stop()


async def run(runs: int, figures: Report, root: Path) -> None:
    for number in range(1, runs + 1):
        home = root / f"home-{number}"
        for scenario in ("fresh home", "existing home"):
            components, stop_seconds = await time_start(DevProcess(home))
            total = max(components.values())
            parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in components.items())
            figures.say(f"run {number}, {scenario}: ready in {total:.2f} s ({parts}); stopped in {stop_seconds:.2f} s")
            for name, seconds in components.items():
                figures.record(f"ready_{name}", round(seconds, 3), "s", home=scenario, run=number)
            figures.record("ready_total", round(total, 3), "s", home=scenario, run=number)
            figures.record("stop", round(stop_seconds, 3), "s", home=scenario, run=number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-then-existing home pairs (default 3)")
    parser.add_argument("--jsonl", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    figures = Report("dev_startup", args.jsonl)
    with tempfile.TemporaryDirectory(prefix="dev-startup-bench-") as root:
        asyncio.run(run(args.runs, figures, Path(root)))


if __name__ == "__main__":
    main()

"""The chaos run's own stack, built so that it can be broken: the worker and the bridge run as
OS processes of their own (`python worker.py`, `dealflow bridge`) with the stack's settings in
their environment, so they can be SIGKILLed and started again; the Temporal dev server can be
stopped and started again on the same database file. Postgres, the sandbox and the SMTP sink
are the dev stack's own pieces (`devstack.stack`), in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from dealflow.serve import free_port
from dealflow.settings import Settings
from devstack.postgres import embedded_postgres
from devstack.runtime import bridge_alive
from devstack.stack import Stack, StackConfig, run_stack
from devstack.temporal import DevServerConfig, die_with_parent, temporal_dev_server
from stripe_sandbox.control import SandboxControl

log = logging.getLogger("dealflow.chaos")

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 25.0
#: Settings of the parent's environment that must not leak into the stack's processes.
_OWN_PREFIXES = ("DEALFLOW_", "STRIPE_", "TEMPORAL_", "DATABASE_URL", "SMTP_URL")


def process_environment(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The environment that gives a `dealflow` process exactly these settings."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if field.alias and value is not None:
            environment[field.alias] = str(value).lower() if isinstance(value, bool) else str(value)
    environment["TEMPORAL_ADDRESS"] = temporal_address
    environment["TEMPORAL_NAMESPACE"] = "default"
    return environment


class ChildProcess:
    """One component as its own process: started, found ready, killed, started again."""

    def __init__(
        self,
        name: str,
        command: list[str],
        environment: dict[str, str],
        log_file: Path,
        ready: Callable[[ChildProcess], Awaitable[bool]],
    ) -> None:
        self.name = name
        self.command = command
        self.environment = environment
        self.log_file = log_file
        self._ready = ready
        self.process: asyncio.subprocess.Process | None = None
        self.log_offset = 0

    async def start(self) -> None:
        self.log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=self.environment,
                cwd=self.log_file.parent,  # no stray `.env` of the caller's directory
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while not await self._ready(self):
            if self.process.returncode is not None:
                raise RuntimeError(f"the {self.name} exited with code {self.process.returncode}: {self._last_words()}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the {self.name} was not ready within {READY_TIMEOUT:.0f}s: {self._last_words()}")
            await asyncio.sleep(0.2)
        log.info("%s running (pid %s)", self.name, self.process.pid)

    def _last_words(self) -> str:
        lines = [line for line in self.new_output().splitlines() if line.strip()]
        return " | ".join(lines[-5:]) + f" (all of it in {self.log_file})"

    def new_output(self) -> str:
        """What the process logged since it was last started."""
        with self.log_file.open("rb") as output:
            output.seek(self.log_offset)
            return output.read().decode(errors="replace")

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye, exactly what a crash does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        log.info("%s killed", self.name)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def _worker_polling(child: ChildProcess) -> bool:
    return "worker polling task queue" in child.new_output()


def _bridge_healthy(url: str) -> Callable[[ChildProcess], Awaitable[bool]]:
    async def healthy(_child: ChildProcess) -> bool:
        return await bridge_alive(url)

    return healthy


def worker_process(environment: dict[str, str], log_file: Path, name: str = "worker") -> ChildProcess:
    """`python worker.py` with these settings; ready once it polls its task queue."""
    import worker as worker_module

    return ChildProcess(name, [sys.executable, worker_module.__file__], environment, log_file, _worker_polling)


def bridge_process(
    environment: dict[str, str], port: int, log_file: Path, name: str = "bridge", host: str = HOST
) -> ChildProcess:
    """`dealflow bridge` on `host:port` with these settings; ready once /healthz answers."""
    return ChildProcess(
        name,
        [sys.executable, "-m", "dealflow.cli", "bridge", "--host", host, "--port", str(port)],
        environment,
        log_file,
        _bridge_healthy(f"http://{host}:{port}"),
    )


class RestartableTemporal:
    """The dev server of `dealflow dev`, stoppable and started again on the same database file
    and port; clients connected to it reconnect by themselves."""

    def __init__(self, db_file: Path) -> None:
        self.config = DevServerConfig(db_file=db_file, host=HOST, port=free_port(HOST), ui_port=free_port(HOST))
        self._running: AsyncExitStack | None = None

    async def start(self) -> Client:
        running = AsyncExitStack()
        client = await running.enter_async_context(temporal_dev_server(self.config))
        self._running = running
        return client

    async def stop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            await running.aclose()


@dataclass
class ChaosStack:
    stack: Stack
    temporal: RestartableTemporal
    worker: ChildProcess
    bridge: ChildProcess

    def sandbox_control(self) -> SandboxControl:
        return self.stack.sandbox_control(timeout=30)

    @property
    def environment(self) -> dict[str, str]:
        return self.worker.environment

    async def kill_worker(self, down_seconds: float) -> None:
        await self.worker.kill()
        await asyncio.sleep(down_seconds)
        await self.worker.start()

    async def kill_bridge(self, down_seconds: float) -> None:
        await self.bridge.kill()
        await asyncio.sleep(down_seconds)
        await self.bridge.start()

    async def restart_temporal(self, down_seconds: float) -> None:
        await self.temporal.stop()
        log.info("Temporal stopped; starting it again on %s", self.temporal.config.db_file)
        await asyncio.sleep(down_seconds)
        await self.temporal.start()


@asynccontextmanager
async def chaos_stack(home: Path) -> AsyncIterator[ChaosStack]:
    """Start everything under `home`; stop it all, in reverse, when the block exits."""
    home.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as resources:
        temporal = RestartableTemporal(home / "temporal.db")
        client = await temporal.start()
        resources.push_async_callback(temporal.stop)
        database_url = await resources.enter_async_context(embedded_postgres(home / "pg"))
        bridge_port = free_port(HOST)
        config = StackConfig(
            home=home,
            database_url=database_url,
            host=HOST,
            bridge_port=bridge_port,
            temporal_ui_url=f"http://{HOST}:{temporal.config.ui_port}",
            webhook_retry_base_seconds=1.0,
            run_worker=False,
            run_bridge=False,
        )
        stack = await resources.enter_async_context(run_stack(config, client))
        environment = process_environment(stack.settings, temporal.config.address)
        worker = worker_process(environment, home / "worker.log")
        bridge = bridge_process(environment, bridge_port, home / "bridge.log")
        for child in (worker, bridge):
            await child.start()
            resources.push_async_callback(child.stop)
        yield ChaosStack(stack, temporal, worker, bridge)

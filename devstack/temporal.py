"""The Temporal dev server as a supervised child of `dealflow dev`.

It runs in its own session, so a Ctrl-C in the terminal reaches only `dealflow dev`, which stops
the worker first (no burst of connection errors) and then terminates and waits for the server.
On Linux the child also gets SIGTERM if `dealflow dev` itself dies without cleaning up, so a
killed parent never leaves a server holding the ports and the database file.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from dealflow.binaries import temporal_cli
from dealflow.contract import SEARCH_ATTRIBUTES
from dealflow.private_files import UMASK, private_directory
from devstack.logs import pump_lines

log = logging.getLogger("dealflow.dev.temporal")

#: WAL and relaxed fsync double the dev server's throughput against SQLite's default file mode.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
START_TIMEOUT = 60.0
#: Lines of the server's output kept to say why it stopped, when it stops while starting.
LAST_WORDS = 5
STOP_TIMEOUT = 10.0
#: A refused connection costs nothing: ask often, so the stack goes on the moment the server answers.
READY_POLL_INTERVAL = 0.05


class DevServerFailed(RuntimeError):
    """The dev server exited or never answered; its own output is in the `temporal |` lines."""



def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` arguments for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "DATETIME": "Datetime"}
    return [
        arg
        for key in SEARCH_ATTRIBUTES
        for arg in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]

@dataclass(frozen=True)
class DevServerConfig:
    db_file: Path
    host: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        args = [
            temporal_cli(), "server", "start-dev",
            "--db-filename", str(self.db_file),
            "--ip", self.host,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            *search_attribute_flags(),
        ]  # fmt: skip
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
        return args


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _in_the_child() -> None:
    """Before the server runs: its database and logs are the owner's alone, and it dies with us."""
    os.umask(UMASK)
    if sys.platform == "linux":
        die_with_parent()


@asynccontextmanager
async def temporal_dev_server(config: DevServerConfig) -> AsyncIterator[Client]:
    """Start the dev server, yield a client connected to it, and stop the server on exit."""
    private_directory(config.db_file.parent)
    process = await asyncio.create_subprocess_exec(
        *config.command(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_in_the_child,
    )
    assert process.stdout is not None and process.stderr is not None
    said: deque[str] = deque(maxlen=LAST_WORDS)
    pumps = [asyncio.create_task(pump_lines(stream, log, said)) for stream in (process.stdout, process.stderr)]
    try:
        yield await _connect_when_ready(config, process, pumps, said)
    finally:
        await _stop(process)
        # The pipes close when the process exits; the pumps then drain and end by themselves.
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps), timeout=2)
        for pump in pumps:
            pump.cancel()


async def _connect_when_ready(
    config: DevServerConfig,
    process: asyncio.subprocess.Process,
    pumps: list[asyncio.Task[None]],
    said: deque[str],
) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        if process.returncode is not None:
            # Its last lines say why (a port taken, a database it cannot open): read them to the end.
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pumps), timeout=2)
            last = "; ".join(said) or "nothing"
            raise DevServerFailed(f"the Temporal dev server exited with code {process.returncode}; it said: {last}")
        try:
            return await Client.connect(config.address, data_converter=pydantic_data_converter)
        except RuntimeError as error:
            if loop.time() > deadline:
                raise DevServerFailed(
                    f"the Temporal dev server did not answer on {config.address} within {START_TIMEOUT:.0f}s"
                ) from error
        await asyncio.sleep(READY_POLL_INTERVAL)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, wait, and only then SIGKILL: the server flushes its SQLite file on a clean stop."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT)
    except TimeoutError:
        log.warning("dev server did not stop within %.0fs; killing it", STOP_TIMEOUT)
        process.kill()
        await process.wait()
    except asyncio.CancelledError:  # a second Ctrl-C: no more waiting, but no orphan either
        process.kill()
        raise
    log.info("stopped")

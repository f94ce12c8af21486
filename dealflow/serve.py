"""Run an ASGI app with uvicorn inside the current event loop, on a chosen or free port.

The dev stack, the CLI and the tests all serve the sandbox and the bridge this way, so a test
exercises the very server a user runs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG


class PortInUse(RuntimeError):
    """The port is taken; the message names the setting or flag that changes it."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int, setting: str) -> None:
    """Raise PortInUse naming `setting` if something already listens on host:port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise PortInUse(f"port {port} on {host} is already in use; change it with {setting}") from error


def server_config(
    app, *, host: str, port: int, log_level: str = "warning", log_config: dict[str, Any] | None = LOGGING_CONFIG
) -> uvicorn.Config:
    """uvicorn's settings for `app`: no access log (the bridge's metrics count requests), and HTTP
    parsed by httptools, a dependency (h11, uvicorn's fallback, cost a fifth more CPU a webhook);
    asked for by name, so a missing parser fails at start instead of slowing every request."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config,
        lifespan="on",
        access_log=False,
        http="httptools",
    )


@asynccontextmanager
async def serve_app(
    app,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    log_config: dict[str, Any] | None = LOGGING_CONFIG,
) -> AsyncIterator[str]:
    """Serve `app` until the block exits; yields its base URL (http://host:port). With
    `log_config` None, uvicorn's records go to the process's own handlers (JSON in production)."""
    if port == 0:
        port = free_port(host)
    server = uvicorn.Server(server_config(app, host=host, port=port, log_level=log_level, log_config=log_config))
    # _serve skips uvicorn's signal capture: the owner of the event loop handles Ctrl-C.
    task = asyncio.create_task(server._serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"server on {host}:{port} stopped while starting")
            await asyncio.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task

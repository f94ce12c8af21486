"""The runtime file: where a running dev stack can be reached, for commands that join it."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
from pydantic import BaseModel, ValidationError
from temporalio.client import Client

from dealflow.settings import Settings
from dealflow.temporal import connect, data_converter

RUNTIME_FILE = "dev-stack.json"


class DevRuntime(BaseModel):
    """Where a running dev stack can be reached; `dealflow demo` joins it through this file."""

    pid: int
    bridge_url: str
    public_url: str
    sandbox_url: str | None
    #: The key the dev stack's sandbox issued (it accepts no other).
    sandbox_api_key: str | None = None
    mail_dir: Path | None
    #: None when Temporal is external: connect through envconfig (TEMPORAL_ADDRESS) instead.
    temporal_address: str | None
    temporal_ui_url: str
    task_queue: str


def runtime_file(home: Path) -> Path:
    return home / RUNTIME_FILE


def read_runtime(home: Path) -> DevRuntime | None:
    """The runtime of a dev stack whose process still exists, or None."""
    path = runtime_file(home)
    try:
        runtime = DevRuntime.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return None
    return runtime if psutil.pid_exists(runtime.pid) else None


async def bridge_alive(bridge_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{bridge_url}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def connect_runtime(runtime: DevRuntime, settings: Settings) -> Client:
    """A Temporal client for a running dev stack, encoding payloads as its `settings` say."""
    if runtime.temporal_address is None:
        return await connect(settings)
    return await Client.connect(runtime.temporal_address, data_converter=data_converter(settings))

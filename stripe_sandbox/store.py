"""The sandbox's state: every object it made, its events, idempotency records, the money log,
its clock and its webhook endpoint. In memory, optionally kept in a JSON file (written atomically
shortly after each burst of changes, and on shutdown), so a restarted `dealflow dev` still knows
yesterday's sessions.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import string
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_ALPHABET = string.ascii_letters + string.digits
STATE_VERSION = 1
#: Changes within this many seconds are written together: one write per burst, not per request.
SAVE_DELAY_SECONDS = 0.2


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass
class SandboxState:
    webhook_secret: str
    webhook_url: str | None = None
    #: Seconds added to the wall clock by `/_sandbox/clock/advance`.
    clock_offset: int = 0
    #: Every Stripe object by id: sessions, intents, charges, refunds, transfers, disputes, events.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Event ids in creation order (the list endpoint answers newest first).
    event_ids: list[str] = field(default_factory=list)
    #: Idempotency-Key -> the request it was first used for and the answer given.
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every movement of money, in order: the sandbox's own ledger for cent-for-cent checks.
    money: list[dict[str, Any]] = field(default_factory=list)
    #: Webhook deliveries not yet acknowledged: {"event_id", "attempt"}.
    pending_deliveries: list[dict[str, Any]] = field(default_factory=list)

    def now(self) -> int:
        """The sandbox's clock in Unix seconds: wall time plus what tests advanced."""
        return int(time.time()) + self.clock_offset


class Store:
    """Holds the state; `save()` persists it (soon, batched) when a state file was given."""

    def __init__(self, state: SandboxState, path: Path | None = None) -> None:
        self.state = state
        self.path = path
        self._dirty = False
        self._pending_flush: asyncio.TimerHandle | None = None

    @classmethod
    def open(
        cls, path: Path | None, *, webhook_url: str | None, webhook_secret: str | None
    ) -> Store:
        """Load `path` if it exists; explicit webhook settings override the stored ones."""
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            if data.pop("version", None) != STATE_VERSION:
                raise RuntimeError(f"{path} was written by another sandbox version; move it away")
            state = SandboxState(**data)
        else:
            state = SandboxState(webhook_secret=webhook_secret or new_webhook_secret())
        if webhook_secret:
            state.webhook_secret = webhook_secret
        if webhook_url:
            state.webhook_url = webhook_url
        store = cls(state, path)
        store._dirty = True
        store.flush()
        return store

    def save(self) -> None:
        """Note a change; it reaches the file within SAVE_DELAY_SECONDS (or at `flush()`)."""
        if self.path is None:
            return
        self._dirty = True
        if self._pending_flush is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._pending_flush = loop.call_later(SAVE_DELAY_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the whole state to a temporary file and rename it over the old one."""
        if self._pending_flush is not None:
            self._pending_flush.cancel()
            self._pending_flush = None
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {"version": STATE_VERSION, **asdict(self.state)}, separators=(",", ":")
        )
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(payload)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise
        self._dirty = False

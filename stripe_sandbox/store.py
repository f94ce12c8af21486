"""The sandbox's state: every object it made, idempotency records, the money log, pending
webhook deliveries, its clock and its webhook endpoint, with the indexes that keep lookups cheap.

In memory, optionally kept in a state file so a restarted `dealflow dev` still knows yesterday's
sessions: each change is given to the store (`put`, `record_money`, ...) and `commit` appends
what changed since the last commit to the journal as one line; `close` (and a journal grown past
the snapshot's size) compacts everything into a fresh snapshot. See `journal` for the files.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stripe_sandbox.indexes import Indexes
from stripe_sandbox.journal import (
    Journal,
    journal_path,
    read_commits,
    write_atomically,
)

_ALPHABET = string.ascii_letters + string.digits
#: 1: the whole state in one file, rewritten after changes; 2: a snapshot plus its journal.
STATE_VERSION = 2
#: A journal is compacted once it is larger than this and than the snapshot it follows.
COMPACT_AFTER_BYTES = 16 * 1024 * 1024
_SETTINGS = ("webhook_url", "webhook_secret", "clock_offset", "api_key")

log = logging.getLogger("stripe_sandbox.store")


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def new_api_key() -> str:
    """A secret test key: `sk_test_` and 96 hex digits (384 random bits)."""
    return "sk_test_" + secrets.token_hex(48)


@dataclass
class SandboxState:
    webhook_secret: str
    webhook_url: str | None = None
    #: The one secret key the sandbox accepts (Stripe answers 401 to a key it did not issue).
    api_key: str = field(default_factory=new_api_key)
    #: Seconds added to the wall clock by `/_sandbox/clock/advance`.
    clock_offset: int = 0
    #: Every Stripe object by id, in creation order: sessions, intents, charges, refunds,
    #: transfers, disputes, events.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Idempotency-Key -> the request it was first used for and the answer given.
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every movement of money, in order: the sandbox's own ledger for cent-for-cent checks.
    money: list[dict[str, Any]] = field(default_factory=list)
    #: Webhook deliveries not yet acknowledged, by delivery id: {"event_id", "attempt"}.
    pending_deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def now(self) -> int:
        """The sandbox's clock in Unix seconds: wall time plus what tests advanced."""
        return int(time.time()) + self.clock_offset


@dataclass
class _Changes:
    """What changed since the last commit (values are read at commit time)."""

    objects: dict[str, None] = field(default_factory=dict)
    money: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, None] = field(default_factory=dict)
    deliveries: dict[str, None] = field(default_factory=dict)
    settings: bool = False

    def record(self, state: SandboxState) -> dict[str, Any]:
        """The journal line for these changes (only the kinds that changed)."""
        record: dict[str, Any] = {}
        if self.objects:
            record["objects"] = [state.objects[object_id] for object_id in self.objects]
        if self.money:
            record["money"] = self.money
        if self.idempotency:
            record["idempotency"] = {key: state.idempotency[key] for key in self.idempotency}
        if self.deliveries:
            record["deliveries"] = {
                delivery_id: state.pending_deliveries.get(delivery_id)
                for delivery_id in self.deliveries
            }
        if self.settings:
            record["settings"] = {name: getattr(state, name) for name in _SETTINGS}
        return record


class Store:
    """Holds the state and its indexes; every change goes through a method here, so the
    indexes stay in step and `commit()` knows what to journal."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.indexes = Indexes()
        self._answers_by_age: deque[tuple[int, str]] = deque()
        self._path: Path | None = None
        self._journal: Journal | None = None
        self._snapshot_size = 0
        self._compact_after = COMPACT_AFTER_BYTES
        self._changes = _Changes()
        for obj in state.objects.values():
            self.indexes.add(obj)
        for entry in state.money:
            self.indexes.add_money(entry)
        for key, answer in state.idempotency.items():
            self._answers_by_age.append((answer["created"], key))

    @classmethod
    def open(
        cls,
        path: Path | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
        api_key: str | None = None,
        compact_after_bytes: int = COMPACT_AFTER_BYTES,
    ) -> Store:
        """Load `path` and replay its journal if they exist; explicit webhook settings and API
        key override the stored ones."""
        generation, state, migrated = _load_snapshot(path)
        state = state or SandboxState(webhook_secret=webhook_secret or new_webhook_secret())
        store = cls(state)
        if path is None:
            store._apply_settings(webhook_url, webhook_secret, api_key)
            return store
        store._path = path
        store._compact_after = compact_after_bytes
        commits = read_commits(journal_path(path), generation)
        for commit in commits:
            store._replay(commit)
        store._apply_settings(webhook_url, webhook_secret, api_key)
        if migrated or commits or not path.exists():
            store._compact(generation + 1)
        else:
            store._snapshot_size = path.stat().st_size
            store._journal = Journal.start(journal_path(path), generation)
            store.commit()
        return store

    # ------------------------------------------------------------------ changes

    def put(self, obj: dict[str, Any]) -> None:
        """Store a new or changed object (call it after changing one)."""
        self.state.objects[obj["id"]] = obj
        self.indexes.add(obj)
        self._changes.objects[obj["id"]] = None

    def record_money(self, entry: dict[str, Any]) -> None:
        self.state.money.append(entry)
        self.indexes.add_money(entry)
        self._changes.money.append(entry)

    def remember_answer(self, key: str, answer: dict[str, Any]) -> None:
        """Keep the answer given to an Idempotency-Key (`answer["created"]` says when)."""
        self.state.idempotency[key] = answer
        self._answers_by_age.append((answer["created"], key))
        self._changes.idempotency[key] = None

    def forget_answers_before(self, cutoff: int) -> None:
        """Drop idempotency answers created before `cutoff`, oldest first."""
        while self._answers_by_age and self._answers_by_age[0][0] < cutoff:
            created, key = self._answers_by_age.popleft()
            answer = self.state.idempotency.get(key)
            if answer is not None and answer["created"] == created:
                del self.state.idempotency[key]

    def set_delivery(self, delivery_id: str, pending: dict[str, Any] | None) -> None:
        """A webhook delivery still to make ({"event_id", "attempt"}), or None once it is done."""
        if pending is None:
            self.state.pending_deliveries.pop(delivery_id, None)
        else:
            self.state.pending_deliveries[delivery_id] = pending
        self._changes.deliveries[delivery_id] = None

    def set_webhook(self, url: str | None, secret: str | None) -> None:
        self.state.webhook_url = url
        if secret:
            self.state.webhook_secret = secret
        self._changes.settings = True

    def advance_clock(self, seconds: int) -> None:
        self.state.clock_offset += seconds
        self._changes.settings = True

    # ------------------------------------------------------------------ persistence

    def commit(self) -> None:
        """Append what changed since the last commit to the journal, as one line."""
        changes, self._changes = self._changes, _Changes()
        if self._journal is None:
            return
        record = changes.record(self.state)
        if not record:
            return
        self._journal.append(record)
        if self._journal.size > max(self._compact_after, self._snapshot_size):
            self._compact(self._journal.generation + 1)

    def close(self) -> None:
        """Commit, then fold the journal into a fresh snapshot."""
        self.commit()
        if self._journal is not None:
            self._compact(self._journal.generation + 1)
            self._journal.close()
            self._journal = None

    def _compact(self, generation: int) -> None:
        assert self._path is not None
        snapshot = {"version": STATE_VERSION, "generation": generation, **vars(self.state)}
        data = json.dumps(snapshot, separators=(",", ":")).encode()
        write_atomically(self._path, data)
        self._snapshot_size = len(data)
        if self._journal is not None:
            self._journal.close()
        self._journal = Journal.start(journal_path(self._path), generation)
        self._changes = _Changes()

    def _replay(self, commit: dict[str, Any]) -> None:
        for obj in commit.get("objects", ()):
            self.put(obj)
        for entry in commit.get("money", ()):
            self.record_money(entry)
        for key, answer in commit.get("idempotency", {}).items():
            self.remember_answer(key, answer)
        for delivery_id, pending in commit.get("deliveries", {}).items():
            self.set_delivery(delivery_id, pending)
        if "settings" in commit:
            for name in _SETTINGS:
                setattr(self.state, name, commit["settings"].get(name, getattr(self.state, name)))

    def _apply_settings(
        self, webhook_url: str | None, webhook_secret: str | None, api_key: str | None
    ) -> None:
        if webhook_url or webhook_secret:
            self.set_webhook(webhook_url or self.state.webhook_url, webhook_secret)
        if api_key and api_key != self.state.api_key:
            self.state.api_key = api_key
            self._changes.settings = True


def _load_snapshot(path: Path | None) -> tuple[int, SandboxState | None, bool]:
    """(generation, state, migrated): the snapshot at `path`, a version 1 file turned into one."""
    if path is None or not path.exists():
        return 0, None, False
    data = json.loads(path.read_text())
    version = data.pop("version", None)
    if version == STATE_VERSION:
        generation = data.pop("generation")
        return generation, SandboxState(**data), False
    if version == 1:
        log.warning(
            "%s was written by an older sandbox (one file rewritten after changes); "
            "loading it and keeping it from now on as a snapshot plus %s",
            path,
            journal_path(path).name,
        )
        data.pop("event_ids")
        pending = data.pop("pending_deliveries")
        state = SandboxState(**data)
        state.pending_deliveries = {new_id("whd_", 16): delivery for delivery in pending}
        return 0, state, True
    raise RuntimeError(f"{path} was written by another sandbox version ({version}); move it away")

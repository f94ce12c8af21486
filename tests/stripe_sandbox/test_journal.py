"""The state file and its journal: every answered change is in the journal as it happens, so a
sandbox that dies keeps everything; a torn last line is dropped; the journal is folded into the
snapshot on shutdown and when it grows; and a state file written by an older sandbox (one JSON
document, rewritten after changes) still loads."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stripe_sandbox.control import TEST_CARD_DECLINED
from stripe_sandbox.journal import journal_path
from stripe_sandbox.store import STATE_VERSION, Store
from tests.stripe_contract.harness import (
    RunningSandbox,
    eventually,
    running_sandbox,
    session_params,
)


def state_of(store: Store) -> dict[str, Any]:
    """What must survive a restart (the webhook URL is each run's own receiver)."""
    state = store.state
    return {
        "objects": state.objects,
        "idempotency": state.idempotency,
        "money": state.money,
        "pending_deliveries": state.pending_deliveries,
        "clock_offset": state.clock_offset,
        "webhook_secret": state.webhook_secret,
        "api_key": state.api_key,
    }


def copy_as_a_crash_leaves_it(state_file: Path, into: Path) -> Path:
    """The state file and journal of a running sandbox, as they would be if it died now."""
    into.mkdir()
    shutil.copy(state_file, into / state_file.name)
    shutil.copy(journal_path(state_file), journal_path(into / state_file.name))
    return into / state_file.name


class CrashChecks:
    """After each step, loads what a crash would leave and compares it with the live state."""

    def __init__(self, sandbox: RunningSandbox, state_file: Path, scratch: Path) -> None:
        self._sandbox = sandbox
        self._state_file = state_file
        self._scratch = scratch
        self.steps = 0

    def __call__(self) -> None:
        self.steps += 1
        copy = copy_as_a_crash_leaves_it(self._state_file, self._scratch / f"step-{self.steps}")
        loaded = Store.open(copy, webhook_url=None, webhook_secret=None)
        assert state_of(loaded) == state_of(self._sandbox.app.state.store), f"step {self.steps}"


async def some_of_everything(sandbox: RunningSandbox, check: Callable[[], None]) -> str:
    """A declined card, sessions paid and expired, a capture, a refund, a transfer, a dispute, a moved clock,
    with `check()` after each; returns the paid session's id (Idempotency-Key `journal-1`)."""
    client = sandbox.client()
    sessions = client.v1.checkout.sessions
    paid = await sessions.create_async(session_params(7000), {"idempotency_key": "journal-1"})
    check()
    await sandbox.control.pay(paid.id, TEST_CARD_DECLINED)
    check()
    await sandbox.control.pay(paid.id)
    check()
    expired = await sessions.create_async(session_params())
    await sessions.expire_async(expired.id)
    check()
    held = await client.v1.payment_intents.create_async(
        {
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    check()
    await client.v1.payment_intents.capture_async(held.id, {"amount_to_capture": 2500})
    check()
    await client.v1.refunds.create_async({"payment_intent": held.id, "amount": 500})
    check()
    captured = await client.v1.payment_intents.retrieve_async(held.id)
    vendor = await client.v1.accounts.create_async({"type": "express"})
    check()
    await sandbox.control.onboard_account(vendor.id)
    check()
    await client.v1.transfers.create_async(
        {
            "amount": 2000,
            "currency": "usd",
            "destination": vendor.id,
            "source_transaction": captured.latest_charge,
        }
    )
    check()
    dispute = await sandbox.control.open_dispute(payment_intent=held.id)
    check()
    await sandbox.control.close_dispute(dispute["id"], "won")
    check()
    await sandbox.control.advance_clock(120)
    check()

    async def delivered() -> bool:
        return (await sandbox.control.deliveries())["pending"] == 0

    await eventually(delivered, what="every webhook delivered")
    check()
    return paid.id


async def test_a_sandbox_that_dies_keeps_everything_it_answered(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        paid = await some_of_everything(first, CrashChecks(first, state_file, tmp_path))
        crashed = copy_as_a_crash_leaves_it(state_file, tmp_path / "crashed")
        before = state_of(first.app.state.store)
    assert json.loads(crashed.read_text())["generation"] == 1
    async with running_sandbox(state_file=crashed) as second:
        assert state_of(second.app.state.store) == before
        replay = await second.client().v1.checkout.sessions.create_async(
            session_params(7000), {"idempotency_key": "journal-1"}
        )
        assert (replay.id, replay.status) == (paid, "open")
    assert json.loads(crashed.read_text())["generation"] == 3


async def test_a_torn_last_line_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        await some_of_everything(first, lambda: None)
        crashed = copy_as_a_crash_leaves_it(state_file, tmp_path / "crashed")
        before = state_of(first.app.state.store)
    journal = journal_path(crashed)
    last = journal.read_bytes().splitlines()[-1]
    with journal.open("ab") as out:
        out.write(last[: len(last) // 2])
    with caplog.at_level(logging.WARNING, logger="stripe_sandbox"):
        async with running_sandbox(state_file=crashed) as second:
            assert state_of(second.app.state.store) == before
            later = await second.client().v1.checkout.sessions.create_async(session_params())
    assert "dropped a torn last line" in caplog.text
    async with running_sandbox(state_file=crashed) as third:
        assert (await third.client().v1.checkout.sessions.retrieve_async(later.id)).status == "open"


def test_a_journal_is_compacted_when_it_outgrows_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    store = Store.open(path, webhook_url=None, webhook_secret=None, compact_after_bytes=4096)
    for number in range(200):
        store.put(transfer(number))
        store.commit()
        assert journal_path(path).stat().st_size <= max(4096, path.stat().st_size) + 400
    generation = json.loads(path.read_text())["generation"]
    assert generation > 2
    store.close()
    assert json.loads(journal_path(path).read_bytes()) == {"generation": generation + 1}
    reopened = Store.open(path, webhook_url=None, webhook_secret=None)
    assert list(reopened.state.objects) == [f"tr_{number}" for number in range(200)]
    assert len(reopened.indexes.timelines["transfer"]) == 200


def test_a_journal_the_snapshot_already_holds_is_not_replayed(tmp_path: Path) -> None:
    """A crash after a compaction wrote the new snapshot but before it replaced the journal."""
    path = tmp_path / "sandbox.json"
    store = Store.open(path, webhook_url=None, webhook_secret=None)
    store.put(transfer(1))
    store.record_money({"kind": "transfer", "amount": 100, "currency": "usd"})
    store.commit()
    older_journal = journal_path(path).read_bytes()
    store.close()
    journal_path(path).write_bytes(older_journal)
    reopened = Store.open(path, webhook_url=None, webhook_secret=None)
    assert reopened.state.money == [{"kind": "transfer", "amount": 100, "currency": "usd"}]
    assert reopened.indexes.money_totals == {("usd", "transfer"): 100}


def test_a_broken_line_before_the_last_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    store = Store.open(path, webhook_url=None, webhook_secret=None)
    for number in range(2):
        store.put(transfer(number))
        store.commit()
    header, first, second = journal_path(path).read_bytes().splitlines()
    journal_path(path).write_bytes(b"\n".join([header, first[:-3], second, b""]))
    with pytest.raises(RuntimeError, match="line 2 is not JSON"):
        Store.open(path, webhook_url=None, webhook_secret=None)


async def test_a_state_file_of_an_older_sandbox_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    current = tmp_path / "current.json"
    async with running_sandbox(state_file=current, retry_base_seconds=3600) as first:
        paid = await some_of_everything(first, lambda: None)
        first.receiver.fail_next(1)
        waiting = await first.client().v1.checkout.sessions.create_async(session_params())
        await first.client().v1.checkout.sessions.expire_async(waiting.id)
        await eventually(lambda: first.receiver.attempts > len(first.receiver.events), what="a 500")
        before = state_of(first.app.state.store)
    older = tmp_path / "older.json"
    older.write_text(json.dumps(as_version_1(json.loads(current.read_text()))))

    with caplog.at_level(logging.WARNING, logger="stripe_sandbox"):
        async with running_sandbox(state_file=older) as second:
            assert "written by an older sandbox" in caplog.text
            await second.receiver.wait_for(waiting.id, "checkout.session.expired")
            after = state_of(second.app.state.store)
            replay = await second.client().v1.checkout.sessions.create_async(
                session_params(7000), {"idempotency_key": "journal-1"}
            )
            assert (replay.id, replay.status) == (paid, "open")
    assert len(before["pending_deliveries"]) == 1
    assert after["pending_deliveries"] == {}
    for kept in ("idempotency", "money", "clock_offset", "webhook_secret"):
        assert after[kept] == before[kept]
    assert after["objects"].keys() == before["objects"].keys()
    assert json.loads(older.read_text())["version"] == STATE_VERSION


def as_version_1(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The same state as a version-1 sandbox wrote it: one document, with the event ids in
    creation order and the pending deliveries as a list."""
    del snapshot["generation"]
    objects = snapshot["objects"]
    return {
        **snapshot,
        "version": 1,
        "event_ids": [key for key, obj in objects.items() if obj["object"] == "event"],
        "pending_deliveries": list(snapshot["pending_deliveries"].values()),
    }


def transfer(number: int) -> dict[str, Any]:
    return {"id": f"tr_{number}", "object": "transfer", "created": 1_700_000_000 + number}

"""The least actions a recorded two-milestone deal needed, by the documented model."""

from __future__ import annotations

from benchmarks.minimum import minimum_actions, payments, visible_stages
from tests.benchmarks.recorded import recorded_events


def test_payments_and_visible_stages() -> None:
    events = recorded_events()
    assert payments(events) == 2
    # awaiting funding, in progress and delivered for each milestone, then completed: a stage
    # set and replaced within one workflow task (signed, approved, released) is never seen.
    assert visible_stages(events) == 7


def test_minimum_by_kind() -> None:
    least = minimum_actions(recorded_events()).by_kind
    # The effects the deal had in the world are taken as they were.
    effects = ["activity: mails", "activity: receipts", "activity: hand-offs"]
    assert [least[kind] for kind in effects] == [15, 2, 0]
    assert least["activity: Stripe links and money"] == 2  # two Checkout Sessions
    assert least["activity: expiry of a session never paid"] == 0
    # Per payment: one signal, one verifying read.
    assert (
        least["signals, one per payment"] == least["activity: verifying read, one per payment"] == 2
    )
    # The start, every update people sent, each payment confirmed, each Stripe link or movement.
    assert least["updates people sent"] == 5
    assert least["activity: ledger writes, one per change"] == 1 + 5 + 2 + 2
    assert least["upserts, one per visible stage"] == 7
    assert least["timers, one per wait with a deadline"] == 1 + 3 * 2  # signature; per milestone 3
    assert least["workflow started"] == 1
    assert sum(least.values()) == 53

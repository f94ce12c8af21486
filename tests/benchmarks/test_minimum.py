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
    least = minimum_actions(recorded_events())
    assert least.by_kind == {
        "workflow started": 1,
        "updates people sent": 5,
        "signals, one per payment": 2,
        "activity: mails": 15,
        "activity: receipts": 2,
        "activity: hand-offs": 0,
        "activity: Stripe links and money": 2,
        "activity: expiry of a session never paid": 0,
        "activity: verifying read, one per payment": 2,
        "activity: ledger writes, one per change": 1 + 5 + 2 + 2,
        "upserts, one per visible stage": 7,
        "timers, one per wait with a deadline": 1 + 3 * 2,
    }
    assert least.total == 53

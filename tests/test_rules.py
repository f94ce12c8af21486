"""The deal's pure decisions, without any server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflows.rules import FIRST_POLL, next_poll_interval, payment_owner_problem

KEYS = ("m1", "m2")


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"deal_id": "acme", "milestone_key": "m2"}, None),
        ({"deal_id": "other", "milestone_key": "m1"}, "belongs to deal 'other'"),
        ({"milestone_key": "m1"}, "names no deal"),
        ({"deal_id": "acme", "milestone_key": "m9"}, "names no milestone of this deal ('m9')"),
        ({"deal_id": "acme"}, "names no milestone"),
        ({}, "names no deal"),
    ],
)
def test_a_payment_counts_only_when_stripe_says_it_is_this_deals(
    metadata: dict[str, str], problem: str | None
) -> None:
    assert payment_owner_problem(metadata, "acme", KEYS) == problem


def test_polls_back_off_from_a_minute_to_the_policy_limit() -> None:
    longest = timedelta(hours=1)
    intervals = [next_poll_interval(None, longest)]
    while len(intervals) < 9:
        intervals.append(next_poll_interval(intervals[-1], longest))

    assert intervals[0] == FIRST_POLL
    assert [i.total_seconds() / 60 for i in intervals] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_limit_below_a_minute_is_the_first_interval_too() -> None:
    assert next_poll_interval(None, timedelta(seconds=20)) == timedelta(seconds=20)

"""What a deal costs in Temporal actions (Temporal Cloud bills each; a self-hosted cluster's cost
follows them): a deal of 1 and of 3 milestones, played to its end with one relayed signal per
payment (the bridge folds the second event of a payment), stays within issue 11's budget of 1.2
times the least such a deal needs. A count, not a timing: it fails the change that adds work."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from benchmarks.history import billable_actions
from tests.deal_harness import make_spec, running_deal

#: Actions per deal, markers included, for a deal of this many milestones (issue 11).
BUDGET = {1: 40, 3: 102}


@pytest.mark.parametrize("milestones", sorted(BUDGET))
async def test_a_deal_costs_what_its_work_costs(
    dev_server_env: WorkflowEnvironment, milestones: int
) -> None:
    # On the dev server: its histories say which workflow task issued each command.
    async with running_deal(dev_server_env, make_spec(milestones=milestones)) as deal:
        final = await deal.complete()
        history = await deal.handle.fetch_history()

    actions = billable_actions(list(history.events))
    spent = actions.total + sum(actions.markers.values())
    assert final.stage == "completed"
    assert spent <= BUDGET[milestones], f"{spent} actions: {dict(actions.by_kind)}"
    assert actions.of("signal") == milestones, "one signal per payment"
    assert actions.of("activity:retrieve_payment_intent") == milestones, "one read per payment"
    assert actions.of("local activity:retrieve_payment_intent") == 0, "its result in the history"
    assert actions.of("activity:expire_checkout_session") == 0, "paid sessions are complete"
    assert sum(actions.markers.values()) == 1, "one patch marker for this release"


async def test_money_goes_first_when_the_workers_are_behind(
    dev_server_env: WorkflowEnvironment,
) -> None:
    """A backlog is taken in priority order: Stripe's calls first (a payment confirmed, a payout
    made), then the ledger's batches (the read model showing it), then mail and hand-offs."""
    async with running_deal(dev_server_env, make_spec(milestones=1)) as deal:
        await deal.complete()
        history = await deal.handle.fetch_history()

    priorities: dict[str, set[int]] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            priorities.setdefault(scheduled.activity_type.name, set()).add(
                scheduled.priority.priority_key
            )
    assert priorities["create_checkout_session"] == {1}
    assert priorities["retrieve_payment_intent"] == {1}, "a payment confirmed first"
    assert priorities["write_ledger"] == {2}
    assert priorities["send_email"] == {0}, "the task queue's default"
    assert priorities["issue_receipt"] == {0}

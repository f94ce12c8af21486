"""The bare twin: its plan, derived from a recorded deal, and the twin doing that plan on the dev
server (its history then holds the deal's activities, upserts, updates and signals)."""

from __future__ import annotations

import uuid
from collections import Counter

from temporalio.testing import WorkflowEnvironment

from benchmarks.history import billable_actions, workflow_tasks
from benchmarks.twin_plan import twin_plan
from benchmarks.twin_worker import drive_twin, twin_worker
from tests.benchmarks.recorded import READ_IN_TASK, recorded_events


def test_the_plan_does_what_the_deal_did() -> None:
    events = recorded_events()
    plan = twin_plan(events)
    deal = billable_actions(events)
    assert plan.count("activities") == deal.of("activity")
    assert plan.count("upserts") == deal.of("upsert")
    assert plan.count("timers") == deal.of("timer")
    assert [(t.kind, t.name) for t in plan.triggers] == [
        ("update", "sign_sow"),
        ("signal", "stripe_event"),
        ("signal", "stripe_event"),
        ("update", "submit_deliverable"),
        ("update", "approve_milestone"),
        ("signal", "stripe_event"),
        ("signal", "stripe_event"),
        ("update", "submit_deliverable"),
        ("update", "approve_milestone"),
    ]
    # Tasks that gave no command are left to come by themselves.
    assert len(plan.tasks) == sum(
        1
        for t in workflow_tasks(events)
        if t.update or t.activities or t.upserts or t.timers or t.cancelled_timers
    )


def test_a_deal_that_read_in_its_tasks_gives_its_twin_those_local_activities() -> None:
    """The twin of a release that read each payment in its workflow task runs a no-op local
    activity in those tasks, so a benchmark of that release compares like with like."""
    events = recorded_events(READ_IN_TASK)
    plan, deal = twin_plan(events), billable_actions(events)
    assert plan.count("local_activities") == deal.of("local activity") == 2
    assert plan.count("activities") == deal.of("activity")
    reading = [t for t in plan.tasks if t.local_activities]
    assert [t.local_activities for t in reading] == [["retrieve_payment_intent"]] * 2


def test_each_task_waits_only_for_what_earlier_tasks_started() -> None:
    plan = twin_plan(recorded_events())
    started, timers = 0, 0
    for task in plan.tasks:
        assert all(number < started for number in task.activities_before)
        assert all(number < timers for number in task.timers_before + task.cancel_timers)
        started += len(task.activities)
        timers += len(task.timers)
    for trigger in plan.triggers:
        assert trigger.task is not None
        if trigger.kind == "update":
            assert plan.tasks[trigger.task].update == trigger.name
    # An update answers once the twin is ready for the next trigger: signing, for the payment.
    signing = plan.triggers[0].task
    assert signing is not None and plan.tasks[signing].answer_when_ready == plan.triggers[1].task


async def test_the_twin_runs_the_plan_on_the_dev_server(
    dev_server_env: WorkflowEnvironment,
) -> None:
    events = recorded_events()
    plan, deal = twin_plan(events), billable_actions(events)
    client, suffix = dev_server_env.client, uuid.uuid4().hex[:8]
    async with twin_worker(client, f"twin-{suffix}"):
        await drive_twin(client, plan, f"twin-{suffix}", f"twin-{suffix}")
    twin = billable_actions(
        list((await client.get_workflow_handle(f"twin-{suffix}").fetch_history()).events)
    )
    activities = Counter(
        {kind: n for kind, n in twin.by_kind.items() if kind.startswith("activity:")}
    )
    assert activities == Counter(
        {kind: n for kind, n in deal.by_kind.items() if kind.startswith("activity:")}
    )
    assert twin.of("upsert") == deal.of("upsert")
    assert twin.by_kind["signal:stripe_event"] == 4
    assert twin.of("update") == deal.of("update")
    # A timer started and cancelled within one twin task never reaches the server.
    assert 0 < twin.of("timer") <= deal.of("timer")

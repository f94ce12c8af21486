"""The action counter and the workflow-task reading, on a recorded two-milestone deal."""

from __future__ import annotations

from benchmarks.history import billable_actions, event_counts, workflow_tasks
from tests.benchmarks.recorded import recorded_events


def test_billable_actions_by_kind() -> None:
    actions = billable_actions(recorded_events())
    assert actions.by_kind == {
        "workflow started": 1,
        "activity:write_ledger": 19,
        "activity:send_email": 15,
        "activity:retrieve_payment_intent": 4,
        "activity:create_checkout_session": 2,
        "activity:retrieve_checkout_session": 2,
        "activity:expire_checkout_session": 2,
        "activity:issue_receipt": 2,
        "signal:stripe_event": 4,
        "update:sign_sow": 1,
        "update:submit_deliverable": 2,
        "update:approve_milestone": 2,
        "timer": 7,
        "upsert": 15,
        "upsert:patch": 4,
    }
    assert actions.total == 82
    assert actions.of("activity") == 46 and actions.of("update") == 5
    # Markers are apart, not in the total: four patch markers, in two workflow tasks.
    assert actions.markers == {"core_patch": 4}
    assert actions.marker_tasks == 2


def test_the_counter_agrees_with_the_events_it_counts() -> None:
    events = recorded_events()
    counts, actions = event_counts(events), billable_actions(events)
    assert actions.of("activity") == counts["ACTIVITY_TASK_SCHEDULED"]
    assert actions.of("signal") == counts["WORKFLOW_EXECUTION_SIGNALED"]
    assert actions.of("update") == counts["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    assert actions.of("timer") == counts["TIMER_STARTED"]
    assert actions.of("upsert") == counts["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]


def test_workflow_tasks_say_what_woke_them_and_what_they_did() -> None:
    events = recorded_events()
    tasks = workflow_tasks(events)
    assert len(tasks) == event_counts(events)["WORKFLOW_TASK_COMPLETED"]
    first, signing = tasks[0], next(task for task in tasks if task.update == "sign_sow")
    assert first.signals_before == 0 and not first.activities_done_before
    assert [name for _, name in first.activities] == ["send_email", "write_ledger"]
    assert "create_checkout_session" in [name for _, name in signing.activities]
    assert signing.cancelled_timers == [first.timers[0][0]]  # the signature window's timer
    assert [task.update for task in tasks if task.update] == [
        "sign_sow", "submit_deliverable", "approve_milestone", "submit_deliverable", "approve_milestone"
    ]  # fmt: skip
    assert tasks[-1].completes_workflow
    assert sum(len(task.activities) for task in tasks) == 46

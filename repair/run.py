"""`dealflow repair`: bring back a deal whose history today's DealWorkflow cannot replay.

Such a deal is stuck for good while it runs (its workflow task fails on every attempt) and its
`status` query fails after it ends. Replaying the history finds the first event the code
disagrees with; the deal is then reset (Temporal's ResetWorkflowExecution) to the last workflow
task completed before that event. The new run keeps the history up to there, runs today's code
from that point on, and gets back every update that came after it (the client's signature,
vendor deliveries), reapplied by the server, then every signal (Stripe webhooks, operators'
actions), re-sent one by one once the new run took its first task. A reset that reapplies
updates and signals together hands them to the workflow in one activation, in another order than
a replay of the new history does, which today's workflow would not survive. What the old run did after
the reset point runs again: dealflow's activities are idempotent (Stripe idempotency keys from
workflow id, milestone and generation, and money that leaves looked for by its metadata first,
however long ago Stripe forgot the key; ledger rows with unique keys; mails with stable
Message-IDs), so money does not move twice and a repeated mail carries the same Message-ID.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from rich.console import Console
from rich.markup import escape
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType, ResetReapplyType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    ResetWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from dealflow.models import workflow_id_for
from dealflow.settings import load_settings
from dealflow.temporal import ui_link
from repair.divergence import Divergence, ReplayBroken, choose_reset_point, find_divergence

#: How long `repair` waits for a worker to run the new run before checking that it replays.
VERIFY_TIMEOUT = timedelta(seconds=30)


class RepairError(RuntimeError):
    """The deal cannot be repaired as asked; the message says why (exit 1)."""


@dataclass(frozen=True)
class RepairPlan:
    """What a repair resets and what the new run gets back or does again."""

    workflow_id: str
    run_id: str
    divergence: Divergence
    reset_event_id: int
    #: Signals and updates after the reset point, e.g. "update sign_sow", in history order.
    reapplied: list[str]
    #: The signals among them, re-sent after the reset as they came.
    signals: list[HistoryEvent]
    #: Activity type -> how often the old run scheduled it after the reset point.
    rerun_activities: Counter[str]


@dataclass(frozen=True)
class RunHistory:
    run_id: str
    history: WorkflowHistory


async def fetch_history(client: Client, deal_id: str) -> RunHistory:
    """The history of the deal's latest run, pinned to its run id so that the reset applies to
    the very run that was replayed; RepairError "no deal" when there is none."""
    workflow_id = workflow_id_for(deal_id)
    try:
        run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise RepairError(f"no deal {deal_id}") from error
        raise
    return RunHistory(run_id, history)


def reset_point(events: Iterable[HistoryEvent], divergence: Divergence) -> int:
    """Where to reset (`choose_reset_point`); RepairError when no task completed before."""
    point = choose_reset_point(events, divergence)
    if point is None:
        raise RepairError(
            f"event {divergence.event_id} diverges before any workflow task completed: "
            "there is no good task to reset to"
        )
    return point


async def divergence_of(history: WorkflowHistory, converter: DataConverter) -> Divergence | None:
    """`find_divergence`, a replay failure other than nondeterminism as a RepairError."""
    try:
        return await find_divergence(history, converter)
    except ReplayBroken as error:
        raise RepairError(str(error)) from error


def messages_after(events: Iterable[HistoryEvent], event_id: int) -> list[str]:
    """Signals and updates recorded after `event_id`, each once, in order: what a reset there
    reapplies. An update appears as admitted (when reapplied) and as accepted; an accepted one
    that was admitted before names no request of its own."""
    messages: list[str] = []
    updates: set[str] = set()
    for event in events:
        if event.event_id <= event_id:
            continue
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            messages.append(
                f"signal {event.workflow_execution_signaled_event_attributes.signal_name}"
            )
            continue
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            request = event.workflow_execution_update_admitted_event_attributes.request
            update_id = request.meta.update_id
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            request, update_id = accepted.accepted_request, accepted.protocol_instance_id
        else:
            continue
        if update_id not in updates:
            updates.add(update_id)
            messages.append(f"update {request.input.name}")
    return messages


def _activities_after(events: Iterable[HistoryEvent], event_id: int) -> Counter[str]:
    return Counter(
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_id > event_id
        and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def plan_repair(run: RunHistory, converter: DataConverter) -> RepairPlan | None:
    """Where the run's history diverges and where to reset it; None when it replays."""
    history = run.history
    divergence = await divergence_of(history, converter)
    if divergence is None:
        return None
    reset_event_id = reset_point(history.events, divergence)
    return RepairPlan(
        workflow_id=history.workflow_id,
        run_id=run.run_id,
        divergence=divergence,
        reset_event_id=reset_event_id,
        reapplied=messages_after(history.events, reset_event_id),
        signals=[
            event
            for event in history.events
            if event.event_id > reset_event_id
            and event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ],
        rerun_activities=_activities_after(history.events, reset_event_id),
    )


async def reset(client: Client, plan: RepairPlan) -> str:
    """Reset the run to the plan's point, reapplying the updates after it (signals are re-sent
    by `resend_signals`; the deprecated reset_reapply_type would otherwise default to signals
    only); the new run's id."""
    request = ResetWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=plan.workflow_id, run_id=plan.run_id),
        reason=(
            f"dealflow repair: event {plan.divergence.event_id} ({plan.divergence.event_name}) "
            "does not replay with today's DealWorkflow"
        ),
        workflow_task_finish_event_id=plan.reset_event_id,
        request_id=str(uuid.uuid4()),
        reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
        reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL],
        identity=client.identity,
    )
    try:
        response = await client.workflow_service.reset_workflow_execution(request)
    except RPCError as error:
        raise RepairError(
            f"Temporal refused the reset of {plan.workflow_id}: {error.message}"
        ) from error
    return response.run_id


async def resend_signals(client: Client, plan: RepairPlan, run_id: str) -> None:
    """Send the old run's signals after the reset point to the new run, in their order, with
    their original payloads; each request id is derived from the old event, so a repair that is
    run twice does not send one twice."""
    for event in plan.signals:
        signaled = event.workflow_execution_signaled_event_attributes
        await client.workflow_service.signal_workflow_execution(
            SignalWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=plan.workflow_id, run_id=run_id),
                signal_name=signaled.signal_name,
                input=signaled.input,
                header=signaled.header,
                identity=client.identity,
                request_id=f"dealflow-repair-{plan.run_id}-{event.event_id}",
            )
        )


async def first_task_after_reset(
    client: Client, workflow_id: str, run_id: str, reset_event_id: int
) -> WorkflowHistory:
    """The new run's history once a worker has completed its first task after the reset point.

    A reset only helps if today's code also replays what it did with the reapplied messages, and
    that can be checked only after a worker ran them. RepairError when none did in time."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    deadline = asyncio.get_running_loop().time() + VERIFY_TIMEOUT.total_seconds()
    while True:
        history = await handle.fetch_history()
        if any(
            event.event_id > reset_event_id
            and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            for event in history.events
        ):
            return history
        if asyncio.get_running_loop().time() > deadline:
            raise RepairError(
                f"no worker ran the new run within {VERIFY_TIMEOUT.seconds} s, so whether it "
                f"replays is unchecked: start the worker, then run `dealflow repair "
                f"{workflow_id.removeprefix('deal-')} --dry-run`"
            )
        await asyncio.sleep(0.5)


async def run_repair(
    client: Client, deal_id: str, *, dry_run: bool, confirm: Callable[[str], bool]
) -> int:
    """`dealflow repair`: report the divergence and reset point; unless `dry_run` or the
    operator declines, reset and check the new run replays. 0 when the deal replays or was
    repaired, 1 on an error or when the new run does not replay either."""
    console, errors = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    try:
        plan = await plan_repair(await fetch_history(client, deal_id), client.data_converter)
        if plan is None:
            console.print(
                f"{workflow_id_for(deal_id)} replays with today's DealWorkflow: nothing to repair"
            )
            return 0
        _print_plan(plan, console)
        if dry_run:
            console.print("--dry-run: nothing changed")
            return 0
        if not confirm(f"Reset {plan.workflow_id} to event {plan.reset_event_id}?"):
            console.print("nothing changed")
            return 1
        new_run_id = await reset(client, plan)
        link = ui_link(load_settings().temporal_ui_url, client.namespace, plan.workflow_id)
        console.print(f"reset {plan.workflow_id}: new run {new_run_id}")
        console.print(f"Temporal UI: {link}/{new_run_id}")
        new_run = client.get_workflow_handle(plan.workflow_id, run_id=new_run_id)
        reapplied = messages_after((await new_run.fetch_history()).events, plan.reset_event_id)
        console.print(f"reapplied: {_listing(Counter(reapplied)) or 'nothing'}")
        history = await first_task_after_reset(
            client, plan.workflow_id, new_run_id, plan.reset_event_id
        )
        if plan.signals:
            await resend_signals(client, plan, new_run_id)
            console.print(f"re-sent: {_listing(Counter(_names(plan.signals)))}")
            history = await first_task_after_reset(
                client, plan.workflow_id, new_run_id, history.events[-1].event_id
            )
        divergence = await divergence_of(history, client.data_converter)
    except RepairError as error:
        errors.print(f"[red]error:[/red] {error}")
        return 1
    if divergence is not None:
        errors.print(
            f"[red]error:[/red] the new run does not replay either: history event "
            f"{divergence.event_id} ({divergence.event_name}): {escape(divergence.error)}. Today's "
            "DealWorkflow must be fixed first; deploy the fix, then run `dealflow repair` again"
        )
        return 1
    console.print("the new run replays with today's DealWorkflow")
    return 0


def _print_plan(plan: RepairPlan, console: Console) -> None:
    divergence = plan.divergence
    console.print(
        f"{plan.workflow_id} (run {plan.run_id}) does not replay: history event "
        f"{divergence.event_id} ({divergence.event_name}) differs from today's DealWorkflow"
    )
    console.print(f"  {divergence.error}", markup=False, highlight=False)
    console.print(f"reset point: the workflow task completed at event {plan.reset_event_id}")
    console.print(f"to reapply: {_listing(Counter(plan.reapplied)) or 'nothing'}")
    console.print(f"to run again: {_listing(plan.rerun_activities) or 'nothing'}")


def _names(signals: list[HistoryEvent]) -> list[str]:
    return [f"signal {e.workflow_execution_signaled_event_attributes.signal_name}" for e in signals]


def _listing(counts: Counter[str]) -> str:
    """ "update sign_sow, signal stripe_event x2", first seen first."""
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())

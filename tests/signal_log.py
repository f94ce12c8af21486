"""A stand-in deal workflow that only keeps the Stripe signals it receives, in order, repeats
included: what the relay's tests and benchmark check delivery order and counts against."""

from __future__ import annotations

from temporalio import workflow
from temporalio.client import Client

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import STRIPE_EVENT
    from dealflow.messages import StripeEventSignal
    from dealflow.models import workflow_id_for


@workflow.defn
class SignalLog:
    def __init__(self) -> None:
        self.event_ids: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=STRIPE_EVENT)
    def stripe_event(self, event: StripeEventSignal) -> None:
        self.event_ids.append(event.event_id)

    @workflow.query
    def received(self) -> list[str]:
        return self.event_ids


async def start_signal_log(client: Client, task_queue: str, deal_id: str) -> None:
    """A `SignalLog` in the place of the deal's workflow."""
    await client.start_workflow(SignalLog.run, id=workflow_id_for(deal_id), task_queue=task_queue)


async def signals_received(client: Client, deal_id: str) -> list[str]:
    """The event ids the deal's `SignalLog` received, in order, repeats included."""
    return await client.get_workflow_handle(workflow_id_for(deal_id)).query(SignalLog.received)

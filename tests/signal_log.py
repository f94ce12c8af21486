"""A stand-in deal workflow that only keeps the Stripe signals it receives, in order, repeats
included: what the relay's tests and benchmark check delivery order and counts against."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import STRIPE_EVENT
    from dealflow.messages import StripeEventSignal


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

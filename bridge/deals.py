"""The bridge's one door into Temporal: query, update and signal deal workflows.

Temporal's many error types become three the routes understand: the deal does not exist
(404), the deal refused the action (409, with the validator's reason), or Temporal did not
answer in time (503). Every call has a deadline: the SDK retries an unreachable server on its
own for longer than a person or Stripe will wait.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from dealflow.contract import STATUS, STRIPE_EVENT
from dealflow.messages import ActionResult, ContinuedDeal, DealStatus, StripeEventSignal
from dealflow.models import DealSpec, workflow_id_for
from dealflow.text_rules import TextProblem, first_text_problem


class DealNotFound(LookupError):
    """No workflow exists for this deal id."""


class ActionRejected(RuntimeError):
    """The workflow refused the action (its validator said why, or the deal has ended)."""


class DealEnded(ActionRejected):
    """The deal's workflow has closed (completed, cancelled, terminated): nothing reaches it."""


class DealUnavailable(RuntimeError):
    """Temporal (or the worker) did not answer in time; nothing is known to have happened."""


class InvalidText(ValueError):
    """A text field holds what no deal may keep (NUL, a lone surrogate, a control); nothing was sent."""

    def __init__(self, problem: TextProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class Deals:
    """Deal workflows by deal id, with deadlines on every call."""

    _SPEC_CACHE_SIZE = 256

    def __init__(self, client: Client, *, timeout: timedelta = timedelta(seconds=15)) -> None:
        self.client = client
        self.timeout = timeout
        self._specs: OrderedDict[str, DealSpec] = OrderedDict()

    def _handle(self, deal_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(deal_id))

    async def status(self, deal_id: str) -> DealStatus:
        async with self._answers(deal_id):
            return await self._handle(deal_id).query(STATUS, result_type=DealStatus)

    async def spec(self, deal_id: str) -> DealSpec:
        """The deal's spec (SOW text, parties) from the workflow's start event; it never changes."""
        if deal_id in self._specs:
            self._specs.move_to_end(deal_id)
            return self._specs[deal_id]
        async with self._answers(deal_id):
            events = self._handle(deal_id).fetch_history_events(page_size=1)
            async for event in events:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                # A deal that continued as new starts its later runs from a carry of its spec.
                [start] = await self.client.data_converter.decode(
                    payloads, [DealSpec | ContinuedDeal]
                )
                spec = start.spec if isinstance(start, ContinuedDeal) else start
                break
            else:
                raise DealNotFound(deal_id)
        self._specs[deal_id] = spec
        if len(self._specs) > self._SPEC_CACHE_SIZE:
            self._specs.popitem(last=False)
        return spec

    async def act(self, deal_id: str, update: str, arg: BaseModel, *, update_id: str | None) -> ActionResult:
        """Run an update; the same `update_id` twice runs it once and returns the first answer.
        Text is checked here, at the door: the message model itself never refuses it (TextRule)."""
        if problem := first_text_problem(arg):
            raise InvalidText(problem)
        handle = self._handle(deal_id)

        async def attempt() -> ActionResult:
            return await handle.execute_update(update, arg, id=update_id, result_type=ActionResult)

        async with self._answers(deal_id, acting=True):
            for pause in UNPROCESSED_UPDATE_PAUSES:
                try:
                    return await attempt()
                except WorkflowUpdateFailedError as error:
                    if not unprocessed_by_worker(error):
                        raise
                await asyncio.sleep(pause)
            return await attempt()

    async def signal_stripe_event(self, deal_id: str, event: StripeEventSignal) -> None:
        """Raises DealEnded when the deal has ended: no point in retrying that."""
        async with self._answers(deal_id, acting=True):
            await self._handle(deal_id).signal(STRIPE_EVENT, event)

    @asynccontextmanager
    async def _answers(self, deal_id: str, *, acting: bool = False) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                yield
        except WorkflowUpdateFailedError as error:
            raise ActionRejected(_reason(error.cause)) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                if acting:
                    await self._refuse_if_ended(deal_id)
                raise DealNotFound(deal_id) from error
            raise DealUnavailable(f"Temporal did not accept the call: {error.message}") from error
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            raise DealUnavailable("the deal did not answer in time; try again") from error
        except WorkflowQueryFailedError as error:
            raise DealUnavailable(f"the deal could not report its status: {error.message}") from error

    async def _refuse_if_ended(self, deal_id: str) -> None:
        """An update or signal to a closed workflow is NOT_FOUND too; tell that apart from a missing deal."""
        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                description = await self._handle(deal_id).describe()
        except (RPCError, TimeoutError):
            return
        if description.status not in (None, WorkflowExecutionStatus.RUNNING):
            raise DealEnded(f"this deal has ended ({description.status.name.lower()})")


#: What Temporal answers when the workflow task that carried an update ended without an answer
#: to it: typically its worker was killed mid-task (the server's `update` package, "rejection
#: failure"). The deal never saw it, so asking again, with the same update id, is safe.
UNPROCESSED_BY_WORKER = "Workflow Update is rejected because it wasn't processed by worker"
#: Seconds between the attempts of such an update, within the bridge's Temporal deadline.
UNPROCESSED_UPDATE_PAUSES = (0.5, 1.0, 2.0, 4.0)


def unprocessed_by_worker(error: WorkflowUpdateFailedError) -> bool:
    """Whether Temporal, not the deal, refused the update (see UNPROCESSED_BY_WORKER)."""
    cause = error.cause
    return isinstance(cause, FailureError) and cause.message.startswith(UNPROCESSED_BY_WORKER)


def _reason(cause: BaseException) -> str:
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) or type(cause).__name__

"""The sandbox that answers the SDK's context questions outside itself: chosen only for converters
that take no context, its workflows' payloads are encoded (encrypted) as before and replay on the
SDK's own runner, and a deadlock is still reported with the workflow's stack."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from dealflow.codec import ENCODING, new_payload_key
from dealflow.settings import Settings
from dealflow.temporal import data_converter, with_data_converter
from dealflow.workflow_runner import (
    SHARED_IMPORTS,
    ContextFreeSandboxedWorkflowRunner,
    sandboxed_runner,
    takes_no_context,
)


class ContextTakingCodec(PayloadCodec, WithSerializationContext):
    """A codec that would encode each payload by its context (as a per-workflow key would)."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    def with_context(self, context: SerializationContext) -> ContextTakingCodec:
        return ContextTakingCodec(context)


#: As worker.py runs deals (this module imports the codec, whose Rust bindings cannot be imported
#: twice in one process).


def encrypting_client(env: WorkflowEnvironment) -> Client:
    return with_data_converter(env.client, Settings(_env_file=None, DEALFLOW_PAYLOAD_KEYS=new_payload_key()))


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(sandboxed=True)
class Shouting:
    def __init__(self) -> None:
        self.heard: list[str] = []

    @workflow.signal
    def hear(self, text: str) -> None:
        self.heard.append(text)

    @workflow.run
    async def run(self, text: str) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.heard))
        loud = await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=10))
        return [loud, *self.heard]


#: Set by the first attempt, which blocks; the task's retry then goes through.
blocked_once = threading.Event()


@workflow.defn(sandboxed=True)
class Stuck:
    @workflow.run
    async def run(self) -> str:
        with workflow.unsafe.sandbox_unrestricted():
            if not blocked_once.is_set():
                blocked_once.set()
                time.sleep(3)  # noqa: ASYNC251 -- blocking on purpose: longer than the 2 s deadlock timeout
        return "went on"


def test_dealflows_converters_take_no_context() -> None:
    assert takes_no_context(pydantic_data_converter)
    assert takes_no_context(data_converter(Settings(_env_file=None, DEALFLOW_PAYLOAD_KEYS=new_payload_key())))


def test_a_converter_that_takes_a_context_keeps_the_sdks_sandbox() -> None:
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=ContextTakingCodec())
    assert not takes_no_context(converter)
    runner = sandboxed_runner(converter)
    assert type(runner) is SandboxedWorkflowRunner
    chosen = sandboxed_runner(pydantic_data_converter, SHARED_IMPORTS)
    assert isinstance(chosen, ContextFreeSandboxedWorkflowRunner) and chosen.restrictions is SHARED_IMPORTS


async def test_payloads_are_encrypted_as_before_and_replay_on_the_sdks_runner(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = encrypting_client(time_skipping_env)
    runner = sandboxed_runner(client.data_converter, SHARED_IMPORTS)
    assert isinstance(runner, ContextFreeSandboxedWorkflowRunner)
    queue = f"runner-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[Shouting], activities=[shout], workflow_runner=runner):
        handle = await client.start_workflow(Shouting.run, "hello", id=f"shout-{uuid.uuid4()}", task_queue=queue)
        await handle.signal(Shouting.hear, "casey@client.example")
        assert await handle.result() == ["HELLO", "casey@client.example"]
        history = await handle.fetch_history()

    scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
    sealed = [
        *scheduled[0].activity_task_scheduled_event_attributes.input.payloads,
        *completed[0].workflow_execution_completed_event_attributes.result.payloads,
    ]
    assert all(p.metadata["encoding"] == ENCODING for p in sealed)
    assert not any(b"casey@client.example" in p.data for p in sealed)
    sdks_runner = SandboxedWorkflowRunner(restrictions=SHARED_IMPORTS)
    await Replayer(
        workflows=[Shouting], data_converter=client.data_converter, workflow_runner=sdks_runner
    ).replay_workflow(
        WorkflowHistory.from_json(history.workflow_id, history.to_json())
    )


async def test_a_deadlock_is_reported_with_the_workflows_stack_and_the_retry_goes_on(time_skipping_env: WorkflowEnvironment) -> None:
    client = time_skipping_env.client
    queue = f"runner-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[Stuck], workflow_runner=sandboxed_runner(client.data_converter, SHARED_IMPORTS)
    ):
        handle = await client.start_workflow(Stuck.run, id=f"stuck-{uuid.uuid4()}", task_queue=queue)
        failure = None
        for _ in range(100):
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    failure = event.workflow_task_failed_event_attributes.failure
            if failure:
                break
            await asyncio.sleep(0.1)
        assert await handle.result() == "went on"
    assert failure is not None
    assert "TMPRL1101" in failure.message
    assert "time.sleep(3)" in failure.stack_trace


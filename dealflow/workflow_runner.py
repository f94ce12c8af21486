"""A workflow sandbox that is not asked, for every payload, which converter context applies.

The SDK encodes and decodes an activation's payloads outside the sandbox, in six passes, and
asks the workflow for each payload's serialization context; the sandboxed instance answers by
`exec`ing a line of code inside the sandbox each time (about 14% of the worker's Python time
under load, in a py-spy profile of 100 deals). The answer only matters to a data converter that
takes a context: dealflow's (pydantic, the encryption codec, no external storage) takes none, so
every answer picks the same converter. This runner answers outside the sandbox, with the
workflow's own context; `sandboxed_runner` picks it only when `takes_no_context` holds for the
worker's data converter.
"""

from __future__ import annotations

from dataclasses import dataclass

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

#: Every module imported once and shared by every deal's sandbox: the workflows package and what
#: libraries import lazily inside a run alike. A sandbox importing the workflows package again
#: costs about 140 KB more per cached deal (`python -m benchmarks.memory`: 274 against 416 KB);
#: passing only the workflows package through costs more still (about 540 KB), as pydantic's
#: lazily imported email_validator, with idna's tables, is then imported again in every run
#: (and the sandbox warns of each such module). Each run keeps its own DealWorkflow object and
#: the sandbox's restricted builtins. The worker uses it, and `dealflow repair`'s replays.
SHARED_IMPORTS = SandboxRestrictions.default.with_passthrough_all_modules()

#: One context of each kind a deal's payloads are encoded under (its own, its activities').
_SAMPLE_CONTEXTS: tuple[SerializationContext, ...] = (
    WorkflowSerializationContext(namespace="default", workflow_id="deal-1"),
    ActivitySerializationContext(
        namespace="default",
        activity_id="1",
        activity_type="send_email",
        activity_task_queue="deals",
        workflow_id="deal-1",
        workflow_type="DealWorkflow",
        is_local=False,
    ),
)


def takes_no_context(converter: DataConverter) -> bool:
    """True when every serialization context gives `converter` back unchanged (the SDK's own
    test: `with_context` returns the same object when no component uses the context) and no
    external storage needs a store context."""
    return converter.external_storage is None and all(
        converter.with_context(context) is converter for context in _SAMPLE_CONTEXTS
    )


def sandboxed_runner(
    converter: DataConverter, restrictions: SandboxRestrictions = SandboxRestrictions.default
) -> SandboxedWorkflowRunner:
    """The sandbox with `restrictions` for a worker whose data converter is `converter`."""
    if takes_no_context(converter):
        return ContextFreeSandboxedWorkflowRunner(restrictions=restrictions)
    return SandboxedWorkflowRunner(restrictions=restrictions)


@dataclass(frozen=True)
class ContextFreeSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose workflows answer context questions without entering the
    sandbox. Only for a data converter `takes_no_context` accepts."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det), det.info)


class _ContextFreeInstance(WorkflowInstance):
    """The sandboxed instance, with the workflow's own contexts computed once, outside it."""

    def __init__(self, sandboxed: WorkflowInstance, info: temporalio.workflow.Info) -> None:
        self._sandboxed = sandboxed
        self._serialization_context = WorkflowSerializationContext(
            namespace=info.namespace, workflow_id=info.workflow_id
        )
        self._store_context = StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        )

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._sandboxed.activate(act)

    def get_serialization_context(self, command_info: object) -> SerializationContext:
        return self._serialization_context

    def get_external_store_context(self, command_info: object) -> StorageDriverStoreContext:
        return self._store_context

    def get_info(self) -> temporalio.workflow.Info:
        return self._sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self._sandboxed.get_thread_id()

"""Connecting to Temporal the SDK's way, where a workflow is in the Temporal UI, and how its
workers process activations."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker._workflow_instance import _WorkflowLogicFlag

from dealflow.settings import Settings
from dealflow.telemetry import temporal_plugins


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic data converter every model needs, with the settings' payload codec if any.

    With a codec, failures carry their message and stack trace in an encoded payload too (the
    history then shows "Encoded failure"), as they may quote a deal's data."""
    codec = settings.payload_codec()
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def with_data_converter(client: Client, settings: Settings) -> Client:
    """`client` on the same connection, encoding payloads as `settings` say."""
    return Client(**{**client.config(), "data_converter": data_converter(settings)})


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """Connect using `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, API key, TLS,
    or a profile in the config file), with `data_converter(settings)`, and tracing when this
    process traces (`dealflow.telemetry`).

    `lazy` connects on first use, for processes that must start while Temporal is down (the
    bridge keeps accepting webhooks into its inbox then). `runtime` is the SDK's process-wide
    one unless given (the worker's, which serves its metrics)."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(
        **config,
        data_converter=data_converter(settings),
        plugins=temporal_plugins(),
        runtime=runtime,
        lazy=lazy,
    )


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The workflow's page in the Temporal Web UI at `ui_url` (DEALFLOW_TEMPORAL_UI_URL)."""
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"


def apply_activation_jobs_as_one_batch(worker: Worker) -> Worker:
    """Have `worker` apply all of an activation's jobs before any workflow coroutine runs, in the
    order sdk-core gives them, instead of updates and signals first, then the rest.

    sdk-core may hand one workflow task's jobs to a fresh worker in two activations (after its
    worker died and a status query made the new one apply some events early) and in one on
    replay; with updates pulled ahead of the activity results they came after, the deal's
    commands then differ on replay (chaos runs of issue 9). The SDK has this fix behind a
    workflow logic flag it means to turn on by default two releases after it learnt it
    (temporalio 1.35 `_WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH`;
    sdk-python#1591): the flag is recorded in each history that used it, so older histories
    replay as recorded. It is set here through the SDK's private setter, as its own tests do;
    drop this when the SDK enables it by default."""
    worker._set_default_workflow_logic_flag(
        _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, enabled=True
    )
    return worker

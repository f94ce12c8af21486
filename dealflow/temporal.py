"""Connecting to Temporal the SDK's way, and where a workflow is in the Temporal UI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile

# The search attributes live in dealflow.contract; the workflow tests, the relay's test and the
# dev stack still import them from here until they move to the contract.
from dealflow.contract import (  # noqa: F401
    DEAL_AMOUNT_CENTS,
    DEAL_CLIENT,
    DEAL_COLLECTED_CENTS,
    DEAL_STAGE,
    SEARCH_ATTRIBUTES,
)


async def connect(*, lazy: bool = False) -> Client:
    """Connect using `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, API key, TLS,
    or a profile in the config file), with the pydantic data converter every model needs.

    `lazy` connects on first use, for processes that must start while Temporal is down (the
    bridge keeps accepting webhooks into its inbox then)."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(**config, data_converter=pydantic_data_converter, lazy=lazy)


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The workflow's page in the Temporal Web UI at `ui_url` (DEALFLOW_TEMPORAL_UI_URL)."""
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"

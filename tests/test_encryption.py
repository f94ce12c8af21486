"""A deal run with payload encryption leaves its SOW and its people's addresses out of
Temporal's store; the CLI, the bridge's codec endpoint and the replayer read it with the keys."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from dealflow.binaries import temporal_cli
from dealflow.codec import ENCODING
from dealflow.contract import DEAL_CLIENT, STATUS, client_search_value
from dealflow.models import workflow_id_for
from dealflow.secret_rules import ensure_dev_secrets
from devstack.stack import Stack, StackConfig, run_stack
from tests.bridge_support import deal_spec, open_deal
from workflows.deal import DealWorkflow

SPEC = deal_spec("sealed")
#: What must never reach Temporal's store in clear.
PRIVATE = [SPEC.sow.encode(), b"casey@client.example", b"vera@vendor.example", b"Casey Client"]
UI_ORIGIN = "http://localhost:8233"


@pytest.fixture
async def sealed_stack(
    dev_server_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The dev stack with DEALFLOW_ENCRYPT_PAYLOADS: its keys generated into secrets.env."""
    home = tmp_path / "home"
    assert "DEALFLOW_PAYLOAD_KEYS" in ensure_dev_secrets(home, payload_keys=True)
    config = StackConfig(home=home, database_url=database_url, task_queue=f"sealed-{uuid.uuid4().hex[:8]}")
    async with run_stack(config, dev_server_env.client) as stack:
        assert stack.client.data_converter.payload_codec is not None
        yield stack


async def raw_history(env: WorkflowEnvironment, deal_id: str) -> WorkflowHistory:
    """The history as Temporal stores it, read by a client without the keys."""
    return await env.client.get_workflow_handle(workflow_id_for(deal_id)).fetch_history()


async def test_a_sealed_deal_keeps_its_sow_and_addresses_out_of_temporal(
    sealed_stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    await open_deal(sealed_stack, "sealed")
    handle = dev_server_env.client.get_workflow_handle(workflow_id_for("sealed"))
    history = await raw_history(dev_server_env, "sealed")
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert ENCODING in stored
    for private in PRIVATE:  # search attributes included: DealClient is a keyed hash
        assert private not in stored, private
    client_value = client_search_value("casey@client.example", sealed_stack.settings.client_search_secret)
    described = await handle.describe()
    assert described.typed_search_attributes.get(DEAL_CLIENT) == client_value
    query = f"DealClient = '{client_value}'"
    for _ in range(50):  # visibility follows the history a moment later
        found = [w.id async for w in dev_server_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [handle.id]
    # A client without the keys cannot read the deal's answers either.
    with pytest.raises(Exception, match="binary/encrypted"):
        await dev_server_env.client.get_workflow_handle(workflow_id_for("sealed")).query(STATUS)


async def test_dealflow_status_decodes_with_the_dev_stacks_keys(
    sealed_stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    await open_deal(sealed_stack, "told")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALFLOW_", "STRIPE_", "TEMPORAL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealflow.cli", "status", "told", "--json",
        env={
            **env,
            "DEALFLOW_HOME": str(sealed_stack.settings.home),  # its secrets.env holds the keys
            "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        },
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["deal_id"] == "told"


def started_input(history: WorkflowHistory) -> Payloads:
    return history.events[0].workflow_execution_started_event_attributes.input


async def test_the_codec_endpoint_decodes_for_an_admin_only_and_answers_the_ui_origin(
    sealed_stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    await open_deal(sealed_stack, "shown")
    body = json_format.MessageToJson(started_input(await raw_history(dev_server_env, "shown")))
    token = sealed_stack.settings.admin_token
    json_body = {"Content-Type": "application/json", "X-Namespace": "default", "Origin": UI_ORIGIN}
    async with httpx.AsyncClient(base_url=sealed_stack.bridge_url) as http:
        refused = await http.post("/codec/decode", content=body, headers=json_body)
        assert refused.status_code == 401 and SPEC.sow not in refused.text
        assert refused.headers["access-control-allow-origin"] == UI_ORIGIN  # the UI can say why
        forged = await http.post(
            "/codec/decode", content=body, headers={**json_body, "Authorization": "Bearer adm_guess"}
        )
        assert forged.status_code == 401

        decoded = await http.post(
            "/codec/decode", content=body, headers={**json_body, "Authorization": f"Bearer {token}"}
        )
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
        [payload] = json_format.Parse(decoded.text, Payloads()).payloads
        assert payload.metadata["encoding"] == b"json/plain" and SPEC.sow.encode() in payload.data
        for path in ("/codec/decode", "/codec/encode"):
            other = await http.post(
                path, content=body,
                headers={**json_body, "X-Namespace": "payroll", "Authorization": f"Bearer {token}"},
            )  # fmt: skip
            assert other.status_code == 403, other.text
            error = other.json()["error"]
            assert (error["code"], error["field"]) == ("other_namespace", "X-Namespace")
            assert "'default', not of 'payroll'" in error["message"] and SPEC.sow not in other.text

        await http.post("/dashboard/login", data={"token": token}, headers={"Origin": sealed_stack.bridge_url})
        by_session = await http.post("/codec/decode", content=body, headers=json_body)
        assert by_session.status_code == 200, by_session.text

        preflight = await http.options(
            "/codec/decode",
            headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,x-namespace,authorization"},
        )  # fmt: skip
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        assert preflight.headers["access-control-allow-credentials"] == "true"
        elsewhere = await http.options("/codec/decode", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in elsewhere.headers


async def test_a_sealed_history_replays_with_the_keys_and_not_without(
    sealed_stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    await open_deal(sealed_stack, "replayed")
    history = await raw_history(dev_server_env, "replayed")
    with_keys = Replayer(workflows=[DealWorkflow], data_converter=sealed_stack.client.data_converter)
    assert (await with_keys.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    without = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    failure = (await without.replay_workflow(history, raise_on_replay_failure=False)).replay_failure
    assert failure is not None and "binary/encrypted" in str(failure), failure


async def temporal_workflow_show(env: WorkflowEnvironment, deal_id: str, *codec: str) -> str:
    process = await asyncio.create_subprocess_exec(
        temporal_cli(), "workflow", "show", "--workflow-id", workflow_id_for(deal_id), "--output", "json",
        "--address", env.client.service_client.config.target_host, *codec,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode() + "\n".join(_payload_data(json.loads(out)))


def _payload_data(node: object) -> list[str]:
    """The payloads' `data`, which the JSON output shows in base64, as text."""
    if isinstance(node, dict):
        found = [base64.b64decode(v).decode(errors="replace") for k, v in node.items() if k == "data" and isinstance(v, str)]
        return found + [d for v in node.values() if not isinstance(v, str) for d in _payload_data(v)]
    if isinstance(node, list):
        return [d for v in node for d in _payload_data(v)]
    return []


async def test_temporal_workflow_show_is_sealed_and_decodes_through_the_bridge(
    sealed_stack: Stack, dev_server_env: WorkflowEnvironment
) -> None:
    """The issue's check, with the CLI an operator runs (payloads' data read as text)."""
    await open_deal(sealed_stack, "shown-cli")
    sealed = await temporal_workflow_show(dev_server_env, "shown-cli")
    assert SPEC.sow not in sealed and "vera@vendor.example" not in sealed
    decoded = await temporal_workflow_show(
        dev_server_env, "shown-cli",
        "--codec-endpoint", f"{sealed_stack.bridge_url}/codec",
        "--codec-auth", f"Bearer {sealed_stack.settings.admin_token}",
    )  # fmt: skip
    assert SPEC.sow in decoded and "vera@vendor.example" in decoded

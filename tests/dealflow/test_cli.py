"""`dealflow status | list | signal` as an operator runs them, against a running deal."""

from __future__ import annotations

import json
import subprocess

import starter
from dealflow.messages import DealStage
from devstack.stack import Stack
from tests.bridge_support import deal_spec, eventually, wait_for_summary
from tests.cli_support import cli_environment, run_dealflow


async def dealflow(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_environment(
        TEMPORAL_ADDRESS=stack.client.service_client.config.target_host,
        DEALFLOW_HOME=str(stack.settings.home),
    )
    return await run_dealflow(env, *args)


async def test_operator_reads_lists_and_signals_a_deal(stack: Stack) -> None:
    await starter.start_deal(
        stack.client, deal_spec("cli-deal"), stack.settings.task_queue, stack.settings.client_search_secret
    )
    await wait_for_summary(stack, "cli-deal", lambda s: s.stage == DealStage.SOW_SENT, what="the SOW")

    shown = await dealflow(stack, "status", "cli-deal", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["stage"] == "sow_sent"
    readable = await dealflow(stack, "status", "cli-deal")
    assert "sow_sent" in readable.stdout and "next:" in readable.stdout

    async def listed() -> bool:  # visibility is eventually consistent
        result = await dealflow(stack, "list", "--stage", "sow_sent", "--json")
        assert result.returncode == 0, result.stderr
        return "deal-cli-deal" in {row["workflow_id"] for row in json.loads(result.stdout)}

    await eventually(listed, what="the deal in `dealflow list`")
    # One client's deals: DealClient holds a keyed hash of the address, never the address.
    by_client = await dealflow(stack, "list", "--client", "Casey@Client.example", "--json")
    assert by_client.returncode == 0, by_client.stderr
    assert [row["workflow_id"] for row in json.loads(by_client.stdout)] == ["deal-cli-deal"]
    assert "casey@client.example" not in by_client.stdout.lower()
    query = await dealflow(stack, "client-query", "casey@client.example")
    assert query.returncode == 0 and query.stdout.startswith("DealClient = 'client-"), query.stderr
    not_an_address = await dealflow(stack, "list", "--client", "casey")
    assert not_an_address.returncode == 2 and "--client: 'casey' is not an e-mail address" in not_an_address.stderr

    bad_data = await dealflow(stack, "signal", "cli-deal", "approve_milestone", "--data", "{}")
    assert bad_data.returncode == 2
    assert "--data.milestone_key: Field required" in bad_data.stderr
    unknown = await dealflow(stack, "signal", "cli-deal", "pay_twice")
    assert unknown.returncode == 2 and "unknown action 'pay_twice'" in unknown.stderr
    bad_stage = await dealflow(stack, "list", "--stage", "done")
    assert bad_stage.returncode == 2 and "--stage: unknown stage 'done'" in bad_stage.stderr
    missing = await dealflow(stack, "status", "no-such-deal")
    assert missing.returncode == 1 and "not found" in missing.stderr

    not_operators = await dealflow(stack, "signal", "cli-deal", "sign_sow", "--operator", "grace")
    assert not_operators.returncode == 2 and "--operator: sign_sow is not an operator's action" in not_operators.stderr
    posing = await dealflow(
        stack, "signal", "cli-deal", "cancel_deal", "--operator", "grace",
        "--data", '{"reason": "x", "operator": "linus"}',
    )
    assert posing.returncode == 2 and "--data names another operator" in posing.stderr

    cancelled = await dealflow(
        stack, "signal", "cli-deal", "cancel_deal", "--data", '{"reason": "budget cut"}', "--operator", "grace"
    )
    assert cancelled.returncode == 0, cancelled.stderr
    await wait_for_summary(stack, "cli-deal", lambda s: s.stage == DealStage.CANCELLED, what="the cancellation")
    readable = await dealflow(stack, "status", "cli-deal")
    assert "[operator grace] Cancellation requested: budget cut" in readable.stdout


async def test_operator_sends_the_signer_a_new_access_code(stack: Stack) -> None:
    spec = deal_spec("coded-cli-deal", policy={"access_code_above": 0})
    await starter.start_deal(stack.client, spec, stack.settings.task_queue)
    await wait_for_summary(stack, "coded-cli-deal", lambda s: s.stage == DealStage.SOW_SENT, what="the SOW")

    resent = await dealflow(stack, "signal", "coded-cli-deal", "resend_access_code", "--operator", "grace")
    assert resent.returncode == 0, resent.stderr

    async def second_code_sent() -> str | None:
        shown = await dealflow(stack, "status", "coded-cli-deal")
        return shown.stdout if "access code: 2 sent, 0 wrong, 5 tries left" in shown.stdout else None

    shown = await eventually(second_code_sent, what="the second access code")
    assert "[operator grace] Access code 2 sent" in shown

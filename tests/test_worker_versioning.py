"""Worker Versioning, as the README's rolling deploy runs it: a deal started on one build of the
worker deployment moves on to the next build once that build is made current (auto-upgrade),
with the `temporal worker deployment set-current-version` command the README gives."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.common import VersioningBehavior
from temporalio.testing import WorkflowEnvironment

from dealflow.binaries import temporal_cli
from dealflow.messages import MilestoneState
from dealflow.settings import Settings
from starter import start_deal
from tests.deal_harness import DealRun, make_spec
from tests.fakes import FakeActivities
from worker import build_worker, deployment_config


def versioned(task_queue: str, deployment: str, build_id: str) -> Settings:
    return Settings(
        _env_file=None,
        DEALFLOW_TASK_QUEUE=task_queue,
        DEALFLOW_WORKER_DEPLOYMENT_NAME=deployment,
        DEALFLOW_WORKER_BUILD_ID=build_id,
    )


async def set_current(env: WorkflowEnvironment, deployment: str, build_id: str) -> None:
    """The README's command; retried until the server has seen the build's pollers."""
    command = [
        str(temporal_cli()), "worker", "deployment", "set-current-version",
        "--address", env.client.service_client.config.target_host,
        "--namespace", env.client.namespace,
        "--deployment-name", deployment, "--build-id", build_id, "--yes",
    ]  # fmt: skip
    for _ in range(100):
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
        if done.returncode == 0:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"set-current-version {build_id} failed: {done.stderr}")


def test_without_both_settings_the_worker_is_unversioned() -> None:
    assert deployment_config(Settings(_env_file=None)) is None


async def test_a_running_deal_moves_on_to_the_new_current_build(
    dev_server_env: WorkflowEnvironment,
) -> None:
    env = dev_server_env
    deployment = f"dealflow-{uuid.uuid4().hex[:8]}"
    task_queue = f"versioned-{deployment}"
    spec = make_spec(milestones=2)
    fake = FakeActivities()
    old = build_worker(env.client, versioned(task_queue, deployment, "build-1"), fake.activities())
    new = build_worker(env.client, versioned(task_queue, deployment, "build-2"), fake.activities())
    async with old:
        await set_current(env, deployment, "build-1")
        deal = DealRun(env, spec, fake, await start_deal(env.client, spec, task_queue))
        await deal.sign()
        await deal.fund("m1")
        async with new:
            await set_current(env, deployment, "build-2")
            await deal.deliver("m1")
            await deal.approve("m1")
            for step in (deal.fund, deal.deliver, deal.approve):
                await step("m2")
            final = await deal.result()
    assert final.stage.value == "completed"
    assert [m.state for m in final.milestones] == [MilestoneState.RELEASED] * 2

    history = await deal.handle.fetch_history()
    builds = [
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in history.events
        if event.event_type is EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert builds[0] == "build-1" and builds[-1] == "build-2", builds
    assert builds == sorted(builds), "the deal never goes back to the old build"
    description = await deal.handle.describe()
    versioning = description.raw_description.workflow_execution_info.versioning_info
    assert versioning.behavior == VersioningBehavior.AUTO_UPGRADE.value
    assert versioning.deployment_version.build_id == "build-2"
    await deal.replay()

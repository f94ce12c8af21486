"""What an operator sees of running deals: the worker's Temporal metrics for Prometheus, one
trace from a bridge request to the activities it starts, and JSON log lines that name the deal,
the workflow and the trace (dealflow.telemetry, dealflow.logs; the README's "Observability")."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio import activity, workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from dealflow.contract import SIGN_SOW
from dealflow.logs import REQUEST_LOGGERS, JsonFormatter, setup_process_logging
from dealflow.secret_rules import ensure_dev_secrets
from dealflow.serve import free_port
from dealflow.settings import Settings
from dealflow.telemetry import start_tracing, temporal_plugins
from dealflow.temporal import connect
from devstack.stack import StackConfig, run_stack
from starter import start_deal
from tests.activities.test_payments import SANDBOX_KEY, checkout, payments
from tests.bridge_support import (
    BROWSER_HEADERS,
    deal_spec,
    eventually,
    open_deal,
    sign_in_portal,
)
from tests.stripe_contract.harness import running_sandbox
from tests.workflows.test_replay import HISTORY_FILES
from worker import run_worker
from workflows.deal import DealWorkflow


@pytest.fixture(scope="session")
def spans() -> Iterator[InMemorySpanExporter]:
    """This test process traced to memory, as `start_tracing` traces the worker and the bridge.
    The tracer provider is process-wide: later tests still trace, to nowhere."""
    exporter = InMemorySpanExporter()
    assert start_tracing(Settings(_env_file=None), "dealflow-tests", exporter=exporter)
    yield exporter
    exporter.shutdown()


@pytest.fixture
def temporal_address(dev_server_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where `dealflow.temporal.connect` finds the dev server (TEMPORAL_ADDRESS, as a user sets it)."""
    address = dev_server_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    return address


def finished_spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return exporter.get_finished_spans()


async def test_the_worker_serves_temporal_metrics_for_prometheus(
    temporal_address: str, dev_server_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    queue = f"metered-{uuid.uuid4().hex[:8]}"
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        _env_file=None,
        DEALFLOW_HOME=tmp_path,
        DATABASE_URL=database_url,
        DEALFLOW_TASK_QUEUE=queue,
        DEALFLOW_WORKER_METRICS_ADDRESS=address,
        SMTP_URL=f"smtp://127.0.0.1:{free_port()}",  # nothing listens: the SOW mail only retries
        **ensure_dev_secrets(tmp_path),
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    try:
        await start_deal(dev_server_env.client, deal_spec("metered"), queue)
        completed_task = re.compile(
            rf'^temporal_workflow_task_execution_latency_count\{{[^}}]*task_queue="{queue}"[^}}]*\}} [1-9]',
            re.MULTILINE,
        )

        async def scraped() -> str | None:
            async with httpx.AsyncClient() as http:
                try:
                    page = await http.get(f"http://{address}/metrics")
                except httpx.ConnectError:
                    return None
            return page.text if completed_task.search(page.text) else None

        metrics = await eventually(scraped, what="the deal's first workflow task in /metrics")
    finally:
        stop.set()
        await worker
    for metric in ("temporal_worker_start", "temporal_workflow_task_execution_latency_count", "temporal_activity_task_received"):
        assert re.search(rf'^{metric}\{{[^}}]*task_queue="{queue}"', metrics, re.MULTILINE), metric


async def test_a_portal_action_is_one_trace_from_the_request_to_the_activity_it_starts(
    spans: InMemorySpanExporter, temporal_address: str, database_url: str, tmp_path: Path
) -> None:
    client = await connect(Settings(_env_file=None))  # traced: this process traces (`spans`)
    config = StackConfig(
        home=tmp_path / "home", database_url=database_url, task_queue=f"traced-{uuid.uuid4().hex[:8]}"
    )
    async with run_stack(config, client) as stack:
        link = await open_deal(stack, "traced")
        spans.clear()
        async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as http:
            await sign_in_portal(http, link)

        def update_trace() -> list[ReadableSpan]:
            [update] = [s for s in finished_spans(spans) if s.name == f"StartWorkflowUpdate:{SIGN_SOW}"]
            return [s for s in finished_spans(spans) if s.context.trace_id == update.context.trace_id]

        async def activity_ran() -> list[ReadableSpan] | None:
            in_trace = update_trace()
            return in_trace if any(s.name.startswith("RunActivity:") for s in in_trace) else None

        in_trace = await eventually(activity_ran, what="an activity span in the sign request's trace")
    by_id = {s.context.span_id: s for s in in_trace}

    def ancestry(span: ReadableSpan) -> list[str]:
        names = [span.name]
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    run_activity = next(s for s in in_trace if s.name.startswith("RunActivity:"))
    chain = ancestry(run_activity)
    request = by_id[run_activity.context.span_id]
    while request.parent is not None:
        request = by_id[request.parent.span_id]
    assert request.kind is SpanKind.SERVER
    assert str(request.attributes.get("http.route", "")).startswith("/portal/{deal_id}/")  # type: ignore[union-attr]
    assert "token=" not in str(request.attributes.get("http.url"))  # type: ignore[union-attr]
    assert chain[0] == run_activity.name and chain[-1] == request.name
    activity_type = run_activity.name.removeprefix("RunActivity:")
    for hop in (f"StartActivity:{activity_type}", f"HandleUpdate:{SIGN_SOW}", f"StartWorkflowUpdate:{SIGN_SOW}"):
        assert hop in chain, chain
    assert run_activity.attributes["temporalWorkflowID"] == "deal-traced"  # type: ignore[index]
    assert len([s for s in in_trace if s.name == f"HandleUpdate:{SIGN_SOW}"]) == 1, "traced once, not twice"


def test_a_workflow_span_closed_outside_its_context_logs_no_error(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """What evicting a cached deal does to its open spans: the garbage collector closes the
    coroutine in whatever context it runs in. Nothing is left attached, so nothing is logged."""

    def deal() -> Iterator[None]:
        with trace.get_tracer(__name__).start_as_current_span("RunWorkflow:DealWorkflow"):
            yield

    evicted = deal()
    contextvars.copy_context().run(next, evicted)
    evicted.close()
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_recorded_histories_replay_with_tracing_on(spans: InMemorySpanExporter, path: Path) -> None:
    """The tracing plugin adds headers and spans, never a command: every deal still replays."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[DealWorkflow], data_converter=pydantic_data_converter, plugins=temporal_plugins()
    )
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


async def test_json_log_lines_name_the_deal_the_workflow_and_the_trace() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    sdk_logger, bridge_logger = activity.logger.logger, logging.getLogger("dealflow.bridge")
    for logger in (sdk_logger, bridge_logger):
        logger.addHandler(handler)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="deal-d-42")

    @activity.defn
    async def record_ledger() -> None:
        activity.logger.warning("wrote %d rows", 3)

    tracer = TracerProvider().get_tracer(__name__)
    try:
        with tracer.start_as_current_span("request") as span:
            await env.run(record_ledger)
        bridge_logger.warning("no trace here", extra={"deal_id": "d-7"})
    finally:
        for logger in (sdk_logger, bridge_logger):
            logger.removeHandler(handler)
    traced, plain = (json.loads(line) for line in out.getvalue().splitlines())
    assert traced["message"].startswith("wrote 3 rows")
    assert traced["level"] == "WARNING" and traced["logger"] == sdk_logger.name
    assert traced["deal_id"] == "d-42" and traced["workflow_id"] == "deal-d-42"
    assert traced["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert traced["span_id"] == trace.format_span_id(span.get_span_context().span_id)
    assert plain["deal_id"] == "d-7" and "trace_id" not in plain and "workflow_id" not in plain


async def test_the_logs_carry_no_stripe_request_and_no_clients_email() -> None:
    """A checkout asks Stripe for the client's customer by email: Stripe's and httpx's INFO lines
    would put the address in every log; with the process's logging only their warnings pass."""
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in REQUEST_LOGGERS})
    info_on_message = (activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message)
    setup_process_logging(Settings(_env_file=None, DEALFLOW_LOG_FORMAT="json"), out)
    try:
        async with running_sandbox(api_key=SANDBOX_KEY) as sandbox:
            asked = await checkout(sandbox, "quiet", client_email="private.client@example.com")
            session = await ActivityEnvironment().run(
                payments(sandbox.url).create_checkout_session, asked
            )
            logging.getLogger("dealflow.test").info("checkout %s made", session.session_id)
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, logger_level in levels.items():
            logging.getLogger(name).setLevel(logger_level)
        activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = (
            info_on_message
        )
    logged = out.getvalue()
    assert f"checkout {session.session_id} made" in logged, "dealflow's own lines still pass"
    assert "private.client" not in logged and "Request to Stripe" not in logged

"""What a dealflow process shows an operator beside its own logs: Temporal's SDK metrics for
Prometheus, and OpenTelemetry traces that follow a request through Temporal into the activities.

Both are process-wide, as their libraries are: a Temporal `Runtime` serves one metrics endpoint
and must exist before the client that uses it connects; OpenTelemetry has one tracer provider a
process, set before the first client connects.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)

from dealflow.settings import Settings


def worker_runtime(settings: Settings) -> Runtime | None:
    """The worker's Temporal runtime: it serves the SDK's metrics at
    http://<DEALFLOW_WORKER_METRICS_ADDRESS>/metrics, and with JSON logs it hands sdk-core's own
    log lines to Python's logging (they are plain text on stderr otherwise). None, the SDK's
    default runtime, when neither is asked for."""
    if settings.worker_metrics_address is None and not settings.json_logs:
        return None
    logging_config = LoggingConfig.default
    if settings.json_logs:
        forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
        logging_config = dataclasses.replace(logging_config, forwarding=forwarding)
    metrics = (
        PrometheusConfig(bind_address=settings.worker_metrics_address)
        if settings.worker_metrics_address
        else None
    )
    return Runtime(telemetry=TelemetryConfig(logging=logging_config, metrics=metrics))


def start_tracing(settings: Settings, service: str, exporter: SpanExporter | None = None) -> bool:
    """Trace this process to `exporter`, or over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT; with
    neither, trace nothing and return False. `service` names the process unless OTEL_SERVICE_NAME
    does. The provider is Temporal's replay-safe one: spans made inside a workflow get ids from
    the workflow's own random and are not sent again when the workflow replays."""
    if exporter is None:
        if settings.otlp_endpoint is None:
            return False
        exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")
    provider = create_tracer_provider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logging.getLogger("opentelemetry.context").addFilter(_closed_elsewhere)
    return True


def _closed_elsewhere(record: logging.LogRecord) -> bool:
    """Drop OpenTelemetry's "Failed to detach context" when a workflow's span is closed outside
    the context that opened it: evicting a cached deal (cache pressure, a worker stopping) lets
    the garbage collector close its coroutines wherever it runs, so each eviction of a running
    deal logged a traceback at ERROR though nothing is left attached. The SDK ignores the same
    case in its own `attached_context` (temporalio/contrib/opentelemetry/_context.py)."""
    error = record.exc_info[1] if record.exc_info else None
    return not (isinstance(error, ValueError) and "was created in a different Context" in str(error))


def tracing() -> bool:
    """Whether `start_tracing` set up this process."""
    return isinstance(trace.get_tracer_provider(), ReplaySafeTracerProvider)


def temporal_plugins() -> list[OpenTelemetryPlugin]:
    """What a Temporal client of this process carries (workers built on it inherit it): in a
    traced process, the plugin that puts the current trace in the headers of every start,
    signal, update and activity, and continues it in the workflow and the activity."""
    return [OpenTelemetryPlugin(add_temporal_spans=True)] if tracing() else []

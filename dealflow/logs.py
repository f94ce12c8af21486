"""How the worker and the bridge log: lines for people in dev, JSON for a log pipeline in
production, each record carrying the deal, the workflow and the trace it belongs to."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from temporalio import activity, workflow

from dealflow.models import deal_id_of
from dealflow.settings import Settings

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
#: HTTP clients that log every request at INFO with its URL, which names the client (Stripe's
#: customer lookup by email, a portal link's token): only their warnings are kept.
REQUEST_LOGGERS = ("stripe", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and when known `deal_id`,
    `workflow_id` (from the SDK's workflow and activity loggers, or a record's `extra`) and
    `trace_id`/`span_id` of the current OpenTelemetry span, to find the request's trace."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        temporal = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None) or {}
        workflow_id = getattr(record, "workflow_id", None) or temporal.get("workflow_id")
        deal_id = getattr(record, "deal_id", None) or (workflow_id and deal_id_of(workflow_id))
        if deal_id:
            entry["deal_id"] = deal_id
        if workflow_id:
            entry["workflow_id"] = workflow_id
        if activity_type := temporal.get("activity_type"):
            entry["activity_type"] = activity_type
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = trace.format_trace_id(span.trace_id)
            entry["span_id"] = trace.format_span_id(span.span_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_process_logging(settings: Settings, stream: TextIO = sys.stderr) -> None:
    """Send every record of this process to `stream`, as JSON when `settings.json_logs`."""
    handler = logging.StreamHandler(stream)
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
        # The ids are fields of the record now; the SDK need not append its info dict as text.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

"""The bridge's requests as OpenTelemetry spans, each the parent of the Temporal calls it makes,
so a portal or API action is one trace from the request to the activities it starts."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import get_host_port_url_tuple
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import Span

#: Probes and scrapes: frequent, and telling nothing of a deal.
UNTRACED = "/healthz$,/readyz$,/metrics$,/static/"


def trace_requests(app: FastAPI) -> None:
    FastAPIInstrumentor.instrument_app(
        app, server_request_hook=_url_without_query, excluded_urls=UNTRACED
    )


def _url_without_query(span: Span, scope: dict[str, Any]) -> None:
    """A portal link carries its access token in the query: no trace may keep it."""
    _host, _port, url = get_host_port_url_tuple(scope)
    span.set_attribute("http.url", url)  # the attribute the instrumentation sets

"""A load balancer in front of several bridges, as Stripe's webhooks reach them in production.

Round robin, as nginx does it by default: an upstream that refuses the connection is skipped
for the next (`proxy_next_upstream error`); a request cut off once sent is not sent again (it is
a POST) but answered 502, and Stripe retries it later. Every answer is recorded with the bridge
that gave it, so a test can tell which bridge took which event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: What the bridges are sent on; the rest of the request is not a balancer's business.
_FORWARDED_HEADERS = ("content-type", "stripe-signature", "user-agent")


@dataclass(frozen=True)
class Answer:
    event_id: str
    #: The bridge that answered, or None when none could be reached.
    upstream: str | None
    status_code: int
    #: When, by the event loop's clock.
    at: float


class RoundRobin:
    def __init__(self, upstreams: Sequence[str]) -> None:
        self.upstreams = list(upstreams)
        self.answers: list[Answer] = []
        self._turns = itertools.cycle(range(len(self.upstreams)))
        self._http = httpx.AsyncClient(timeout=30)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._forward, methods=["POST"])])

    async def aclose(self) -> None:
        await self._http.aclose()

    def accepted_by(self, upstream: str) -> set[str]:
        """The events this bridge answered 2xx for."""
        return {
            a.event_id
            for a in self.answers
            if a.upstream == upstream and 200 <= a.status_code < 300
        }

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        headers = {
            name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers
        }
        event_id = json.loads(body).get("id", "?")
        first = next(self._turns)
        for turn in range(len(self.upstreams)):
            upstream = self.upstreams[(first + turn) % len(self.upstreams)]
            try:
                answer = await self._http.post(
                    f"{upstream}{request.url.path}", content=body, headers=headers
                )
            except httpx.ConnectError:
                continue
            except httpx.HTTPError as error:
                self._record(event_id, upstream, 502)
                return Response(f"bad gateway: {type(error).__name__}", status_code=502)
            self._record(event_id, upstream, answer.status_code)
            return Response(
                answer.content,
                status_code=answer.status_code,
                media_type=answer.headers.get("content-type"),
            )
        self._record(event_id, None, 503)
        return Response("no bridge is up", status_code=503)

    def _record(self, event_id: str, upstream: str | None, status_code: int) -> None:
        self.answers.append(
            Answer(event_id, upstream, status_code, asyncio.get_running_loop().time())
        )

"""Refuse request bodies over a size limit (413) without reading them, declared or streamed."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import error_body

MAX_BODY_BYTES = 1024 * 1024


def _too_large_message(max_bytes: int) -> str:
    return f"request bodies are limited to {max_bytes} bytes"


class BodyLimitMiddleware:
    """Pure ASGI. A declared Content-Length over the limit is refused before the app runs; a
    chunked body is counted while the route reads it and stops with the same 413 (an
    HTTPException, so FastAPI's body parsing re-raises it instead of calling it a bad body)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, _too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body("payload_too_large", _too_large_message(self.max_bytes))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""The server every app of dealflow runs on (the bridge, the sandbox, in the dev stack, the CLI
and the tests): uvicorn with the C HTTP parser, answering in the caller's event loop."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dealflow.serve import serve_app, server_config


def test_http_is_parsed_by_httptools() -> None:
    config = server_config(FastAPI(), host="127.0.0.1", port=0)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol


async def test_an_app_is_served_and_answers() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/echo", json={"said": "hello"})
    assert answer.status_code == 200 and answer.json() == {"said": "hello"}

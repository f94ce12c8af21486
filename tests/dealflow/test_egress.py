"""The egress guard: which addresses are public, and that a connection goes where the check looked.

The internet is out of reach here, so `LoopbackInternet` stands in for it; everything else (the
resolver's answers, the guard, httpx, the servers) is real.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dealflow.egress import (
    ForbiddenAddress,
    IPAddress,
    PublicAddressBackend,
    public_addresses,
    public_client,
    refusal,
)
from dealflow.serve import serve_app
from tests.egress_support import LOOPBACK, PUBLIC, LoopbackInternet


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "ff02::1",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
        "64:ff9b:1::808:808",  # local-use NAT64, whatever it carries
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a01:203::",  # 6to4 of 10.1.2.3
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",  # IPv4-mapped, even of a public address
        "::127.0.0.1",  # IPv4-compatible
        "::8.8.8.8",  # IPv4-compatible, even of a public address
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001:4860::5efe:7f00:1",  # ISATAP of 127.0.0.1 under a public prefix
        "2001:4860::200:5efe:a01:203",  # ISATAP (universal) of 10.1.2.3
    ],
)
def test_private_addresses_and_their_embedded_forms_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "2001:4860:4860::8888",
        "64:ff9b::808:808",  # what DNS64 answers for a public IPv4 host on an IPv6-only network
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_every_address_a_name_resolves_to_must_be_public() -> None:
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [PUBLIC, ipaddress.ip_address("64:ff9b::a00:1")]

    with pytest.raises(
        ForbiddenAddress, match=r"resolves to 64:ff9b::a00:1, which carries 10\.0\.0\.1"
    ):
        await public_addresses("files.vendor.test", 443, mixed)


class Server:
    """A real HTTP server on 127.0.0.1 that answers `body` and records each request's Host."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.hosts: list[str] = []
        self.url = ""

    async def answer(self, request: Request) -> PlainTextResponse:
        self.hosts.append(request.headers["host"])
        return PlainTextResponse(self.body)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


async def _served(body: str) -> AsyncIterator[Server]:
    server = Server(body)
    app = Starlette(routes=[Route("/{path:path}", server.answer)])
    async with serve_app(app) as url:
        server.url = url
        yield server


@pytest.fixture
async def vendor() -> AsyncIterator[Server]:
    """The vendor's public file host."""
    async for server in _served("the approved logo"):
        yield server


@pytest.fixture
async def internal() -> AsyncIterator[Server]:
    """A service on the worker's own machine that must never be fetched for a vendor."""
    async for server in _served("internal admin console"):
        yield server


async def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    vendor: Server,
) -> None:
    resolutions: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        resolutions.append(host)
        return [PUBLIC]

    internet = LoopbackInternet({PUBLIC: vendor.port})
    async with public_client(PublicAddressBackend(resolve, internet)) as http:
        response = await http.get(f"http://files.vendor.test:{vendor.port}/logo.svg")

    assert response.text == "the approved logo"
    assert resolutions == ["files.vendor.test"]
    assert internet.asked == [str(PUBLIC)]
    assert vendor.hosts == [f"files.vendor.test:{vendor.port}"]


async def test_a_name_rebound_to_a_private_address_after_the_check_never_reaches_it(
    vendor: Server, internal: Server
) -> None:
    """DNS rebinding: a public address for the check, this machine's for whoever asks next."""
    answers = [[PUBLIC]]

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return answers.pop() if answers else [LOOPBACK]

    internet = LoopbackInternet({PUBLIC: vendor.port})
    async with public_client(PublicAddressBackend(rebinding, internet)) as http:
        response = await http.get(f"http://files.vendor.test:{internal.port}/admin")
        with pytest.raises(
            ForbiddenAddress, match="resolves to 127.0.0.1, which is not a public address"
        ):
            await http.get(f"http://other.vendor.test:{internal.port}/admin")

    assert response.text == "the approved logo"
    assert internal.hosts == []
    assert internet.asked == [str(PUBLIC)]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
async def test_a_real_server_on_this_machine_is_refused(internal: Server, host: str) -> None:
    async with public_client() as http:
        with pytest.raises(ForbiddenAddress, match="not a public address"):
            await http.get(f"http://{host}:{internal.port}/admin")
    assert internal.hosts == []


async def test_proxy_settings_do_not_route_around_the_guard(
    internal: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve the name itself; the guarded client does not use one."""
    monkeypatch.setenv("HTTP_PROXY", internal.url)
    async with public_client() as http:
        with pytest.raises(ForbiddenAddress):
            await http.get("http://127.0.0.2/admin")
    assert internal.hosts == []

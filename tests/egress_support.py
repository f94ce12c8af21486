"""A stand-in for the internet, for tests of what the egress guard lets the worker reach."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpcore

from dealflow.egress import IPAddress

#: A public address (Python's ipaddress: is_global), routed by LoopbackInternet to a local server.
PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class LoopbackInternet(httpcore.AsyncNetworkBackend):
    """The internet, as far as these tests go: `routes` maps each public address it knows to the
    port of a server on this machine. It records every address it is asked to connect to."""

    def __init__(self, routes: dict[IPAddress, int]) -> None:
        self.routes = routes
        self.asked: list[str] = []
        self._machine = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        """`host` is an address: the guard resolved the name before asking."""
        self.asked.append(host)
        address = ipaddress.ip_address(host)
        if address not in self.routes:
            raise httpcore.ConnectError(f"no route to {host} in this test's internet")
        return await self._machine.connect_tcp(str(LOOPBACK), self.routes[address], **options)

    async def sleep(self, seconds: float) -> None:
        await self._machine.sleep(seconds)

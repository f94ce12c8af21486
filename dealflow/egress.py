"""Where the worker may fetch from on a vendor's word.

Artifact URLs come from the vendor; fetched files are mailed to the client. Without a guard a
vendor could point the worker at an internal address (metadata services, admin consoles) and have
the answer mailed out. In production only public addresses are fetched: `public_client()` resolves
a host once when it opens a connection, checks every address it got, and connects to a checked
address itself, so a name that answers a public address to the check and a private one to the
connection (DNS rebinding) gets nowhere. TLS and the Host header still use the URL's host name.
Each redirect hop opens its own connection and is checked in turn. Dev stacks and tests, whose
vendors live on this machine, allow private addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from dealflow.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves (host, port) to its addresses, in the order to try them.
Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]

#: IPv6 forms of IPv4 addresses that no public host is reached by; refused whatever they carry.
_NEVER_PUBLIC = {
    ipaddress.IPv6Network("::ffff:0:0/96"): "an IPv4-mapped address",
    ipaddress.IPv6Network("::/96"): "an IPv4-compatible address",
    ipaddress.IPv6Network("64:ff9b:1::/48"): "a local-use NAT64 address",
}
#: NAT64's well-known prefix: the last 32 bits are the IPv4 address the translator connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: ISATAP interface identifiers (RFC 5214): the IPv4 address follows in the last 32 bits.
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)


class ForbiddenAddress(ValueError):
    """The URL's host is, or resolves to, an address that is not public."""


def refusal(address: IPAddress) -> str | None:
    """Why the worker must not connect to `address`, or None when it is public.

    An IPv6 address that carries an IPv4 one (NAT64, 6to4, Teredo, ISATAP) reaches that IPv4
    address through a translator or a tunnel, so the IPv4 address must be public as well.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for network, form in _NEVER_PUBLIC.items():
            if address in network:
                return f"{form}, which is not a public address"
        for carried in _carried_ipv4(address):
            if refusal(carried) is not None:
                return f"which carries {carried}, not a public address"
    if not address.is_global or address.is_multicast:
        return "which is not a public address"
    return None


def _carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    carried = []
    if address in _NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        carried.append(address.sixtofour)
    if address.teredo is not None:
        carried.extend(address.teredo)
    if (int(address) >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return carried


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """The system resolver's addresses for host, each once, in its order."""
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ForbiddenAddress(f"{host!r} does not resolve ({error.strerror})") from error
    # An IPv6 answer may carry a zone ("fe80::1%eth0"): the address is what comes before it.
    addresses = (
        ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for *_, sockaddr in answers
    )
    return list(dict.fromkeys(addresses))


async def public_addresses(
    host: str, port: int, resolve: Resolve = resolve_host
) -> list[IPAddress]:
    """host's addresses, resolved once; ForbiddenAddress unless every one of them is public."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        addresses = await resolve(host, port)
    if not addresses:
        raise ForbiddenAddress(f"{host!r} resolves to no address")
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise ForbiddenAddress(f"{host!r} resolves to {address}, {reason}")
    return addresses


class PublicAddressBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to checked public addresses only: resolve once, check, connect."""

    def __init__(
        self, resolve: Resolve = resolve_host, connect: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._resolve = resolve
        self._connect = connect or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await public_addresses(host, port, self._resolve)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took over {timeout} s") from error
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._connect.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # public_addresses never answers an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddress(f"a Unix socket ({path}) is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self._connect.sleep(seconds)


class PublicAddressTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connections go through PublicAddressBackend.

    httpx takes no network backend, so the connection pool it built is replaced by the same
    pool on the guarded backend (TLS verified against the URL's host name, as httpx's is).
    """

    def __init__(self, backend: PublicAddressBackend | None = None) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend or PublicAddressBackend(),
        )


def public_client(backend: PublicAddressBackend | None = None) -> httpx.AsyncClient:
    """An httpx client that connects to public addresses only. It ignores HTTP(S)_PROXY: a
    proxy would resolve the name itself, out of the guard's sight."""
    return httpx.AsyncClient(transport=PublicAddressTransport(backend), trust_env=False)


def artifact_client(settings: Settings) -> httpx.AsyncClient:
    """The client vendor artifacts are fetched with: guarded unless private hosts are allowed
    (DEALFLOW_ALLOW_PRIVATE_ARTIFACT_HOSTS; dev stacks allow them)."""
    return httpx.AsyncClient() if settings.private_artifact_hosts_allowed else public_client()

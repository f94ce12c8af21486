"""Where the worker may fetch from on a vendor's word.

Artifact URLs come from the vendor; fetched files are mailed to the client. Without a guard a
vendor could point the worker at an internal address (metadata services, admin consoles) and have
the answer mailed out. In production only public addresses are fetched, checked at every
redirect hop; dev stacks and tests, whose vendors live on this machine, allow private ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class ForbiddenAddress(ValueError):
    """The URL's host is, or resolves to, an address that is not public."""


async def ensure_public(url: str) -> None:
    """Raise ForbiddenAddress unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ForbiddenAddress(f"{url!r} names no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ForbiddenAddress(f"{host!r} does not resolve ({error.strerror})") from error
    for *_, sockaddr in resolved:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise ForbiddenAddress(f"{host!r} resolves to {address}, which is not a public address")

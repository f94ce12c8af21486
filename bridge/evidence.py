"""What a signature keeps of the connection that gave it: the peer's address and its browser."""

from __future__ import annotations

from typing import Any

from fastapi import Request

#: As long as `SignSow.user_agent` may be.
MAX_USER_AGENT = 500


def signer_evidence(request: Request) -> dict[str, Any]:
    """`ip` and `user_agent` of a `SignSow`, from the request."""
    return {
        "ip": request.client.host if request.client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:MAX_USER_AGENT] or None,
    }

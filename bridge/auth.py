"""Bearer tokens of the vendor and admin APIs, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from bridge.errors import ApiError
from bridge.state import bridge_state

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _require_bearer(request: Request, expected: str | None, who: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401, f"send the {who} token as 'Authorization: Bearer <token>'", code="missing_token",
            field="Authorization", headers=_CHALLENGE,
        )
    if not expected or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise ApiError(
            401, f"the {who} token is not valid", code="invalid_token", field="Authorization",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


async def require_admin(request: Request) -> None:
    _require_bearer(request, bridge_state(request).settings.admin_token, "admin")


async def require_vendor(request: Request) -> None:
    _require_bearer(request, bridge_state(request).settings.vendor_token, "vendor")

"""Bearer tokens of the vendor and admin APIs, compared in constant time. An admin token names
its operator (`dealflow.operators`): routes that act on a deal take `Operator` to say who."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from bridge.errors import ApiError
from bridge.state import bridge_state
from dealflow.operators import operator_with_token

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _presented_bearer(request: Request, who: str) -> str:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401, f"send the {who} token as 'Authorization: Bearer <token>'", code="missing_token",
            field="Authorization", headers=_CHALLENGE,
        )
    return presented.strip()


def _invalid_token(who: str) -> ApiError:
    return ApiError(
        401, f"the {who} token is not valid", code="invalid_token", field="Authorization",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def require_admin(request: Request) -> str:
    """The name of the operator whose token the request presents."""
    presented = _presented_bearer(request, "admin")
    operator = operator_with_token(bridge_state(request).settings.operators, presented)
    if operator is None:
        raise _invalid_token("admin")
    return operator


#: Route parameter: the operator who sent the request (never taken from its body).
Operator = Annotated[str, Depends(require_admin)]


async def require_vendor(request: Request) -> None:
    presented = _presented_bearer(request, "vendor")
    expected = bridge_state(request).settings.vendor_token
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise _invalid_token("vendor")

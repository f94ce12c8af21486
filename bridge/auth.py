"""Bearer tokens of the vendor and admin APIs, compared in constant time.

An admin token names its operator (`dealflow.operators`): routes that act on a deal take
`Operator` to say who. A vendor presents their own key (`dfv_…`, `dealflow.vendor_keys`) and
reaches only their deals; in dev the legacy `DEALFLOW_VENDOR_TOKEN` still reaches every deal
(production refuses it)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from bridge.errors import ApiError
from bridge.state import bridge_state
from dealflow.operators import operator_with_token
from dealflow.vendor_keys import KEY_PREFIX
from dealflow.vendors import authenticate

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class VendorCaller:
    """Who called the vendor API: a vendor (by id), or the legacy dev token (None: every deal)."""

    vendor_id: str | None

    def reaches(self, deal_vendor_id: str | None) -> bool:
        return self.vendor_id is None or self.vendor_id == deal_vendor_id


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


async def require_vendor(request: Request) -> VendorCaller:
    """The caller of a vendor route: a valid, unrevoked vendor key, or (dev only) the legacy token."""
    state = bridge_state(request)
    presented = _presented_bearer(request, "vendor")
    if presented.startswith(KEY_PREFIX):
        vendor_id = await authenticate(state.pool, presented)
        if vendor_id is None:
            raise _invalid_token("vendor")
        return VendorCaller(vendor_id)
    legacy = state.settings.vendor_token
    if state.settings.dev and legacy and hmac.compare_digest(presented.encode(), legacy.encode()):
        return VendorCaller(None)
    raise _invalid_token("vendor")


#: Route parameter type of the vendor API's caller.
Vendor = Annotated[VendorCaller, Depends(require_vendor)]

"""Vendor API: a vendor's own deals (their status), countersigning a deal's statement of work,
proposing a change order, and handing in a milestone's deliverable for the client's review.

A vendor's key reaches only the deals whose spec names that vendor (`vendor.vendor_id`); any
other deal is a 404 exactly like one that does not exist, so a key never confirms that another
vendor's deal is there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from bridge import calls
from bridge.auth import Vendor, VendorCaller
from bridge.errors import ApiError
from bridge.evidence import signer_evidence
from bridge.state import Bridge, BridgeState
from bridge.vendor_deals import VendorDeal, vendor_deals
from dealflow.contract import PROPOSE_AMENDMENT, SIGN_SOW, SUBMIT_DELIVERABLE
from dealflow.messages import (
    ActionResult,
    AmendmentTerms,
    Artifact,
    DealStatus,
    ProposeAmendment,
    SignSow,
    SubmitDeliverable,
)

router = APIRouter(prefix="/api/vendor", tags=["vendor"])

_ERRORS = {401: {}, 404: {}, 409: {"description": "the deal refused (with the reason)"}, 422: {}, 503: {}}


class DeliverableBody(BaseModel):
    """What the vendor hands in; the milestone comes from the path."""

    model_config = ConfigDict(extra="forbid")

    summary: str = SubmitDeliverable.model_fields["summary"]
    artifacts: list[Artifact] = SubmitDeliverable.model_fields["artifacts"]


async def _reach(bridge: BridgeState, caller: VendorCaller, deal_id: str) -> None:
    """404 unless the deal is the caller's, before anything of it is read or changed."""
    if caller.vendor_id is None:
        return
    spec = await calls.spec(bridge, deal_id)
    if not caller.reaches(spec.vendor.vendor_id):
        raise calls.not_found(deal_id)


@router.get("/deals", responses={401: {}})
async def list_my_deals(
    bridge: Bridge, caller: Vendor, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> list[VendorDeal]:
    """The caller's deals from the read model, newest first."""
    if caller.vendor_id is None:
        raise ApiError(
            422, "the legacy DEALFLOW_VENDOR_TOKEN names no vendor: use a vendor key", field="Authorization"
        )
    return await vendor_deals(bridge.pool, caller.vendor_id, limit=limit)


@router.get("/deals/{deal_id}", responses={401: {}, 404: {}, 503: {}})
async def get_my_deal(deal_id: str, bridge: Bridge, caller: Vendor) -> DealStatus:
    """One of the caller's deals, live from its workflow."""
    await _reach(bridge, caller, deal_id)
    return await calls.status(bridge, deal_id)


@router.post("/deals/{deal_id}/milestones/{key}/deliverables", responses=_ERRORS)
async def submit_deliverable(
    deal_id: str,
    key: Annotated[str, Path(description="milestone key")],
    body: DeliverableBody,
    bridge: Bridge,
    caller: Vendor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Submit work for review; the same Idempotency-Key twice submits it once."""
    try:
        message = SubmitDeliverable(milestone_key=key, summary=body.summary, artifacts=body.artifacts)
    except ValueError as error:
        raise ApiError(422, f"milestone key '{key}' is not a valid key", field="key") from error
    await _reach(bridge, caller, deal_id)
    return await calls.act(
        bridge, deal_id, SUBMIT_DELIVERABLE, message, update_id=calls.update_id("vendor", idempotency_key)
    )


class SignatureBody(BaseModel):
    """The vendor's signature: who signs for them, their consent, and the SOW hash they read."""

    model_config = ConfigDict(extra="forbid")

    signer_name: str = SignSow.model_fields["signer_name"]
    consent: bool
    sow_sha256: str | None = SignSow.model_fields["sow_sha256"]


@router.post("/deals/{deal_id}/signature", responses=_ERRORS)
async def sign_sow(
    deal_id: str,
    body: SignatureBody,
    request: Request,
    bridge: Bridge,
    caller: Vendor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Countersign the SOW of a deal whose `signing_order` lists the vendor, in its turn; the
    caller's IP and User-Agent are kept as evidence, as on the portal."""
    await _reach(bridge, caller, deal_id)
    message = SignSow(
        signer_name=body.signer_name,
        consent=body.consent,
        sow_sha256=body.sow_sha256,
        party="vendor",
        **signer_evidence(request),
    )
    return await calls.act(
        bridge, deal_id, SIGN_SOW, message, update_id=calls.update_id("vendor-sign", idempotency_key)
    )


@router.post("/deals/{deal_id}/amendments", responses=_ERRORS)
async def propose_amendment(
    deal_id: str,
    body: AmendmentTerms,
    bridge: Bridge,
    caller: Vendor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Propose a change order: the whole milestone list as it is to be (and the SOW text if it
    changes); milestones with money held must be given unchanged. The client accepts or
    declines it on the portal."""
    await _reach(bridge, caller, deal_id)
    message = ProposeAmendment(**dict(body), proposed_by="vendor")
    return await calls.act(
        bridge, deal_id, PROPOSE_AMENDMENT, message, update_id=calls.update_id("vendor-amend", idempotency_key)
    )

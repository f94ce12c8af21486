"""Vendor API: countersign a deal's statement of work, propose a change order, and hand in a
milestone's deliverable for the client's review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from pydantic import BaseModel, ConfigDict

from bridge import calls
from bridge.auth import require_vendor
from bridge.errors import ApiError
from bridge.evidence import signer_evidence
from bridge.state import Bridge
from dealflow.contract import PROPOSE_AMENDMENT, SIGN_SOW, SUBMIT_DELIVERABLE
from dealflow.messages import (
    ActionResult,
    AmendmentTerms,
    Artifact,
    ProposeAmendment,
    SignSow,
    SubmitDeliverable,
)

router = APIRouter(prefix="/api/vendor", tags=["vendor"], dependencies=[Depends(require_vendor)])

_ERRORS = {401: {}, 404: {}, 409: {"description": "the deal refused (with the reason)"}, 422: {}, 503: {}}


class DeliverableBody(BaseModel):
    """What the vendor hands in; the milestone comes from the path."""

    model_config = ConfigDict(extra="forbid")

    summary: str = SubmitDeliverable.model_fields["summary"]
    artifacts: list[Artifact] = SubmitDeliverable.model_fields["artifacts"]


@router.post("/deals/{deal_id}/milestones/{key}/deliverables", responses=_ERRORS)
async def submit_deliverable(
    deal_id: str,
    key: Annotated[str, Path(description="milestone key")],
    body: DeliverableBody,
    bridge: Bridge,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Submit work for review; the same Idempotency-Key twice submits it once."""
    try:
        message = SubmitDeliverable(milestone_key=key, summary=body.summary, artifacts=body.artifacts)
    except ValueError as error:
        raise ApiError(422, f"milestone key '{key}' is not a valid key", field="key") from error
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
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Countersign the SOW of a deal whose `signing_order` lists the vendor, in its turn; the
    caller's IP and User-Agent are kept as evidence, as on the portal."""
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
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ActionResult:
    """Propose a change order: the whole milestone list as it is to be (and the SOW text if it
    changes); milestones with money held must be given unchanged. The client accepts or
    declines it on the portal."""
    message = ProposeAmendment(**dict(body), proposed_by="vendor")
    return await calls.act(
        bridge, deal_id, PROPOSE_AMENDMENT, message, update_id=calls.update_id("vendor-amend", idempotency_key)
    )

"""Vendor API: hand in a milestone's deliverable for the client's review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from pydantic import BaseModel, ConfigDict

from bridge import calls
from bridge.auth import require_vendor
from bridge.errors import ApiError
from bridge.state import Bridge
from dealflow.contract import SUBMIT_DELIVERABLE
from dealflow.messages import ActionResult, Artifact, SubmitDeliverable

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

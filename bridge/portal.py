"""The client portal: one page per deal, reached by the signed link in the client's emails.

The vendor of a countersigned deal has a link of their own (`party: vendor`): it shows the
statement of work and its signatures and lets them sign; every other action is the client's.
Every action is a form POST carrying the link token, a CSRF token and a nonce (see
`bridge.csrf`); it becomes a workflow update, so the person sees the workflow's own answer,
including the validator's reason when the action is not possible now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from bridge.csrf import (
    form_token,
    form_token_valid,
    new_nonce,
    nonce_valid,
    origin_allowed,
    origin_of,
)
from bridge.deals import ActionRejected, DealNotFound, DealUnavailable, InvalidText
from bridge.errors import ApiError, field_name
from bridge.evidence import signer_evidence
from bridge.pages import Pages
from bridge.state import Bridge, BridgeState, portal_rate_limit
from bridge.terms_view import VersionsView, side_by_side
from dealflow.contract import (
    ACCEPT_AMENDMENT,
    APPROVE_MILESTONE,
    DECLINE_AMENDMENT,
    DISPUTABLE,
    OPEN_DISPUTE,
    REQUEST_REVISION,
    SIGN_SOW,
)
from dealflow.links import InvalidLink, PortalLink, verify_link
from dealflow.messages import (
    AcceptAmendment,
    ApproveMilestone,
    DeclineAmendment,
    OpenDispute,
    RequestRevision,
    SignSow,
)
from dealflow.signers import Signer

router = APIRouter(prefix="/portal", tags=["portal"], dependencies=[Depends(portal_rate_limit)])

_LINK_HELP = (
    "It may have been altered, cut short, or it may have expired. "
    "Open the link in the most recent email about your deal."
)

#: How message fields are called on the page, for error messages people can act on.
_FIELD_LABELS = {
    "signer_name": "Your full name",
    "access_code": "Access code",
    "sow_sha256": "Statement of work fingerprint",
    "milestone_key": "Milestone",
    "notes": "What should change",
    "reason": "Why",
    "version": "Version",
    "nonce": "Form",
}


class PortalForm(BaseModel):
    """Fields every portal form sends. Empty defaults so a missing one gets our own answer."""

    token: str = ""
    csrf: str = ""
    nonce: str = ""


class SignForm(PortalForm):
    full_name: str = ""
    consent: bool = False
    sow_sha256: str = ""
    access_code: str = ""


class MilestoneForm(PortalForm):
    milestone_key: str = ""


class RevisionForm(MilestoneForm):
    notes: str = ""


class DisputeForm(MilestoneForm):
    reason: str = ""


class VersionForm(PortalForm):
    """An answer to a change order names the version it answers."""

    version: str = ""


class AcceptForm(VersionForm):
    full_name: str = ""
    consent: bool = False
    sow_sha256: str = ""


class DeclineForm(VersionForm):
    reason: str = ""


async def pages(request: Request) -> Pages:
    """Async, as `Bridge`'s dependency is: no thread pool hop per request."""
    return request.app.state.pages


View = Annotated[Pages, Depends(pages)]


def portal_path(deal_id: str, token: str) -> str:
    return f"/portal/{quote(deal_id)}?token={quote(token)}"


class _Refusal(Exception):
    """Ends a portal request with a page; carries what the page says."""

    def __init__(self, status: int, heading: str, message: str, *, field: str | None = None, back: bool = True):
        super().__init__(message)
        self.status, self.heading, self.message, self.field, self.back = status, heading, message, field, back


def _field_refusal(field: str, problem: str) -> _Refusal:
    """A field the person must correct, named as the page names it."""
    return _Refusal(422, "Please check the form", f"{_FIELD_LABELS.get(field, field)}: {problem}", field=field)


def _labelled(reason: str) -> str:
    """The deal's reason with the field it names (`access_code: ...`) called as the page calls it."""
    field, colon, rest = reason.partition(": ")
    return f"{_FIELD_LABELS[field]}: {rest}" if colon and field in _FIELD_LABELS else reason


def _check_link(bridge: BridgeState, deal_id: str, token: str) -> PortalLink:
    try:
        return verify_link(bridge.settings.secret_key or "", deal_id, token)
    except InvalidLink as error:
        raise ApiError(403, f"This link is not valid. {_LINK_HELP}", code="invalid_link") from error


@router.get("/{deal_id}", response_class=HTMLResponse)
async def deal_page(
    request: Request,
    deal_id: str,
    bridge: Bridge,
    view: View,
    token: Annotated[str, Query()] = "",
    paid: Annotated[bool, Query()] = False,
    version: Annotated[int | None, Query(ge=1, description="a version of the SOW to show")] = None,
) -> HTMLResponse:
    """The deal as the client sees it: SOW, milestones, pay links, deliverables, timeline (the
    vendor's link: the SOW, its signatures and the milestones, without the client's actions)."""
    link = _check_link(bridge, deal_id, token)
    try:
        status = await bridge.deals.status(deal_id)
        spec = await bridge.deals.spec(deal_id)
    except DealNotFound as error:
        raise ApiError(404, "We could not find this deal. It may have been withdrawn.") from error
    except DealUnavailable as error:
        raise ApiError(503, "Your deal cannot be shown right now; please reload in a minute.") from error
    versions = VersionsView.of(status, version)
    if versions.viewed is None:
        raise ApiError(404, f"This deal has no version {version} of its statement of work.")
    csrf = form_token(bridge.settings.secret_key or "", deal_id, token)

    def hidden() -> Markup:
        """The hidden fields of one form; each form gets its own nonce."""
        fields = {"token": token, "csrf": csrf, "nonce": new_nonce()}
        return Markup("").join(
            Markup('<input type="hidden" name="{}" value="{}">').format(name, value)
            for name, value in fields.items()
        )

    return view.render(
        "deal.html",
        status=status,
        spec=spec,
        paid=paid,
        sandbox=bridge.settings.stripe_mode == "sandbox",
        base=f"/portal/{quote(deal_id)}",
        hidden=hidden,
        disputable=DISPUTABLE,
        party=link.party,
        versions=versions,
        changes=side_by_side(versions.current, versions.proposed)
        if versions.current and versions.proposed
        else [],
        link=portal_path(deal_id, token),
    )


async def _act(
    request: Request,
    bridge: BridgeState,
    view: Pages,
    *,
    deal_id: str,
    form: PortalForm,
    action: str,
    update: str,
    build: Callable[[Signer], BaseModel],
    done: str,
    parties: frozenset[Signer],
) -> HTMLResponse:
    """Check link, CSRF, origin and nonce; send the update; show the workflow's answer."""
    link = _check_link(bridge, deal_id, form.token)
    back = portal_path(deal_id, form.token)
    try:
        if link.party not in parties:
            raise _Refusal(403, "Not yours to do", f"This link is the {link.party}'s: it cannot do that.")
        _check_form(request, bridge, deal_id, form)
        try:
            message = build(link.party)
        except ValidationError as error:
            first = error.errors()[0]
            raise _field_refusal(field_name(first["loc"]), first["msg"]) from error
        try:
            result = await bridge.deals.act(deal_id, update, message, update_id=f"portal-{action}-{form.nonce}")
        except InvalidText as error:
            raise _field_refusal(error.problem.field, error.problem.problem) from error
        except ActionRejected as error:
            raise _Refusal(409, "Not done", _labelled(str(error))) from error
        except DealNotFound as error:
            raise _Refusal(404, "Deal not found", "We could not find this deal.", back=False) from error
        except DealUnavailable as error:
            raise _Refusal(
                503,
                "Please try again in a moment",
                "Your deal did not answer in time. Sending the same form again is safe: it never counts twice.",
            ) from error
    except _Refusal as refusal:
        bridge.metrics.actions.labels(update, "rejected" if refusal.status == 409 else "refused").inc()
        return view.message(
            status_code=refusal.status,
            heading=refusal.heading,
            message=refusal.message,
            field=refusal.field,
            back_url=back if refusal.back else None,
        )
    bridge.metrics.actions.labels(update, "done").inc()
    return view.message(status_code=200, heading=done, message=result.message, back_url=back)


def _check_form(request: Request, bridge: BridgeState, deal_id: str, form: PortalForm) -> None:
    allowed = {origin_of(bridge.settings.public_url), origin_of(str(request.base_url))}
    if not origin_allowed(request.headers.get("origin"), allowed):
        raise _Refusal(403, "Form refused", "This form was sent from another site.", back=False)
    if not form_token_valid(bridge.settings.secret_key or "", deal_id, form.token, form.csrf):
        raise _Refusal(403, "Form refused", "This form is out of date; reload the page and try again.")
    if not nonce_valid(form.nonce):
        raise _Refusal(422, "Please check the form", "This form is incomplete; reload the page.", field="nonce")


def _signature(request: Request, form: SignForm, party: Signer) -> SignSow:
    if not form.consent:
        raise _Refusal(
            422, "Please check the form", "Tick the box to agree to the statement of work.", field="consent"
        )
    return SignSow(
        signer_name=form.full_name.strip(),
        consent=True,
        sow_sha256=form.sow_sha256 or None,
        party=party,
        access_code=form.access_code.strip() or None,
        **signer_evidence(request),
    )


def _version(form: VersionForm) -> int:
    try:
        return int(form.version)
    except ValueError as error:
        raise _field_refusal("version", "reload the page: this form names no version") from error


def _acceptance(request: Request, form: AcceptForm, _party: Signer) -> AcceptAmendment:
    if not form.consent:
        raise _Refusal(
            422, "Please check the form", "Tick the box to agree to the new terms.", field="consent"
        )
    return AcceptAmendment(
        version=_version(form),
        signer_name=form.full_name.strip(),
        consent=True,
        sow_sha256=form.sow_sha256 or None,
        **signer_evidence(request),
    )


@dataclass(frozen=True)
class _Action:
    """One portal form: its path and route name, the update it sends, and the page after it."""

    name: str
    form: type[PortalForm]
    update: str
    #: The request, the form and the party whose link sent it.
    build: Callable[[Request, Any, Signer], BaseModel]
    done: str
    description: str
    #: Whose links may send it.
    parties: frozenset[Signer] = frozenset({"client"})


_ACTIONS = (
    _Action(
        "sign", SignForm, SIGN_SOW, _signature, "Signed",
        "Sign the SOW (the client, or the vendor of a countersigned deal with their own link): "
        "typed name and consent; IP, browser and time are kept as evidence.",
        frozenset({"client", "vendor"}),
    ),
    _Action(
        "approve", MilestoneForm, APPROVE_MILESTONE,
        lambda _, form, __: ApproveMilestone(milestone_key=form.milestone_key, approved_by="client (portal)"),
        "Approved", "Approve a delivered milestone; its money is released to the vendor.",
    ),
    _Action(
        "revise", RevisionForm, REQUEST_REVISION,
        lambda _, form, __: RequestRevision(milestone_key=form.milestone_key, notes=form.notes.strip()),
        "Revision requested", "Send a delivered milestone back to the vendor with notes.",
    ),
    _Action(
        "dispute", DisputeForm, OPEN_DISPUTE,
        lambda _, form, __: OpenDispute(milestone_key=form.milestone_key, reason=form.reason.strip(), opened_by="client"),
        "Dispute opened", "Open a dispute on a milestone; it pauses until an operator resolves it.",
    ),
    _Action(
        "accept-amendment", AcceptForm, ACCEPT_AMENDMENT, _acceptance, "New terms signed",
        "Accept a change order: a signature of its version (typed name, consent, IP, browser, time).",
    ),
    _Action(
        "decline-amendment", DeclineForm, DECLINE_AMENDMENT,
        lambda _, form, __: DeclineAmendment(version=_version(form), reason=form.reason.strip()),
        "Change order declined", "Decline a change order; the terms in force stay as they are.",
    ),
)


def _add_route(action: _Action) -> None:
    """One POST route per action, its form parsed as the action's own model."""

    async def endpoint(request: Request, deal_id: str, form: PortalForm, bridge: Bridge, view: View) -> HTMLResponse:
        return await _act(
            request, bridge, view, deal_id=deal_id, form=form, action=action.name, update=action.update,
            build=lambda party: action.build(request, form, party), done=action.done,
            parties=action.parties,
        )

    # The annotations are strings FastAPI resolves in this module; the form's model is the action's.
    endpoint.__annotations__["form"] = Annotated[action.form, Form()]
    router.add_api_route(
        f"/{{deal_id}}/{action.name}",
        endpoint,
        methods=["POST"],
        response_class=HTMLResponse,
        name=action.name,
        description=action.description,
    )


for _action in _ACTIONS:
    _add_route(_action)

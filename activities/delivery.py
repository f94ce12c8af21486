"""Vendor hand-off: signed work orders POSTed with httpx; approved artifacts delivered to the client.

Work orders go to the vendor's fulfillment URL as JSON, signed in `X-Dealflow-Signature` (how a
vendor verifies it: dealflow/signing.py) and carrying an `Idempotency-Key` that is the same for
every attempt at one (deal, milestone, revision): a retry after the vendor accepted the order
lets the vendor answer again without starting the work twice. The vendor answers 2xx, with an
optional JSON body `{"delivery_id": "..."}`; 408, 429, 5xx and network errors are retried; any
other status is the vendor's refusal (non-retryable `VendorRejected`).

Approved artifacts are downloaded, checked against the SHA-256 the vendor declared when
submitting them, and mailed to the client as attachments with a stable Message-ID.

Both activities heartbeat while they run, so a worker that dies mid-download is noticed at the
heartbeat timeout. Their httpx timeouts and the overall download deadline come from
dealflow.activity_timeouts.DELIVERY, which also derives how long an attempt can take.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email import EmailActivities
from activities.heartbeat import heartbeating
from dealflow.activity_timeouts import DELIVERY
from dealflow.egress import ForbiddenAddress
from dealflow.mailer import Attachment
from dealflow.messages import (
    Artifact,
    ArtifactDeliveryInput,
    DeliveryResult,
    EmailKind,
    WorkOrderInput,
)
from dealflow.settings import Settings
from dealflow.signing import SIGNATURE_HEADER, sign

VENDOR_REJECTED = "VendorRejected"
VENDOR_UNAVAILABLE = "VendorUnavailable"
INVALID_URL = "InvalidUrl"
NO_ARTIFACTS = "NoArtifacts"
ARTIFACT_UNAVAILABLE = "ArtifactUnavailable"
ARTIFACT_MISMATCH = "ArtifactMismatch"
ARTIFACT_TOO_LARGE = "ArtifactTooLarge"
ARTIFACT_FORBIDDEN = "ArtifactForbidden"
MAX_REDIRECTS = 5

#: Mail servers commonly refuse messages over 20-25 MB; base64 adds a third to attachments.
MAX_ARTIFACT_BYTES = 10 * 1024 * 1024
WORK_ORDER_TIMEOUT = httpx.Timeout(**asdict(DELIVERY.work_order))
ARTIFACT_TIMEOUT = httpx.Timeout(**asdict(DELIVERY.artifact))
#: Honour a peer's Retry-After, but never park the activity longer than this.
MAX_RETRY_AFTER = timedelta(hours=1)
#: The artifacts mail's DeliveryResult.status_code: the SMTP server's "accepted".
SMTP_ACCEPTED = 250

_RETRYABLE_STATUSES = frozenset({408, 429})
_EXCERPT_BYTES = 300


def work_order_key(input: WorkOrderInput) -> str:
    """The Idempotency-Key of a work order: one per (deal, milestone, revision)."""
    return f"workorder:{input.deal_id}:{input.milestone_key}:{input.revision}"


class DeliveryActivities:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        artifact_http: httpx.AsyncClient,
        signing_secret: str,
        mailer: EmailActivities,
    ) -> None:
        """`http` posts work orders; `artifact_http` fetches artifacts, and in production is
        `dealflow.egress.artifact_client`'s, which connects to public addresses only."""
        self._http = http
        self._artifact_http = artifact_http
        self._signing_secret = signing_secret
        self._mailer = mailer

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: httpx.AsyncClient,
        artifact_http: httpx.AsyncClient,
        mailer: EmailActivities,
    ) -> DeliveryActivities:
        """`mailer` is the worker's one EmailActivities: the client's delivery mail goes out as
        every other mail does."""
        return cls(
            http=http,
            artifact_http=artifact_http,
            signing_secret=settings.require("DEALFLOW_DELIVERY_SECRET"),
            mailer=mailer,
        )

    @activity.defn
    @heartbeating
    async def dispatch_work_order(self, input: WorkOrderInput) -> DeliveryResult:
        key = work_order_key(input)
        order = {
            "idempotency_key": key,
            **input.model_dump(mode="json", exclude={"fulfillment_url"}),
        }
        body = json.dumps(order, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: sign(self._signing_secret, body, timestamp=int(time.time())),
        }
        async with _peer_errors(f"work order {key}"):
            response = await self._http.post(
                input.fulfillment_url, content=body, headers=headers, timeout=WORK_ORDER_TIMEOUT
            )
        await _raise_for_status(
            response, subject=f"vendor refused work order {key}", refused_type=VENDOR_REJECTED
        )
        activity.logger.info("work order %s accepted with HTTP %d", key, response.status_code)
        return DeliveryResult(
            status_code=response.status_code, delivery_id=_vendor_delivery_id(response) or key
        )

    @activity.defn
    @heartbeating
    async def deliver_artifacts(self, input: ArtifactDeliveryInput) -> DeliveryResult:
        """Mail the client the approved files, each verified against its declared SHA-256.

        Together they may weigh at most MAX_ARTIFACT_BYTES; larger deliveries fail with
        ArtifactTooLarge (the approved_receipt mail still lists every link).
        """
        if not input.artifacts:
            raise ApplicationError(
                f"milestone {input.milestone_key} has no artifacts to deliver",
                type=NO_ARTIFACTS,
                non_retryable=True,
            )
        attachments = await self._fetch_all(input)
        message_id = await self._mailer.send(
            deal_id=input.deal_id,
            kind=EmailKind.ARTIFACTS_DELIVERED,
            to=input.client_email,
            subject=f"Your approved files: {input.title}",
            message_key=f"{EmailKind.ARTIFACTS_DELIVERED.value}:{input.milestone_key}",
            context={
                "deal_id": input.deal_id,
                "milestone_key": input.milestone_key,
                "title": input.title,
                "demo": input.demo,
                "artifacts": [
                    {"name": a.name, "sha256": a.sha256, "size_display": f"{len(f.data):,} bytes"}
                    for a, f in zip(input.artifacts, attachments, strict=True)
                ],
            },
            attachments=attachments,
        )
        return DeliveryResult(status_code=SMTP_ACCEPTED, delivery_id=message_id)

    async def _fetch_all(self, input: ArtifactDeliveryInput) -> list[Attachment]:
        """Every artifact, within DELIVERY.download_deadline: httpx's timeouts bound each read,
        not a slow stream, and the attempt must end before Temporal starts the next one."""
        deadline = DELIVERY.download_deadline.total_seconds()
        attachments: list[Attachment] = []
        budget = MAX_ARTIFACT_BYTES
        try:
            async with asyncio.timeout(deadline):
                for artifact in input.artifacts:
                    attachment = await self._fetch_verified(artifact, budget=budget)
                    budget -= len(attachment.data)
                    attachments.append(attachment)
        except TimeoutError as error:
            raise ApplicationError(
                f"artifacts of milestone {input.milestone_key} not downloaded within {deadline:.0f}s",
                type=VENDOR_UNAVAILABLE,
            ) from error
        return attachments

    async def _fetch_verified(self, artifact: Artifact, *, budget: int) -> Attachment:
        digest = hashlib.sha256()
        data = bytearray()
        url = str(artifact.url)
        subject = f"artifact {artifact.name!r}"
        async with _peer_errors(subject), _forbidden_destinations(subject):
            for _hop in range(MAX_REDIRECTS + 1):
                fetching = self._artifact_http.stream("GET", url, timeout=ARTIFACT_TIMEOUT)
                async with fetching as response:
                    if response.is_redirect:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    await _raise_for_status(
                        response,
                        subject=f"{subject} cannot be fetched",
                        refused_type=ARTIFACT_UNAVAILABLE,
                    )
                    async for chunk in response.aiter_bytes():
                        if len(data) + len(chunk) > budget:
                            raise ApplicationError(
                                f"artifacts exceed {MAX_ARTIFACT_BYTES:,} bytes in total at "
                                f"{artifact.name!r}; too large to mail",
                                type=ARTIFACT_TOO_LARGE,
                                non_retryable=True,
                            )
                        digest.update(chunk)
                        data.extend(chunk)
                    content_type = _content_type(response, artifact.name)
                    break
            else:
                raise ApplicationError(
                    f"{subject}: more than {MAX_REDIRECTS} redirects",
                    type=ARTIFACT_UNAVAILABLE,
                    non_retryable=True,
                )
        if digest.hexdigest() != artifact.sha256:
            raise ApplicationError(
                f"artifact {artifact.name!r} does not match its declared SHA-256: "
                f"declared {artifact.sha256}, downloaded {digest.hexdigest()}",
                type=ARTIFACT_MISMATCH,
                non_retryable=True,
            )
        filename = artifact.name.replace("/", "_").replace("\\", "_")
        return Attachment(filename=filename, content_type=content_type, data=bytes(data))



@asynccontextmanager
async def _peer_errors(subject: str) -> AsyncIterator[None]:
    """A malformed URL will never work: non-retryable. Other transport errors propagate (retried)."""
    try:
        yield
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        raise ApplicationError(
            f"{subject}: invalid URL ({error})", type=INVALID_URL, non_retryable=True
        ) from error


@asynccontextmanager
async def _forbidden_destinations(subject: str) -> AsyncIterator[None]:
    """A hop to an address that is not public will never be fetched: non-retryable."""
    try:
        yield
    except ForbiddenAddress as error:
        raise ApplicationError(
            f"{subject}: refused to fetch: {error}", type=ARTIFACT_FORBIDDEN, non_retryable=True
        ) from error


async def _raise_for_status(response: httpx.Response, *, subject: str, refused_type: str) -> None:
    """2xx passes; 408, 429 and 5xx are retryable; any other status is a non-retryable refusal."""
    if response.is_success:
        return
    status = response.status_code
    message = f"{subject}: HTTP {status} {await _excerpt(response)!r}"
    if status in _RETRYABLE_STATUSES or status >= 500:
        raise ApplicationError(
            message, status, type=VENDOR_UNAVAILABLE, next_retry_delay=_retry_after(response)
        )
    raise ApplicationError(message, status, type=refused_type, non_retryable=True)


async def _excerpt(response: httpx.Response) -> str:
    """The start of the body, read no further than needed (error pages can be large)."""
    head = bytearray()
    async for chunk in response.aiter_bytes():
        head.extend(chunk)
        if len(head) >= _EXCERPT_BYTES:
            break
    return head[:_EXCERPT_BYTES].decode("utf-8", "replace")


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after", "")
    if not value.isdigit():
        return None
    return min(timedelta(seconds=int(value)), MAX_RETRY_AFTER)


def _vendor_delivery_id(response: httpx.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    delivery_id = answer.get("delivery_id") if isinstance(answer, dict) else None
    return delivery_id if isinstance(delivery_id, str) and delivery_id else None


def _content_type(response: httpx.Response, name: str) -> str:
    declared = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if "/" in declared:
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"

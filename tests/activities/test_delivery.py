"""DeliveryActivities against a real vendor HTTP server (uvicorn, in this loop) and aiosmtpd."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.delivery
import activities.heartbeat
from activities.delivery import MAX_ARTIFACT_BYTES, DeliveryActivities
from activities.email import EmailActivities
from dealflow.egress import IPAddress, PublicAddressBackend, public_client
from dealflow.links import PortalLinks
from dealflow.messages import Artifact, ArtifactDeliveryInput, DeliveryResult, WorkOrderInput
from dealflow.serve import free_port, serve_app
from dealflow.signing import InvalidSignature, sign, verify_signature
from devstack.mailsink import MailSink
from tests.egress_support import PUBLIC, LoopbackInternet

SIGNING_SECRET = "dlv_test-signing-secret-0123456789"
SLOW_PIECE_SECONDS = 0.05


@dataclass
class Vendor:
    """A vendor's fulfilment endpoint and file host; it records what it received."""

    url: str = ""
    orders: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    async def flaky_orders(self, request: Request) -> Response:
        """Verifies the signature, fails the first order with 500, accepts the next ones."""
        body = await request.body()
        try:
            verify_signature(SIGNING_SECRET, request.headers["x-dealflow-signature"], body)
        except InvalidSignature as error:
            return PlainTextResponse(str(error), status_code=401)
        self.orders.append((dict(request.headers), body))
        if len(self.orders) == 1:
            return PlainTextResponse("database is restarting", status_code=500)
        return JSONResponse({"delivery_id": "vnd-42"}, status_code=202)

    async def rejecting_orders(self, request: Request) -> Response:
        return JSONResponse({"error": "milestone 'concepts' is not in our system"}, status_code=400)

    async def busy_orders(self, request: Request) -> Response:
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "7"})

    async def file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "broken":
            return PlainTextResponse("upstream down", status_code=503)
        if name not in self.files:
            return PlainTextResponse("not found", status_code=404)
        data, content_type = self.files[name]
        return Response(data, media_type=content_type)

    async def slow_file(self, request: Request) -> Response:
        """The file in ten pieces, a little apart, as a large download over a slow link."""
        data, content_type = self.files[request.path_params["name"]]
        size = -(-len(data) // 10)

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(data), size):
                await asyncio.sleep(SLOW_PIECE_SECONDS)
                yield data[start : start + size]

        return StreamingResponse(pieces(), media_type=content_type)

    async def moved(self, request: Request) -> Response:
        return RedirectResponse(f"/files/{request.path_params['name']}", status_code=302)

    async def moved_inside(self, request: Request) -> Response:
        """A redirect to the file on this machine's own address (which a vendor's name is not)."""
        return RedirectResponse(f"{self.url}/files/{request.path_params['name']}", status_code=302)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/orders/flaky", self.flaky_orders, methods=["POST"]),
                Route("/orders/reject", self.rejecting_orders, methods=["POST"]),
                Route("/orders/busy", self.busy_orders, methods=["POST"]),
                Route("/files/{name}", self.file),
                Route("/moved/{name}", self.moved),
                Route("/inside/{name}", self.moved_inside),
                Route("/slow/{name}", self.slow_file),
            ]
        )

    def artifact(
        self, name: str, data: bytes, content_type: str, *, path: str = "files"
    ) -> Artifact:
        self.files[name] = (data, content_type)
        return Artifact(
            name=name, url=f"{self.url}/{path}/{name}", sha256=hashlib.sha256(data).hexdigest()
        )


@pytest.fixture
async def vendor() -> AsyncIterator[Vendor]:
    vendor = Vendor()
    async with serve_app(vendor.app()) as url:
        vendor.url = url
        yield vendor


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    sink = MailSink(tmp_path / "mail")
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def mailer(sink: MailSink) -> EmailActivities:
    return EmailActivities(
        smtp_url=sink.url,
        mail_from="dealflow <deals@dealflow.test>",
        links=PortalLinks("https://deals.example.test", "test-secret-key-0123456789", days=30),
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def delivery(http: httpx.AsyncClient, mailer: EmailActivities) -> DeliveryActivities:
    # The test vendor lives on this machine, as a dev stack's does.
    return DeliveryActivities(
        http=http, artifact_http=http, signing_secret=SIGNING_SECRET, mailer=mailer
    )


def approved(artifacts: list[Artifact]) -> ArtifactDeliveryInput:
    """The approved 'Logo' milestone of deal acme-logo, delivering these artifacts."""
    return ArtifactDeliveryInput(
        deal_id="acme-logo",
        milestone_key="concepts",
        client_email="ada@client.test",
        title="Logo",
        artifacts=artifacts,
    )


def work_order(url: str, *, revision: int = 0) -> WorkOrderInput:
    return WorkOrderInput(
        deal_id="acme-logo",
        milestone_key="concepts",
        fulfillment_url=url,
        title="Three logo concepts",
        description="Concepts A, B and C",
        amount=125_000,
        currency="usd",
        due="2026-12-01",
        sow_sha256="a" * 64,
        revision=revision,
    )


async def dispatch(delivery: DeliveryActivities, order: WorkOrderInput) -> DeliveryResult:
    return await ActivityEnvironment().run(delivery.dispatch_work_order, order)


async def test_work_order_is_retried_after_a_500_with_the_same_key_and_valid_signatures(
    vendor: Vendor, delivery: DeliveryActivities
) -> None:
    order = work_order(f"{vendor.url}/orders/flaky")

    with pytest.raises(ApplicationError) as first:
        await dispatch(delivery, order)
    result = await dispatch(delivery, order)

    assert first.value.type == "VendorUnavailable"
    assert not first.value.non_retryable
    assert "500" in str(first.value) and "database is restarting" in str(first.value)
    assert result == DeliveryResult(status_code=202, delivery_id="vnd-42")
    assert len(vendor.orders) == 2
    keys = {headers["idempotency-key"] for headers, _ in vendor.orders}
    assert keys == {"workorder:acme-logo:concepts:0"}
    for headers, body in vendor.orders:
        verify_signature(SIGNING_SECRET, headers["x-dealflow-signature"], body)
        assert headers["content-type"] == "application/json"
        sent = json.loads(body)
        assert sent["idempotency_key"] == "workorder:acme-logo:concepts:0"
        assert (sent["deal_id"], sent["milestone_key"], sent["amount"], sent["currency"]) == (
            "acme-logo",
            "concepts",
            125_000,
            "usd",
        )
        assert "fulfillment_url" not in sent


async def test_a_revision_is_a_new_work_order_with_its_own_key(
    vendor: Vendor, delivery: DeliveryActivities
) -> None:
    with pytest.raises(ApplicationError):
        await dispatch(delivery, work_order(f"{vendor.url}/orders/flaky"))
    await dispatch(delivery, work_order(f"{vendor.url}/orders/flaky", revision=1))

    assert [headers["idempotency-key"] for headers, _ in vendor.orders] == [
        "workorder:acme-logo:concepts:0",
        "workorder:acme-logo:concepts:1",
    ]


async def test_vendor_4xx_is_a_non_retryable_rejection(
    vendor: Vendor, delivery: DeliveryActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await dispatch(delivery, work_order(f"{vendor.url}/orders/reject"))

    assert raised.value.type == "VendorRejected"
    assert raised.value.non_retryable
    assert raised.value.details == (400,)
    assert "HTTP 400" in str(raised.value)
    assert "is not in our system" in str(raised.value)


async def test_vendor_429_is_retried_after_its_retry_after(
    vendor: Vendor, delivery: DeliveryActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await dispatch(delivery, work_order(f"{vendor.url}/orders/busy"))

    assert raised.value.type == "VendorUnavailable"
    assert not raised.value.non_retryable
    assert raised.value.next_retry_delay == timedelta(seconds=7)


async def test_unreachable_vendor_is_a_retryable_network_error(
    delivery: DeliveryActivities,
) -> None:
    with pytest.raises(httpx.ConnectError):
        await dispatch(delivery, work_order(f"http://127.0.0.1:{free_port()}/orders"))


async def test_a_fulfillment_url_that_can_never_work_is_not_retried(
    delivery: DeliveryActivities,
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await dispatch(delivery, work_order("ftp://vendor.test/orders"))

    assert raised.value.type == "InvalidUrl"
    assert raised.value.non_retryable


async def test_delivering_no_artifacts_is_refused(
    sink: MailSink, delivery: DeliveryActivities
) -> None:
    input = approved([])

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_artifacts, input)

    assert raised.value.type == "NoArtifacts"
    assert raised.value.non_retryable
    assert sink.messages == []


async def test_artifacts_are_verified_and_mailed_to_the_client(
    vendor: Vendor, sink: MailSink, delivery: DeliveryActivities
) -> None:
    pdf = b"%PDF-1.7 " + bytes(range(256)) * 40
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    artifacts = [
        vendor.artifact("concepts.pdf", pdf, "application/pdf"),
        vendor.artifact("logo.svg", svg, "image/svg+xml", path="moved"),
    ]
    input = ArtifactDeliveryInput(
        deal_id="acme-logo",
        milestone_key="concepts",
        client_email="ada@client.test",
        title="Three logo concepts",
        artifacts=artifacts,
        demo=True,
    )

    first = await ActivityEnvironment().run(delivery.deliver_artifacts, input)
    again = await ActivityEnvironment().run(delivery.deliver_artifacts, input)

    assert first.status_code == 250
    assert first.delivery_id == again.delivery_id
    assert [m["Message-ID"] for m in sink.messages] == [first.delivery_id, first.delivery_id]
    message = sink.messages[0]
    assert message["To"] == "ada@client.test"
    assert message["X-Dealflow-Kind"] == "artifacts_delivered"
    assert message["Subject"] == "[DEMO] Your approved files: Three logo concepts"
    attached = {part.get_filename(): part for part in message.iter_attachments()}
    assert attached["concepts.pdf"].get_content_type() == "application/pdf"
    assert attached["concepts.pdf"].get_content() == pdf
    assert attached["logo.svg"].get_content_type() == "image/svg+xml"
    assert attached["logo.svg"].get_content() == svg
    text = message.get_body(("plain",)).get_content()
    assert "DEMO — sandbox money" in text
    assert f"{len(pdf):,} bytes" in text
    assert hashlib.sha256(pdf).hexdigest() in text


async def test_an_artifact_that_does_not_match_its_sha256_is_refused(
    vendor: Vendor, sink: MailSink, delivery: DeliveryActivities
) -> None:
    good = vendor.artifact("concepts.pdf", b"approved bytes", "application/pdf")
    swapped = vendor.artifact("logo.png", b"approved png", "image/png")
    vendor.files["logo.png"] = (b"something else", "image/png")
    input = approved([good, swapped])

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_artifacts, input)

    assert raised.value.type == "ArtifactMismatch"
    assert raised.value.non_retryable
    assert "'logo.png'" in str(raised.value)
    assert hashlib.sha256(b"something else").hexdigest() in str(raised.value)
    assert sink.messages == []


@pytest.mark.parametrize(
    ("name", "error_type", "non_retryable"),
    [("missing", "ArtifactUnavailable", True), ("broken", "VendorUnavailable", False)],
)
async def test_artifact_fetch_errors_are_classified(
    vendor: Vendor, delivery: DeliveryActivities, name: str, error_type: str, non_retryable: bool
) -> None:
    artifact = Artifact(name=name, url=f"{vendor.url}/files/{name}", sha256="0" * 64)
    input = approved([artifact])

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_artifacts, input)

    assert raised.value.type == error_type
    assert raised.value.non_retryable is non_retryable


async def test_artifacts_over_the_size_limit_are_refused(
    vendor: Vendor, sink: MailSink, delivery: DeliveryActivities
) -> None:
    half = MAX_ARTIFACT_BYTES // 2 + 1
    artifacts = [
        vendor.artifact("part-1.bin", b"\x01" * half, "application/octet-stream"),
        vendor.artifact("part-2.bin", b"\x02" * half, "application/octet-stream"),
    ]
    input = approved(artifacts)

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_artifacts, input)

    assert raised.value.type == "ArtifactTooLarge"
    assert raised.value.non_retryable
    assert "'part-2.bin'" in str(raised.value)
    assert sink.messages == []


def recording_heartbeats() -> tuple[ActivityEnvironment, list[tuple[object, ...]]]:
    env = ActivityEnvironment()
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_a_slow_download_heartbeats_while_it_streams(
    vendor: Vendor, sink: MailSink, delivery: DeliveryActivities, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies mid-download is noticed at the heartbeat timeout, not start-to-close."""
    monkeypatch.setattr(activities.heartbeat, "HEARTBEAT_INTERVAL", timedelta(milliseconds=50))
    artifact = vendor.artifact("film.mov", b"\x00" * 100_000, "video/quicktime", path="slow")
    env, beats = recording_heartbeats()

    result = await env.run(delivery.deliver_artifacts, approved([artifact]))

    assert result.status_code == 250
    # Ten pieces 50 ms apart: about ten beats, allowing for a slow machine.
    assert len(beats) >= 5


async def test_a_quick_work_order_sends_no_heartbeat(
    vendor: Vendor, delivery: DeliveryActivities
) -> None:
    env, beats = recording_heartbeats()
    with pytest.raises(ApplicationError):
        await env.run(delivery.dispatch_work_order, work_order(f"{vendor.url}/orders/reject"))
    assert beats == []


async def test_a_download_slower_than_its_deadline_is_retried(
    vendor: Vendor, sink: MailSink, delivery: DeliveryActivities, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx's read timeout bounds each piece, not the stream; the deadline bounds the attempt."""
    quick = dataclasses.replace(
        activities.delivery.DELIVERY, download_deadline=timedelta(seconds=SLOW_PIECE_SECONDS * 3)
    )
    monkeypatch.setattr(activities.delivery, "DELIVERY", quick)
    artifact = vendor.artifact("film.mov", b"\x00" * 100_000, "video/quicktime", path="slow")

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(delivery.deliver_artifacts, approved([artifact]))

    assert raised.value.type == "VendorUnavailable"
    assert not raised.value.non_retryable
    assert "not downloaded within" in str(raised.value)
    assert sink.messages == []


SIGNED_BODY = b'{"deal_id":"acme-logo"}'
SIGNED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SIGNED_HEADER = sign(SIGNING_SECRET, SIGNED_BODY, timestamp=int(SIGNED_AT.timestamp()))


def test_signature_verifies_and_accepts_any_of_several_keys_during_rotation() -> None:
    assert verify_signature(SIGNING_SECRET, SIGNED_HEADER, SIGNED_BODY, now=SIGNED_AT) == SIGNED_AT
    next_secret = "the-next-secret-0123456789"
    next_signature = sign(next_secret, SIGNED_BODY, timestamp=int(SIGNED_AT.timestamp())).split(
        "v1="
    )[1]
    rotated = f"{SIGNED_HEADER},v1={next_signature}"
    assert verify_signature(next_secret, rotated, SIGNED_BODY, now=SIGNED_AT) == SIGNED_AT


@pytest.mark.parametrize(
    ("secret", "header", "body", "now"),
    [
        ("another-secret-0123456789", SIGNED_HEADER, SIGNED_BODY, SIGNED_AT),
        (SIGNING_SECRET, SIGNED_HEADER, SIGNED_BODY + b" ", SIGNED_AT),
        (SIGNING_SECRET, SIGNED_HEADER, SIGNED_BODY, SIGNED_AT + timedelta(minutes=6)),
        (SIGNING_SECRET, SIGNED_HEADER, SIGNED_BODY, SIGNED_AT - timedelta(minutes=6)),
        (SIGNING_SECRET, SIGNED_HEADER.split(",")[1], SIGNED_BODY, SIGNED_AT),
        (SIGNING_SECRET, SIGNED_HEADER.split(",")[0], SIGNED_BODY, SIGNED_AT),
    ],
    ids=[
        "wrong-secret",
        "altered-body",
        "replayed-later",
        "from-the-future",
        "no-timestamp",
        "no-signature",
    ],
)
def test_signature_verification_refuses(
    secret: str, header: str, body: bytes, now: datetime
) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(secret, header, body, now=now)


@pytest.fixture
async def guarded(mailer: EmailActivities, vendor: Vendor) -> AsyncIterator[DeliveryActivities]:
    """Delivery as production runs it: artifacts from public addresses only. The vendor's file
    host is `files.vendor.test`, at a public address that LoopbackInternet routes to `vendor`."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [PUBLIC]

    internet = LoopbackInternet({PUBLIC: int(vendor.url.rsplit(":", 1)[1])})
    async with httpx.AsyncClient() as http, public_client(
        PublicAddressBackend(resolve, internet)
    ) as artifact_http:
        yield DeliveryActivities(
            http=http, artifact_http=artifact_http, signing_secret=SIGNING_SECRET, mailer=mailer
        )


def on_public_host(vendor: Vendor, artifact: Artifact, path: str) -> Artifact:
    port = vendor.url.rsplit(":", 1)[1]
    return artifact.model_copy(
        update={"url": f"http://files.vendor.test:{port}/{path}/{artifact.name}"}
    )


async def test_production_fetches_artifacts_from_public_hosts_through_redirects(
    vendor: Vendor, sink: MailSink, guarded: DeliveryActivities
) -> None:
    artifact = vendor.artifact("concepts.pdf", b"approved bytes", "application/pdf")

    result = await ActivityEnvironment().run(
        guarded.deliver_artifacts, approved([on_public_host(vendor, artifact, "moved")])
    )

    assert result.status_code == 250
    [message] = sink.messages
    assert [part.get_content() for part in message.iter_attachments()] == [b"approved bytes"]


async def test_production_refuses_a_redirect_to_a_private_address(
    vendor: Vendor, sink: MailSink, guarded: DeliveryActivities
) -> None:
    """Each hop is checked: a public URL that redirects inside gets nowhere."""
    artifact = vendor.artifact("concepts.pdf", b"approved bytes", "application/pdf")

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            guarded.deliver_artifacts, approved([on_public_host(vendor, artifact, "inside")])
        )

    assert raised.value.type == "ArtifactForbidden"
    assert raised.value.non_retryable
    assert "'127.0.0.1' resolves to 127.0.0.1, which is not a public address" in str(raised.value)
    assert sink.messages == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]", "[64:ff9b::7f00:1]"],
)
async def test_production_refuses_artifacts_on_private_addresses(
    vendor: Vendor, sink: MailSink, mailer: EmailActivities, host: str
) -> None:
    """A vendor's URL must not make the worker fetch internal services and mail the answer out."""
    port = vendor.url.rsplit(":", 1)[1]
    real = vendor.artifact("concepts.pdf", b"approved bytes", "application/pdf")
    artifact = real.model_copy(update={"url": f"http://{host}:{port}/files/concepts.pdf"})
    input = approved([artifact])

    with pytest.raises(ApplicationError) as raised:
        async with httpx.AsyncClient() as http, public_client() as artifact_http:
            guarded = DeliveryActivities(
                http=http, artifact_http=artifact_http, signing_secret=SIGNING_SECRET, mailer=mailer
            )
            await ActivityEnvironment().run(guarded.deliver_artifacts, input)

    assert raised.value.type == "ArtifactForbidden"
    assert raised.value.non_retryable
    assert "not a public address" in str(raised.value)
    assert sink.messages == []

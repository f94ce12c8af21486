"""The codec endpoint of the Temporal UI and CLI (`POST /codec/decode`, `/codec/encode`): it
decrypts payloads for an operator signed in as admin, so the UI shows a deal's history in clear
to them while Temporal's store holds it encrypted.

Point the UI's codec endpoint (its Data Encoder settings, or `temporal server start-dev
--ui-codec-endpoint`) at `<bridge>/codec`. The UI's page calls it from its own origin
(DEALFLOW_TEMPORAL_UI_URL), the only one CORS lets read the answers. The caller sends the admin
token as `Authorization: Bearer` or, with "include cross-origin credentials", the dashboard's
session cookie; nobody else gets a payload decoded. The keys are those of the bridge's own
namespace: a UI asking for another one (its `X-Namespace`) is refused rather than handed
payloads sealed, or opened, with keys that are not that namespace's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from bridge.dashboard import signed_in_operator
from bridge.errors import ApiError
from bridge.state import Bridge, BridgeState
from dealflow.codec import PayloadDecryptionError
from dealflow.settings import Settings

router = APIRouter(prefix="/codec", tags=["codec"])

#: What the Temporal UI sends: its JSON body, the namespace, and the operator's credentials.
_ALLOWED_HEADERS = "authorization, content-type, x-namespace"


def ui_origin(settings: Settings) -> str:
    """DEALFLOW_TEMPORAL_UI_URL as a browser's Origin header names it."""
    parts = urlsplit(settings.temporal_ui_url)
    return f"{parts.scheme}://{parts.netloc}"


def cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    """CORS answers for the Temporal UI's origin; none for any other."""
    origin = ui_origin(settings)
    if request.headers.get("origin") != origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request, bridge: Bridge) -> Response:
    """The browser's preflight: allowed for the UI's origin only (no credentials are sent)."""
    return Response(status_code=204, headers=cors_headers(request, bridge.settings))


@router.post("/decode")
async def decode(request: Request, bridge: Bridge) -> Response:
    """Decrypted payloads (`{"payloads": [...]}`, protobuf JSON) for an admin."""
    return await _apply(request, bridge, encrypt=False)


@router.post("/encode")
async def encode(request: Request, bridge: Bridge) -> Response:
    """Encrypted payloads, for what the UI sends (a signal's input typed in the UI)."""
    return await _apply(request, bridge, encrypt=True)


async def _apply(request: Request, bridge: BridgeState, *, encrypt: bool) -> Response:
    headers = cors_headers(request, bridge.settings)
    if signed_in_operator(request, bridge.settings) is None:
        raise ApiError(
            401, "send the admin token as 'Authorization: Bearer <token>' or sign in to the dashboard",
            code="missing_token", field="Authorization", headers={**headers, "WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    namespace = request.headers.get("x-namespace")
    if namespace is not None and namespace != bridge.temporal.namespace:
        raise ApiError(
            403, f"this codec holds the keys of namespace {bridge.temporal.namespace!r}, not of {namespace!r}",
            code="other_namespace", field="X-Namespace", headers=headers,
        )  # fmt: skip
    codec = bridge.temporal.data_converter.payload_codec
    if codec is None:
        raise ApiError(
            404, "payloads are not encrypted here: DEALFLOW_PAYLOAD_KEYS is not set",
            code="codec_off", headers=headers,
        )  # fmt: skip
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as error:
        raise ApiError(
            400, f"expected {{\"payloads\": [...]}} as protobuf JSON: {error}", field="payloads",
            headers=headers,
        ) from error  # fmt: skip
    try:
        coded = await (codec.encode if encrypt else codec.decode)(payloads.payloads)
    except PayloadDecryptionError as error:
        raise ApiError(422, str(error), code="undecodable_payload", field="payloads", headers=headers) from error
    return Response(
        json_format.MessageToJson(Payloads(payloads=coded)), media_type="application/json", headers=headers
    )

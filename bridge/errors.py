"""One error shape for every JSON route: `{"error": {"code", "message", "field"}}`.

Handlers here turn FastAPI's validation errors (naming the field), Starlette's HTTP errors and
our own `ApiError` into that shape, so a client never has to parse two formats.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An answer other than success, with the status, a stable code and a human message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.field = field
        self.headers = headers


def error_body(code: str, message: str, field: str | None = None) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, error.field), status_code=error.status, headers=error.headers
    )


def field_name(location: tuple[int | str, ...] | list[int | str]) -> str:
    """('body', 'artifacts', 0, 'url') -> 'artifacts[0].url'; the request part is dropped."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


#: Renders an error for people (the portal) instead of JSON.
ErrorPage = Callable[[Request, ApiError], Response]


def install_error_handlers(app: FastAPI, *, html_prefix: str, html_page: ErrorPage) -> None:
    """JSON errors everywhere, except under `html_prefix` where people get `html_page`."""

    def respond(request: Request, error: ApiError) -> Response:
        if request.url.path.startswith(html_prefix):
            return html_page(request, error)
        return error_response(error)

    async def api_error(request: Request, error: ApiError) -> Response:
        return respond(request, error)

    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        field = field_name(first["loc"])
        return respond(request, ApiError(422, f"{field}: {first['msg']}", field=field))

    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        headers = getattr(error, "headers", None)
        return respond(request, ApiError(error.status_code, str(error.detail), headers=headers))

    async def unexpected_error(request: Request, _error: Exception) -> Response:
        """A bug or a dead dependency: still the error shape, never a stack trace."""
        return respond(request, ApiError(500, "internal error; it was logged", code="internal"))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)

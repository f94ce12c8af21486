"""The hosted Connect onboarding page at an account link's `url`: the vendor confirms the
details Stripe asks for and the account is enabled (`Sandbox.complete_onboarding`, which sends
`account.updated`), then goes to the link's `return_url`. A lapsed or used link sends them to
its `refresh_url`, where the platform makes a new one, as Stripe does."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.store import Store

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stripe sandbox: onboarding</title></head>
<body><main>
<h1>Onboarding for {account}</h1>
<p>Sandbox: no identity is checked. Completing gives Stripe what it asks for:</p>
<ul>{due}</ul>
<form method="post" action="{action}"><button type="submit" id="complete-onboarding">Complete onboarding</button></form>
</main></body></html>"""


def connect_routes(sandbox: Sandbox, store: Store) -> list[Route]:
    def usable_link(link_id: str) -> dict | None:
        link = store.state.objects.get(link_id)
        if link is None or link["object"] != "account_link":
            return None
        return link

    def lapsed(link: dict) -> Response:
        if link["_refresh_url"]:
            return RedirectResponse(link["_refresh_url"], status_code=303)
        return HTMLResponse("<h1>This onboarding link has expired.</h1>", status_code=410)

    def refusal(link: dict | None) -> Response | None:
        """Why a link opens nothing now (unknown, lapsed or used), or None when it is good."""
        if link is None:
            return HTMLResponse("<h1>This onboarding link is not valid.</h1>", status_code=404)
        if sandbox.now() >= link["expires_at"] or link.get("_used"):
            return lapsed(link)
        return None

    async def page(request: Request) -> Response:
        link = usable_link(request.path_params["link_id"])
        if (refused := refusal(link)) is not None:
            return refused
        assert link is not None
        account = sandbox.get(link["_account"], "account", "account")
        due = "".join(f"<li>{escape(item)}</li>" for item in account["requirements"]["currently_due"])
        html = _PAGE.format(account=escape(account["id"]), due=due or "<li>nothing</li>", action=request.url.path)
        return HTMLResponse(html)

    async def complete(request: Request) -> Response:
        link = usable_link(request.path_params["link_id"])
        if (refused := refusal(link)) is not None:
            return refused
        assert link is not None
        sandbox.complete_onboarding(link["_account"])
        link["_used"] = True
        store.put(link)
        store.commit()
        if link["_return_url"]:
            return RedirectResponse(link["_return_url"], status_code=303)
        return HTMLResponse("<h1>Onboarding complete.</h1>")

    return [
        Route("/connect/onboarding/{link_id}", page, methods=["GET"]),
        Route("/connect/onboarding/{link_id}", complete, methods=["POST"]),
    ]

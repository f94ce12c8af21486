"""What a client's browser does with the portal and the hosted checkout: read pages, submit forms."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from demo.http import DemoStepFailed, send_politely


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    id: str | None = None


@dataclass
class Page:
    url: str
    status: int
    forms: list[Form]
    links: dict[str, str]
    text: str

    def form(self, action_suffix: str, milestone_key: str | None = None) -> Form:
        """The form posting to `.../<action_suffix>` (for `milestone_key`, when given)."""
        for form in self.forms:
            if form.action.rstrip("/").endswith("/" + action_suffix) and (
                milestone_key is None or form.fields.get("milestone_key") == milestone_key
            ):
                return form
        what = f"'{action_suffix}' form" + (f" for milestone {milestone_key}" if milestone_key else "")
        raise DemoStepFailed(f"no {what} on {urlsplit(self.url).path}: {self.text[:200]}")

    def form_by_id(self, form_id: str) -> Form:
        for form in self.forms:
            if form.id == form_id:
                return form
        raise DemoStepFailed(f"no form #{form_id} on {urlsplit(self.url).path}: {self.text[:200]}")

    def single_form(self) -> Form:
        if len(self.forms) != 1:
            raise DemoStepFailed(f"expected one form on {urlsplit(self.url).path}: {self.text[:200]}")
        return self.forms[0]

    def link(self, element_id: str) -> str:
        if element_id not in self.links:
            raise DemoStepFailed(f"no link #{element_id} on {urlsplit(self.url).path}: {self.text[:200]}")
        return urljoin(self.url, self.links[element_id])


class _PageParser(HTMLParser):
    """Forms with their fields (hidden values included), links by id, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: dict[str, str] = {}
        self.text: list[str] = []
        self._form: Form | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), fields={}, id=a.get("id"))
            self.forms.append(self._form)
        elif tag in ("input", "textarea") and self._form is not None and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("id") and a.get("href"):
            self.links[a["id"]] = a["href"]
        elif tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag in ("style", "script", "title"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(data.strip())


def parse_page(response: httpx.Response) -> Page:
    parser = _PageParser()
    parser.feed(response.text)
    return Page(str(response.url), response.status_code, parser.forms, parser.links, " ".join(parser.text))


class Browser:
    """What a person's browser does: open pages, submit forms with their hidden fields, follow
    redirects, and send the page's own origin (the portal refuses foreign form posts)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def open(self, url: str) -> Page:
        return parse_page(await send_politely(self.http, "GET", url, follow_redirects=True))

    async def submit(self, page: Page, form: Form, values: dict[str, str]) -> Page:
        """POST the form; a redirect is followed with a GET of its own, so being told to slow
        down on the page after it never sends the form (a payment, a signature) twice."""
        parts = urlsplit(page.url)
        response = await send_politely(
            self.http,
            "POST",
            urljoin(page.url, form.action),
            data={**form.fields, **values},
            headers={"Origin": f"{parts.scheme}://{parts.netloc}"},
        )
        if response.is_redirect:
            return await self.open(urljoin(str(response.url), response.headers["location"]))
        return parse_page(response)

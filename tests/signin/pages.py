"""A person at the emulator's sign-in pages, without a browser: read the HTML form, fill in the
e-mail and password (or the device code), submit, and collect what the authority sends back to
the app (a redirect's query, or a ``form_post`` page's hidden fields)."""

from __future__ import annotations

import ssl
import threading
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _answer(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """What goes back to the app: (redirect URI, parameters)."""
    if response.is_redirect:
        location = response.headers["Location"]
        parts = urlsplit(location)
        params = dict(parse_qsl(parts.query)) or dict(parse_qsl(parts.fragment))
        return location.split("?", 1)[0], params
    [form] = forms_of(response.text)
    return form.action, form.fields


def sign_in_at(
    auth_uri: str, email: str, password: str, verify: ssl.SSLContext
) -> tuple[str, dict[str, str]]:
    """Fill in the sign-in page at ``auth_uri``; returns (redirect URI, the response's
    parameters: ``code`` and ``state``, or ``error``)."""
    with httpx.Client(verify=verify, timeout=30) as http:
        page = http.get(auth_uri)
        page.raise_for_status()
        [form] = [f for f in forms_of(page.text) if "passwd" in f.fields]
        data = {**form.fields, "login": email, "passwd": password}
        answer = http.post(urljoin(str(page.url), form.action or str(page.url)), data=data)
        return _answer(answer)


def authorize(email: str, password: str, verify: ssl.SSLContext):  # type: ignore[no-untyped-def]
    """For ``MicrosoftSignIn.sign_in_with_auth_code``: the redirect's parameters."""
    return lambda auth_uri: sign_in_at(auth_uri, email, password, verify)[1]


def approve_device_code(
    verification_uri: str,
    user_code: str,
    email: str,
    password: str,
    verify: ssl.SSLContext,
    action: str = "approve",
) -> str:
    """Enter the code and sign in on the device page; returns the final page's text."""
    with httpx.Client(verify=verify, timeout=30, follow_redirects=True) as http:
        page = http.get(verification_uri)
        page.raise_for_status()
        [form] = [f for f in forms_of(page.text) if "otc" in f.fields]
        data = {**form.fields, "otc": user_code, "login": email, "passwd": password}
        data["action"] = action
        done = http.post(urljoin(str(page.url), form.action or str(page.url)), data=data)
        return done.text


class PageBrowser(webbrowser.BaseBrowser):
    """The "system browser" MSAL opens for an interactive sign-in: signs in on the pages and
    posts the answer to MSAL's loopback listener, on a thread (as a real browser would)."""

    def __init__(self, email: str, password: str, verify: ssl.SSLContext) -> None:
        super().__init__("trackbox-test-browser")
        self.email = email
        self.password = password
        self.verify = verify
        self.opened: list[str] = []
        self.errors: list[BaseException] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._visit, args=(url,), daemon=True).start()
        return True

    def _visit(self, url: str) -> None:
        try:
            target, params = sign_in_at(url, self.email, self.password, self.verify)
            with httpx.Client(timeout=30) as http:  # the loopback listener is plain HTTP
                http.post(target, data=params)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)


@contextmanager
def system_browser(email: str, password: str, verify: ssl.SSLContext) -> Iterator[PageBrowser]:
    """Make :class:`PageBrowser` the browser ``webbrowser.open`` uses, for the duration."""
    browser = PageBrowser(email, password, verify)
    name = "trackbox-test-browser"
    webbrowser.register(name, None, browser, preferred=True)
    try:
        yield browser
    finally:
        order = getattr(webbrowser, "_tryorder", None)
        if order and name in order:
            order.remove(name)

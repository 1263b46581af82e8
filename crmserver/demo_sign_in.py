"""The demo's user at the emulator's own sign-in page, without a browser.

``trackbox demo`` signs its user in through the real OAuth path (authorization code with
PKCE, as MSAL drives it) so that the demo exercises what a real organisation does; only the
person typing the password is replaced by :func:`authorizer`, which reads the sign-in form the
emulator serves (``signin_page.py``), posts the demo user's e-mail and password, and hands
back what the authority sends to the app: a redirect's query, or the hidden fields of a
``form_post`` page. This module knows the emulator's page, so it lives with the emulator; it
talks to it over HTTP(S) like any browser.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

#: The answer an authorization request sends back to the app (``code`` and ``state``, or
#: ``error`` and ``error_description``).
Answer = dict[str, str]


class DemoSignInError(RuntimeError):
    """The sign-in page could not be filled in or did not sign the user in; ``reason`` says
    why (never the password)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the demo sign-in failed: {reason}")
        self.reason = reason


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.alerts: list[str] = []
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        self._in_alert = values.get("role") == "alert" or "error" in values.get("class", "")

    def handle_data(self, data: str) -> None:
        if self._in_alert and data.strip():
            self.alerts.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_alert = False


def _parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def sign_in_at(auth_uri: str, email: str, password: str, verify: ssl.SSLContext | bool) -> Answer:
    """Open the authorization URL, sign in as ``email``, and return the answer for the app.

    Raises :class:`DemoSignInError` when the page has no sign-in form (the request was
    refused: its error is in the message) or shows the form again (wrong password)."""
    with httpx.Client(verify=verify, timeout=30) as http:
        page = http.get(auth_uri)
        if page.is_redirect:  # an error the authority sends straight back to the app
            return _redirect_answer(page)
        parsed = _parse(page.text)
        forms = [f for f in parsed.forms if "passwd" in f.fields]
        if not forms:
            raise DemoSignInError(
                f"no sign-in form at the authority (HTTP {page.status_code}: "
                f"{'; '.join(parsed.alerts) or 'no message'})"
            )
        form = forms[0]
        data = {**form.fields, "login": email, "passwd": password}
        answer = http.post(urljoin(str(page.url), form.action or str(page.url)), data=data)
    if answer.is_redirect:
        return _redirect_answer(answer)
    posted = _parse(answer.text)
    if any("passwd" in f.fields for f in posted.forms) or not posted.forms:
        raise DemoSignInError(
            f"the authority did not accept the demo user {email} (HTTP {answer.status_code}: "
            f"{'; '.join(posted.alerts) or 'no message'})"
        )
    return dict(posted.forms[0].fields)  # response_mode=form_post


def _redirect_answer(response: httpx.Response) -> Answer:
    parts = urlsplit(response.headers.get("Location", ""))
    return dict(parse_qsl(parts.query)) or dict(parse_qsl(parts.fragment))


def authorizer(email: str, password: str, verify: ssl.SSLContext | bool) -> Callable[[str], Answer]:
    """For ``MicrosoftSignIn.sign_in_with_auth_code``: ``authorize(auth_uri)`` signs in as
    ``email`` on the emulator's page and returns the redirect's parameters."""

    def authorize(auth_uri: str) -> Answer:
        return sign_in_at(auth_uri, email, password, verify)

    return authorize


__all__ = ["Answer", "DemoSignInError", "authorizer", "sign_in_at"]

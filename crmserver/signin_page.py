"""The HTML of the sign-in endpoints: the sign-in form, the device-code page, the error page
(shown instead of redirecting when the client or redirect URI cannot be trusted) and the
``form_post`` response page.

Every value is HTML-escaped; the pages load nothing external, cannot be framed, are never
cached and send no Referer. The form may post to this server only, and (from the sign-in page)
redirect to the client's own redirect URI.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping

from starlette.responses import HTMLResponse

from .oauth_errors import OAuthError

STYLE = (
    "body{font:15px system-ui,sans-serif;margin:0;background:#f3f3f3;color:#1b1b1b}"
    "main{max-width:380px;margin:8vh auto;background:#fff;padding:32px 40px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:22px;font-weight:600;margin:0 0 12px}"
    "label{display:block;margin:14px 0 4px}input{width:100%;box-sizing:border-box;"
    "padding:6px;font:inherit}button{margin-top:20px;padding:6px 18px;font:inherit}"
    ".error{color:#a80000}.muted{color:#555;font-size:13px}code{font-size:14px}"
)


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _page(
    title: str,
    body: str,
    *,
    status: int = 200,
    form_action: str = "'self'",
    script_nonce: str = "",
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    script = f"; script-src 'nonce-{script_nonce}'" if script_nonce else ""
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; "
        f"frame-ancestors 'none'; base-uri 'none'{script}"
    )
    doc = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            **(headers or {}),
        },
    )


def signin_page(
    *,
    action: str,
    client_name: str,
    organisation: str,
    login: str = "",
    error: str = "",
    redirect_origin: str = "",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form; it posts ``login`` and ``passwd`` back to ``action``."""
    alert = f"<p class='error' role='alert'>{_esc(error)}</p>" if error else ""
    body = (
        f"<h1>Sign in</h1><p>to continue to <b>{_esc(client_name)}</b></p>"
        f"<p class='muted'>{_esc(organisation)}</p>{alert}"
        f"<form method='post' action='{_esc(action)}'>"
        "<label for='login'>E-mail</label>"
        f"<input id='login' name='login' type='email' autocomplete='username' required "
        f"value='{_esc(login)}'{'' if login else ' autofocus'}>"
        "<label for='passwd'>Password</label>"
        f"<input id='passwd' name='passwd' type='password' autocomplete='current-password' "
        f"required{' autofocus' if login else ''}>"
        "<button type='submit'>Sign in</button></form>"
    )
    allowed = "'self'" + (f" {redirect_origin}" if redirect_origin else "")
    return _page("Sign in", body, status=status, form_action=allowed, headers=headers)


def device_page(
    *,
    action: str,
    organisation: str,
    user_code: str = "",
    login: str = "",
    error: str = "",
    done: str = "",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The device-code page: the code shown by the app, then the user's e-mail and password.
    ``done`` replaces the form with a final message."""
    if done:
        return _page("Device sign-in", f"<h1>Device sign-in</h1><p>{_esc(done)}</p>")
    alert = f"<p class='error' role='alert'>{_esc(error)}</p>" if error else ""
    body = (
        "<h1>Enter code</h1><p>Enter the code displayed on your app or device, then sign in "
        f"with your {_esc(organisation)} account.</p>{alert}"
        f"<form method='post' action='{_esc(action)}'>"
        "<label for='otc'>Code</label>"
        f"<input id='otc' name='otc' autocomplete='off' autocapitalize='characters' required "
        f"value='{_esc(user_code)}' autofocus>"
        "<label for='login'>E-mail</label>"
        f"<input id='login' name='login' type='email' autocomplete='username' "
        f"value='{_esc(login)}'>"
        "<label for='passwd'>Password</label>"
        "<input id='passwd' name='passwd' type='password' autocomplete='current-password'>"
        "<button type='submit' name='action' value='approve'>Sign in</button> "
        "<button type='submit' name='action' value='deny' formnovalidate>Cancel sign-in"
        "</button></form>"
    )
    return _page("Device sign-in", body, status=status, headers=headers)


def error_page(err: OAuthError, *, status: int = 400) -> HTMLResponse:
    """A sign-in error shown to the user (no redirect: the target is not trusted)."""
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class='error'>{_esc(err.text)}</p>"
        "<p class='muted'>Ask the developer of the app that sent you here to check its "
        "sign-in settings.</p>"
    )
    return _page("Sign-in error", body, status=status)


def form_post_page(redirect_uri: str, params: Mapping[str, str]) -> HTMLResponse:
    """``response_mode=form_post``: a form that posts the response to the redirect URI."""
    nonce = secrets.token_urlsafe(16)
    fields = "".join(
        f"<input type='hidden' name='{_esc(k)}' value='{_esc(v)}'>" for k, v in params.items()
    )
    body = (
        f"<form method='post' action='{_esc(redirect_uri)}'>{fields}"
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        "<button type='submit'>Submit</button></noscript></form>"
        f"<script nonce='{nonce}'>document.forms[0].submit()</script>"
    )
    return _page("Working...", body, form_action=_origin_source(redirect_uri), script_nonce=nonce)


def _origin_source(uri: str) -> str:
    """A CSP source for the origin of ``uri`` (``scheme://host[:port]``)."""
    scheme, _, rest = uri.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    source = f"{scheme}://{host}"
    safe = scheme and host and not any(c in source for c in " ;,'\"\\")
    return source if safe else "'none'"


def redirect_origin(uri: str) -> str:
    return _origin_source(uri)

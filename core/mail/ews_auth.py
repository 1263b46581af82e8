"""EWS with an OAuth bearer token from the caller's token source (``?auth=oauth``).

Exchange Online, and an on-premises Exchange in a hybrid tenant with OAuth on (Hybrid Modern
Authentication), take an Entra token for the delegated permission ``EWS.AccessAsUser.All`` on
the Exchange resource: ``https://outlook.office365.com`` for Exchange Online (the default), the
Exchange server's own URL for on-premises (``https://mail.example.com``, as the hybrid set-up
registered it). :func:`ews_scope` builds the scope a sign-in asks for.

exchangelib's OAuth credentials hold one token and renew it only with a client secret; a
desktop client's token comes from MSAL instead. :class:`TokenSourceCredentials` therefore
sends whatever token :meth:`TokenSourceCredentials.refresh_token` last took from the source,
which :class:`core.mail.ews.EwsBackend` asks before every operation (MSAL answers from its
cache until the token is near its end, then renews it silently).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import exchangelib as xl
from oauthlib.oauth2 import Client, OAuth2Token

from core.mail.base import MailAuthError, MailError, MailUnavailable

#: Exchange Online's resource, the default; on-premises: the Exchange server's URL.
EWS_ONLINE = "https://outlook.office365.com"
EWS_PERMISSION = "EWS.AccessAsUser.All"
#: A token source: a callable returning a current access token (e.g. MSAL's silent token).
TokenSource = Callable[[], str]


def ews_scope(resource: str | None = None) -> str:
    """The delegated scope for EWS on ``resource`` (default Exchange Online):
    ``https://outlook.office365.com/EWS.AccessAsUser.All``."""
    return f"{(resource or EWS_ONLINE).rstrip('/')}/{EWS_PERMISSION}"


class _CurrentTokenClient(Client):  # type: ignore[misc]  # oauthlib has no types
    """Puts the credentials' current token in the ``Authorization`` header, once (exchangelib
    asks both its OAuth session and the session's auth to add it)."""

    def __init__(self, credentials: TokenSourceCredentials) -> None:
        super().__init__(client_id=None)
        self._credentials = credentials

    def add_token(
        self, uri: str, http_method: str = "GET", body: Any = None, headers: Any = None, **_: Any
    ) -> tuple[str, dict[str, str], Any]:
        out = dict(headers or {})
        if not any(k.lower() == "authorization" for k in out):
            out["Authorization"] = f"Bearer {self._credentials.current}"
        return uri, out, body


class TokenSourceCredentials(xl.OAuth2AuthorizationCodeCredentials):  # type: ignore[misc]
    """exchangelib credentials whose bearer token is the token source's latest answer."""

    def __init__(self, source: TokenSource) -> None:
        # exchangelib opens an OAuth session only with a token in hand: a placeholder, never sent.
        super().__init__(
            access_token=OAuth2Token({"access_token": "unused", "token_type": "Bearer"})
        )
        self.source = source
        self.current = ""
        self._client = _CurrentTokenClient(self)

    @property
    def client(self) -> Client:
        return self._client

    def refresh_token(self) -> str:
        """Ask the source for the current token; its failures become mail errors (a sign-in
        that only the user can renew is :class:`MailAuthError` with the source's words)."""
        try:
            token = self.source()
        except MailError:
            raise
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise MailUnavailable(
                "no Exchange token: the sign-in authority is unreachable",
                server_says=f"{type(exc).__name__}: {exc}",
            ) from exc
        except Exception as exc:
            raise MailAuthError(
                f"no Exchange token: {exc}", server_says=f"{type(exc).__name__}: {exc}"
            ) from exc
        if not token:
            raise MailAuthError("no Exchange token: sign in again")
        self.current = str(token)
        return self.current

    def renew_after_refusal(self) -> bool:
        """After a 401: let the source renew (``renew_next``, as a sign-in's token source has)
        and take its token; whether it is a different one, worth one more try."""
        before = self.current
        renew = getattr(self.source, "renew_next", None)
        if callable(renew):
            renew()
        return self.refresh_token() != before

    # exchangelib keeps one Protocol per (endpoint, credentials); the token changes, so
    # equality is identity (one backend, one Protocol and its own current token).
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"TokenSourceCredentials({self.source!r})"

    def __str__(self) -> str:
        return "[token source]"

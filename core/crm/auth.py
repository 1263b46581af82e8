"""Authentication for the Web API client, as ``httpx.Auth`` flows.

``BasicAuth`` serves the emulator (and on-premises IFD-less test setups); ``BearerAuth`` takes
a token *provider* so that OAuth for Dynamics 365 online (MSAL's ``acquire_token_silent``)
plugs in later without changing any caller. Neither ever shows its secret in ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx


class CrmAuth(httpx.Auth):
    """Base of the client's auth flows; ``describe()`` is safe to log."""

    def describe(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class BasicAuth(CrmAuth):
    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._inner = httpx.BasicAuth(user, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._inner.auth_flow(request)

    def describe(self) -> str:
        return f"BasicAuth(user={self.user!r})"


class BearerAuth(CrmAuth):
    """``token_provider()`` returns a current access token; it is called for every request
    (providers cache). After a 401 the client calls ``on_unauthorized`` (e.g. drop the
    cached token) and retries once with a fresh token."""

    def __init__(
        self,
        token_provider: Callable[[], str],
        *,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        self.token_provider = token_provider
        self.on_unauthorized = on_unauthorized

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token_provider()}"
        response = yield request
        if response.status_code == 401 and self.on_unauthorized is not None:
            self.on_unauthorized()
            request.headers["Authorization"] = f"Bearer {self.token_provider()}"
            yield request


__all__ = ["BasicAuth", "BearerAuth", "CrmAuth"]

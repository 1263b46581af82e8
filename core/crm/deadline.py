"""A total deadline per HTTP request (issue 18, item 10).

httpx's timeouts bound each network operation (one read, one write, the connect), not the
request: a server that answers one byte a second — in the status line, the headers or the
body — never trips a read timeout, and a sync would wait for ever. :class:`DeadlineTransport`
gives every request one deadline covering the wait for a pooled connection, connect, TLS,
sending, the response's headers and its whole body.

How: an httpcore network backend whose streams clamp every read, write, connect and TLS
handshake timeout to the time left before the deadline of the request being served, held in
a context variable that the transport sets around the exchange and around every chunk of the
body read. When none is left, :class:`RequestDeadlineExceeded` (an ``httpcore``
``TimeoutException``) is raised; httpx maps it to ``httpx.TimeoutException``, which the CRM
client classifies as ``CrmUnavailable`` (transient: the outbox backs off, the sync goes
offline). TLS verification and connection pooling are httpx's own.

The default, :data:`DEFAULT_REQUEST_DEADLINE` (120 s), is four times the client's read
timeout: a page of 5,000 rows or a large attachment (a few MB) takes seconds on a slow line,
so a legitimate request fits with room to spare, while a trickling server costs at most two
minutes per attempt (the sync cycle has its own deadline over all of them). DNS resolution is
the system resolver's and is not bounded here.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx

#: Seconds one request may take from start to its last byte (see the module docstring).
DEFAULT_REQUEST_DEADLINE = 120.0

_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "trackbox_request_deadline", default=None
)


class RequestDeadlineExceeded(httpcore.TimeoutException):
    """The request's total deadline passed (httpx raises it as ``httpx.TimeoutException``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request did not finish within its deadline of {seconds:g} s")


def _time_left(timeout: float | None) -> tuple[float | None, bool]:
    """``timeout`` clamped to the current request's deadline, and whether the deadline is
    what bounds it. Raises ``RequestDeadlineExceeded`` when no time is left."""
    current = _DEADLINE.get()
    if current is None:
        return timeout, False
    deadline, seconds = current
    left = deadline - time.monotonic()
    if left <= 0:
        raise RequestDeadlineExceeded(seconds)
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


def _bounded(
    call: typing.Callable[[float | None], typing.Any], timeout: float | None
) -> typing.Any:
    """Run ``call`` with the clamped timeout; a timeout the deadline imposed is reported as
    the deadline, not as a slow read."""
    limit, by_deadline = _time_left(timeout)
    try:
        return call(limit)
    except httpcore.TimeoutException as exc:
        current = _DEADLINE.get()
        if by_deadline and current is not None:
            raise RequestDeadlineExceeded(current[1]) from exc
        raise


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = _bounded(lambda t: self._stream.read(max_bytes, t), timeout)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _bounded(lambda t: self._stream.write(buffer, t), timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            _bounded(lambda t: self._stream.start_tls(ssl_context, server_hostname, t), timeout)
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with streams bounded by the request's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            _bounded(
                lambda t: self._backend.connect_tcp(host, port, t, local_address, socket_options),
                timeout,
            )
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            _bounded(lambda t: self._backend.connect_unix_socket(path, t, socket_options), timeout)
        )

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _BodyWithDeadline(httpx.SyncByteStream):
    """A response body read under its request's deadline, chunk by chunk (the body is read
    after the transport returned, so the deadline is set again around every chunk)."""

    def __init__(self, stream: Iterable[bytes], deadline: tuple[float, float]) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._stream)
        while True:
            token = _DEADLINE.set(self._deadline)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            finally:
                _DEADLINE.reset(token)
            yield chunk

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (same ``verify``: True, a CA file or an ``ssl.SSLContext``;
    same pooling) with a total deadline of ``deadline`` seconds per request."""

    def __init__(
        self,
        *,
        deadline: float | None = None,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits | None = None,
        proxy: httpx.Proxy | str | None = None,
    ) -> None:
        """``deadline``: seconds per request (:data:`DEFAULT_REQUEST_DEADLINE` when None,
        read at construction). ``proxy``: as httpx's (none by default)."""
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        context = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        super().__init__(verify=context, limits=limits, proxy=proxy)
        self.deadline = DEFAULT_REQUEST_DEADLINE if deadline is None else float(deadline)
        self.pool = _pool_with_backend(context, limits, proxy, DeadlineBackend())
        _use_pool(self, self.pool)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        current = (time.monotonic() + self.deadline, self.deadline)
        _clamp_pool_wait(request, self.deadline)
        token = _DEADLINE.set(current)
        try:
            response = super().handle_request(request)
        finally:
            _DEADLINE.reset(token)
        if isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _BodyWithDeadline(response.stream, current)
        return response


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
    ``ALL_PROXY``, unless ``NO_PROXY`` covers its host), as httpx would have used it: a
    transport of our own makes httpx stop reading the environment, and a CRM reached only
    through the company's proxy must stay reachable."""
    import urllib.request

    target = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return proxy


def _clamp_pool_wait(request: httpx.Request, seconds: float) -> None:
    """The wait for a pooled connection is bounded by the deadline too (httpcore reads it
    from the request's ``timeout`` extension)."""
    timeouts = dict(request.extensions.get("timeout") or {})
    pool = timeouts.get("pool")
    timeouts["pool"] = seconds if pool is None else min(float(pool), seconds)
    request.extensions = {**request.extensions, "timeout": timeouts}


def _pool_with_backend(
    context: ssl.SSLContext | bool,
    limits: httpx.Limits,
    proxy: httpx.Proxy | str | None,
    backend: httpcore.NetworkBackend,
) -> httpcore.ConnectionPool:
    """The httpcore pool ``httpx.HTTPTransport`` builds, with ``backend`` (public httpcore
    API; the TLS context from httpx's public ``create_ssl_context``)."""
    ssl_context = httpx.create_ssl_context(verify=context)
    common: dict[str, typing.Any] = {
        "ssl_context": ssl_context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "network_backend": backend,
    }
    if proxy is None:
        return httpcore.ConnectionPool(**common)
    proxy = httpx.Proxy(url=proxy) if isinstance(proxy, str) else proxy
    if proxy.url.scheme not in ("http", "https"):
        raise ValueError(f"unsupported proxy scheme for the CRM: {proxy.url.scheme!r}")
    return httpcore.HTTPProxy(
        proxy_url=httpcore.URL(
            scheme=proxy.url.raw_scheme,
            host=proxy.url.raw_host,
            port=proxy.url.port,
            target=proxy.url.raw_path,
        ),
        proxy_auth=proxy.raw_auth,
        proxy_headers=proxy.headers.raw,
        proxy_ssl_context=proxy.ssl_context,
        **common,
    )


def _use_pool(transport: httpx.HTTPTransport, pool: httpcore.ConnectionPool) -> None:
    """Make ``transport`` send through ``pool``. PRIVATE httpx API, isolated here: httpx
    (0.28/0.29) keeps the httpcore pool of an ``HTTPTransport`` in ``_pool`` and offers no
    way to pass a network backend. ``tests/crm_client/test_deadline.py`` fails if that
    changes (``test_httpx_still_keeps_its_pool_in_pool``)."""
    previous = getattr(transport, "_pool", None)
    if not isinstance(previous, httpcore.ConnectionPool):
        raise RuntimeError("httpx.HTTPTransport no longer keeps an httpcore pool in _pool")
    previous.close()
    transport._pool = pool


__all__ = [
    "DEFAULT_REQUEST_DEADLINE",
    "DeadlineBackend",
    "DeadlineTransport",
    "RequestDeadlineExceeded",
]

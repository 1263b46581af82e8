"""A fake Exchange Web Services server that exchangelib talks to unchanged.

It answers the operations the EWS backend uses (:mod:`tests.fakes.ews_ops`) — GetFolder,
FindFolder, CreateFolder, SyncFolderItems, SyncFolderHierarchy, GetItem, CreateItem (SaveOnly,
SendAndSaveCopy), UpdateItem (IsRead, Categories, the ``crmid`` extended property), MoveItem,
DeleteItem — over per-user Maildirs (:mod:`tests.fakes.ews_store`). Anything else, or any
element in a request it does not understand, is answered with ``ErrorInvalidOperation`` *and*
recorded in :attr:`problems`, which the test fixtures turn into a test failure: a fake that
guesses lets tests pass for the wrong reason.

The HTTP side (routing, TLS, authentication per connection) is :mod:`tests.fakes.ews_http`.
Auth: the schemes the server is made with — HTTP Basic with :attr:`password`, ``Bearer`` with a
token from :meth:`add_token` or, in OAuth mode (:meth:`accept_tokens_from`), an access token from
the emulator's authority for EWS, NTLM (verified by pyspnego, :mod:`tests.fakes.ews_auth`) for
accounts from :meth:`add_ntlm_user`. Over TLS it also answers SOAP autodiscover
(:mod:`tests.fakes.ews_autodiscover`). ``ConvertId`` is answered only as far as exchangelib's
version probe needs (an id that is not ours is malformed).
Fault injection: :meth:`fail_next` answers the next request with an EWS error code.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from lxml import etree

from tests.fakes.ews_auth import SCHEMES, AuthLog, BearerTokens, BearerVerifier, NtlmAccounts
from tests.fakes.ews_autodiscover import mailbox_settings
from tests.fakes.ews_ops import OPS, Request
from tests.fakes.ews_store import UserMailbox
from tests.fakes.ews_xml import NotUnderstood, error, q, response


class FakeEwsServer:
    """Start with :meth:`start`; ``url()`` is the mailbox URL (``ews+http://`` or, over TLS,
    ``ews://``).

    ``schemes`` are the HTTP auth schemes offered (``NTLM``, ``Basic``, ``Bearer``): an
    on-premises Exchange typically offers NTLM only. NTLM needs ``ntlm_accounts`` (the file
    pyspnego's acceptor reads) and :meth:`add_ntlm_user`. With TLS (``tls=(cert, key)``) the
    server also answers SOAP autodiscover for the addresses given to :meth:`add_autodiscover`.
    """

    def __init__(
        self,
        root: Path,
        password: str = "secret-pw",
        *,
        schemes: tuple[str, ...] = ("Basic", "Bearer"),
        ntlm_accounts: NtlmAccounts | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        unknown = set(schemes) - set(SCHEMES)
        if unknown or ("NTLM" in schemes) != (ntlm_accounts is not None):
            raise ValueError(f"schemes {schemes}: NTLM needs ntlm_accounts, and only NTLM")
        self.root = root
        self.password = password
        self.schemes = schemes
        self.ntlm_accounts = ntlm_accounts
        self.host = host  # the name clients use (the certificate's name, with TLS)
        self.tokens = BearerTokens()
        self.ntlm_mailboxes: dict[str, str] = {}  # DOMAIN\USER (upper case) -> mailbox
        self.autodiscover: dict[str, str] = {}  # address -> display name
        self.auth_log = AuthLog()
        self.problems: list[str] = []
        self.requests: list[str] = []  # EWS operations, once authenticated
        self.http_log: list[str] = []  # "POST /path -> 401", every request, for tests
        self._fail: list[str] = []
        self._boxes: dict[str, UserMailbox] = {}
        self._lock = threading.Lock()
        self._users = 0
        self.tls: tuple[Path, Path] | None = None
        self.httpd: ThreadingHTTPServer | None = None

    # -- lifecycle and test helpers --

    def start(self, port: int = 0, tls: tuple[Path, Path] | None = None) -> FakeEwsServer:
        """Listen on 127.0.0.1:``port`` (0: any free port), over TLS if ``tls`` is given."""
        from tests.fakes.ews_http import listen

        self.tls = tls
        self.httpd = listen(self, port, tls)
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return int(self.httpd.server_address[1])

    def ews_url(self) -> str:
        """The EWS endpoint as Exchange publishes it (autodiscover's ``ExternalEwsUrl``)."""
        scheme, default = ("https", 443) if self.tls else ("http", 80)
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{self.host}{port}/EWS/Exchange.asmx"

    def url(self) -> str:
        """The mailbox URL for :func:`core.mail.open_backend`."""
        return self.ews_url().replace("https://", "ews://").replace("http://", "ews+http://")

    def new_user(self, prefix: str = "ews") -> str:
        with self._lock:
            self._users += 1
            return f"{prefix}{self._users}@test.example"

    def add_token(self, token: str, user: str) -> None:
        self.tokens[token] = user

    def accept_tokens_from(self, verifier: BearerVerifier) -> None:
        """OAuth mode: also take the access tokens ``verifier``'s authority issues for EWS."""
        self.tokens.verifier = verifier

    def add_ntlm_user(self, principal: str, password: str, mailbox: str) -> None:
        """Let ``DOMAIN\\user`` (or a UPN) sign in with NTLM to ``mailbox``."""
        assert self.ntlm_accounts is not None, "this server does not offer NTLM"
        self.ntlm_accounts.add(principal, password)
        self.ntlm_mailboxes[principal.upper()] = mailbox

    def add_autodiscover(self, address: str, display_name: str = "") -> None:
        """Autodiscover answers for ``address`` with this server's EWS URL."""
        self.autodiscover[address.lower()] = display_name or address.split("@")[0]

    def fail_next(self, code: str) -> None:
        self._fail.append(code)

    def mailbox(self, user: str) -> UserMailbox:
        with self._lock:
            if user not in self._boxes:
                self._boxes[user] = UserMailbox(self.root / user)
            return self._boxes[user]

    # -- authentication (called per connection by tests.fakes.ews_http) --

    def basic_user(self, user: str, password: str) -> str | None:
        return user if password == self.password and "@" in user else None

    def ntlm_mailbox(self, principal: str) -> str | None:
        return self.ntlm_mailboxes.get(principal.upper())

    def autodiscover_settings(self, address: str) -> dict[str, str] | None:
        name = self.autodiscover.get(address.lower())
        return None if name is None else mailbox_settings(address, name, self.ews_url())

    # -- request handling --

    def handle(self, user: str, body: bytes) -> tuple[int, bytes, str]:
        """One EWS SOAP request from the authenticated ``user`` (a mailbox address): status,
        response body, and the operation's name."""
        try:
            doc = etree.fromstring(body)
            op = doc.find(f"{q('s:Body')}/*")
        except etree.XMLSyntaxError as exc:
            self.problems.append(f"unparseable request: {exc}")
            return 400, b"", "unparseable"
        if op is None:
            self.problems.append("SOAP request without a body element")
            return 400, b"", "no operation"
        name = op.tag.split("}", 1)[1]
        self.requests.append(name)
        if self._fail:
            code = self._fail.pop(0)
            return 200, response(name, [error(name, code, f"injected {code}")]), name
        handler = OPS.get(name)
        req = Request(self, user, op)
        try:
            if handler is None:
                raise NotUnderstood(f"operation {name}")
            with req.box.lock:
                return 200, handler(req), name
        except NotUnderstood as exc:
            self.problems.append(f"{name}: {exc}")
            return 200, response(name, [error(name, "ErrorInvalidOperation", str(exc))]), name
        except Exception as exc:  # a bug in the fake: fail the test, say where
            import traceback

            self.problems.append(f"{name}: fake server crashed: {traceback.format_exc()}")
            return (500, response(name, [error(name, "ErrorInternalServerError", repr(exc))]), name)

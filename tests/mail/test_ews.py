"""EWS-specific behaviour: exchangelib, unchanged, against the fake EWS server."""

from __future__ import annotations

import socket

import exchangelib as xl
import pytest

from core.mail import (
    TRACKED_CATEGORY,
    MailAuthError,
    MailUnavailable,
    open_backend,
)
from core.mail.ews import EwsBackend

from .helpers import Replica, make_message

ACTIVITY = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def _open(ews_server, user: str, **kw) -> EwsBackend:
    kw.setdefault("password", ews_server.password)
    b = open_backend(ews_server.url(), user=user, auth_type="basic", **kw)
    assert isinstance(b, EwsBackend)
    return b


def test_oauth_bearer_token(ews_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # oauthlib: https only otherwise
    user = ews_server.new_user()
    ews_server.add_token("token-123", user)
    with open_backend(ews_server.url(), user=user, oauth_token="token-123") as b:
        assert b.folder("inbox").path == "Inbox"


def test_wrong_password_is_an_auth_error(ews_server) -> None:
    with (
        _open(ews_server, ews_server.new_user(), password="nope") as b,
        pytest.raises(MailAuthError),
    ):
        b.folders()


def test_busy_server_is_unavailable_with_its_words(ews_server) -> None:
    with _open(ews_server, ews_server.new_user()) as b:
        b.folders()
        ews_server.fail_next("ErrorServerBusy")
        with pytest.raises(MailUnavailable) as err:
            list(b.sync("Inbox", None))
        assert "ErrorServerBusy" in err.value.server_says or "busy" in str(err.value).lower()


def test_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with (
            open_backend(
                f"ews+http://127.0.0.1:{port}/EWS/Exchange.asmx",
                user="a@b.example",
                password="x",
                auth_type="basic",
            ) as b,
            pytest.raises(MailUnavailable),
        ):
            b.folders()


def test_tracked_marker_is_category_plus_activity_id(ews_server) -> None:
    user = ews_server.new_user()
    with _open(ews_server, user) as b, _open(ews_server, user) as other:
        ref = b.append("Inbox", make_message(1))
        rep = Replica()
        rep.sync(b, "Inbox")
        b.set_tracked(ref, ACTIVITY)
        theirs = Replica()
        theirs.sync(other, "Inbox")  # another device sees the id, not just a flag
        h = theirs.headers[ref]
        assert h.tracked_marker == ACTIVITY and TRACKED_CATEGORY in h.keywords
        props = ews_server.mailbox(user).props_for(ref.uid)
        assert props.crmid == ACTIVITY and props.categories == [TRACKED_CATEGORY]
        b.set_tracked(ref, None)
        rep.sync(b, "Inbox")
        assert rep.headers[ref].tracked_marker is None
        assert TRACKED_CATEGORY not in rep.headers[ref].keywords


def test_expired_sync_state_starts_over(ews_server) -> None:
    with _open(ews_server, ews_server.new_user()) as b:
        b.append("Inbox", make_message(1))
        batches = list(b.sync("Inbox", "not-a-state"))
        assert batches[0].reset
        assert [h.message_id for x in batches for h in x.added] == ["<msg-1@fabrikam.example>"]


def test_send_saves_to_sent_and_reaches_local_recipients(ews_server) -> None:
    alice, bob = ews_server.new_user(), ews_server.new_user()
    with _open(ews_server, bob) as bb:
        bb.folders()  # bob's mailbox exists
        with _open(ews_server, alice) as a:
            a.send(make_message(5, sender=alice, to=bob))
            sent = Replica()
            sent.sync(a, "Sent Items")
            assert sent.by_msgid()["<msg-5@fabrikam.example>"].is_read
        inbox = Replica()
        inbox.sync(bb, "Inbox")
        assert not inbox.by_msgid()["<msg-5@fabrikam.example>"].is_read


def test_the_fake_fails_on_requests_it_does_not_understand(ews_server) -> None:
    user = ews_server.new_user()
    account = xl.Account(
        user,
        config=xl.Configuration(
            service_endpoint=ews_server.url().replace("ews+http", "http"),
            credentials=xl.Credentials(user, ews_server.password),
            auth_type=xl.BASIC,
            version=xl.Version(build=xl.Build(15, 1, 2507, 6)),
        ),
        autodiscover=False,
        access_type=xl.DELEGATE,
    )
    with pytest.raises(Exception):  # noqa: B017 (exchangelib raises its own hierarchy)
        list(account.inbox.filter(subject="x"))  # FindItem with a Restriction
    assert any("FindItem" in p for p in ews_server.problems)
    ews_server.problems.clear()  # handled here: do not fail the test in teardown


def test_folder_tree_follows_the_hierarchy_sync(ews_server) -> None:
    import shutil

    user = ews_server.new_user()
    with _open(ews_server, user) as b, _open(ews_server, user) as other:
        assert "Projects" not in {f.path for f in b.folders()}
        other.create_folder("Projects/Fabrikam")
        ews_server.requests.clear()
        paths = {f.path for f in b.folders()}  # incremental: only the changes travel
        assert {"Projects", "Projects/Fabrikam"} <= paths
        assert ews_server.requests == ["SyncFolderHierarchy"]
        shutil.rmtree(ews_server.root / user / ".Projects.Fabrikam")  # deleted on the server
        assert "Projects/Fabrikam" not in {f.path for f in b.folders()}


def test_demo_mailbox_through_ews_including_its_broken_messages(ews_server) -> None:
    from core.mail.demo import create_demo_mailbox

    user = ews_server.new_user()
    create_demo_mailbox(ews_server.root / user, messages=300, seed=3)
    with _open(ews_server, user) as b:
        total = sum(len(x.added) for f in b.folders() for x in b.sync(f.path, None, 100))
    assert total == 300

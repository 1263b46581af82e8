"""An IMAP profile's contacts, calendar and tasks end to end (issue 20): ``trackbox account
add`` with the CardDAV/CalDAV flags stores the collections in the profile and the password in
the keyring only; a PIM pass of that profile (``PimService.for_profile``) brings the CRM's
contacts and appointments into a real Radicale, a contact created there with Track in CRM
reaches the CRM, and Set Regarding on a task reaches the CRM task's regarding through the
engine. Real servers on loopback: the emulator over HTTPS, Dovecot, Radicale."""

from __future__ import annotations

import getpass
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config.credentials import SecretKind, get_secret
from core.config.profiles import Profile, ProfileConfigError, Profiles, validate
from core.crm import CrmClient
from core.domain import demo_data
from core.domain.model import RecordRef
from core.domain.resolution import InMemoryResolver
from core.pim.carddav_side import CardDavSide
from core.pim.crm_activities import CrmActivitiesSide
from core.pim.sides import TRACK_FIELD, PimKind, PimRecord
from core.pim.sync import dav_side, settings_for
from core.workspace.pim import PimService, PimUnavailable
from crmserver import RunningServer
from tests.memory_keyring import MemoryKeyring
from tests.pim.conftest import crm_as
from tests.plugins.mailservers import DovecotServer
from tests.plugins.radicale import RadicaleServer
from tests.signin.conftest import Cli, cli, ring  # noqa: F401  (fixtures)

DAV_PASSWORD = "pim-password"  # the throwaway Radicale's test password (tests/plugins/radicale)


@dataclass
class ImapPim:
    profile: Profile
    crm: CrmClient
    radicale: RadicaleServer
    book: str
    calendar: str
    tasks: str

    def service(self) -> PimService:
        return PimService.for_profile(
            self.profile, self.profile.data_dir, lambda: self.crm, lambda: None
        )


def _add_profile(
    cli: Cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dovecot: DovecotServer,
    crm_url: str,
    *dav_args: str,
) -> Profile:
    """``trackbox account add`` for an IMAP mailbox; CRM and mail passwords from the
    environment, the DAV password typed at the (simulated) terminal prompt."""
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", demo_data.DEMO_PASSWORD)
    monkeypatch.setenv("TRACKBOX_MAIL_PASSWORD", dovecot.password)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    asked: list[str] = []

    def typed(prompt: str = "") -> str:
        asked.append(prompt)
        return DAV_PASSWORD

    monkeypatch.setattr(getpass, "getpass", typed)
    ran = cli(
        "account",
        "add",
        "--mail-url",
        dovecot.url("imap+insecure"),
        "--mail-user",
        dovecot.new_user("pim"),
        "--crm-url",
        crm_url,
        "--crm-user",
        demo_data.ME.email,
        *dav_args,
    )
    assert ran.code == 0, ran.err
    assert asked == ["CalDAV/CardDAV password for pim-user: "]
    return Profiles().load("default")


@pytest.fixture
def imap_pim(
    cli: Cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dovecot: DovecotServer,
    radicale_server: RadicaleServer,
    fresh_crm_https: RunningServer,
) -> Iterator[ImapPim]:
    book = radicale_server.make_collection()
    calendar = radicale_server.make_collection(kind="calendar")
    tasks = radicale_server.make_collection(kind="calendar")
    profile = _add_profile(
        cli,
        monkeypatch,
        dovecot,
        fresh_crm_https.url,
        "--carddav-url",
        book,
        "--caldav-url",
        calendar,
        "--caldav-tasks-url",
        tasks,
        "--dav-user",
        radicale_server.auth[0],
    )
    with crm_as(fresh_crm_https) as crm:
        yield ImapPim(profile, crm, radicale_server, book, calendar, tasks)


def test_account_add_keeps_the_collections_in_the_profile_and_the_password_in_the_keyring(
    imap_pim: ImapPim,
    ring: MemoryKeyring,  # noqa: F811
) -> None:
    config = imap_pim.profile.config
    assert (config.carddav_url, config.caldav_url, config.caldav_tasks_url) == (
        imap_pim.book,
        imap_pim.calendar,
        imap_pim.tasks,
    )
    assert config.dav_user == "pim-user"
    text = imap_pim.profile.config_path.read_text()
    assert imap_pim.book in text and DAV_PASSWORD not in text
    stored = {(s, u): p for (s, u), p in ring._secrets.items() if p == DAV_PASSWORD}
    assert stored == {("trackbox:default:dav", "pim-user"): DAV_PASSWORD}
    assert get_secret("default", SecretKind.DAV, "pim-user") == DAV_PASSWORD
    settings = settings_for("default", config)
    assert settings.dav_auth == ("pim-user", DAV_PASSWORD)
    assert imap_pim.service().editable


def test_dav_urls_are_checked_with_clear_messages(tmp_path: Path) -> None:
    base = {
        "mail_url": "imaps://mail.example.com",
        "crm_url": "https://crm.example.com",
        "crm_user": "alex@example.com",
    }
    ok = validate({**base, "caldav_url": "http://127.0.0.1:5232/alex/cal/"}, tmp_path / "p")
    assert ok.caldav_url.startswith("http://127.0.0.1")
    cases = {
        "http://dav.example.com/alex/cal/": "must use https://",
        "https://alex:secret@dav.example.com/alex/cal/": "Leave the user name and password out",
        "https://dav.example.com/": "own collection URL",
        "ftp://dav.example.com/alex/": "Not a valid CalDAV calendar URL",
    }
    for url, words in cases.items():
        with pytest.raises(ProfileConfigError) as raised:
            validate({**base, "caldav_url": url}, tmp_path / "p")
        assert words in str(raised.value), str(raised.value)
        assert "secret" not in str(raised.value)  # a password in a URL is never repeated
    with pytest.raises(ProfileConfigError, match="only with an IMAP mailbox"):
        validate(
            {**base, "mail_url": "maildir:/tmp/m", "carddav_url": "https://dav.example.com/a/b/"},
            tmp_path / "p",
        )


def test_account_add_refuses_a_plain_http_dav_server_elsewhere(
    cli: Cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dovecot: DovecotServer,
    ring: MemoryKeyring,  # noqa: F811
) -> None:
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "x")
    monkeypatch.setenv("TRACKBOX_MAIL_PASSWORD", "x")
    ran = cli(
        "account",
        "add",
        "--mail-url",
        dovecot.url("imap+insecure"),
        "--crm-url",
        "https://crm.example.com",
        "--crm-user",
        "alex@example.com",
        "--carddav-url",
        "http://dav.example.com/alex/contacts/",
    )
    assert ran.code != 0 and "must use https://" in ran.err, ran.err
    assert not Profiles().config_path("default").exists()
    assert not ring._secrets


def test_a_pim_pass_syncs_an_imap_profile_with_radicale_both_ways(imap_pim: ImapPim) -> None:
    crm = imap_pim.crm
    subject = f"Review with Fabrikam {uuid.uuid4().hex[:6]}"
    me = InMemoryResolver()  # the organiser bound to the CRM user: the default filter's party
    me.add(demo_data.ME.email, RecordRef("systemuser", crm.who_am_i().user_id))
    CrmActivitiesSide(crm, PimKind.APPOINTMENT, me).put(
        None,
        PimRecord(
            PimKind.APPOINTMENT,
            {
                "subject": subject,
                "scheduledstart": "2026-12-09T10:00:00Z",
                "scheduledend": "2026-12-09T11:00:00Z",
                "organizer": demo_data.ME.email,
            },
        ),
        None,
    )
    service = imap_pim.service()
    outcomes = {o.kind: o for o in service.sync()}
    for kind in PimKind:
        assert outcomes[kind].error is None and outcomes[kind].skipped is None, outcomes[kind]
    contacts = outcomes[PimKind.CONTACT].result
    assert contacts is not None and contacts.created_in_mailbox > 0
    settings = service.settings()
    book = dav_side(settings, PimKind.CONTACT)
    try:
        assert len(book.changes(None).changes) == contacts.created_in_mailbox
    finally:
        assert isinstance(book, CardDavSide)
        book.close()
    subjects = {i.fields.get("subject") for i in service.items(PimKind.APPOINTMENT)}
    assert subject in subjects, subjects
    assert list(crm.query("appointments", select=["subject"], filter=f"subject eq '{subject}'"))

    email = f"new.{uuid.uuid4().hex[:8]}@radicale.example"
    service.save(
        PimKind.CONTACT,
        None,
        {"firstname": "Rada", "lastname": "Dav", "emailaddress1": email, TRACK_FIELD: True},
    )
    assert not list(
        crm.query("contacts", select=["contactid"], filter=f"emailaddress1 eq '{email}'")
    )
    service.sync()
    found = list(
        crm.query(
            "contacts", select=["contactid", "lastname"], filter=f"emailaddress1 eq '{email}'"
        )
    )
    assert [r["lastname"] for r in found] == ["Dav"]
    mine = [i for i in service.items(PimKind.CONTACT) if i.fields.get("emailaddress1") == email]
    assert len(mine) == 1 and mine[0].crm_id == str(found[0]["contactid"]).lower()


def test_set_regarding_on_an_imap_task_reaches_the_crm_through_the_engine(
    imap_pim: ImapPim,
) -> None:
    crm = imap_pim.crm
    account = next(iter(crm.query("accounts", select=["accountid", "name"], top=1)))
    ref = RecordRef("account", str(account["accountid"]).lower(), str(account["name"]))
    service = imap_pim.service()
    subject = f"Call back {uuid.uuid4().hex[:6]}"
    service.save(
        PimKind.TASK,
        None,
        {"subject": subject, "scheduledend": "2026-12-10T17:00:00Z", TRACK_FIELD: True},
    )
    service.sync()
    task = next(i for i in service.items(PimKind.TASK) if i.fields.get("subject") == subject)
    assert task.crm_id is not None and task.regarding is None
    service.set_regarding(PimKind.TASK, task.key, ref)
    again = service.get(PimKind.TASK, task.key)
    assert again.regarding == ref and again.fields.get("subject") == subject
    service.sync()
    activity_id = task.crm_id.partition(":")[2] or task.crm_id
    row = crm.get("tasks", activity_id)
    assert str(row["_regardingobjectid_value"]).lower() == ref.id
    assert row["subject"] == subject


def test_an_imap_profile_without_collections_is_read_only_and_says_why(
    cli: Cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dovecot: DovecotServer,
    ring: MemoryKeyring,  # noqa: F811
) -> None:
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "x")
    monkeypatch.setenv("TRACKBOX_MAIL_PASSWORD", "x")
    ran = cli(
        "account",
        "add",
        "--mail-url",
        dovecot.url("imap+insecure"),
        "--crm-url",
        "https://crm.example.com",
        "--crm-user",
        "alex@example.com",
    )
    assert ran.code == 0, ran.err
    profile = Profiles().load("default")
    service = PimService.for_profile(profile, profile.data_dir, _no_crm, lambda: None)
    assert not service.editable
    assert service.items(PimKind.CONTACT) == []
    with pytest.raises(PimUnavailable, match="no CardDAV address book is set"):
        service.save(PimKind.CONTACT, None, {"firstname": "X"})


def test_an_unreachable_dav_server_refuses_the_edit_with_a_clear_message(
    imap_pim: ImapPim, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = imap_pim.profile
    dead = f"http://127.0.0.1:{_closed_port()}/pim-user/tasks/"
    config = validate({**profile.config.to_dict(), "caldav_tasks_url": dead}, "<test>")
    gone = Profile(profile.name, profile.config_path, profile.data_dir, config)
    service = PimService.for_profile(gone, profile.data_dir, _no_crm, lambda: None)
    with pytest.raises(PimUnavailable, match="(?s)cannot take the change now.*was not saved"):
        service.save(PimKind.TASK, None, {"subject": "offline"})
    assert service.items(PimKind.TASK) == []  # the (empty) snapshot, not an error


def _no_crm() -> CrmClient:
    raise AssertionError("no CRM call expected")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""The CalDAV side (core.pim.caldav_side) against a real Radicale on loopback (the shared
fixture, tests/plugins/radicale.py: skipped locally, failing in CI when Radicale is missing)."""

from __future__ import annotations

import caldav
import pytest

from core.pim.caldav_side import CalDavSide
from core.pim.sides import PimKind, PimRecord, SideError, VersionConflict
from tests.plugins.mailservers import free_port
from tests.plugins.radicale import RadicaleServer


def _client(server: RadicaleServer) -> caldav.DAVClient:
    user, password = server.auth
    return caldav.DAVClient(url=f"{server.url}/{user}/", username=user, password=password)


@pytest.fixture
def calendar_url(radicale_server: RadicaleServer) -> str:
    return radicale_server.make_collection(kind="calendar")


def meeting(subject: str, **more: object) -> PimRecord:
    fields = {
        "subject": subject,
        "scheduledstart": "2026-12-07T09:00:00Z",
        "scheduledend": "2026-12-07T10:00:00Z",
        "tzid": "Europe/Berlin",
        "isalldayevent": False,
        "organizer": "ann@example.com",
        "requiredattendees": ["bob@example.com"],
        **more,
    }
    return PimRecord(PimKind.APPOINTMENT, fields)


def side_for(server: RadicaleServer, url: str, kind: PimKind = PimKind.APPOINTMENT) -> CalDavSide:
    user, password = server.auth
    return CalDavSide.connect(url, kind, username=user, password=password)


def test_create_then_list_everything_then_nothing_new(
    radicale_server: RadicaleServer, calendar_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = side_for(radicale_server, calendar_url)
    key, etag = side.put(None, meeting("Kick-off", uid="kick-off-1"), None)
    assert key.endswith("/kick-off-1.ics") and etag

    def no_get(key: str) -> None:
        raise AssertionError(f"GET {key}: the REPORT should have carried the calendar data")

    monkeypatch.setattr(side, "get", no_get)
    first = side.changes(None)
    assert first.full and first.token
    (change,) = first.changes
    assert (change.key, change.version) == (key, etag)
    assert change.record is not None
    assert change.record.fields["subject"] == "Kick-off"
    assert change.record.fields["tzid"] == "Europe/Berlin"
    assert change.record.fields["scheduledstart"] == "2026-12-07T09:00:00Z"
    again = side.changes(first.token)
    assert not again.full and list(again.changes) == []


def test_changes_by_token_report_only_what_changed_and_deletions(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    side = side_for(radicale_server, calendar_url)
    keep, _ = side.put(None, meeting("Stays"), None)
    edit, edit_tag = side.put(None, meeting("Before"), None)
    gone, gone_tag = side.put(None, meeting("Goes"), None)
    token = side.changes(None).token
    # Another client (the bare caldav library) edits one and deletes another.
    other = _client(radicale_server).calendar(url=calendar_url)
    event = other.event_by_url(radicale_server.url + edit)
    event.load()
    event.data = str(event.data).replace("SUMMARY:Before", "SUMMARY:After")
    event.save()
    side.delete(gone, gone_tag)
    page = side.changes(token)
    assert not page.full
    by_key = {c.key: c for c in page.changes}
    assert set(by_key) == {edit, gone}
    assert keep not in by_key
    changed = by_key[edit]
    assert changed.record is not None and changed.record.fields["subject"] == "After"
    assert changed.version and changed.version != edit_tag
    assert by_key[gone].record is None


def test_update_with_if_match_and_412_is_a_version_conflict(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    side = side_for(radicale_server, calendar_url)
    key, first = side.put(None, meeting("v1", uid="conflict-1"), None)
    _, second = side.put(key, meeting("v2", uid="conflict-1"), first)
    assert second and second != first
    got = side.get(key)
    assert got is not None and got.record is not None
    assert (got.record.fields["subject"], got.version) == ("v2", second)
    with pytest.raises(VersionConflict):
        side.put(key, meeting("stale write", uid="conflict-1"), first)
    with pytest.raises(VersionConflict):
        side.delete(key, first)
    still = side.get(key)
    assert still is not None and still.record is not None
    assert still.record.fields["subject"] == "v2"


def test_an_update_without_uid_keeps_the_items_uid(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    side = side_for(radicale_server, calendar_url)
    key, etag = side.put(None, meeting("Has a UID", uid="keep-me"), None)
    _, etag2 = side.put(key, meeting("From the CRM, no uid"), etag)
    got = side.get(key)
    assert got is not None and got.record is not None
    assert got.record.fields["uid"] == "keep-me"
    assert got.version == etag2


def test_create_refuses_to_overwrite_an_existing_item(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    side = side_for(radicale_server, calendar_url)
    side.put(None, meeting("First", uid="same-uid"), None)
    with pytest.raises(VersionConflict):
        side.put(None, meeting("Second", uid="same-uid"), None)


def test_delete_with_the_current_etag(radicale_server: RadicaleServer, calendar_url: str) -> None:
    side = side_for(radicale_server, calendar_url)
    key, etag = side.put(None, meeting("Short-lived"), None)
    side.delete(key, etag)
    assert side.get(key) is None
    side.delete(key, None)  # already gone: nothing to do
    assert side.changes(None).changes == []


def test_an_unknown_token_falls_back_to_a_full_listing(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    side = side_for(radicale_server, calendar_url)
    key, _ = side.put(None, meeting("Listed"), None)
    page = side.changes("http://radicale.org/ns/sync/0000000000000000")
    assert page.full
    assert [c.key for c in page.changes] == [key]


def test_a_task_list_holds_recurring_tasks(radicale_server: RadicaleServer) -> None:
    url = radicale_server.make_collection(kind="calendar")
    side = side_for(radicale_server, url, PimKind.TASK)
    task = PimRecord(
        PimKind.TASK,
        {
            "subject": "Timesheet",
            "scheduledend": "2026-12-04",
            "recurrence": "FREQ=WEEKLY;BYDAY=FR",
            "statecode": 0,
            "statuscode": 3,
            "percentcomplete": 40,
            "activitytypecode": "task",
        },
    )
    key, _ = side.put(None, task, None)
    (change,) = side.changes(None).changes
    assert change.key == key and change.record is not None
    fields = change.record.fields
    assert (fields["scheduledend"], fields["recurrence"]) == ("2026-12-04", "FREQ=WEEKLY;BYDAY=FR")
    assert (fields["statecode"], fields["statuscode"], fields["percentcomplete"]) == (0, 3, 40)
    # One collection may hold both: each side reads only its own component.
    events = side_for(radicale_server, url)
    event_key, _ = events.put(None, meeting("Alongside"), None)
    assert [c.key for c in events.changes(None).changes] == [event_key]
    assert [c.key for c in side.changes(None).changes] == [key]


def test_an_invitation_is_stored_without_its_method(
    radicale_server: RadicaleServer, calendar_url: str
) -> None:
    """RFC 4791 4.1: calendar collections hold no METHOD; the event itself is kept."""
    side = side_for(radicale_server, calendar_url)
    key, _ = side.put(None, meeting("Invited", method="REQUEST"), None)
    raw = _client(radicale_server).request(radicale_server.url + key)
    assert "SUMMARY:Invited" in str(raw.raw)
    assert "METHOD" not in str(raw.raw)


def test_a_server_that_is_away_is_a_retryable_side_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody/calendar/"
    side = CalDavSide.connect(url, PimKind.APPOINTMENT, username="x", password="y", timeout=10)
    with pytest.raises(SideError) as raised:
        side.changes(None)
    assert raised.value.retryable is True
    assert not isinstance(raised.value, VersionConflict)

"""The packed search results (issue 17, the search stall): ``search_ids`` gives what
``search`` gives, as an ``array`` built without a Python int per id on the worker, and
``id_position`` places a message in it by a byte search that never matches across ids."""

from __future__ import annotations

import sys
from array import array
from datetime import UTC, datetime, timedelta

import pytest

import core.store.search as search_module
from core.domain.model import TrackState
from core.store import Store
from core.store.search import (
    QuickFilter,
    SearchCancel,
    SearchCancelled,
    id_position,
    search,
    search_ids,
)
from tests.core_store.conftest import make_header


def _mail(store: Store) -> None:
    """60 messages in Inbox (dates not in arrival order, two thirds about "report", half
    unread) and 10 reports in Archive."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    store.upsert_headers(
        [
            make_header(
                "Inbox",
                i,
                subject=("report" if i % 3 else "other") + f" {i}",
                date=base + timedelta(hours=(i * 37) % 60),
                size=1000 + (i * 11) % 60,
                is_read=i % 2 == 0,
            )
            for i in range(60)
        ]
        + [make_header("Archive", 100 + i, subject="report") for i in range(10)]
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"text": "report"},
        {"text": "rep", "folder": "Inbox", "order_by": "size", "descending": False},
        {"text": "report", "filters": {QuickFilter.UNREAD}},
        {"text": "", "folder": "Inbox", "filters": {QuickFilter.NOT_TRACKED}},
        {"text": "report", "states": (TrackState.NOT_TRACKED,)},
        {"text": "report", "folder": "Inbox", "limit": 7, "offset": 5},
        {"text": "nothingmatches"},
        {"text": "?!"},
    ],
)
def test_packed_ids_are_the_search_results(store: Store, kw: dict[str, object]) -> None:
    _mail(store)
    text = str(kw.pop("text"))
    expected = search(store, text, **kw)  # type: ignore[arg-type]
    got = search_ids(store, text, **kw)  # type: ignore[arg-type]
    assert isinstance(got, array) and got.typecode == "q"
    assert got.tolist() == expected
    if text == "report" and not kw:
        assert len(expected) == 50


def test_packed_ids_decoded_over_several_steps(store: Store, monkeypatch) -> None:
    _mail(store)
    monkeypatch.setattr(search_module, "_DECODE_STEP", 3)  # 50 ids: 17 slices
    assert search_ids(store, "report").tolist() == search(store, "report")


def test_a_cancelled_packed_search_stops(store: Store) -> None:
    _mail(store)
    cancel = SearchCancel()
    cancel.cancel()
    with pytest.raises(SearchCancelled):
        search_ids(store, "report", cancel=cancel)


def test_id_position() -> None:
    ids = array("q", [5, 900_000_000_000, 7, 1, 5])
    assert id_position(ids, 5) == 0  # the first one
    assert id_position(ids, 7) == 2
    assert id_position(ids, 900_000_000_000, ids.tobytes()) == 1
    assert id_position(ids, 3) is None
    assert id_position(ids, 2**70) is None  # no such id can be stored
    assert id_position(array("q"), 5) is None


def test_id_position_ignores_bytes_across_two_ids() -> None:
    """The bytes of a wanted id may appear straddling two neighbours: not a match."""
    key = int.from_bytes(b"\x02" * 8, sys.byteorder, signed=True)
    left = int.from_bytes(b"\x00" + b"\x02" * 7, sys.byteorder, signed=True)
    right = int.from_bytes(b"\x02" + b"\x00" * 7, sys.byteorder, signed=True)
    ids = array("q", [left, right])
    assert ids.tobytes().find(key.to_bytes(8, sys.byteorder, signed=True)) == 1
    assert id_position(ids, key) is None
    ids.append(key)
    assert id_position(ids, key) == 2

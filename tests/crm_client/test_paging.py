"""prefetched(): order kept, errors surface where they happened, early exit stops the helper."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from core.crm.paging import prefetched


def test_keeps_order_and_ends() -> None:
    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))
    assert list(prefetched(iter([]))) == []


def test_error_reaches_the_consumer_after_the_good_items() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is broken")

    seen = []
    with pytest.raises(ValueError, match="page 3"):
        for item in prefetched(pages()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer() -> None:
    produced = []
    finished = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    stream = prefetched(pages(), depth=2)
    assert next(stream) == 0
    stream.close()  # joins the helper
    assert finished.is_set() and len(produced) < 10

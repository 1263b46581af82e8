"""Paging helpers: overlap downloading the next page with processing the current one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

_T = TypeVar("_T")


def prefetched(items: Iterator[_T], depth: int = 2) -> Generator[_T, None, None]:
    """Iterate ``items`` on a helper thread, ``depth`` ahead of the consumer. Exceptions
    reach the consumer at the point they happened; closing early stops the helper after the
    item it is producing."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put("error", exc)
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put("end", None)

    worker = threading.Thread(target=produce, name="trackbox-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


__all__ = ["prefetched"]

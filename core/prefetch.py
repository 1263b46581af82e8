"""Run an iterator on a helper thread a few items ahead of its consumer: downloading or
parsing the next page while the current one is stored (address books, CRM paging, mail sync).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class _Prefetch(Generic[T]):
    """``items`` on a producer thread, at most ``depth`` items ahead."""

    def __init__(self, items: Iterator[T], depth: int, name: str) -> None:
        self.items = items
        self.box: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        """Hand ``item`` over unless the consumer has left; False when it has."""
        while not self.stop.is_set():
            try:
                self.box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        last: object = _END
        try:
            for item in self.items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            last = exc
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()
        self._put(last)

    def groups(self, size: Callable[[T], int], max_size: int) -> Iterator[list[T]]:
        """Every item the producer has ready, up to ``max_size`` by ``size``, at least one.
        An error in the producer is raised here, after the items before it; leaving early
        stops the producer after the item it is producing."""
        self.thread.start()
        try:
            pending: object = None  # taken from the box, not handed over yet
            while True:
                item = self.box.get() if pending is None else pending
                pending = None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                group: list[T] = [item]  # type: ignore[list-item]
                total = size(group[0])
                while total < max_size:
                    try:
                        more = self.box.get_nowait()
                    except queue.Empty:
                        break
                    if more is _END or isinstance(more, BaseException):
                        pending = more
                        break
                    group.append(more)  # type: ignore[arg-type]
                    total += size(more)  # type: ignore[arg-type]
                yield group
        finally:
            self.stop.set()
            self.thread.join()


def prefetched(
    items: Iterator[T], depth: int = 2, *, name: str = "trackbox-prefetch"
) -> Generator[T, None, None]:
    """Iterate ``items`` on a helper thread, ``depth`` ahead of the consumer. Exceptions
    reach the consumer at the point they happened; closing early stops the helper after the
    item it is producing."""
    for group in _Prefetch(items, depth, name).groups(lambda _: 1, 1):
        yield from group


def prefetched_groups(
    items: Iterator[T],
    depth: int,
    *,
    size: Callable[[T], int],
    max_size: int,
    name: str = "trackbox-prefetch",
) -> Iterator[list[T]]:
    """Like :func:`prefetched`, but each step takes every item that is ready (up to
    ``max_size`` as counted by ``size``): a consumer that fell behind catches up in one go."""
    return _Prefetch(items, depth, name).groups(size, max_size)

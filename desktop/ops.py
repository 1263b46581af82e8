"""GUI operations: typed jobs on the worker pool, and the one "changes applied" notice.

After anki's ``CollectionOp`` / ``QueryOp`` and its ``operation_did_execute`` hook:

- :class:`QueryOp` reads: ``op()`` runs on a pool thread and returns a ``T``;
  ``success(T)`` runs on the GUI thread, ``failure(exc)`` too.
- :class:`Op` changes something (the store, the outbox, the CRM, the profile): ``op()`` runs
  behind the other writers (the serial queue) and returns a ``T`` that says what changed (a
  :class:`~core.sync.report.Changes`, or a value that carries one, such as a ``SyncReport``).
  On success its ``Changes`` is published on the :class:`ChangeBus` first — every view has
  refreshed what concerns it — and then ``success(T)`` runs.
- :class:`ChangeBus` carries that notice on one signal, ``changes_applied(Changes)``. The
  views subscribe (folder tree, message list, reading pane, status bar and queue view) and
  each refreshes what concerns it; nobody refreshes a view on another's behalf.

``op`` must not touch widgets. With ``owner`` (a dialog), the callbacks are dropped when the
owner was deleted before the job reported (see :meth:`Workers.run`); the notice is still
published, since the change happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import shiboken6
from PySide6.QtCore import QObject, Signal

from core.domain.changes import Changes
from desktop.workers import Workers

log = logging.getLogger(__name__)

T = TypeVar("T")


class ChangeBus(QObject):
    """``changes_applied(Changes)`` after every operation that changed something (a verb, a
    sync, a retry or discard in the queue, a sent mail, saved options). Subscribers are
    called in the order they connected, on the GUI thread."""

    changes_applied = Signal(object)

    def publish(self, changes: Changes) -> None:
        self.changes_applied.emit(changes)


def _log_failure(exc: BaseException) -> None:
    log.error("unhandled failure of a GUI operation: %r", exc)


class QueryOp(Generic[T]):
    """A read on the worker pool, with a typed result:
    ``QueryOp(ws.queue, show).failure(say).run_in_background(workers)``."""

    def __init__(
        self,
        op: Callable[[], T],
        success: Callable[[T], None],
        *,
        owner: QObject | None = None,
    ) -> None:
        self._op = op
        self._success = success
        self._failure: Callable[[BaseException], None] = _log_failure
        self._owner = owner

    def failure(self, failure: Callable[[BaseException], None]) -> QueryOp[T]:
        self._failure = failure
        return self

    def run_in_background(self, workers: Workers) -> None:
        workers.run(self._op, self._success, self._failure, owner=self._owner)


def _as_changes(result: object) -> Changes:
    assert isinstance(result, Changes), f"an Op without changes= returned {result!r}"
    return result


class Op(Generic[T]):
    """A change, run behind the other writers; its ``Changes`` is published on ``bus`` before
    ``success`` runs::

        track = Op(lambda: ws.enqueue_track(ids), bus).success(done).failure(failed)
        track.run_in_background(workers)

    An op whose result is not a ``Changes`` says how to find it (``changes=``)::

        Op(sync, bus, changes=lambda report: report.changes)
    """

    @overload
    def __init__(
        self: Op[Changes],
        op: Callable[[], Changes],
        bus: ChangeBus,
        *,
        owner: QObject | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        op: Callable[[], T],
        bus: ChangeBus,
        *,
        changes: Callable[[T], Changes],
        owner: QObject | None = None,
    ) -> None: ...

    def __init__(
        self,
        op: Callable[[], Any],
        bus: ChangeBus,
        *,
        changes: Callable[[Any], Changes] | None = None,
        owner: QObject | None = None,
    ) -> None:
        self._op: Callable[[], T] = op
        self._bus = bus
        self._changes: Callable[[T], Changes] = changes if changes is not None else _as_changes
        self._success: Callable[[T], None] | None = None
        self._failure: Callable[[BaseException], None] = _log_failure
        self._owner = owner

    def success(self, success: Callable[[T], None]) -> Op[T]:
        self._success = success
        return self

    def failure(self, failure: Callable[[BaseException], None]) -> Op[T]:
        self._failure = failure
        return self

    def run_in_background(self, workers: Workers) -> None:
        bus, changes_of, success, failure, owner = (
            self._bus,
            self._changes,
            self._success,
            self._failure,
            self._owner,
        )

        def alive(obj: QObject | None) -> bool:
            return obj is None or shiboken6.isValid(obj)

        def done(result: T) -> None:
            if alive(bus):  # the change happened: published even when the owner is gone
                bus.publish(changes_of(result))
            if success is not None and alive(owner):
                success(result)

        def failed(exc: BaseException) -> None:
            if alive(owner):
                failure(exc)

        workers.run(self._op, done, failed, serial=True)

"""Property: whatever happens to a folder between syncs, and wherever a sync is cut short, a
replica that applies the batches ends equal to the folder (vdirsyncer's SyncMachine idea)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.mail import MailBackend, open_backend

from .helpers import Replica, make_message

_serial = itertools.count(1000)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.booleans()),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("read"), st.integers(0, 50)),
        st.tuples(st.just("track"), st.integers(0, 50)),
        st.tuples(st.just("move"), st.integers(0, 50)),
        st.tuples(st.just("sync"), st.integers(1, 4), st.integers(0, 3)),
    ),
    max_size=25,
)


def _view(rep: Replica) -> dict[str, tuple[bool, bool]]:
    return {h.message_id: (h.is_read, bool(h.tracked_marker)) for h in rep.headers.values()}


def _run(backend: MailBackend, script: list[tuple]) -> None:
    backend.create_folder("Archive")
    rep = Replica()
    refs: list = []
    for op in script:
        kind = op[0]
        if kind == "append":
            refs.append(backend.append("Inbox", make_message(next(_serial)), is_read=op[1]))
        elif kind == "sync":
            _, size, cut = op
            batches = list(backend.sync("Inbox", rep.state, size))
            for b in batches[:cut] if cut < len(batches) else batches:  # cut: a crash
                rep.apply(b)
        elif refs:
            ref = refs[op[1] % len(refs)]
            if kind == "delete":
                backend.delete(ref)
                refs.remove(ref)
            elif kind == "read":
                backend.set_read(ref, True)
            elif kind == "track":
                backend.set_tracked(ref, "act")
            elif kind == "move":
                backend.move(ref, "Archive")
                refs.remove(ref)
    rep.sync(backend, "Inbox", 3)
    truth = Replica()
    truth.sync(backend, "Inbox")
    assert _view(rep) == _view(truth)
    assert set(rep.headers) == set(truth.headers)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=ops)
def test_maildir_replica_converges(tmp_path_factory: pytest.TempPathFactory, script) -> None:
    root: Path = tmp_path_factory.mktemp("prop")
    with open_backend(f"maildir:{root}") as b:
        _run(b, script)


def _server_case(opener: Callable[[], MailBackend], script: list[tuple]) -> None:
    with opener() as b:
        _run(b, script)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=ops)
def test_imap_replica_converges(dovecot, script) -> None:
    user = dovecot.new_user()
    _server_case(lambda: open_backend(dovecot.url(), user=user, password=dovecot.password), script)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=ops)
def test_ews_replica_converges(ews_server, script) -> None:
    user = ews_server.new_user()
    _server_case(
        lambda: open_backend(
            ews_server.url(), user=user, password=ews_server.password, auth_type="basic"
        ),
        script,
    )

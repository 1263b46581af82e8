"""A client process for the kill tests (``test_kill_*.py``), and what those tests share.

As a program: a workspace on a Dovecot mailbox and a CRM that synchronises pass after pass,
as a running client does, until a stop file exists and a pass ended well with nothing left in
its queue. Mode ``mail`` runs the mail sync only (``Workspace.sync_mail``), mode ``cycle`` the
whole cycle (``Workspace.sync_cycle``: CRM steps, mail, decisions, outbox replay). It prints
``ready`` once open, ``sync`` before each pass, ``step <name>`` as a cycle goes on, and after
each pass ``pass ok=<0|1> online=<0|1> mail_online=<0|1> queued=N parked=N done=N``; it ends
with ``drained`` and exit code 0.

For the tests: :class:`Client` runs it (its output read on a thread, so it never blocks on a
full pipe), :func:`integrity` checks a store or database as a crash left it (on a copy, so the
next process still does its own recovery), and :func:`mailbox_snapshot` /
:func:`assert_store_matches_mailbox` compare the store with the mailbox read over IMAP.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASS_LINE = re.compile(
    r"pass ok=(\d) online=(\d) mail_online=(\d) queued=(\d+) parked=(\d+) done=(\d+)"
)


# --- the client process ---------------------------------------------------------------------


def main(
    mode: str, store_path: str, imap_url: str, user: str, password: str, crm_url: str, stop: str
) -> int:
    from core.crm import BasicAuth, CrmClient
    from core.domain import demo_data
    from core.domain.model import Address
    from core.mail import open_backend
    from core.sync.report import SyncProgress
    from core.workspace.facade import Workspace

    me = Address(demo_data.ME.email, demo_data.ME.full_name)
    crm = CrmClient(
        crm_url, BasicAuth(me.email, demo_data.DEMO_PASSWORD), timeout=10, get_retries=0
    )
    ws = Workspace(
        store_path=Path(store_path),
        open_mailbox=lambda: open_backend(imap_url, user=user, password=password),
        crm=crm,
        owner=me,
        mailbox_name=me.email,
    )

    def step(progress: SyncProgress) -> None:
        print(f"step {progress.step}", flush=True)

    print("ready", flush=True)
    while True:
        print("sync", flush=True)
        if mode == "mail":
            ok = online = mail_online = not ws.sync_mail().errors
        else:
            report = ws.sync_cycle(step)
            ok, online, mail_online = report.ok, report.online, report.mail_online
        counts = ws.outbox().counts()
        queued, parked, done = (counts.get(k, 0) for k in ("queued", "parked", "done"))
        print(
            f"pass ok={int(ok)} online={int(online)} mail_online={int(mail_online)} "
            f"queued={queued} parked={parked} done={done}",
            flush=True,
        )
        if ok and not queued and os.path.exists(stop):
            break
        time.sleep(0.01 if ok else 0.1)
    ws.close()
    print("drained", flush=True)
    return 0


# --- the test side --------------------------------------------------------------------------


class Client:
    """The client process above, started now; ``lines`` collects what it prints."""

    def __init__(self, args: list[str], log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.mail_syncer", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="kill-test-client", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            self._new.put(line.strip())
        self._new.put(None)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """The next line that starts with ``pattern`` (a hang guard, not a speed bound)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"client printed no {pattern!r} within {timeout}s") from None
            if line is None:
                raise AssertionError(f"client ended before {pattern!r}: {self.lines[-5:]}")
            if line.startswith(pattern):
                return line

    def kill(self) -> bool:
        """SIGKILL it; whether it was still running (and so died of the signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        killed = self.proc.wait(timeout=30) == -signal.SIGKILL
        self.close()
        return killed

    def finish(self, timeout: float = 240.0) -> int:
        """Wait for it to end by itself (a hang guard: killed after ``timeout``)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"client did not finish within {timeout}s: {self.lines[-5:]}"
            ) from None
        self.close()
        return code

    def close(self) -> None:
        self._reader.join(timeout=10)
        self._log.close()

    def passes(self) -> list[tuple[int, ...]]:
        """Each pass's (ok, online, mail_online, queued, parked, done)."""
        return [tuple(map(int, m.groups())) for m in map(PASS_LINE.match, self.lines) if m]


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of a database as it is on disk now (its WAL included),
    checked on a copy: the process that opens it next still finds the crash to recover."""
    with tempfile.TemporaryDirectory(prefix="kill-check-") as d:
        copy = Path(d) / db.name
        for suffix in ("", "-wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
        conn = sqlite3.connect(copy)
        try:
            return "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
        finally:
            conn.close()


def outbox_counts(store: Path) -> dict[str, int]:
    """The outbox by state, read from another process (WAL: readers do not block it)."""
    conn = sqlite3.connect(store, timeout=30)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    finally:
        conn.close()


@dataclass
class FolderSnapshot:
    validity: int
    uidnext: int
    highestmodseq: int
    messages: dict[int, tuple[str, bool, tuple[str, ...]]]  # uid -> (Message-ID, seen, keywords)


_MID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


def mailbox_snapshot(host: str, port: int, user: str, password: str) -> dict[str, FolderSnapshot]:
    """Every folder of the mailbox, read over IMAP (read-only), by the store's folder path."""
    from imapclient import IMAPClient

    out: dict[str, FolderSnapshot] = {}
    with IMAPClient(host, port, ssl=False) as c:
        c.login(user, password)
        c.enable("CONDSTORE")
        for _flags, _sep, name in c.list_folders():
            info = c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            rows = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            messages: dict[int, tuple[str, bool, tuple[str, ...]]] = {}
            for uid, data in rows.items():
                head = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]
                mid = _MID.search(head)
                flags = data[b"FLAGS"]
                kws = tuple(sorted(f.decode() for f in flags if not f.startswith(b"\\")))
                messages[uid] = (mid.group(1).decode() if mid else "", b"\\Seen" in flags, kws)
            path = "Inbox" if name.upper() == "INBOX" else name
            out[path] = FolderSnapshot(
                int(info[b"UIDVALIDITY"]),
                int(info[b"UIDNEXT"]),
                int(info.get(b"HIGHESTMODSEQ", 0)),
                messages,
            )
    return out


def assert_store_matches_mailbox(store: Path, mailbox: dict[str, FolderSnapshot]) -> int:
    """Every message once in the store, with its UID and flags; no other rows; each folder's
    sync state at the mailbox's UIDVALIDITY, UIDs and HIGHESTMODSEQ. Returns the messages."""
    from core.mail.imap_state import decode_state, seqset_to_uids

    conn = sqlite3.connect(store, timeout=30)
    try:
        rows = conn.execute(
            "SELECT folder, uid, message_id, is_read, keywords_json FROM messages"
        ).fetchall()
        states = dict(conn.execute("SELECT path, sync_state FROM folders").fetchall())
    finally:
        conn.close()
    stored: dict[str, dict[int, tuple[str, bool, tuple[str, ...]]]] = {}
    for folder, uid, mid, seen, kws in rows:
        validity, _, number = str(uid).partition(":")
        assert int(validity) == mailbox[folder].validity, f"stale UIDVALIDITY in {folder}: {uid}"
        assert int(number) not in stored.setdefault(folder, {}), f"{folder} {uid} twice"
        stored[folder][int(number)] = (mid, bool(seen), tuple(sorted(json.loads(kws))))
    assert set(stored) <= set(mailbox), f"rows of folders not in the mailbox: {set(stored)}"
    for path, snap in mailbox.items():
        got = stored.get(path, {})
        missing = sorted(set(snap.messages) - set(got))
        extra = sorted(set(got) - set(snap.messages))
        wrong = sorted(u for u in set(got) & set(snap.messages) if got[u] != snap.messages[u])
        assert (missing, extra, wrong) == ([], [], []), (
            f"{path}: missing UIDs {missing[:10]}, extra {extra[:10]}, wrong flags or ids "
            f"{[(u, got[u], snap.messages[u]) for u in wrong[:5]]}"
        )
        state = decode_state(states.get(path))
        assert state is not None, f"{path}: no sync state"
        assert state["v"] == snap.validity, f"{path}: state at UIDVALIDITY {state['v']}"
        assert seqset_to_uids(state["u"]) == set(snap.messages), f"{path}: state's UIDs differ"
        assert max(snap.messages, default=0) <= state["l"] < snap.uidnext, f"{path}: last UID"
        assert state["m"] == snap.highestmodseq, f"{path}: state at MODSEQ {state['m']}"
    everywhere = Counter(m for f in mailbox.values() for m, _, _ in f.messages.values())
    in_store = Counter(mid for _, _, mid, _, _ in rows)
    assert in_store == everywhere, "the store's Message-IDs differ from the mailbox's"
    return len(rows)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:8]))

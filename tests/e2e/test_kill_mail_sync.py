"""A client killed during mail sync loses nothing and makes nothing up: a client process
synchronising a 4,000-message Dovecot mailbox (three folders) pass after pass, while the
mailbox changes under it (new mail, flags, expunges, moves), is SIGKILLed at ten random points
and restarted each time. After each kill the store passes ``PRAGMA integrity_check``; after a
final clean run it holds exactly what Dovecot (read directly over IMAP) holds: every message
once, with its UID and flags, and each folder's sync state at the mailbox's own."""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

from imapclient import IMAPClient

from tests.e2e.mail_syncer import Client, assert_store_matches_mailbox, integrity, mailbox_snapshot
from tests.plugins.mailservers import DovecotServer

KILLS = 10
FOLDERS = {"INBOX": 2000, "Projects": 1200, "Archive": 800}
#: A CRM that is never asked: mail sync does not talk to it (port 1 refuses at once).
NO_CRM = "http://127.0.0.1:1"


def _mime(run: str, n: int) -> bytes:
    return (
        f"From: Sam Sender <sam{n % 13}@sender.example>\r\nTo: me@test.example\r\n"
        f"Subject: Kill test {n}\r\nDate: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <ks-{run}-{n}@sender.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nMessage {n}.\r\n"
    ).encode()


class Mailbox:
    """The user's mailbox as another device changes it, over its own IMAP session."""

    def __init__(self, dovecot: DovecotServer, user: str, run: str, rng: random.Random) -> None:
        self.c = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False)
        self.c.login(user, dovecot.password)
        self.run, self.rng, self.next = run, rng, 0

    def append(self, folder: str, count: int) -> None:
        for start in range(0, count, 250):
            n = min(250, count - start)
            self.c.multiappend(folder, [self._new() for _ in range(n)])

    def _new(self) -> bytes:
        self.next += 1
        return _mime(self.run, self.next)

    def change(self) -> None:
        """New mail, read and unread, a keyword set and cleared, expunges and moves."""
        rng, c = self.rng, self.c
        for folder in FOLDERS:
            self.append(folder, rng.randint(20, 80))
            c.select_folder(folder)
            uids = c.search(["ALL"])
            c.add_flags(rng.sample(uids, 60), [b"\\Seen"])
            c.remove_flags(rng.sample(uids, 30), [b"\\Seen"])
            c.add_flags(rng.sample(uids, 20), [b"$Label1"])
            c.remove_flags(rng.sample(uids, 10), [b"$Label1"])
            gone = rng.sample(uids, 15)
            c.delete_messages(gone)
            c.uid_expunge(gone)
        c.select_folder("INBOX")
        c.move(rng.sample(c.search(["ALL"]), 25), "Archive")

    def close(self) -> None:
        self.c.logout()


def test_sigkill_during_mail_sync_converges_to_the_mailbox(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KILL_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    user = dovecot.new_user("ks")
    mailbox = Mailbox(dovecot, user, run, rng)
    for folder in ("Projects", "Archive"):
        mailbox.c.create_folder(folder)
    for folder, count in FOLDERS.items():
        mailbox.append(folder, count)
    store, stop = tmp_path / "store.sqlite", tmp_path / "stop"
    args = ["mail", str(store), dovecot.url(), user, dovecot.password, NO_CRM, str(stop)]
    log = tmp_path / "client.log"

    kills = mid_sync = 0
    for n in range(KILLS):
        client = Client(args, log)
        client.wait_for("ready")
        if n:
            mailbox.change()  # while the client synchronises
        time.sleep(rng.uniform(0.0, 0.6))  # a random kill point, not a timing assertion
        if client.kill():
            kills += 1
            mid_sync += client.lines[-1] == "sync"
        assert integrity(store) == "ok", f"store corrupt after kill {n + 1} (seed {seed})"
    mailbox.change()
    mailbox.close()

    stop.touch()
    final = Client(args, log)
    assert final.finish() == 0 and final.lines[-1] == "drained", final.lines[-5:]
    assert integrity(store) == "ok"
    snapshot = mailbox_snapshot(dovecot.host, dovecot.imap_port, user, dovecot.password)
    messages = assert_store_matches_mailbox(store, snapshot)
    print(
        f"\nmail sync kill test (seed {seed}): kills={kills} mid_sync={mid_sync} "
        f"messages={messages} lost=0 duplicated=0"
    )
    assert kills == KILLS, "the client ended by itself: it should sync until told to stop"
    assert mid_sync >= KILLS // 2, "most kills should land inside a sync pass"

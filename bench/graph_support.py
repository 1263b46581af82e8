"""The fake Microsoft Graph server for the ``mail_sync`` bench, in its own process.

Microsoft 365 is a remote service: in this process the fake would compete with the client for
the GIL, and the figures would measure that. The child process runs the emulator (over HTTPS,
as the tenant authority whose tokens the fake checks) and the fake Graph server, seeds the
mailbox, and answers one-line commands on stdin (``changes N``, ``quit``) with one JSON line.

The fake parses a message's MIME once (~1.7 ms a message here, 17 s for a 10,000-message
round) and keeps what it found (tests/fakes/graph_json.py): the untimed warm-up pays it, so
the timed rounds measure the clients, not the fake's parsing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

USER = "me@test.example"
TOKEN_LIFETIME = 4 * 3600
_PEOPLE = [
    ("Anna Berg", "anna.berg@contoso.example"),
    ("Ravi Patel", "ravi.patel@fabrikam.example"),
    ("Lena Vogel", "lena.vogel@litware.example"),
    ("Jean Morel", "jean.morel@tailspin.example"),
    ("Sofia Ruiz", "sofia.ruiz@wingtip.example"),
    ("Tom Hale", "tom.hale@northwind.example"),
]
_TOPICS = ["Quarterly figures", "Site visit", "Contract renewal", "Invoice 4711", "Meeting notes"]
_ANCHOR = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def bench_mime(i: int, tag: str = "seed") -> bytes:
    """A plausible message, built with string formatting (the ``email`` package would take
    longer than the fake's seeding): threads of five (In-Reply-To, References), a Cc on every
    third, an attachment on every tenth."""
    name, address = _PEOPLE[i % len(_PEOPLE)]
    thread, pos = divmod(i, 5)
    subject = ("Re: " if pos else "") + f"{_TOPICS[thread % len(_TOPICS)]} #{thread}"
    date = (_ANCHOR - timedelta(minutes=10 * i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    head = [
        f"From: {name} <{address}>",
        f"To: Me <{USER}>",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <{tag}-{i}@bench.example>",
        "MIME-Version: 1.0",
    ]
    if i % 3 == 0:
        head.append(f"Cc: {_PEOPLE[(i + 1) % len(_PEOPLE)][1]}")
    if pos:
        first = f"<{tag}-{i - pos}@bench.example>"
        head += [f"In-Reply-To: <{tag}-{i - 1}@bench.example>", f"References: {first}"]
    text = f"Hello,\r\n\r\nabout {subject} ({i}): see below.\r\n\r\n" + "Some words. " * 30
    if i % 10:
        head.append("Content-Type: text/plain; charset=utf-8")
        return ("\r\n".join(head) + "\r\n\r\n" + text + "\r\n").encode()
    head.append('Content-Type: multipart/mixed; boundary="b0"')
    body = (
        f"--b0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        f"--b0\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="f{i}.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b0--\r\n"
    )
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


# -- the parent's side -------------------------------------------------------------------------


@dataclass
class GraphServerProcess:
    """The child as the bench sees it: the fake's URL, its CA file, a token for ``USER``."""

    url: str
    ca_file: str
    token: str
    seeded_in: float
    _proc: subprocess.Popen[str]

    def command(self, line: str) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fake Graph process died at {line!r}")
        out: dict[str, Any] = json.loads(answer)
        if "error" in out:
            raise RuntimeError(f"the fake Graph process failed {line!r}: {out['error']}")
        return out

    def ten_changes(self, round_no: int) -> None:
        """4 read-state changes, 3 deletions, 3 new messages, made elsewhere."""
        self.command(f"changes {round_no}")


@contextlib.contextmanager
def graph_server_process(size: int) -> Iterator[GraphServerProcess]:
    """Start the child with ``size`` messages in ``USER``'s Inbox; stops it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.graph_support", str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"the fake Graph process did not start (said {line!r})")
        ready = json.loads(line)
        yield GraphServerProcess(
            ready["url"], ready["ca_file"], ready["token"], ready["seeded_in"], proc
        )
    finally:
        if proc.stdin is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.stdin.write("quit\n")
                proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


# -- the child's side --------------------------------------------------------------------------


def _serve(size: int, out: IO[str]) -> None:
    import time

    from crmserver import Settings, run_in_thread
    from crmserver.tls import make_throwaway_ca
    from tests.fakes.graph_server import FakeGraphServer
    from tests.plugins.graph import MAIL_SCOPES, GraphTokens, _tenant_of

    root = Path(tempfile.mkdtemp(prefix="trackbox-bench-graph-"))
    try:
        crm_tls = make_throwaway_ca(root / "crm-tls")
        settings = Settings(db_path=root / "org.db", seed="demo")
        with run_in_thread(settings, tls=crm_tls) as crm:
            tokens = GraphTokens(crm, _tenant_of(crm))
            fake = FakeGraphServer(tokens.authority, make_throwaway_ca(root / "graph-tls"),
                                   authority_ca=crm_tls.ca).start()  # fmt: skip
            try:
                t0 = time.perf_counter()
                ids = fake.add_messages(USER, "Inbox", (bench_mime(i) for i in range(size)))
                ready = {
                    "url": fake.url,
                    "ca_file": fake.ca_file,
                    "token": tokens.graph(USER, MAIL_SCOPES, lifetime=TOKEN_LIFETIME),
                    "seeded_in": time.perf_counter() - t0,
                }
                print(json.dumps(ready), file=out, flush=True)
                _commands(fake, ids, out)
            finally:
                fake.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _commands(fake: Any, ids: list[str], out: IO[str]) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return
        try:
            if words[0] == "changes":
                _ten_changes(fake, ids, int(words[1]))
                answer: dict[str, Any] = {"ok": True}
            else:
                answer = {"error": f"unknown command {words[0]!r}"}
        except Exception as exc:  # reported to the parent, which raises
            answer = {"error": repr(exc)}
        if fake.unknown_requests:
            answer = {"error": "fake did not understand: " + "; ".join(fake.unknown_requests)}
        print(json.dumps(answer), file=out, flush=True)


def _ten_changes(fake: Any, ids: list[str], round_no: int) -> None:
    picked = ids[round_no * 7 : round_no * 7 + 7]
    for message_id in picked[:4]:
        fake.change_message(USER, message_id, is_read=True)
    for message_id in picked[4:7]:
        fake.delete_message(USER, message_id)
    for i in range(3):
        fake.add_message(USER, "Inbox", bench_mime(i, tag=f"new-{round_no}"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.stdout)

"""Figures ``peak_rss`` and ``store_size`` (issue 21): the app's memory with a million messages.

``peak_rss``: the peak resident set (``VmHWM``) of a process running the main window on a
store of ``size`` (default 1,000,000) messages in 10 folders (the largest 300,000), with the
largest folder opened and scrolled end to end, while a full sync runs: the demo Maildir
(10,000 messages) and 250,000 contacts (+ accounts and leads) from the emulator on loopback
(own process, as a CRM is) into the address books. Against the peak of a bare PySide6 process
showing a 100-row table, same run. Target: ratio <= 3 (the store stays on disk, the message
list pages, caches are bounded). Each side runs in a fresh process.

``store_size``: the store file's bytes per 1,000 messages (reported; no target), as built.

The big store is written straight into the store schema with ``executemany`` (seconds, not
minutes) and kept between runs in the temp directory, keyed by schema version and size.

Run: ``python -m bench.memory [--size N]`` or ``python -m bench memory``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._harness import figure, print_figures

BENCH = "memory"
DEFAULT_SIZE = 1_000_000
FOLDERS = 10
LARGEST_SHARE = 0.3  # the largest folder holds 300,000 of 1,000,000
SYNC_MESSAGES = 10_000
CONTACTS = 250_000
TARGET = 3.0
BIG_FOLDER = "Archive 01"
_BATCH = 20_000

BARE = """
import sys
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from PySide6.QtWidgets import QApplication, QTableView

class Bare(QAbstractTableModel):
    def __init__(self):
        super().__init__()
        self.rows = [[f"r{r}c{c}" for c in range(7)] for r in range(100)]
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else 100
    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else 7
    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return self.rows[index.row()][index.column()]
        return None

app = QApplication(sys.argv)
view = QTableView(); view.resize(1000, 400); view.setModel(Bare()); view.show()
QTimer.singleShot(200, app.quit)
app.exec()
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def folder_sizes(size: int) -> list[tuple[str, int]]:
    """10 folders: the largest ``LARGEST_SHARE`` of ``size``, the rest shared evenly."""
    largest = int(size * LARGEST_SHARE)
    rest = size - largest
    sizes = [largest] + [rest // (FOLDERS - 1)] * (FOLDERS - 1)
    sizes[-1] += rest - sum(sizes[1:])
    return [(f"Archive {n + 1:02d}", count) for n, count in enumerate(sizes)]


def _message_rows(folder: str, start: int, count: int) -> Any:
    """The rows of one batch, the columns a synced header fills (``core.store.rows``)."""
    from datetime import UTC, datetime

    from core.store.rows import sort_key

    base = 1_577_836_800.0  # 2020-01-01
    for i in range(start, start + count):
        person = i % 977
        ts = base + i * 60.0
        subject = f"Quarterly report {i}"
        yield (
            folder,
            str(i),
            f"<bench-{folder[-2:]}-{i}@x.example>",
            subject,
            sort_key(subject),
            f"person{person}@x.example",
            f"Person {person}",
            f"person{person}@x.example",
            sort_key(f"Person {person}"),
            '[["me@contoso.example", "Me"]]',
            datetime.fromtimestamp(ts, UTC).isoformat(),
            ts,
            1000 + i % 5000,
            int(i % 7 == 0),
            int(bool(i % 3)),
        )


_INSERT = (
    "INSERT INTO messages (folder, uid, message_id, subject, subject_sort, sender_email, "
    "sender_name, sender_key, sender_sort, to_json, date, date_ts, size, has_attachments, "
    "is_read) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def write_store(path: Path, folders: list[tuple[str, int]]) -> None:
    """A store file in the current schema holding these folders' messages: rows written
    directly with ``executemany`` in one transaction (the header path would take minutes)."""
    from core.store import Store

    store = Store.open(path)
    conn = store.conn
    # A throw-away file until renamed into place: no journal, no syncs (a 1M-row WAL would
    # be gigabytes).
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO folders (path, name, role, parent) VALUES (?, ?, NULL, NULL)",
        [(name, name) for name, _ in folders],
    )
    for name, count in folders:
        for start in range(0, count, _BATCH):
            conn.executemany(_INSERT, _message_rows(name, start, min(_BATCH, count - start)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    store.close()


def cached_store(folders: list[tuple[str, int]]) -> Path:
    """The built store for these folders, from the temp directory when an earlier run built
    it with the same schema version (built, then renamed into place: never half a file)."""
    from core.store.schema import SCHEMA_VERSION

    total = sum(n for _, n in folders)
    key = f"v{SCHEMA_VERSION}-{total}-{folders[0][1]}"
    path = Path(tempfile.gettempdir()) / "trackbox-bench-million" / f"store-{key}.sqlite"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    write_store(tmp, folders)
    tmp.rename(path)
    return path


def _vm_hwm_kib() -> int:
    text = Path("/proc/self/status").read_text()
    return int(text.split("VmHWM:")[1].split()[0])


def _scroll_through(app: Any, view: Any, steps: int = 200) -> None:
    """Scroll the view from top to bottom in ``steps`` jumps, painting each."""
    bar = view.verticalScrollBar()
    for k in range(steps + 1):
        bar.setValue(bar.maximum() * k // steps)
        view.viewport().repaint()
        app.processEvents()


def _workspace(root: Path, url: str) -> Any:
    """The workspace of the measured app: the store copy, the Maildir, the emulator."""
    from core.config.local_options import LocalOptions
    from core.crm import BasicAuth, CrmClient
    from core.domain import demo_data
    from core.domain.model import Address
    from core.mail.maildir import MaildirBackend
    from core.workspace.facade import Workspace

    me = demo_data.ME
    ws = Workspace(
        store_path=root / "store.sqlite",
        open_mailbox=lambda: MaildirBackend(root / "mailbox"),
        crm=CrmClient(url, BasicAuth(me.email, demo_data.DEMO_PASSWORD)),
        owner=Address(me.email, me.full_name),
        mailbox_name=me.email,
    )
    ws.save_local_options(LocalOptions(contacts_scope="all"))
    return ws


def child(root_dir: str, url: str) -> None:
    """The measured process: the main window on a copy of the big store in ``root_dir``, a
    full sync from the emulator at ``url`` and the demo Maildir there, the largest folder
    opened and scrolled through before and after. (The emulator, its seeding and the
    mailbox's writing run in the parent: they are not the app.)"""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication, QTableView

    from bench.gui_folder import _measure_gaps
    from desktop.app import tune_gc, tune_gil
    from desktop.mainwindow import MainWindow
    from desktop.workers import Workers

    app = QApplication.instance() or QApplication([])
    ws = _workspace(Path(root_dir), url)
    workers = Workers()
    window = MainWindow(workers)
    window.show()
    app.processEvents()
    phases = {"window": _vm_hwm_kib()}
    tune_gc()
    tune_gil()
    done: list[str] = []
    window.mail_synced.connect(lambda: done.append("synced"))
    window.set_workspace(ws)  # the full sync starts
    model = window.message_model
    view = next(v for v in window.findChildren(QTableView) if v.model() is model)
    # The largest folder, clicked in the folder tree once the tree lists it.
    pane = window.folder_pane
    _measure_gaps(app, lambda: pane.model.index_of_path(BIG_FOLDER) is not None, 600)
    pane.select_path(BIG_FOLDER)
    _measure_gaps(app, lambda: getattr(model.source, "folder", None) == BIG_FOLDER, 600)
    _scroll_through(app, view)
    phases["scrolled"] = _vm_hwm_kib()
    _measure_gaps(app, lambda: bool(done), 1800)
    _scroll_through(app, view)  # the folder refreshed by the sync, scrolled again
    result = {
        "hwm_kib": _vm_hwm_kib(),
        "phases_mib": {k: round(v / 1024) for k, v in phases.items()},
        "rows": model.rowCount(),
        "cached": ws.address_book().count(),
    }
    window.detach_workspace()
    workers.wait()
    window.close()
    ws.close()
    print(json.dumps(result), flush=True)


def _run_child(store: Path, contacts: int, messages: int) -> dict[str, Any]:
    """Seed the emulator and write the mailbox here, then measure the app in a child."""
    from bench._harness import emulator_process
    from bench.addressbook_sync import _seed
    from core.mail.demo import create_demo_mailbox

    with tempfile.TemporaryDirectory(prefix="trackbox-bench-mem-") as tmp:
        root = Path(tmp)
        shutil.copyfile(store, root / "store.sqlite")
        _seed(root / "crm.sqlite", contacts)
        create_demo_mailbox(root / "mailbox", messages=messages)
        with emulator_process(root / "crm.sqlite") as url:
            code = f"from bench.memory import child; child({str(root)!r}, {url!r})"
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
                cwd=Path(__file__).resolve().parent.parent,
                check=True,
                capture_output=True,
                text=True,
            )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _bare_kib() -> int:
    out = subprocess.run(
        [sys.executable, "-c", BARE],
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def run(size: int | None = None) -> list[dict[str, Any]]:
    """``size``: messages in the store; contacts and synced messages scale with it."""
    n = size or DEFAULT_SIZE
    scale = n / DEFAULT_SIZE
    folders = folder_sizes(n)
    store = cached_store(folders)
    contacts = max(100, int(CONTACTS * scale))
    messages = max(100, int(SYNC_MESSAGES * scale))
    ours = _run_child(store, contacts, messages)
    bare = _bare_kib()
    per_thousand = store.stat().st_size / (n / 1000)
    return [
        figure(
            BENCH,
            "peak_rss",
            value=ours["hwm_kib"] / 1024,
            unit="MiB",
            baseline=bare / 1024,
            ratio=ours["hwm_kib"] / bare,
            target=TARGET,
            messages=n,
            largest_folder=folders[0][1],
            listed_rows=ours["rows"],
            contacts=contacts,
            cached_records=ours["cached"],
            synced_messages=messages,
            peak_after_mib=ours["phases_mib"],
        ),
        figure(
            BENCH,
            "store_size",
            value=per_thousand / 1024,
            unit="KiB per 1,000 messages",
            baseline=per_thousand / 1024,
            ratio=1.0,
            target=None,
            store_mib=round(store.stat().st_size / 2**20, 1),
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None)
    print_figures(run(parser.parse_args().size))

"""Figures ``contacts_first_sync`` and ``contacts_incremental`` of the PIM sync (issue 20).

``contacts_first_sync``: 10,000 CRM contacts (``size``) synchronised into an empty Radicale
address book by the engine (``core.pim``: change-tracking read, pairing state, vCards via
vobject, one PUT each), against writing the same vCards (rendered beforehand, untimed) into
another empty address book of the same Radicale with a bare httpx client. Target: ratio
<= 1.5. Both runs pay Radicale's own cost per PUT, which grows with the collection's size.

``contacts_incremental``: after 10 contacts changed in the CRM and 10 cards edited in the
address book, one pass (both deltas, the 20 merges and writes), against the first sync.
Target: ratio <= 0.02. Measured once the first sync's own writes have come back as changes
(one settling pass, reported as ``settle_s``): a DAV server hands a client its own writes back
once, and the engine must not take a sync-token after writing (it would miss what others
changed meanwhile).

Appointments (the issue's 2,000 to CalDAV) plug in through :data:`APPOINTMENT_HOOK`: a
callable ``(crm_url, radicale, size) -> list[figure]`` the appointment sides' author sets.

Radicale runs as in the tests (``tests.plugins.radicale``: its own process, storage on
``/dev/shm``); the emulator in its own process (``bench._harness.emulator_process``).
Run: ``python -m bench pim_sync [--size N]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._harness import emulator_process, figure, print_figures
from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.pim.carddav_side import CardDavSide
from core.pim.crm_contacts import CrmContactsSide
from core.pim.engine import PimEngine
from core.pim.fields import CONTACT_MAP
from core.pim.filters import PimFilter
from core.pim.sides import PimKind
from core.pim.state import PimState
from core.pim.vcard_map import render

BENCH = "pim_sync"
DEFAULT_SIZE = 10_000
CHANGES = 10
#: Set by the appointment sides: ``(crm_url, radicale_server, size) -> figures``.
APPOINTMENT_HOOK: Callable[[str, Any, int], list[dict[str, Any]]] | None = None


def _seed(db: Path, contacts: int) -> None:
    from crmserver.seed import seed_bulk, seed_demo
    from crmserver.storage import Storage

    storage = Storage(db)
    seed_demo(storage)
    seed_bulk(storage, contacts=contacts, accounts=max(1, contacts // 100))
    storage.conn.close()


def _engine(crm: CrmClient, book: str, auth: tuple[str, str], state: PimState) -> PimEngine:
    """All active contacts (owner: anyone), so that every seeded contact is synchronised."""
    side = CrmContactsSide(
        crm, CONTACT_MAP.synced(), filter=PimFilter(PimKind.CONTACT, owner="any")
    )
    return PimEngine(PimKind.CONTACT, side, CardDavSide(book, auth), CONTACT_MAP, state)


def _bare_write(crm: CrmClient, book: str, auth: tuple[str, str]) -> tuple[float, int]:
    """The same vCards the engine writes, rendered first, then PUT with a bare client."""
    side = CrmContactsSide(
        crm, CONTACT_MAP.synced(), filter=PimFilter(PimKind.CONTACT, owner="any")
    )
    cards = []
    for change in side.changes(None).changes:
        assert change.record is not None
        fields = {k: v for k, v in change.record.fields.items() if k in CONTACT_MAP.to_mailbox()}
        cards.append(
            (f"{change.key}.vcf", render({**fields, "contactid": change.key}, uid=change.key))
        )
    with httpx.Client(auth=auth, timeout=120) as client:
        started = time.perf_counter()
        for name, text in cards:
            response = client.put(
                book + name, content=text.encode(), headers={"Content-Type": "text/vcard"}
            )
            response.raise_for_status()
        return time.perf_counter() - started, len(cards)


def _change_both_sides(crm: CrmClient, book: str, auth: tuple[str, str], round_: int) -> None:
    ids = [r["contactid"] for r in crm.query("contacts", select=["contactid"], top=CHANGES * 2)]
    for n, cid in enumerate(ids[:CHANGES]):
        crm.update("contacts", cid, {"jobtitle": f"CRM change {round_}.{n}"})
    side = CardDavSide(book, auth)
    try:
        cards = [c for c in side.changes(None).changes if c.record is not None]
        for n, card in enumerate(cards[-CHANGES:]):
            from core.pim.sides import PimRecord

            side.put(
                card.key, PimRecord(PimKind.CONTACT, {"telephone2": f"+1 555 {n:04}"}), card.version
            )
    finally:
        side.close()


def run(size: int | None = None) -> list[dict[str, Any]]:
    from tests.plugins.radicale import memory_dir, start_radicale, stop_radicale

    contacts = size or DEFAULT_SIZE
    with tempfile.TemporaryDirectory(prefix="bench-pim-") as tmp:
        db = Path(tmp) / "org.db"
        _seed(db, contacts)
        dav_root = Path(tempfile.mkdtemp(prefix="bench-radicale-", dir=memory_dir()))
        radicale = start_radicale(dav_root)
        try:
            with emulator_process(db) as url:
                auth = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
                with CrmClient(url, auth, timeout=300) as crm:
                    figures = _contacts(crm, radicale, Path(tmp))
                if APPOINTMENT_HOOK is not None:
                    figures.extend(APPOINTMENT_HOOK(url, radicale, contacts))
                return figures
        finally:
            stop_radicale(radicale)
            shutil.rmtree(dav_root, ignore_errors=True)


def _contacts(crm: CrmClient, radicale: Any, tmp: Path) -> list[dict[str, Any]]:
    dav_auth = radicale.auth
    baseline, written = _bare_write(crm, radicale.make_collection("baseline"), dav_auth)
    print(f"# bare client wrote {written} vCards in {baseline:.1f} s", file=sys.stderr)
    book = radicale.make_collection("engine")
    state = PimState(tmp / "pim.sqlite")
    try:
        started = time.perf_counter()
        first = _engine(crm, book, dav_auth, state).run()
        ours = time.perf_counter() - started
        assert first.created_in_mailbox == written and not first.errors, first
        print(f"# engine synchronised {written} contacts in {ours:.1f} s", file=sys.stderr)
        started = time.perf_counter()
        _engine(crm, book, dav_auth, state).run()
        settle = time.perf_counter() - started
        _change_both_sides(crm, book, dav_auth, 0)
        started = time.perf_counter()
        inc = _engine(crm, book, dav_auth, state).run()
        incremental = time.perf_counter() - started
        assert (inc.crm_changes, inc.mailbox_changes) == (CHANGES, CHANGES), inc
        assert (inc.to_mailbox, inc.to_crm) == (CHANGES, CHANGES), inc
    finally:
        state.close()
    return [
        figure(BENCH, "contacts_first_sync", value=ours, unit="s", baseline=baseline,
               ratio=ours / baseline, target=1.5, contacts=written),
        figure(BENCH, "contacts_incremental", value=incremental, unit="s", baseline=ours,
               ratio=incremental / ours, target=0.02, changes_each_side=CHANGES,
               settle_s=round(settle, 3)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pim_sync", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=None)
    args = parser.parse_args(argv)
    print_figures(run(args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())

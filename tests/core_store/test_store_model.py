"""Property test: random upserts, removals, flag changes and tracked-state changes keep the
store equal to a plain-Python model of it (vdirsyncer's SyncMachine idea, on the store)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.domain.model import MailRef, TrackState
from core.store import Store
from tests.core_store.conftest import make_header

FOLDERS = st.sampled_from(["Inbox", "Sent", "Archive/2024"])
UIDS = st.integers(min_value=1, max_value=12)
MESSAGE_IDS = st.integers(min_value=1, max_value=6).map(lambda n: f"<m{n}@x>")
STATES = st.sampled_from(list(TrackState))


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.store = Store.open(Path(self.dir.name) / "s.sqlite")
        self.copies: dict[tuple[str, str], tuple[str, bool]] = {}  # ref → (message_id, read)
        self.state: dict[str, TrackState] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    @rule(folder=FOLDERS, uid=UIDS, message_id=MESSAGE_IDS, read=st.booleans())
    def upsert(self, folder: str, uid: int, message_id: str, read: bool) -> None:
        self.store.upsert_headers([make_header(folder, uid, message_id=message_id, is_read=read)])
        self.copies[(folder, str(uid))] = (message_id, read)

    @rule(folder=FOLDERS, uid=UIDS)
    def remove(self, folder: str, uid: int) -> None:
        removed = self.store.remove_messages([MailRef(folder, str(uid))])
        assert removed == (1 if self.copies.pop((folder, str(uid)), None) else 0)

    @rule(message_id=MESSAGE_IDS, state=STATES)
    def set_state(self, message_id: str, state: TrackState) -> None:
        changed = self.store.tracking.set_state(message_id, state, activity_id="a")
        assert changed == sum(1 for m, _ in self.copies.values() if m == message_id)
        self.state[message_id] = state

    @rule(folder=FOLDERS)
    def clear(self, folder: str) -> None:
        self.store.clear_folder(folder)
        self.copies = {k: v for k, v in self.copies.items() if k[0] != folder}

    @invariant()
    def matches_model(self) -> None:
        for folder in ("Inbox", "Sent", "Archive/2024"):
            rows = self.store.message_rows(folder, 0, 100, order_by="date")
            assert self.store.message_count(folder) == len(rows)
            got = {(r.header.ref.folder, r.header.ref.uid): r for r in rows}
            want = {k: v for k, v in self.copies.items() if k[0] == folder}
            assert set(got) == set(want)
            for key, row in got.items():
                message_id, read = want[key]
                assert (row.header.message_id, row.header.is_read) == (message_id, read)
                expected = self.state.get(message_id, TrackState.NOT_TRACKED)
                assert row.track_state is expected
        counts = self.store.tracking.state_counts()
        assert sum(counts.values()) == len(self.copies)


StoreMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
TestStoreMachine = StoreMachine.TestCase

"""Operation results are typed values stored as versioned JSON; rows written before they were
typed (version 0: the same keys, no ``"v"``, a created record under ``"id"``) read the same."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from core.domain.model import RecordRef
from core.outbox.results import OpResult

TEXT = st.one_of(st.none(), st.text(min_size=1, max_size=12))
REFS = st.one_of(
    st.none(),
    st.builds(RecordRef, st.sampled_from(["account", "contact"]), st.uuids().map(str), st.text()),
)


@given(st.builds(OpResult, TEXT, REFS, TEXT, TEXT, TEXT, st.booleans()))
def test_a_result_reads_back_as_written(result: OpResult) -> None:
    assert OpResult.from_json(result.to_json()) == result
    assert json.loads(result.to_json())["v"] == 1


def test_version_0_rows_read_as_before() -> None:
    promoted = {
        "activity_id": "act-1",
        "regarding": {"entity": "account", "id": "a-1", "name": "Contoso"},
        "owner_id": "u-1",
    }
    assert OpResult.from_json(json.dumps(promoted)) == OpResult(
        "act-1", RecordRef("account", "a-1", "Contoso"), owner_id="u-1"
    )
    assert OpResult.from_json('{"deleted": null}') == OpResult()
    assert OpResult.from_json('{"id": "rec-1"}') == OpResult(record_id="rec-1")
    assert OpResult.from_json('{"smtp_sent": true}') == OpResult(smtp_sent=True)
    assert OpResult.from_json("{}") == OpResult()
    assert OpResult.from_json(None) is None


def test_a_damaged_result_is_read_as_far_as_it_goes() -> None:
    assert OpResult.from_json("not json") is None
    assert OpResult.from_json("[1, 2]") is None
    odd = {"activity_id": 5, "regarding": {"entity": "account"}, "smtp_sent": "yes", "x": 1}
    assert OpResult.from_json(json.dumps(odd)) == OpResult()

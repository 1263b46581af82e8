"""AddConnection / RemoveConnection as the outbox stores them: v1 JSON read back equal; a
payload without its record is unreadable (parked), never half run."""

from __future__ import annotations

import pytest

from core.domain.model import RecordRef
from core.outbox.kinds import AddConnection, OpKind, PayloadError, RemoveConnection
from core.outbox.stored import from_json

FABRIKAM = RecordRef("account", "7aa9dd81-2f8d-5a9a-a771-636338dff73e", "Fabrikam Inc.")


@pytest.mark.parametrize(
    "op",
    [
        AddConnection("<a@x>", FABRIKAM),
        RemoveConnection("<a@x>", FABRIKAM, "c0ffee00-0000-0000-0000-000000000001"),
        RemoveConnection("<a@x>", FABRIKAM),
    ],
)
def test_round_trip(op: AddConnection | RemoveConnection) -> None:
    assert from_json(op.kind, op.to_json()) == op
    assert op.key == op.message_id == "<a@x>"  # in order with the mail's other operations
    assert "Fabrikam Inc." in op.describe()


def test_a_payload_without_its_record_is_unreadable() -> None:
    with pytest.raises(PayloadError, match="record"):
        from_json(OpKind.ADD_CONNECTION, '{"v": 1, "message_id": "<a@x>"}')

"""The PIM engine's pairing state (issue 20), kept in a SQLite file of its own per profile
(``pim.sqlite``, beside the profile's store: no migration of the store's numbered schema, and
the engine's small transactions never wait behind the mail sync's). The SQL lives in the
store package (``core.store.pim_state``) like every statement of the project; the tables and
what they mean are described there. Kinds are :class:`~core.pim.sides.PimKind` values.
"""

from __future__ import annotations

from core.store.pim_state import FILE_NAME, SCHEMA_VERSION, Conflict, Pair, PimState, StateError

__all__ = ["FILE_NAME", "SCHEMA_VERSION", "Conflict", "Pair", "PimState", "StateError"]

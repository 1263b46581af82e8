"""Custom item-data roles, declared once (after trojita's ItemRoles.h).

Source models expose raw values through these roles; only views, delegates and the last proxy
turn them into text, icons and tooltips.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

RowIdRole = Qt.ItemDataRole.UserRole + 1  # int: the store's message row id
MessageIdRole = Qt.ItemDataRole.UserRole + 2  # str: RFC 5322 Message-ID
TrackStateRole = Qt.ItemDataRole.UserRole + 3  # core.domain.model.TrackState
TrackReasonRole = Qt.ItemDataRole.UserRole + 4  # str: the decision's reason, for people
FolderPathRole = Qt.ItemDataRole.UserRole + 5  # str: folder path in the mailbox
SortKeyRole = Qt.ItemDataRole.UserRole + 6  # raw value a column sorts by
RegardingHitRole = Qt.ItemDataRole.UserRole + 7  # RegardingHit (picker rows)
AddressEntryRole = Qt.ItemDataRole.UserRole + 8  # RegardingHit (address book rows)
QueuedOperationRole = Qt.ItemDataRole.UserRole + 9  # the workspace's QueuedOperation
TrackStatesRole = Qt.ItemDataRole.UserRole + 10  # tuple[TrackState, ...]: a CRM view
ViewRole = Qt.ItemDataRole.UserRole + 11  # str: a special folder-tree view ("pending_send")

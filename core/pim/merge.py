"""The three-way merge of one pair of records, per field and direction (issue 20). Pure: the
engine (``core.pim.engine``) calls it, the tests check it on plain values.

A side's value counts as changed when it differs from the base (the value both sides agreed
on at the last sync). Two-way fields: a change on one side goes to the other; both changed to
different values is a conflict, which **the CRM wins** (the losing value is returned for the
engine to keep). CRM → mailbox fields follow the CRM's changes only, mailbox → CRM fields the
mailbox's; fields not synchronised are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.pim.fields import Direction, FieldMap


def norm(value: Any) -> Any:
    """Values compared the same whichever side they come from: empty is ``None``, text is
    stripped, lists keep their order."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value] or None
    return value


@dataclass(frozen=True, slots=True)
class Merged:
    """The outcome of one pair's merge: what each side must receive (empty: nothing), the
    new base, and the conflicts found (field, kept CRM value, lost mailbox value, base)."""

    crm: dict[str, Any]
    mailbox: dict[str, Any]
    base: dict[str, Any]
    conflicts: list[tuple[str, Any, Any, Any]]


def merge(
    fields: FieldMap,
    base: Mapping[str, Any],
    crm: Mapping[str, Any] | None,
    mailbox: Mapping[str, Any] | None,
) -> Merged:
    """The three-way merge of one pair (pure; see the module docstring). ``crm``/``mailbox``
    are None when that side did not change: its values are then the base's."""
    to_crm: dict[str, Any] = {}
    to_mailbox: dict[str, Any] = {}
    new_base: dict[str, Any] = {}
    conflicts: list[tuple[str, Any, Any, Any]] = []
    for rule in fields.rules:
        name, direction = rule.name, rule.direction
        if direction is Direction.NONE:
            continue
        b = norm(base.get(name))
        c = norm(crm.get(name)) if crm is not None and name in crm else b
        m = norm(mailbox.get(name)) if mailbox is not None and name in mailbox else b
        if direction is Direction.TO_MAILBOX:
            new_base[name] = c
            if c != b and c != m:
                to_mailbox[name] = c
            continue
        if direction is Direction.TO_CRM:
            new_base[name] = m
            if m != b and m != c:
                to_crm[name] = m
            continue
        value = c
        if c != b and m != b and c != m:
            conflicts.append((name, c, m, b))
        elif m != b:
            value = m
        new_base[name] = value
        if value != c:
            to_crm[name] = value
        if value != m:
            to_mailbox[name] = value
    return Merged(to_crm, to_mailbox, new_base, conflicts)


__all__ = ["Merged", "merge", "norm"]

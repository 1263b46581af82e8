"""Compiling a ``$filter`` syntax tree (:mod:`crmserver.odata_filter`) to parameterised SQL.

Values never reach the SQL text: every literal becomes a ``?`` parameter, and identifiers are
only emitted after they were checked against the entity definitions. Type mismatches and
unknown names raise :class:`FilterError` (answered with 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .entities import ACTIVITY_CHILD_PARENT, ENTITIES, Attribute, Entity
from .odata_filter import (
    COMPARE_OPS,
    BoolOp,
    Call,
    Compare,
    FilterError,
    Lambda,
    Literal,
    Node,
    Not,
    Path,
    parse_filter,
)

# -- compiler ----------------------------------------------------------------------------------


@dataclass
class ReadRule:
    """A parameter slot standing for the caller's read rule on a navigation target.

    Navigation subqueries read other rows than the ones the request's read rule filters, so
    each one must apply the rule of its own target. The rule depends on the caller and the
    server's settings, which the compiler does not know: :meth:`Compiled.bind` fills it in.
    Unbound, SQLite refuses the slot's value, so a forgotten bind fails closed.
    """

    entity: Entity
    alias: str


#: ``(entity, alias, params) -> SQL or None``: the read rule of a direct read of ``entity``.
RuleFn = Callable[[Entity, str, list[Any]], str | None]


@dataclass
class Compiled:
    sql: str
    params: list[Any] = field(default_factory=list)

    def bind(self, rule: RuleFn) -> tuple[str, list[Any]]:
        """SQL and parameters with every navigation's read rule filled in."""
        if not any(isinstance(p, ReadRule) for p in self.params):
            return self.sql, list(self.params)
        pieces = self.sql.split("?")
        if len(pieces) != len(self.params) + 1:
            raise FilterError("The $filter expression could not be compiled.")
        out, params = [pieces[0]], list[Any]()
        for value, piece in zip(self.params, pieces[1:], strict=True):
            if isinstance(value, ReadRule):
                out.append(f"({rule(value.entity, value.alias, params) or '1 = 1'})")
            else:
                out.append("?")
                params.append(value)
            out.append(piece)
        return "".join(out), params


def resolve_property(entity: Entity, name: str) -> Attribute:
    """A property name as clients write it (``_x_value`` for lookups) → attribute."""
    attr = entity.attributes.get(name)
    if attr is not None and not attr.is_lookup:
        return attr
    if name.startswith("_") and name.endswith("_value"):
        attr = entity.attributes.get(name[1:-6])
        if attr is not None and attr.is_lookup:
            return attr
    raise FilterError(
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{entity.logical}'."
    )


def format_datetime(text: str) -> str:
    try:
        if len(text) == 10:
            return text + "T00:00:00Z"
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"'{text}' is not a valid date-time literal.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Compiler:
    """Compiles one tree for one entity; ``alias`` is the SQL alias of the entity's table."""

    def __init__(
        self,
        entity: Entity,
        alias: str = "t0",
        user_id: str | None = None,
        counter: list[int] | None = None,
    ) -> None:
        self.entity = entity
        self.alias = alias
        self.user_id = user_id
        self.params: list[Any] = []
        self.counter = counter or [0]
        self.vars: dict[str, tuple[Entity, str]] = {}

    def compile(self, node: Node) -> Compiled:
        sql = self.boolean(node)
        return Compiled(sql, self.params)

    # boolean context
    def boolean(self, node: Node) -> str:
        if isinstance(node, BoolOp):
            return f"({self.boolean(node.left)} {node.op.upper()} {self.boolean(node.right)})"
        if isinstance(node, Not):
            return f"(NOT {self.boolean(node.operand)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Lambda):
            return self.lambda_(node)
        if isinstance(node, Path):
            col, attr = self.column(node)
            if attr.type != "bool":
                raise FilterError(f"'{'/'.join(node.parts)}' is not a Boolean expression.")
            return f"({col} = 1)"
        if isinstance(node, Literal) and node.kind == "bool":
            return "(1 = 1)" if node.value else "(1 = 0)"
        raise FilterError("The expression is not a Boolean expression.")

    def compare(self, node: Compare) -> str:
        left, right = node.left, node.right
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left, right = right, left
            flip = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}
            op = flip.get(node.op, node.op)
        else:
            op = node.op
        if isinstance(right, Literal) and right.kind == "null":
            if op not in ("eq", "ne"):
                raise FilterError("Only 'eq' and 'ne' can compare with null.")
            lhs, _ = self.value_expr(left)
            return f"({lhs} IS {'NOT ' if op == 'ne' else ''}NULL)"
        lhs, lattr = self.value_expr(left)
        if isinstance(right, Literal):
            if right.kind == "list":
                raise FilterError("A list is only allowed as a function parameter value.")
            rhs = self.param(self.convert(lattr, right))
        else:
            rhs, rattr = self.value_expr(right)
            if lattr is not None and rattr is not None and _family(lattr) != _family(rattr):
                raise FilterError("The operands of the comparison have incompatible types.")
        return f"({lhs} {COMPARE_OPS[op]} {rhs})"

    def value_expr(self, node: Node) -> tuple[str, Attribute | None]:
        if isinstance(node, Path):
            return self.column(node)
        if isinstance(node, Call) and node.name in ("tolower", "toupper", "trim"):
            if len(node.args) != 1 or node.named:
                raise FilterError(f"'{node.name}' takes one argument.")
            inner, attr = self.value_expr(node.args[0])
            func = {"tolower": "LOWER", "toupper": "UPPER", "trim": "TRIM"}[node.name]
            return f"{func}({inner})", attr
        if isinstance(node, Literal) and node.kind not in ("list", "null"):
            return self.param(self.convert(None, node)), None
        if isinstance(node, Call | Compare | BoolOp | Not | Lambda):
            return self.boolean(node), None
        raise FilterError("Unsupported operand in a comparison.")

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def convert(self, attr: Attribute | None, lit: Literal) -> Any:
        """Literal → stored representation of the attribute's type (400 on mismatch)."""
        kind, value = lit.kind, lit.value
        if attr is None:
            if kind in ("datetime", "date"):
                return format_datetime(value)
            return int(value) if kind == "bool" else value
        fam = _family(attr)
        ok = {
            "string": ("string",),
            "number": ("number",),
            "bool": ("bool",),
            "guid": ("guid", "string"),
            "datetime": ("datetime", "date", "string"),
        }[fam]
        if kind not in ok:
            raise FilterError(
                f"A binary operator with incompatible types was detected: "
                f"'{attr.name}' is {fam}, the literal '{value}' is {kind}."
            )
        if fam == "bool":
            return int(value)
        if fam == "guid":
            text = str(value).strip("{}").lower()
            if not re.fullmatch(
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text
            ):
                raise FilterError(f"'{value}' is not a valid GUID.")
            return text
        if fam == "datetime":
            return format_datetime(value)
        return value

    def column(self, node: Path) -> tuple[str, Attribute]:
        parts = list(node.parts)
        entity, alias = self.entity, self.alias
        if parts[0] in self.vars:
            entity, alias = self.vars[parts.pop(0)]
            if not parts:
                raise FilterError("A lambda variable must be followed by a property.")
        if len(parts) == 1:
            attr = resolve_property(entity, parts[0])
            return f'{alias}."{attr.name}"', attr
        if len(parts) == 2:
            # single-valued navigation: primarycontactid/fullname
            found = entity.lookup_for_nav(parts[0])
            if found is None:
                raise FilterError(
                    f"Could not find a navigation property named '{parts[0]}' on "
                    f"type 'Microsoft.Dynamics.CRM.{entity.logical}'."
                )
            lookup, target = found
            if target is None:
                raise FilterError(f"Use a typed navigation property instead of '{parts[0]}'.")
            tent = ENTITIES[target]
            attr = resolve_property(tent, parts[1])
            self.counter[0] += 1
            sub = f"n{self.counter[0]}"
            # an unreadable target is as absent as a missing one: the subquery yields NULL
            return (
                f'(SELECT {sub}."{attr.name}" FROM "{tent.logical}" {sub} '
                f'WHERE {sub}."{tent.key}" = {alias}."{lookup.name}" AND '
                f"{alias}.\"{lookup.name}__type\" = '{tent.logical}' AND "
                f"{self.param(ReadRule(tent, sub))})"
            ), attr
        raise FilterError(f"The property path '{'/'.join(node.parts)}' is not supported.")

    def lambda_(self, node: Lambda) -> str:
        if len(node.path) != 1 or node.path[0] not in self.entity.collection_navs:
            raise FilterError(
                f"'{'/'.join(node.path)}' is not a collection-valued navigation "
                f"property of '{self.entity.logical}'."
            )
        nav = self.entity.collection_navs[node.path[0]]
        child = ENTITIES[nav.child]
        self.counter[0] += 1
        alias = f"c{self.counter[0]}"
        link = f'{alias}."{nav.child_attr}" = {self.alias}."{self.entity.key}"'
        if ACTIVITY_CHILD_PARENT.get(child.logical) != nav.child_attr:
            # children readable on their own terms (not through this readable parent)
            link += f" AND {self.param(ReadRule(child, alias))}"
        if node.body is None:
            if node.kind == "all":
                raise FilterError("'all' needs a lambda expression.")
            return f'EXISTS (SELECT 1 FROM "{child.logical}" {alias} WHERE {link})'
        assert node.var is not None
        saved = dict(self.vars)
        self.vars[node.var] = (child, alias)
        body = self.boolean(node.body)
        self.vars = saved
        if node.kind == "any":
            return f'EXISTS (SELECT 1 FROM "{child.logical}" {alias} WHERE {link} AND {body})'
        return (
            f'NOT EXISTS (SELECT 1 FROM "{child.logical}" {alias} WHERE {link} '
            f"AND NOT COALESCE({body}, 0))"
        )

    def call(self, node: Call) -> str:
        name = node.name
        if name in ("contains", "startswith", "endswith"):
            if len(node.args) != 2 or node.named:
                raise FilterError(f"'{name}' takes two arguments.")
            col, attr = self.value_expr(node.args[0])
            if attr is not None and _family(attr) != "string":
                raise FilterError(f"'{name}' needs a string property.")
            needle = node.args[1]
            if not isinstance(needle, Literal) or needle.kind != "string":
                raise FilterError(f"The second argument of '{name}' must be a string literal.")
            text = needle.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"contains": f"%{text}%", "startswith": f"{text}%", "endswith": f"%{text}"}[
                name
            ]
            return f"({col} LIKE {self.param(pattern)} ESCAPE '\\')"
        short = name.removeprefix("Microsoft.Dynamics.CRM.")
        if short != name and short in _CRM_FUNCTIONS:
            return _CRM_FUNCTIONS[short](self, dict(node.named))
        raise FilterError(f"Unknown function '{name}'.")

    def crm_property(self, named: dict[str, Node]) -> tuple[str, Attribute]:
        prop = named.get("PropertyName")
        if not isinstance(prop, Literal) or prop.kind != "string":
            raise FilterError("PropertyName must be a string.")
        return self.column(Path((prop.value,)))


def _family(attr: Attribute) -> str:
    if attr.type in ("string", "memo"):
        return "string"
    if attr.type in ("guid", "lookup", "owner"):
        return "guid"
    if attr.type == "bool":
        return "bool"
    if attr.type == "datetime":
        return "datetime"
    return "number"


def _values(c: Compiler, attr: Attribute, named: dict[str, Node], key: str) -> list[Any]:
    node = named.get(key)
    if not isinstance(node, Literal):
        raise FilterError(f"{key} must be a literal or a list of literals.")
    items = node.value if node.kind == "list" else (node,)
    if not items:
        raise FilterError(f"{key} must not be empty.")
    return [c.convert(attr, item) for item in items]


def _in(negate: bool) -> Callable[[Compiler, dict[str, Node]], str]:
    def fn(c: Compiler, named: dict[str, Node]) -> str:
        col, attr = c.crm_property(named)
        vals = _values(c, attr, named, "PropertyValues")
        marks = ", ".join(c.param(v) for v in vals)
        return f"({col} {'NOT IN' if negate else 'IN'} ({marks}))"

    return fn


def _between(negate: bool) -> Callable[[Compiler, dict[str, Node]], str]:
    def fn(c: Compiler, named: dict[str, Node]) -> str:
        col, attr = c.crm_property(named)
        vals = _values(c, attr, named, "PropertyValues")
        if len(vals) != 2:
            raise FilterError("Between needs exactly two values.")
        sql = f"({col} BETWEEN {c.param(vals[0])} AND {c.param(vals[1])})"
        return f"(NOT {sql})" if negate else sql

    return fn


def _null(negate: bool) -> Callable[[Compiler, dict[str, Node]], str]:
    def fn(c: Compiler, named: dict[str, Node]) -> str:
        col, _ = c.crm_property(named)
        return f"({col} IS {'NOT ' if negate else ''}NULL)"

    return fn


def _user(negate: bool) -> Callable[[Compiler, dict[str, Node]], str]:
    def fn(c: Compiler, named: dict[str, Node]) -> str:
        col, attr = c.crm_property(named)
        if _family(attr) != "guid":
            raise FilterError("EqualUserId needs a lookup property.")
        return f"({col} {'<>' if negate else '='} {c.param(c.user_id)})"

    return fn


def _last_days(c: Compiler, named: dict[str, Node]) -> str:
    col, attr = c.crm_property(named)
    value = named.get("PropertyValue")
    if _family(attr) != "datetime" or not isinstance(value, Literal) or value.kind != "number":
        raise FilterError("LastXDays needs a date-time property and a number of days.")
    since = (datetime.now(UTC) - timedelta(days=int(value.value))).strftime("%Y-%m-%dT00:00:00Z")
    return f"({col} >= {c.param(since)})"


_CRM_FUNCTIONS: dict[str, Callable[[Compiler, dict[str, Node]], str]] = {
    "In": _in(False),
    "NotIn": _in(True),
    "Between": _between(False),
    "NotBetween": _between(True),
    "Null": _null(False),
    "NotNull": _null(True),
    "EqualUserId": _user(False),
    "NotEqualUserId": _user(True),
    "LastXDays": _last_days,
}


def compile_filter(
    entity: Entity,
    text: str,
    *,
    alias: str = "t0",
    user_id: str | None = None,
    aliases: dict[str, str] | None = None,
) -> Compiled:
    """Parse and compile ``$filter`` text for ``entity``; raises FilterError."""
    try:
        tree = parse_filter(text, aliases)
        return Compiler(entity, alias, user_id).compile(tree)
    except RecursionError as exc:
        raise FilterError("The $filter expression is nested too deeply.") from exc

"""OData ``$filter`` (the Dataverse subset): tokenizer and recursive-descent parser to a syntax
tree.

The compiler to SQL is in :mod:`crmserver.filter_sql`. Anything the grammar does not accept
raises :class:`FilterError`, which the routes answer with 400.

Grammar (OData v4 ABNF, reduced)::

    expr    := and ('or' and)*
    and     := unary ('and' unary)*
    unary   := 'not' unary | compare
    compare := operand (('eq'|'ne'|'gt'|'ge'|'lt'|'le') operand)?
    operand := '(' expr ')' | literal | alias | call | path
    path    := name ('/' name)* ['/' ('any'|'all') '(' [var ':' expr] ')']
    call    := name '(' [arg (',' arg)*] ')'     arg := expr | name '=' value | '[' values ']'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 32_768  # Dataverse accepts URLs up to 32 KB
MAX_DEPTH = 60


class FilterError(ValueError):
    """A malformed or unsupported ``$filter``/``$orderby`` (answered with 400)."""


# -- tokens ----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDlLfF]?(?![\w]))
  | (?P<alias>@[A-Za-z_]\w*)
  | (?P<name>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)
  | (?P<punct>[()/,:\[\]=])
""",
    re.VERBOSE,
)

COMPARE_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The query is longer than {MAX_LENGTH} characters.")
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FilterError(f"Syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    return out


# -- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, guid, datetime, date, bool, null, list
    value: Any


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...] = ()
    named: tuple[tuple[str, Node], ...] = ()


@dataclass(frozen=True)
class Lambda:
    path: tuple[str, ...]
    kind: str  # any / all
    var: str | None
    body: Node | None


Node = Literal | Path | Compare | BoolOp | Not | Call | Lambda


class Parser:
    """Recursive-descent parser; ``aliases`` maps ``@p1`` to its (unparsed) value text."""

    def __init__(self, text: str, aliases: dict[str, str] | None = None) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.aliases = aliases or {}

    def parse(self) -> Node:
        if not self.tokens:
            raise FilterError("The $filter expression is empty.")
        node = self.expr()
        if self.i != len(self.tokens):
            tok = self.tokens[self.i]
            raise FilterError(f"Syntax error: unexpected '{tok.text}' at position {tok.pos}.")
        return node

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("Syntax error: the expression ends unexpectedly.")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise FilterError(
                f"Syntax error: expected '{text}' at position {tok.pos}, found '{tok.text}'."
            )

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text == word

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError("The $filter expression is nested too deeply.")

    def expr(self) -> Node:
        self.enter()
        node = self.and_expr()
        while self.is_word("or"):
            self.take()
            node = BoolOp("or", node, self.and_expr())
        self.depth -= 1
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.is_word("and"):
            self.take()
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_word("not"):
            self.take()
            self.enter()
            node: Node = Not(self.unary())
            self.depth -= 1
            return node
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in COMPARE_OPS:
            self.take()
            return Compare(tok.text, left, self.operand())
        return left

    def operand(self) -> Node:
        tok = self.take()
        if tok.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if tok.kind == "alias":
            if tok.text not in self.aliases:
                raise FilterError(f"The parameter alias '{tok.text}' has no value.")
            sub = Parser(self.aliases[tok.text])
            value = sub.operand()
            if not isinstance(value, Literal) or sub.i != len(sub.tokens):
                raise FilterError(f"The value of parameter alias '{tok.text}' is not a literal.")
            return value
        lit = literal_of(tok)
        if lit is not None:
            return lit
        if tok.kind != "name":
            raise FilterError(f"Syntax error: unexpected '{tok.text}' at position {tok.pos}.")
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            return self.call(tok.text)
        parts = [tok.text]
        while (nxt := self.peek()) is not None and nxt.text == "/":
            self.take()
            name = self.take()
            if name.kind != "name":
                raise FilterError(f"Syntax error: expected a property name at position {name.pos}.")
            if name.text in ("any", "all") and (p := self.peek()) is not None and p.text == "(":
                return self.lambda_(tuple(parts), name.text)
            parts.append(name.text)
        return Path(tuple(parts))

    def lambda_(self, path: tuple[str, ...], kind: str) -> Node:
        self.expect("(")
        if (p := self.peek()) is not None and p.text == ")":
            self.take()
            return Lambda(path, kind, None, None)
        var = self.take()
        if var.kind != "name":
            raise FilterError("Syntax error: expected a lambda variable.")
        self.expect(":")
        body = self.expr()
        self.expect(")")
        return Lambda(path, kind, var.text, body)

    def call(self, name: str) -> Node:
        self.expect("(")
        args: list[Node] = []
        named: list[tuple[str, Node]] = []
        if (p := self.peek()) is not None and p.text == ")":
            self.take()
            return Call(name, ())
        while True:
            a, b = self.peek(), self.peek(1)
            if a is not None and b is not None and a.kind == "name" and b.text == "=":
                self.take()
                self.take()
                named.append((a.text, self.value()))
            else:
                args.append(self.expr())
            sep = self.take()
            if sep.text == ")":
                break
            if sep.text != ",":
                raise FilterError(f"Syntax error: expected ',' or ')' at position {sep.pos}.")
        return Call(name, tuple(args), tuple(named))

    def value(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.text == "[":
            self.take()
            items: list[Any] = []
            while True:
                t = self.take()
                if t.text == "]" and not items:
                    break
                lit = literal_of(t) if t.kind != "alias" else None
                if lit is None:
                    raise FilterError(f"Syntax error: expected a literal at position {t.pos}.")
                items.append(lit)
                sep = self.take()
                if sep.text == "]":
                    break
                if sep.text != ",":
                    raise FilterError(f"Syntax error: expected ',' or ']' at {sep.pos}.")
            return Literal("list", tuple(items))
        return self.operand()


def literal_of(tok: Token) -> Literal | None:
    """A literal token as a value; JSON-style double-quoted strings appear in list values."""
    if tok.kind == "string":
        return Literal("string", tok.text[1:-1].replace("''", "'"))
    if tok.kind == "number":
        text = tok.text.rstrip("mMdDlLfF")
        try:
            return Literal("number", int(text))
        except ValueError:
            return Literal("number", float(text))
    if tok.kind == "guid":
        return Literal("guid", tok.text.lower())
    if tok.kind in ("datetime", "date"):
        return Literal(tok.kind, tok.text)
    if tok.kind == "name" and tok.text in ("true", "false"):
        return Literal("bool", tok.text == "true")
    if tok.kind == "name" and tok.text == "null":
        return Literal("null", None)
    return None


def parse_filter(text: str, aliases: dict[str, str] | None = None) -> Node:
    return Parser(_json_strings(text), aliases).parse()


def _json_strings(text: str) -> str:
    """``PropertyValues=["A","B"]`` uses JSON strings; turn them into OData ones."""
    if '"' not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            j = i + 1
            while j < len(text):
                if text[j] == "'" and (j + 1 >= len(text) or text[j + 1] != "'"):
                    break
                j += 2 if text[j] == "'" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif ch == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise FilterError("Syntax error: unterminated string.")
            out.append("'" + text[i + 1 : j].replace("'", "''") + "'")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)

"""Three-address code (TAC): the data model, its one printer and its one parser.

Text form (docs/architecture.md, "Formats")::

    function 0xa9059cbb transfer(address,uint256) payable view
      block 0x1a4 prev=[0x0] succ=[0x1c2,0x1be_1]
        v3 = PHI(v1, 0x20)
        v4 = AND(arg0, 0xffffffffffffffffffffffffffffffffffffffff)
        v7 = SLOAD(_balances[msg.sender])
        ERROR(v9, "ERC20: transfer amount exceeds balance")
        v12 = CALL(v10, arg0, 0x0, v11, 0x44, v11, 0x20)  # callee 0xa9059cbb
        JUMPI(0x1c2, v9)

The header names the function (``0x``-selector, ``fallback``, ``receive`` or
``internal_0x<entry>``), then the signature when known, then the facts ``payable`` / ``view``
when true. A block label is its bytecode offset; a block cloned for another call context gets
a suffix (``0x1be_1``). Statements are ``[lhs = ] OP(operands)`` or ``lhs = operand`` with an
optional ``  # note``. Operands: SSA variables (``v3``; ``s0`` = the stack slot 0 at function
entry), constants (lower-case hex), names (``msg.sender``, ``_balances``, ``arg0``), JSON string
literals and indexing (``_allowances[arg0][msg.sender]``).

``parse_function(print_function(f)) == f`` and ``print_function(parse_function(t)) == t`` for
every printed ``t`` (round-trip tested). :class:`TacSyntaxError` names the line that failed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Union

from evmlm.errors import EvmlmError


class TacSyntaxError(EvmlmError, ValueError):
    """Text that is not TAC in the printed format; the message names the line."""


@dataclass(frozen=True, slots=True)
class Var:
    """An SSA variable or a recognised name (``v3``, ``s0``, ``arg0``, ``msg.sender``, ``_balances``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Const:
    """A 256-bit constant, printed in lower-case hex."""

    value: int


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal (revert reasons), printed JSON-quoted."""

    text: str


@dataclass(frozen=True, slots=True)
class Index:
    """``base[key]``: a mapping entry (recognised from KECCAK256 of key ‖ slot)."""

    base: "Operand"
    key: "Operand"


Operand = Union[Var, Const, Str, Index]


@dataclass(slots=True)
class Stmt:
    """``lhs = op(args)``; ``op`` None means a copy ``lhs = args[0]``; ``note`` is a trailing comment."""

    lhs: str | None
    op: str | None
    args: tuple[Operand, ...]
    note: str | None = None


@dataclass(slots=True)
class Block:
    label: str
    prev: tuple[str, ...]
    succ: tuple[str, ...]
    stmts: list[Stmt] = field(default_factory=list)


@dataclass(slots=True)
class Function:
    """One function's TAC: ``name`` (selector, fallback, receive, internal_0x..), signature, flags, blocks."""

    name: str
    signature: str | None
    flags: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)


# -- printer -----------------------------------------------------------------------------------


def format_operand(o: Operand) -> str:
    if isinstance(o, Var):
        return o.name
    if isinstance(o, Const):
        return hex(o.value)
    if isinstance(o, Str):
        return json.dumps(o.text, ensure_ascii=True)
    if isinstance(o, Index):
        return f"{format_operand(o.base)}[{format_operand(o.key)}]"
    raise TypeError(f"not a TAC operand: {o!r}")


def format_stmt(s: Stmt) -> str:
    if s.op is None:
        rhs = format_operand(s.args[0])
    else:
        rhs = f"{s.op}({', '.join(format_operand(a) for a in s.args)})"
    text = f"{s.lhs} = {rhs}" if s.lhs is not None else rhs
    return f"{text}  # {s.note}" if s.note else text


def print_function(f: Function) -> str:
    """The TAC text of one function (ends with a newline)."""
    head = " ".join(["function", f.name, *([f.signature] if f.signature else []), *f.flags])
    lines = [head]
    for b in f.blocks:
        lines.append(f"  block {b.label} prev=[{','.join(b.prev)}] succ=[{','.join(b.succ)}]")
        lines.extend(f"    {format_stmt(s)}" for s in b.stmts)
    return "\n".join(lines) + "\n"


# -- parser ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<note>#.*)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<hex>0x[0-9a-f]+)|(?P<name>[A-Za-z_$][\w$.]*)|(?P<p>[()\[\],=]))'
)
_BLOCK = re.compile(r"  block (\S+) prev=\[([^\]]*)\] succ=\[([^\]]*)\]$")
FLAGS = ("payable", "view")


class _Tokens:
    def __init__(self, text: str, lineno: int) -> None:
        self.toks: list[tuple[str, str]] = []
        self.note: str | None = None
        self.lineno = lineno
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise TacSyntaxError(f"TAC line {lineno}: unexpected text {text[pos : pos + 20]!r}")
            kind = m.lastgroup or ""
            if kind == "note":
                self.note = m.group("note")[1:].strip()
                break
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if t is None or (value is not None and t[1] != value):
            raise TacSyntaxError(
                f"TAC line {self.lineno}: expected {value or 'more'}, got {t[1] if t else 'end of line'!r}"
            )
        self.i += 1
        return t

    def operand(self) -> Operand:
        kind, val = self.take()
        base: Operand
        if kind == "hex":
            base = Const(int(val, 16))
        elif kind == "str":
            base = Str(json.loads(val))
        elif kind == "name":
            base = Var(val)
        else:
            raise TacSyntaxError(f"TAC line {self.lineno}: expected an operand, got {val!r}")
        while self.peek() == ("p", "["):
            self.take("[")
            key = self.operand()
            self.take("]")
            base = Index(base, key)
        return base


def _parse_stmt(text: str, lineno: int) -> Stmt:
    t = _Tokens(text, lineno)
    lhs = None
    if t.peek(1) == ("p", "=") and t.peek() is not None and t.peek()[0] == "name":  # type: ignore[index]
        lhs = t.take()[1]
        t.take("=")
    nxt = t.peek()
    if nxt is not None and nxt[0] == "name" and t.peek(1) == ("p", "("):
        op = t.take()[1]
        t.take("(")
        args: list[Operand] = []
        if t.peek() != ("p", ")"):
            args.append(t.operand())
            while t.peek() == ("p", ","):
                t.take(",")
                args.append(t.operand())
        t.take(")")
        stmt = Stmt(lhs, op, tuple(args), t.note)
    else:
        if lhs is None:
            raise TacSyntaxError(
                f"TAC line {lineno}: a statement is 'lhs = operand' or '[lhs = ] OP(...)'"
            )
        stmt = Stmt(lhs, None, (t.operand(),), t.note)
    if t.peek() is not None:
        raise TacSyntaxError(f"TAC line {lineno}: unexpected {t.peek()[1]!r} after the statement")  # type: ignore[index]
    return stmt


def parse_function(text: str) -> Function:
    """Parse the TAC text of one function (the format of :func:`print_function`)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("function "):
        raise TacSyntaxError("TAC line 1: expected 'function NAME [SIGNATURE] [payable] [view]'")
    parts = lines[0].split()[1:]
    if not parts:
        raise TacSyntaxError("TAC line 1: function has no name")
    name, rest = parts[0], parts[1:]
    sig = None
    if rest and rest[0] not in FLAGS:
        sig, rest = rest[0], rest[1:]
    for fl in rest:
        if fl not in FLAGS:
            raise TacSyntaxError(
                f"TAC line 1: unknown function fact {fl!r} (known: {', '.join(FLAGS)})"
            )
    f = Function(name, sig, tuple(rest))
    for i, line in enumerate(lines[1:], start=2):
        if line.startswith("  block "):
            m = _BLOCK.match(line)
            if not m:
                raise TacSyntaxError(f"TAC line {i}: bad block header {line.strip()!r}")
            prev = tuple(p for p in m.group(2).split(",") if p)
            succ = tuple(p for p in m.group(3).split(",") if p)
            f.blocks.append(Block(m.group(1), prev, succ))
        elif line.startswith("    "):
            if not f.blocks:
                raise TacSyntaxError(f"TAC line {i}: statement before the first block")
            f.blocks[-1].stmts.append(_parse_stmt(line[4:], i))
        elif line.strip():
            raise TacSyntaxError(f"TAC line {i}: expected a block header or an indented statement")
    return f


def split_functions(text: str) -> list[str]:
    """Split a multi-function TAC text into per-function texts."""
    out: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("function "):
            out.append([])
        if out:
            out[-1].append(line)
    return ["\n".join(x) + "\n" for x in out]

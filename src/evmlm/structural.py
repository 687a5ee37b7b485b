"""Structural decompiler: a function's TAC -> a Solidity function that compiles, no model.

The input is the SSA TAC of :func:`evmlm.evm.lift_contract` (one function: dispatcher entry to
its halts, internal calls inlined, recognised forms such as ``_balances[arg0]``, ``ERROR``,
``PANIC``, ``EMIT``). The output is a Solidity function definition whose body is a faithful
translation of every TAC statement: what Solidity can say is Solidity (arithmetic in
``unchecked``, comparisons, storage as state variables and mappings, ``revert("…")``,
``require``, ``msg.sender``/``msg.value``/``block.*``, calldata arguments by name), the rest is
inline ``assembly { }`` (memory, calls, logs, return/revert of memory ranges, keccak over
memory) — nothing is dropped, so the text always compiles and, spliced into the original
contract (:mod:`evmlm.evaluate.behaviour`), it behaves like the original bytecode when the
lifter's CFG is sound. The design (structuring, inlining, what goes to assembly and why) is in
``docs/structural-decompiler.md``.

It sits below ``evmlm.dataset`` in the package's layers (on ``evmlm.evm`` alone) because the
dataset stage drafts every pair (the ``draft`` field of the pair record) so that fine-tuning
prompts carry the same draft as decompilation and evaluation (docs/structural-decompiler.md).

Public API: :class:`DraftFunction`, :class:`DraftContract`, :func:`draft_function`,
:func:`draft_pair`, :func:`draft_contract`. Neither raises for a function it cannot structure: it falls back to a
``while (true)`` state machine over a block-id local, and a function whose TAC it cannot
translate at all (a ``CALLPRIVATE`` of the call form, a header it cannot type) gets a body of
``revert()`` with a comment saying why (``DraftFunction.error``).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils import keccak

from evmlm.evm import tac
from evmlm.evm.abi import (
    COMMON_ERRORS,
    COMMON_EVENTS,
    AbiInfo,
    signature_of,
    signature_types,
    split_types,
)
from evmlm.evm.cfg import PURE, fold
from evmlm.evm.lifter import LiftedContract, LiftedFunction

log = logging.getLogger(__name__)

#: Bump when the drafts of the same TAC change: the dataset stage's pair shards (which store
#: one draft per pair) are keyed by it, so a changed decompiler re-drafts them.
DRAFT_VERSION = 4

WORD = (1 << 256) - 1
MASK160 = (1 << 160) - 1
ERROR_STRING = 0x08C379A0 << 224
PANIC_WORD = 0x4E487B71 << 224
#: Panics that a checked (solc >= 0.8) Solidity statement raises itself, with the same revert
#: data (``Panic(code)``; Solidity docs, "Panic via assert and Error via require"): code ->
#: (bare declaration or None, statement). Memory they touch does not matter: they revert.
_SOL_PANICS: dict[int, tuple[str | None, str]] = {
    0x11: ("uint256 __z;", "__z = __z - 1;"),  # arithmetic underflow
    0x12: ("uint256 __z;", "__z = 1 / __z;"),  # division by zero
    0x32: ("uint256[] memory __z;", "__z[0] = 0;"),  # index out of bounds (an empty array)
    0x41: (None, "new uint256[](type(uint256).max);"),  # too much memory to allocate
}
WRAP = "\x01"  # marks wrapping `+ - * **` in Solidity text: its statement goes in `unchecked`

HALTS = frozenset({"RETURN", "REVERT", "STOP", "INVALID", "SELFDESTRUCT", "PANIC"})
#: Reads of values fixed for the whole call: safe to evaluate anywhere (inlined freely).
ENV_CONST = frozenset(
    {
        "ADDRESS",
        "ORIGIN",
        "CALLER",
        "CALLVALUE",
        "CALLDATALOAD",
        "CALLDATASIZE",
        "GASPRICE",
        "COINBASE",
        "TIMESTAMP",
        "NUMBER",
        "PREVRANDAO",
        "DIFFICULTY",
        "GASLIMIT",
        "CHAINID",
        "BASEFEE",
        "BLOCKHASH",
        "BLOBHASH",
        "BLOBBASEFEE",
        "CODESIZE",
    }
)
#: Reads of state that statements can change: inlined only when no effect lies between.
READS = frozenset(
    {
        "SLOAD",
        "MLOAD",
        "KECCAK256",
        "BALANCE",
        "SELFBALANCE",
        "EXTCODESIZE",
        "EXTCODEHASH",
        "RETURNDATASIZE",
        "MSIZE",
        "GAS",
        "TLOAD",
        "HASHWORD",  # keccak256 of one word: its Yul form hashes in scratch space
    }
)
#: Statements with effects (memory, storage, calls, logs); ordering fences for READS.
EFFECTS = frozenset(
    {
        "MSTORE",
        "MSTORE8",
        "SSTORE",
        "CALL",
        "CALLCODE",
        "DELEGATECALL",
        "STATICCALL",
        "CREATE",
        "CREATE2",
        "LOG0",
        "LOG1",
        "LOG2",
        "LOG3",
        "LOG4",
        "EMIT",
        "CALLDATACOPY",
        "CODECOPY",
        "RETURNDATACOPY",
        "EXTCODECOPY",
        "MCOPY",
        "TSTORE",
        "ERROR",
        "SELFDESTRUCT",
        "ENCODE",  # Solidity's abi.encode… (allocates memory): see _encoded_words
        "ENCODESEL",
        "ABIHASH",
        "ABIHASHSEL",
        "ALLOCENC",
        "ALLOCENCSEL",
    }
)
# statements that may write memory (or read it as an input to a call): a backward scan for the
# MSTOREs that build a return or error payload stops at them
_MEMORY_BARRIERS = frozenset(
    {
        "CALL",
        "STATICCALL",
        "DELEGATECALL",
        "CALLCODE",
        "MSTORE",
        "MSTORE8",
        "MCOPY",
        "CALLDATACOPY",
        "RETURNDATACOPY",
        "CODECOPY",
        "EXTCODECOPY",
        "CREATE",
        "CREATE2",
    }
)
_YUL_NAMES = {
    "CADD": "__cadd",
    "CSUB": "__csub",
    "CMUL": "__cmul",
    "PREVRANDAO": "prevrandao",
    "DIFFICULTY": "difficulty",
    "KECCAK256": "keccak256",
    "HASHWORD": "__hash1",
}
_SAFE_STR = re.compile(r"[ -!#-\[\]-~]*")  # printable ASCII without '"' and '\\'


class _NotSolidity(Exception):
    """An expression Solidity cannot say: the statement goes to inline assembly."""


class _Unstructured(Exception):
    """The CFG does not fit the structured emitter: fall back to the state machine."""


class DraftError(Exception):
    """The TAC of a function cannot be translated (its reason is kept in the draft)."""


@dataclass(frozen=True)
class DraftFunction:
    """One drafted function.

    ``selector``: ``"0x"`` + 8 hex (None for fallback/receive); ``signature``:
    ``name(types)`` when known; ``text``: a complete Solidity function definition (header and
    body); ``n_statements``: statements in the body (Solidity statements, bare declarations
    not counted, plus Yul statements); ``n_assembly_statements``: of those, the Yul statements
    inside ``assembly { }`` blocks; ``structured``: False when the body is the state-machine
    fallback; ``error``: why the body is a placeholder (None when it is a translation).
    """

    selector: str | None
    signature: str | None
    text: str
    n_statements: int
    n_assembly_statements: int
    structured: bool = True
    error: str | None = None

    @property
    def solidity_share(self) -> float:
        """Share of the body's statements outside assembly (1.0 for an empty body)."""
        return 1.0 - self.n_assembly_statements / self.n_statements if self.n_statements else 1.0


@dataclass(frozen=True)
class DraftContract:
    """A whole ``.sol`` file (pragma, ``contract <name> { … }``) and its functions by selector
    (``"fallback"`` / ``"receive"`` for those)."""

    source: str
    functions: dict[str, DraftFunction]


# ---------------------------------------------------------------------------------------------
# Versions and literals
# ---------------------------------------------------------------------------------------------


def _version(v: str | None) -> tuple[int, int, int]:
    """``"0.8.26+commit…"`` -> (0, 8, 26); None -> (0, 8, 26), a recent default."""
    if not v:
        return (0, 8, 26)
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 8, 26)


def _sol_const(c: int) -> str:
    """A Solidity literal for a 256-bit word (hex literals of 39-41 digits would be read as
    address literals, so they are zero-padded to 42 digits)."""
    if c < 1 << 16:
        return str(c)
    h = f"{c:x}"
    if 39 <= len(h) <= 41:
        h = h.rjust(42, "0")
    return "0x" + h


def _yul_const(c: int) -> str:
    return str(c) if c < 1 << 16 else hex(c)


def _sol_string(s: str) -> str | None:
    return f'"{s}"' if _SAFE_STR.fullmatch(s) else None


# ---------------------------------------------------------------------------------------------
# Prepared TAC: blocks with terminators, folded constants, pruned edges
# ---------------------------------------------------------------------------------------------


@dataclass
class _Block:
    label: str
    stmts: list[tac.Stmt]
    phis: list[tuple[str, dict[str, tac.Operand]]]
    succ: list[str]
    term: tuple  # ("jump", s) | ("jumpi", t, f, cond) | ("halt", stmt) | ("multi", target, [succ])
    preds: list[str] = field(default_factory=list)


def _base(label: str) -> int:
    return int(label.split("_")[0], 16)


def _prepare(f: tac.Function, payable: bool) -> tuple[list[str], dict[str, _Block]]:
    """Blocks in order (entry first) with terminators; CALLVALUE is 0 in a non-payable function
    (the compiler's own check runs first), constants folded, constant branches pruned."""
    if not f.blocks:
        raise DraftError("the function has no blocks")
    entry = f.blocks[0].label
    sub: dict[str, tac.Operand] = {}

    def s_(o: tac.Operand) -> tac.Operand:
        while isinstance(o, tac.Var) and o.name in sub:
            o = sub[o.name]
        if isinstance(o, tac.Index):
            return tac.Index(s_(o.base), s_(o.key))
        return o

    blocks: dict[str, _Block] = {}
    order: list[str] = []
    for b in f.blocks:
        phis: list[tuple[str, dict[str, tac.Operand]]] = []
        stmts: list[tac.Stmt] = []
        term: tuple | None = None
        preds = list(b.prev)
        for s in b.stmts:
            if s.op == "PHI":
                ops = list(s.args)
                keys = (
                    ["__entry__"] if b.label == entry and len(ops) == len(preds) + 1 else []
                ) + preds
                phis.append((s.lhs or "", dict(zip(keys, ops))))
                continue
            if s.op in ("JUMP", "JUMPI"):
                term = (s.op, s)
                break
            stmts.append(s)
            if s.op in HALTS or (
                s.op == "ERROR" and len(s.args) == 2 and isinstance(s.args[1], tac.Str)
            ):
                term = ("halt", s)
                break
        blocks[b.label] = _Block(
            b.label, stmts, phis, list(dict.fromkeys(b.succ)), term or ("none",)
        )
        order.append(b.label)
    # fold constants to a fixpoint (CALLVALUE -> 0 first)
    changed = True
    first = True
    while changed:
        changed = False
        for lab in order:
            b = blocks[lab]
            keep = []
            for s in b.stmts:
                s.args = tuple(s_(a) for a in s.args)
                if s.lhs is not None and first and s.op == "CALLVALUE" and not payable:
                    sub[s.lhs] = tac.Const(0)
                    changed = True
                    continue
                if (
                    s.lhs is not None
                    and s.op in PURE
                    and all(isinstance(a, tac.Const) for a in s.args)
                ):
                    v = fold(s.op, [a.value for a in s.args])  # type: ignore[union-attr]
                    if v is not None:
                        sub[s.lhs] = tac.Const(v)
                        changed = True
                        continue
                if s.lhs is not None and s.op is None and len(s.args) == 1:
                    sub[s.lhs] = s.args[0]
                    changed = True
                    continue
                keep.append(s)
            b.stmts = keep
            for i, (lhs, ops) in enumerate(b.phis):
                b.phis[i] = (lhs, {k: s_(v) for k, v in ops.items()})
        first = False
    # terminators
    for lab in order:
        b = blocks[lab]
        kind = b.term[0]
        if kind == "JUMP":
            s = b.term[1]
            tgt = s_(s.args[0]) if s.args else None
            if len(b.succ) == 1:
                b.term = ("jump", b.succ[0])
            elif not b.succ:
                b.term = ("halt", tac.Stmt(None, "INVALID", ()))
            else:
                b.term = ("multi", tgt, list(b.succ))
        elif kind == "JUMPI":
            s = b.term[1]
            tgt, cond = s_(s.args[0]), s_(s.args[1])
            t = f_ = None
            if isinstance(tgt, tac.Const):
                t = next((x for x in b.succ if _base(x) == tgt.value), None)
            others = [x for x in b.succ if x != t]
            if t is None and len(b.succ) == 2:
                t, f_ = b.succ[0], b.succ[1]
            elif t is not None:
                f_ = others[0] if others else None
            elif len(b.succ) == 1:
                f_ = b.succ[0]
            if isinstance(cond, tac.Const):
                nxt = t if cond.value else f_
                b.term = ("jump", nxt) if nxt else ("halt", tac.Stmt(None, "INVALID", ()))
            elif t is not None and f_ is not None:
                b.term = ("jumpi", t, f_, cond)
            else:  # a side the CFG did not follow (an invalid target): exceptional halt there
                live = t or f_
                b.term = (
                    ("jumpi", t or "__invalid__", f_ or "__invalid__", cond)
                    if live
                    else ("halt", tac.Stmt(None, "INVALID", ()))
                )
        elif kind == "none":
            if len(b.succ) == 1:
                b.term = ("jump", b.succ[0])
            else:
                # no successor and no halt: execution runs off the end of the code (a STOP)
                b.term = ("halt", tac.Stmt(None, "STOP" if not b.succ else "INVALID", ()))
    # reachability from the entry; predecessor lists over kept edges
    if any(blocks[x].term[0] == "jumpi" and "__invalid__" in blocks[x].term[1:3] for x in order):
        blocks["__invalid__"] = _Block(
            "__invalid__", [], [], [], ("halt", tac.Stmt(None, "INVALID", ()))
        )
        order.append("__invalid__")
    seen = [entry]
    seen_set = {entry}
    i = 0
    while i < len(seen):
        for s in _succ(blocks[seen[i]]):
            if s in blocks and s not in seen_set:
                seen_set.add(s)
                seen.append(s)
        i += 1
    order = [x for x in order if x in seen_set]
    kept = {x: blocks[x] for x in order}
    for x in order:
        kept[x].preds = []
    for x in order:
        for s in _succ(kept[x]):
            if x not in kept[s].preds:
                kept[s].preds.append(x)
    return order, kept


def _merge_straight(order: list[str], blocks: dict[str, _Block]) -> list[str]:
    """Merge each block ``b`` into its only predecessor ``a`` when ``a`` ends in a plain jump
    to ``b`` and ``b`` has no PHIs (the compiler's jumps into and out of inlined internal
    functions): the statements run in the same order, so nothing changes but that values
    read and used on the straight path are now in one block, where they can be inlined
    (``return s_owner;`` instead of ``v1 = …; v3 = v1; return …(v3);``). Returns the order
    without the merged blocks; predecessor lists and PHI operand keys are updated."""
    entry = order[0]
    changed = True
    while changed:
        changed = False
        for a in order:
            if a not in blocks:
                continue
            ba = blocks[a]
            while ba.term[0] == "jump":
                b = ba.term[1]
                bb = blocks.get(b)
                if bb is None or b in (a, entry) or bb.preds != [a] or bb.phis:
                    break
                ba.stmts = ba.stmts + bb.stmts
                ba.term, ba.succ = bb.term, bb.succ
                for s in dict.fromkeys(_succ(bb)):
                    sb = blocks[s]
                    sb.preds = [a if x == b else x for x in sb.preds]
                    for _lhs, ops in sb.phis:
                        if b in ops:
                            ops[a] = ops.pop(b)
                del blocks[b]
                changed = True
    return [x for x in order if x in blocks]


def _succ(b: _Block) -> list[str]:
    t = b.term
    if t[0] == "jump":
        return [t[1]]
    if t[0] == "jumpi":
        return [t[1], t[2]] if t[1] != t[2] else [t[1]]
    if t[0] == "multi":
        return list(t[2])
    return []


# ---------------------------------------------------------------------------------------------
# Context: header, types, storage names, events, errors
# ---------------------------------------------------------------------------------------------


@dataclass
class _Storage:
    """How storage accesses are written: ``named`` slot -> (name, value type) of state variables
    usable by name; ``maps`` slot -> (name, key types, value type) of mappings; ``slot_of``
    name -> slot (for assembly)."""

    named: dict[int, tuple[str, str]] = field(default_factory=dict)
    maps: dict[int, tuple[str, list[str], str]] = field(default_factory=dict)
    slot_of: dict[str, int] = field(default_factory=dict)
    # (slot, byte offset) -> (name, type label, bytes) of value types narrower than a word
    packed: dict[tuple[int, int], tuple[str, str, int]] = field(default_factory=dict)


def _storage_from_layout(
    layout: Mapping[str, Any] | None, visible: Iterable[str] | None
) -> _Storage:
    st = _Storage()
    if not layout:
        return st
    types = layout.get("types") or {}
    for e in layout.get("storage", []) or []:
        try:
            slot, off, label, ty = (
                int(e["slot"]),
                int(e.get("offset", 0)),
                str(e["label"]),
                str(e["type"]),
            )
        except (KeyError, ValueError, TypeError):
            continue
        if off == 0:
            st.slot_of.setdefault(label, slot)
        info = types.get(ty) or {}
        tl = re.sub(r"^(contract|enum) ", r"\1 ", str(info.get("label", "")))
        if (
            re.fullmatch(r"[A-Za-z_$][\w$]*", label)
            and (visible is None or label in visible)
            and info.get("encoding", "inplace") == "inplace"
            and _PACKED_TYPE.fullmatch(tl)
            and 0 < int(info.get("numberOfBytes", 32)) < 32
        ):
            st.packed[(slot, off)] = (label, tl, int(info["numberOfBytes"]))
        if off != 0 or not re.fullmatch(r"[A-Za-z_$][\w$]*", label):
            continue
        if visible is not None and label not in visible:
            continue  # e.g. a base contract's private variable: reached through its slot
        if ty in ("t_uint256", "t_int256", "t_bytes32"):
            st.named[slot] = (label, ty)
            continue
        keys: list[str] = []
        cur = ty
        while cur.startswith("t_mapping("):
            info = types.get(cur) or {}
            k, v = info.get("key"), info.get("value")
            if not k or not v:
                break
            keys.append(str(k))
            cur = str(v)
        if (
            keys
            and cur in ("t_uint256", "t_int256", "t_bytes32")
            and all(k in _KEY_TYPES for k in keys)
        ):
            st.maps[slot] = (label, keys, cur)
    return st


#: operand-free environment opcodes -> (their Solidity expression as uint256, the first solc
#: version that has it: block.chainid 0.8.0, block.basefee 0.8.7)
_ENV_EXPR: dict[str, tuple[str, tuple[int, int, int]]] = {
    "CALLER": ("uint256(uint160(msg.sender))", (0, 0, 0)),
    "ADDRESS": ("uint256(uint160(address(this)))", (0, 0, 0)),
    "ORIGIN": ("uint256(uint160(tx.origin))", (0, 0, 0)),
    "TIMESTAMP": ("block.timestamp", (0, 0, 0)),
    "NUMBER": ("block.number", (0, 0, 0)),
    "GASLIMIT": ("block.gaslimit", (0, 0, 0)),
    "GASPRICE": ("tx.gasprice", (0, 0, 0)),
    "COINBASE": ("uint256(uint160(address(block.coinbase)))", (0, 0, 0)),
    "CHAINID": ("block.chainid", (0, 8, 0)),
    "BASEFEE": ("block.basefee", (0, 8, 7)),
    "CALLDATASIZE": ("msg.data.length", (0, 0, 0)),
    "GAS": ("gasleft()", (0, 0, 0)),
}
_KEY_TYPES = {"t_address": 160, "t_uint256": 256, "t_bytes32": 256, "t_int256": 256}
#: Value types read and written by name where they share a slot (solc's storage layout
#: ``types[…].label``): their bytes in the slot are the value's low-order bytes
#: (Solidity docs, "Layout of State Variables in Storage").
_PACKED_TYPE = re.compile(r"address( payable)?|bool|u?int\d+|bytes\d+|contract [\w.]+|enum [\w.]+")


#: Halts that revert.
_REVERTING = frozenset({"REVERT", "ERROR", "PANIC", "INVALID"})

#: Operations whose result is 0 or 1.
_BOOL_OPS = frozenset({"ISZERO", "LT", "GT", "SLT", "SGT", "EQ"})


def _packed_word(name: str, tl: str, nbytes: int) -> str:
    """The variable's bytes as a uint256 (what ``and(mask, shr(8·off, sload(slot)))`` reads)."""
    if tl.startswith("address"):
        return f"uint256(uint160({name}))"
    if tl.startswith("contract "):
        return f"uint256(uint160(address({name})))"
    if tl == "bool":
        return f"({name} ? uint256(1) : uint256(0))"
    if tl.startswith("int"):
        return f"uint256(uint{8 * nbytes}({name}))"
    if tl.startswith("bytes"):
        return f"uint256(uint{8 * nbytes}({name}))"
    return f"uint256({name})"  # uintN, enum


def _packed_value(
    tl: str,
    nbytes: int,
    w: str,
    kind: str,
    v: tuple[int, int, int],
    addr_names: frozenset[str] = frozenset(),
) -> str | None:
    """The right-hand side that stores the low ``nbytes`` of the uint256 expression ``w``
    (Solidity kind ``kind``) into a variable of type ``tl``, or None when Solidity would
    store other bytes (a bool from a non-bool: it stores 1 where the word had 2; an enum:
    the conversion checks the range; a contract: the conversion may need ``payable``)."""
    if tl == "bool":
        return w if kind == "b" else None
    if kind == "b":
        w = f"({w} ? uint256(1) : uint256(0))"
    a = _plain_addr(w, addr_names)
    if tl == "address":
        return a or f"address(uint160({w}))"
    if tl == "address payable":
        a = a or f"address(uint160({w}))"
        return f"payable({a})" if v >= (0, 6, 0) else a
    if re.fullmatch(r"uint\d+", tl):
        return f"{tl}({w})"
    if re.fullmatch(r"int\d+|bytes\d+", tl):
        return f"{tl}(uint{8 * nbytes}({w}))"
    return None


@dataclass
class _Ctx:
    version: tuple[int, int, int]
    payable: bool
    arg_types: list[str] | None
    arg_names: dict[str, tuple[int, str | None]]  # TAC name -> (calldata offset, type or None)
    storage: _Storage
    contract_maps: dict[int, int]  # contract mode: slot -> mapping depth (0: a word)
    contract_mode: bool
    events: dict[str, int]  # name -> topic0
    errors: dict[str, int]  # name -> selector word
    has_outputs: bool
    idents: dict[str, tuple[str, str | None]] = field(
        default_factory=dict
    )  # argI -> (identifier, contract|enum|None)
    code: bytes | None = None
    code_size: int = 0
    spill: dict[str, int] = field(default_factory=dict)  # var -> word index in __s
    out_types: list[str] = field(default_factory=list)  # ABI output types
    out_sol: list[tuple[str, str | None]] = field(default_factory=list)  # (Solidity type, kind)
    event_params: dict[str, tuple[int, list[tuple[str, bool]]]] = field(
        default_factory=dict
    )  # name -> (topic0, [(type, indexed)])
    error_params: dict[str, tuple[int, list[str]]] = field(
        default_factory=dict
    )  # name -> (selector word, types)
    solidity_errors: frozenset[str] = frozenset()  # custom errors that `revert Name(…)` can name
    error_refs: dict[str, str] = field(default_factory=dict)  # name -> `Lib.Name` where qualified
    fmp_clobbered: bool = False  # the function may overwrite the free memory pointer
    #: identifiers of type ``address``: parameters and packed state variables
    addr_names: frozenset[str] = frozenset()
    #: overloaded ABI events: name -> [(topic0, indexed parameters, static data words or
    #: None when a parameter is dynamic)]
    event_overloads: dict[str, list[tuple[int, int, int | None]]] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return self.version >= (0, 8, 0)


def _head_words(t: str) -> int:
    from evmlm.evm.recognisers import _head_words as hw

    return hw(t)


def _arg_names(types: list[str] | None) -> dict[str, tuple[int, str | None]]:
    names: dict[str, tuple[int, str | None]] = {}
    if types is None:
        for w in range(64):
            names[f"arg{w}"] = (4 + 32 * w, None)
        return names
    w = 0
    for i, t in enumerate(types):
        n = _head_words(t)
        for j in range(n):
            names[f"arg{i}" if j == 0 else f"arg{i}.w{j}"] = (
                4 + 32 * (w + j),
                t if j == 0 else None,
            )
        w += n
    for k in range(64):
        names.setdefault(f"cd{k}", (4 + 32 * k, None))
    return names


# ---------------------------------------------------------------------------------------------
# The translator
# ---------------------------------------------------------------------------------------------


class _Item:
    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind  # sol | decl | asm | open | mid | close
        self.text = text


class _Translator:
    def __init__(self, order: list[str], blocks: dict[str, _Block], ctx: _Ctx) -> None:
        self.order = order
        self.blocks = blocks
        self.ctx = ctx
        self.defs: dict[str, tuple[str, int, tac.Stmt]] = {}
        self.phi_vars: set[str] = set()
        self.uses: dict[str, list[tuple[str, int]]] = {}  # var -> (block, index; len = end)
        for lab in order:
            b = blocks[lab]
            for lhs, _ in b.phis:
                self.phi_vars.add(lhs)
            for i, s in enumerate(b.stmts):
                if s.lhs is not None:
                    self.defs[s.lhs] = (lab, i, s)
        for lab in order:
            b = blocks[lab]
            for i, s in enumerate(b.stmts):
                for a in s.args:
                    for v in _vars(a):
                        self.uses.setdefault(v, []).append((lab, i))
            end = len(b.stmts)
            t = b.term
            if t[0] == "jumpi":
                for v in _vars(t[3]):
                    self.uses.setdefault(v, []).append((lab, end))
            if t[0] == "multi" and t[1] is not None:
                for v in _vars(t[1]):
                    self.uses.setdefault(v, []).append((lab, end))
            for s in _succ(b):
                for _lhs, ops in blocks[s].phis:
                    if lab in ops:
                        for v in _vars(ops[lab]):
                            self.uses.setdefault(v, []).append((lab, end + 1))
        self.inlined: set[str] = set()
        self._decide_inlining()
        self.cross: set[str] = set()  # locals declared at the top of the function
        for v, (lab, _i, _s) in self.defs.items():
            if v in self.inlined:
                continue
            if any(u[0] != lab for u in self.uses.get(v, [])):
                self.cross.add(v)
        self.cross |= self.phi_vars
        if ctx.version < (0, 5, 0):  # solc 0.4 scopes locals to the whole function
            self.cross |= {v for v in self.defs if v not in self.inlined and self.uses.get(v)}
        self.emitted: dict[str, int] = {}
        self.budget = 4 * len(order) + 40
        self.loop_headers: set[str] = set()
        self.needs_map = False
        self.wrap = WRAP if ctx.checked else ""  # marks wrapping arithmetic (see _unchecked)
        self.n_conds = 0

    # -- inlining ----------------------------------------------------------------------------
    def _decide_inlining(self) -> None:
        for v, (lab, i, s) in self.defs.items():
            us = self.uses.get(v, [])
            if not us:
                continue
            op = s.op or ""
            if op in PURE or op in ENV_CONST or s.op is None:
                if (
                    len(us) == 1
                    and us[0][0] == lab
                    and us[0][1] > i
                    or self._stable(s)
                    and len(us) <= 4
                    and self._size(s) <= 4
                ):
                    self.inlined.add(v)
            elif op in READS and len(us) == 1 and us[0][0] == lab and us[0][1] > i:
                stmts = self.blocks[lab].stmts
                j = min(us[0][1], len(stmts))
                if not any((x.op in EFFECTS) for x in stmts[i + 1 : j]):
                    self.inlined.add(v)
        # an inlined read must not move past an effect through another inlined value
        changed = True
        while changed:
            changed = False
            for v in list(self.inlined):
                s = self.defs[v][2]
                if s.op in READS:
                    continue
                if any(
                    w in self.defs and self.defs[w][2].op in READS and w in self.inlined
                    for w in _leaf_vars(s, self)
                ):
                    us = self.uses.get(v, [])
                    if not (len(us) == 1 and us[0][0] == self.defs[v][0]):
                        self.inlined.discard(v)
                        changed = True

        # a checked operation cannot have wrapping arithmetic inside it (`unchecked` would
        # cover both): such an operand is a local, set in its own `unchecked` statement
        def wraps(v: str, depth: int = 0) -> bool:
            d = self.defs[v][2]
            return (
                d.op in ("ADD", "SUB", "MUL", "EXP")
                or depth < 8
                and any(
                    w in self.inlined and w in self.defs and wraps(w, depth + 1)
                    for a in d.args
                    for w in _vars(a)
                )
            )

        for _lab, _i, s in list(self.defs.values()):
            if s.op in ("CADD", "CSUB", "CMUL"):
                for a in s.args:
                    for w in _vars(a):
                        if w in self.inlined and w in self.defs and wraps(w):
                            self.inlined.discard(w)

    def _stable(self, s: tac.Stmt) -> bool:
        """Every leaf is a constant, an argument or a call-long environment value. Memoised per
        variable (``defs`` and ``phi_vars`` are fixed once built): without it a deep DAG of
        shared subexpressions was walked once per path, exponential in its depth (a wrapper
        function's draft ran for minutes in the dataset stage)."""
        for a in s.args:
            for v in _vars(a):
                if v in self.defs:
                    if not self._stable_var(v):
                        return False
                elif v in self.phi_vars or re.fullmatch(r"s\d+", v):
                    return False
            if isinstance(a, tac.Index):
                return False
        return True

    def _stable_var(self, v: str) -> bool:
        cache = self.__dict__.setdefault("_stable_memo", {})
        if v not in cache:
            cache[v] = False  # a cycle (not expected in SSA) reads as not stable
            d = self.defs[v][2]
            cache[v] = (d.op in PURE or d.op in ENV_CONST) and self._stable(d)
        return cache[v]

    def _size(self, s: tac.Stmt, depth: int = 0) -> int:
        n = 1
        for a in s.args:
            for v in _vars(a):
                if v in self.defs and depth < 8:
                    n += self._size(self.defs[v][2], depth + 1)
        return n

    # -- expressions: Solidity -------------------------------------------------------------------
    def sol(self, o: tac.Operand) -> tuple[str, str]:
        """(text, kind) with kind 'u' (uint256) or 'b' (bool); raises _NotSolidity."""
        if isinstance(o, tac.Const):
            return _sol_const(o.value), "c"
        if isinstance(o, tac.Str):
            raise _NotSolidity
        if isinstance(o, tac.Index):
            raise _NotSolidity
        name = o.name
        if name in self.defs and name in self.inlined:
            return self.sol_stmt(self.defs[name][2])
        if name in self.ctx.spill:
            return f"__s[{self.ctx.spill[name]}]", "u"
        if name in self.defs or name in self.phi_vars:
            return name, "u"
        if name == "msg.sender":
            return "uint256(uint160(msg.sender))", "u"
        if name in self.ctx.arg_names:
            _off, t = self.ctx.arg_names[name]
            if t is not None and name in ctx_idents(self.ctx):
                ident, kind = self.ctx.idents[name]
                try:
                    return _arg_to_uint(ident, t, kind), "u"
                except _NotSolidity:
                    pass  # a dynamic parameter's head word (its offset): read as calldata
            return self.calldata_word(str(_off)), "u"
        raise _NotSolidity

    def u(self, o: tac.Operand) -> str:
        t, k = self.sol(o)
        return f"(({t}) ? uint256(1) : uint256(0))" if k == "b" else t

    def b(self, o: tac.Operand) -> str:
        d = self.inl(o)
        if d is not None and d.op == "SUB" and (c := self.sub_compared(d, "!=")) is not None:
            return c
        t, k = self.sol(o)
        if k == "b":
            return t
        if k == "c":
            raise _NotSolidity
        c = _bool_word(t) or (a + " != address(0)" if (a := self.addr_of(t)) else None)
        if c is not None:
            return c
        return f"{t} != 0"

    def sub_compared(self, d: tac.Stmt, sym: str) -> str | None:
        """``x - y`` compared with 0 by ``sym`` (``!=``: non-zero, ``==``: zero) as ``x sym y``:
        the difference is zero exactly when ``x == y`` (mod 2^256), the optimizer's form of an
        equality test; None when both sides are literals."""
        (x, kx), (y, ky) = self.sol(d.args[0]), self.sol(d.args[1])
        if x == y and kx != "c":
            return "false" if sym == "!=" else "true"
        if kx == "c" and ky == "c":
            return None
        return f"({self.eq_operands(d.args[0], d.args[1], sym)})"

    def eq_operands(self, x: tac.Operand, y: tac.Operand, sym: str) -> str:
        """``x sym y`` (``==`` or ``!=``) of two words; two addresses compare as addresses
        (``msg.sender == owner``: equal words exactly when equal addresses), an address
        against 0 as ``address(0)``, two bools as bools."""
        tx, ty = self.u(x), self.u(y)
        ax, ay = self.addr_of(tx), self.addr_of(ty)
        if ax is not None and (ay is not None or ty == "0"):
            return f"{ax} {sym} {ay or 'address(0)'}"
        if ay is not None and tx == "0":
            return f"address(0) {sym} {ay}"
        bx, by = _bool_word(tx), _bool_word(ty)
        if bx is not None and by is not None:
            return f"{_paren(bx)} {sym} {_paren(by)}"
        return f"{tx} {sym} {ty}"

    def addr_of(self, t: str) -> str | None:
        """The address expression ``a`` when the word text ``t`` is ``uint256(uint160(a))``
        of an expression known to be an ``address`` (:func:`_plain_addr`), else None."""
        return _plain_addr(t, self.ctx.addr_names)

    def sol_stmt(self, s: tac.Stmt) -> tuple[str, str]:
        op, a = s.op, s.args
        ctx = self.ctx
        if op is None:
            return self.sol(a[0])
        if op in ("ADD", "SUB", "MUL"):
            sym = {"ADD": "+", "SUB": "-", "MUL": "*"}[op]
            x, y = self._uu(a[0], a[1])
            return f"({self.wrap}{x} {sym} {y})", "u"
        if op in ("CADD", "CSUB", "CMUL"):
            # checked: a wrapping operand would need `unchecked` around the whole statement
            sym = {"CADD": "+", "CSUB": "-", "CMUL": "*"}[op]
            x, y = self._uu(a[0], a[1])
            if WRAP in x or WRAP in y:
                raise _NotSolidity
            return f"({x} {sym} {y})", "u"
        if op == "EXP":
            x, y = self._uu(a[0], a[1])
            return f"({self.wrap}{_lit_left(x, a[0])} ** {y})", "u"
        if op in ("DIV", "MOD") and isinstance(a[1], tac.Const) and a[1].value:
            x, y = self._uu(a[0], a[1])
            return f"({x} {'/' if op == 'DIV' else '%'} {y})", "u"
        if op in ("ADDMOD", "MULMOD") and isinstance(a[2], tac.Const) and a[2].value:
            return f"{op.lower()}({self.u(a[0])}, {self.u(a[1])}, {self.u(a[2])})", "u"
        if op in ("LT", "GT"):
            x, y = self._uu(a[0], a[1])
            return f"({x} {'<' if op == 'LT' else '>'} {y})", "b"
        if op in ("SLT", "SGT"):
            return (
                f"(int256({self.u(a[0])}) {'<' if op == 'SLT' else '>'} int256({self.u(a[1])}))",
                "b",
            )
        if op == "EQ":
            (x, kx), (y, ky) = self.sol(a[0]), self.sol(a[1])
            if x == y and kx != "c":
                return "true", "b"  # e.g. an address parameter against its own 160-bit mask
            if kx == "b" and ky == "b":
                return f"({x} == {y})", "b"
            if kx == "c" and ky == "c":
                raise _NotSolidity
            return f"({self.eq_operands(a[0], a[1], '==')})", "b"
        if op == "ISZERO":
            return self.neg(a[0]), "b"
        if op == "HASHWORD":
            if ctx.version < (0, 4, 22) or ctx.fmp_clobbered:  # abi.encode allocates
                raise _NotSolidity
            return f"uint256(keccak256(abi.encode(uint256({self.u(a[0])}))))", "u"
        if op in ("AND", "SHR", "DIV"):
            r = self.packed_read(s)
            if r is not None:
                return r, "u"
        if op == "AND":
            for i in (0, 1):
                m, other = a[i], a[1 - i]
                if (
                    isinstance(m, tac.Const)
                    and m.value == MASK160
                    and self.clean160(other, skip_mask=True)
                ):
                    return self.sol(other)
        if op in ("AND", "OR", "XOR"):
            (x, kx), (y, ky) = self.sol(a[0]), self.sol(a[1])
            if kx == "b" and ky == "b":
                return f"({x} {'&&' if op == 'AND' else '||' if op == 'OR' else '!='} {y})", "b"
            sym = {"AND": "&", "OR": "|", "XOR": "^"}[op]
            if kx == "c" and ky == "c":
                raise _NotSolidity
            return f"({self.u(a[0])} {sym} {self.u(a[1])})", "u"
        if op == "NOT":
            return f"(~{_paren(self.u(a[0]))})", "u"
        if op in ("SHL", "SHR"):
            sh, val = self.u(a[0]), self.u(a[1])
            return f"({_lit_left(val, a[1])} {'<<' if op == 'SHL' else '>>'} {sh})", "u"
        if op == "SAR" and ctx.version >= (0, 5, 0):
            return f"uint256(int256({self.u(a[1])}) >> {self.u(a[0])})", "u"
        if op == "CALLVALUE":
            if not ctx.payable:
                return "0", "c"
            return "msg.value", "u"
        if op in _ENV_EXPR and ctx.version >= _ENV_EXPR[op][1]:
            return _ENV_EXPR[op][0], "u"
        if op == "SELFBALANCE" or (op == "BALANCE" and a and a[0] == tac.Var("__this__")):
            return "address(this).balance", "u"
        if op == "BALANCE":
            return f"address(uint160({self.u(a[0])})).balance", "u"
        if op == "BLOCKHASH":
            return f"uint256(blockhash({self.u(a[0])}))", "u"
        if op == "CALLDATALOAD" and isinstance(a[0], tac.Const):
            name = next(
                (
                    n
                    for n, (off, t) in ctx.arg_names.items()
                    if off == a[0].value and t is not None and n in ctx.idents
                ),
                None,
            )
            if name is not None:
                ident, kind = ctx.idents[name]
                return _arg_to_uint(ident, ctx.arg_names[name][1] or "uint256", kind), "u"
        if op == "CALLDATALOAD":
            return self.calldata_word(self.u(a[0])), "u"
        if op == "SLOAD":
            ref = self.storage_ref(a[0])
            if ref is None:
                raise _NotSolidity
            lv, vt = ref
            return (f"uint256({lv})" if vt != "t_uint256" else lv), "u"
        raise _NotSolidity

    def calldata_word(self, x: str) -> str:
        """``calldataload(x)`` in Solidity (>= 0.8.5, which converts a calldata slice to
        ``bytes32``, zero-padding a short one on the right as ``calldataload`` does): 0 at or
        past the end of the calldata, else the slice up to 32 bytes. Raises _NotSolidity
        before 0.8.5 and for a long offset expression (it is written three times)."""
        if self.ctx.version < (0, 8, 5) or len(x) > 160:
            raise _NotSolidity
        x = x if re.fullmatch(r"[\w.]+", x) else f"({x})"
        n = "msg.data.length"
        return (
            f"({x} >= {n} ? 0 : uint256(bytes32(msg.data[{x}:({n} - {x} > 32 ? {x} + 32 : {n})])))"
        )

    def inl(self, o: tac.Operand) -> tac.Stmt | None:
        """The defining statement of ``o`` when it is an inlined value (emitted at its use)."""
        if isinstance(o, tac.Var) and o.name in self.inlined and o.name in self.defs:
            return self.defs[o.name][2]
        return None

    def slot_const(self, o: tac.Operand) -> int | None:
        if isinstance(o, tac.Const):
            return o.value
        if isinstance(o, tac.Var) and o.name in self.ctx.storage.slot_of:
            return self.ctx.storage.slot_of[o.name]
        return None

    @staticmethod
    def _shift(s: tac.Stmt) -> tuple[int, tac.Operand] | None:
        """(bits, x) for ``SHR(bits, x)`` / ``DIV(x, 2**bits)``."""
        if s.op == "SHR" and isinstance(s.args[0], tac.Const):
            return s.args[0].value, s.args[1]
        if s.op == "DIV" and isinstance(s.args[1], tac.Const):
            d = s.args[1].value
            if d > 0 and d & (d - 1) == 0:
                return d.bit_length() - 1, s.args[0]
        return None

    def packed_read(self, s: tac.Stmt) -> str | None:
        """A packed state variable read by name: ``AND(mask, SHR(8·off, SLOAD(slot)))`` (or
        ``DIV``, or no shift at offset 0, or no mask for the slot's top bytes) whose mask
        and offset are those of a layout variable narrower than a word."""
        packed = self.ctx.storage.packed
        if not packed:
            return None
        nbits, x = None, s
        if s.op == "AND":
            for i in (0, 1):
                m = s.args[i]
                if isinstance(m, tac.Const) and m.value and m.value & (m.value + 1) == 0:
                    d = self.inl(s.args[1 - i])
                    if d is not None:
                        nbits, x = m.value.bit_length(), d
                        break
            if nbits is None:
                return None
        shift, load = 0, x
        sh = self._shift(x)
        if sh is not None:
            d = self.inl(sh[1])
            if d is None:
                return None
            shift, load = sh[0], d
        if load.op != "SLOAD" or shift % 8:
            return None
        slot = self.slot_const(load.args[0])
        found = packed.get((slot, shift // 8)) if slot is not None else None
        if found is None:
            return None
        name, tl, nbytes = found
        if (nbits if nbits is not None else 256 - shift) != 8 * nbytes:
            return None
        return _packed_word(name, tl, nbytes)

    def packed_write(self, s: tac.Stmt) -> list[str] | None:
        """``name = value;`` per packed variable for ``SSTORE(slot, word)`` where ``word`` is
        the slot's old value (an inlined ``SLOAD(slot)``) with some variables' bytes cleared
        (``AND`` with constants) and new values shifted in (``OR`` of ``MUL`` by 2**(8·off)
        or ``SHL``, masked to the variable's width or narrower); the optimizer merges
        several such updates into one store. None when the word is anything else: a bit
        outside the written variables cleared, a value spilling out of its variable, or a
        new value that reads a variable the same store writes (Solidity would assign in
        order, the store writes all at once)."""
        packed = self.ctx.storage.packed
        slot = self.slot_const(s.args[0])
        if not packed or slot is None:
            return None
        full = (1 << 256) - 1
        r = self._packed_word(s.args[1], slot, full, 0)
        if r is None or not r[1]:
            return None
        keep, terms = r
        written = 0
        for _off, rng, _entry, _v in terms:
            if written & rng:
                return None
            written |= rng
        if keep != full ^ written:
            return None
        out = []
        names = [t[2][0] for t in terms]
        for _off, _rng, (name, tl, nbytes), v in terms:
            try:
                w, kind = self.sol(v)
            except _NotSolidity:
                return None
            if kind == "c":
                w, kind = self.u(v), "u"
            if len(terms) > 1 and any(re.search(rf"\b{re.escape(n)}\b", w) for n in names):
                return None
            rhs = _packed_value(tl, nbytes, w, kind, self.ctx.version, self.ctx.addr_names)
            if rhs is None:
                return None
            out.append(f"{name} = {rhs};")
        return out

    def _packed_word(
        self, o: tac.Operand, slot: int, full: int, depth: int
    ) -> tuple[int, list[tuple[int, int, tuple[str, str, int], tac.Operand]]] | None:
        """(bits of the old slot value kept, [(offset bits, bit range, variable, value)])."""
        d = self.inl(o)
        if d is None or depth > 12:
            return None
        if d.op == "SLOAD":
            return (full, []) if self.slot_const(d.args[0]) == slot else None
        if d.op == "AND":
            for i in (0, 1):
                c = d.args[i]
                if not isinstance(c, tac.Const):
                    continue
                r = self._packed_word(d.args[1 - i], slot, full, depth + 1)
                if r is None:
                    continue
                keep, terms = r
                kept = []
                for t in terms:
                    if t[1] & c.value == t[1]:
                        kept.append(t)
                    elif t[1] & c.value:
                        return None  # part of a new value cleared
                return keep & c.value, kept
            return None
        if d.op == "OR":
            for i in (0, 1):
                r = self._packed_word(d.args[i], slot, full, depth + 1)
                if r is None:
                    continue
                t = self._packed_term(d.args[1 - i], slot, full)
                if t is None:
                    return None
                return r[0], [*r[1], t]
        return None

    def _packed_term(
        self, o: tac.Operand, slot: int, full: int
    ) -> tuple[int, int, tuple[str, str, int], tac.Operand] | None:
        """A new value shifted to a packed variable's offset: (offset bits, its bit range,
        the variable, the value operand)."""
        outer = full
        d = self.inl(o)
        while d is not None and d.op == "AND" and any(isinstance(x, tac.Const) for x in d.args):
            c = next(x for x in d.args if isinstance(x, tac.Const))
            outer &= c.value
            o = d.args[1] if d.args[0] is c else d.args[0]
            d = self.inl(o)
        off = 0
        if d is not None and d.op == "SHL" and isinstance(d.args[0], tac.Const):
            off, o = d.args[0].value, d.args[1]
        elif d is not None and d.op == "MUL":
            for i in (0, 1):
                c = d.args[i]
                if isinstance(c, tac.Const) and c.value and c.value & (c.value - 1) == 0:
                    off, o = c.value.bit_length() - 1, d.args[1 - i]
                    break
            else:
                return None
        found = self.ctx.storage.packed.get((slot, off // 8)) if off % 8 == 0 else None
        if found is None:
            return None
        nbits = 8 * found[2]
        rng = ((1 << nbits) - 1) << off
        if outer & rng != rng:
            return None
        inner = self.inl(o)
        width = 256
        if inner is not None and inner.op == "AND":
            for i in (0, 1):
                c = inner.args[i]
                if isinstance(c, tac.Const) and c.value & (c.value + 1) == 0:
                    width, o = c.value.bit_length(), inner.args[1 - i]
                    break
        elif inner is not None and inner.op in _BOOL_OPS:
            width = 1
        if width > nbits and (outer & (full << off)) & ~rng & full:
            return None  # the value's high bits would land in the neighbours
        if width < nbits and found[1] != "bool":
            # narrower than the variable: Solidity's conversion keeps the value's other bits
            if not (inner is not None and inner.op in _BOOL_OPS):
                return None
        return off, rng, found, o

    def neg(self, o: tac.Operand) -> str:
        """A Solidity condition that holds when ``o`` is zero."""
        if isinstance(o, tac.Var) and o.name in self.inlined and o.name in self.defs:
            d = self.defs[o.name][2]
            flip = {"LT": ">=", "GT": "<=", "EQ": "!="}
            if d.op in ("LT", "GT"):
                x, y = self._uu(d.args[0], d.args[1])
                return f"({x} {flip[d.op]} {y})"
            if d.op in ("SLT", "SGT"):
                return f"(int256({self.u(d.args[0])}) {'>=' if d.op == 'SLT' else '<='} int256({self.u(d.args[1])}))"
            if d.op == "EQ":
                (x, kx), (y, ky) = self.sol(d.args[0]), self.sol(d.args[1])
                if x == y and kx != "c":
                    return "false"
                if kx == "b" and ky == "b":
                    return f"({x} != {y})"
                if kx == "c" and ky == "c":
                    raise _NotSolidity
                return f"({self.eq_operands(d.args[0], d.args[1], '!=')})"
            if d.op == "ISZERO":
                return self.b(d.args[0])
            if d.op == "SUB" and (c := self.sub_compared(d, "==")) is not None:
                return c
        t, k = self.sol(o)
        if t == "true":
            return "false"
        if k == "b":
            return f"!{_paren(t)}"
        if k == "c":
            raise _NotSolidity
        c = _bool_word(t)
        if c is not None:
            return f"!{_paren(c)}"
        a = self.addr_of(t)
        if a is not None:
            return f"({a} == address(0))"
        return f"({t} == 0)"

    def _uu(self, x: tac.Operand, y: tac.Operand) -> tuple[str, str]:
        (_tx, kx), (_ty, ky) = self.sol(x), self.sol(y)
        if kx == "c" and ky == "c":
            raise _NotSolidity
        return self.u(x), self.u(y)

    def storage_ref(self, o: tac.Operand) -> tuple[str, str] | None:
        """Solidity lvalue and value type of a storage slot operand, or None."""
        st = self.ctx.storage
        keys: list[tac.Operand] = []
        while isinstance(o, tac.Index):
            keys.append(o.key)
            o = o.base
        keys.reverse()
        if isinstance(o, tac.Var) and o.name in st.slot_of:
            slot = st.slot_of[o.name]
        elif isinstance(o, tac.Const):
            slot = o.value
        else:
            return None
        if self.ctx.contract_mode:
            depth = self.ctx.contract_maps.get(slot)
            if depth is None or depth != len(keys):
                return None
            return f"stor_{slot}" + "".join(f"[{self.u(k)}]" for k in keys), "t_uint256"
        if not keys:
            if slot in st.named:
                name, vt = st.named[slot]
                return name, vt
            return None
        if slot not in st.maps:
            return None
        name, ktypes, vt = st.maps[slot]
        if len(ktypes) != len(keys):
            return None
        parts = []
        for k, kt in zip(keys, ktypes):
            if kt == "t_address":
                if not self.clean160(k):
                    return None
                kt_ = self.u(k)
                m = re.fullmatch(r"uint256\(uint160\(([\w.]+)\)\)", kt_)
                parts.append(f"[{m.group(1)}]" if m else f"[address(uint160({kt_}))]")
            elif kt == "t_uint256":
                parts.append(f"[{self.u(k)}]")
            elif kt == "t_bytes32":
                parts.append(f"[bytes32({self.u(k)})]")
            elif kt == "t_int256":
                parts.append(f"[int256({self.u(k)})]")
        return name + "".join(parts), vt

    def clean160(self, o: tac.Operand, depth: int = 0, skip_mask: bool = False) -> bool:
        """Whether ``o`` is below 2**160 (an address word); ``skip_mask``: not by an AND with
        the 160-bit mask at its top (for removing that mask)."""
        if (
            isinstance(o, tac.Var)
            and o.name in self.ctx.idents
            and self.ctx.arg_names.get(o.name, (0, None))[1] == "address"
        ):
            return True  # read through the declared address parameter
        if isinstance(o, tac.Const):
            return o.value <= MASK160
        if not isinstance(o, tac.Var) or depth > 6:
            return False
        if o.name == "msg.sender":
            return True
        d = self.defs.get(o.name)
        if d is None:
            return False
        s = d[2]
        if s.op == "AND":
            return (
                not skip_mask
                and any(isinstance(x, tac.Const) and x.value <= MASK160 for x in s.args)
            ) or any(self.clean160(x, depth + 1) for x in s.args)
        if s.op in ("CALLER", "ADDRESS", "ORIGIN", "COINBASE"):
            return True
        if s.op is None:
            return self.clean160(s.args[0], depth + 1)
        return False

    # -- expressions: Yul ------------------------------------------------------------------------
    def yul(self, o: tac.Operand) -> str:
        if isinstance(o, tac.Const):
            return _yul_const(o.value)
        if isinstance(o, tac.Index):
            self.needs_map = True
            return f"__map({self.yul(o.key)}, {self.yul(o.base)})"
        if isinstance(o, tac.Str):
            raise DraftError(f"string operand {o.text!r} outside ERROR")
        name = o.name
        if name in self.defs and name in self.inlined:
            return self.yul_stmt(self.defs[name][2])
        if name in self.ctx.spill:
            return f"mload(add(__s, {32 * self.ctx.spill[name]}))"
        if name in self.defs or name in self.phi_vars:
            return name
        if name == "msg.sender":
            return "caller()"
        if name in self.ctx.arg_names:
            return f"calldataload({_yul_const(self.ctx.arg_names[name][0])})"
        if name in self.ctx.storage.slot_of:
            return _yul_const(self.ctx.storage.slot_of[name])
        if re.fullmatch(r"s\d+", name):
            return (
                "div(calldataload(0), 0x100000000000000000000000000000000000000000000000000000000)"
            )
        raise DraftError(
            f"unknown name {name!r} in the TAC (pass the storage layout the TAC was lifted with)"
        )

    def yul_stmt(self, s: tac.Stmt) -> str:
        if s.op is None:
            return self.yul(s.args[0])
        op = s.op
        if op == "CALLVALUE" and not self.ctx.payable:
            return "0"
        name = _YUL_NAMES.get(op, op.lower())
        return f"{name}({', '.join(self.yul(a) for a in s.args)})"

    def cond(self, o: tac.Operand, negate: bool = False) -> tuple[str, bool]:
        """(Solidity condition text, is_solidity); falls back to a local set in assembly."""
        try:
            return (self.neg(o) if negate else self.b(o)), True
        except _NotSolidity:
            y = self.yul(o)
            return (f"iszero({y})" if negate else y), False

    # -- statements ------------------------------------------------------------------------------
    def block_items(self, lab: str) -> list[_Item]:
        b = self.blocks[lab]
        n = self.emitted.get(lab, 0)
        self.emitted[lab] = n + 1
        self.budget -= 1
        if self.budget < 0:
            raise _Unstructured("code duplication budget exceeded")
        items: list[_Item] = []
        halt = b.term[1] if b.term[0] == "halt" else None
        for s in b.stmts:
            if (s.lhs is not None and s.lhs in self.inlined) or s is halt:
                continue
            items.extend(self.stmt_items(s, lab))
        if b.term[0] == "halt":
            items.extend(self.halt_items(b.term[1]))
        return items

    def declare(self, v: str) -> str:
        return v if v in self.cross else f"uint256 {v}"

    def set_sol(self, v: str, text: str, declare: bool = True) -> _Item:
        """``v = text;`` (declaring a block-local ``v``; a spilled ``v`` is a word of ``__s``)."""
        if v in self.ctx.spill:
            return _Item("sol", f"__s[{self.ctx.spill[v]}] = {text};")
        return _Item("sol", f"{self.declare(v) if declare else v} = {text};")

    def set_yul(self, v: str, text: str, declare: bool = True) -> list[_Item]:
        if v in self.ctx.spill:
            return [_Item("asm", f"mstore(add(__s, {32 * self.ctx.spill[v]}), {text})")]
        pre = [_Item("decl", f"uint256 {v};")] if declare and v not in self.cross else []
        return pre + [_Item("asm", f"{v} := {text}")]

    def stmt_items(self, s: tac.Stmt, lab: str) -> list[_Item]:
        op = s.op
        if op in ("ENCODE", "ENCODESEL", "ABIHASH", "ABIHASHSEL", "ALLOCENC", "ALLOCENCSEL"):
            return self.encode_items(s)
        if s.lhs is not None:
            v = s.lhs
            if not self.uses.get(v):
                if op in READS or op in PURE or op in ENV_CONST or op is None:
                    return []
                return [_Item("asm", f"pop({self.yul_stmt(s)})")]
            try:
                text, k = self.sol_stmt(s)
                if k == "b":
                    text = f"(({text}) ? uint256(1) : uint256(0))"
                return [self.set_sol(v, text)]
            except _NotSolidity:
                return self.set_yul(v, self.yul_stmt(s))
        if op == "SSTORE":
            ref = None
            try:
                ref = self.storage_ref(s.args[0])
                if ref is not None:
                    lv, vt = ref
                    val = self.u(s.args[1])
                    val = {"t_int256": f"int256({val})", "t_bytes32": f"bytes32({val})"}.get(
                        vt, val
                    )
                    return [_Item("sol", f"{lv} = {val};")]
            except _NotSolidity:
                pass
            w = self.packed_write(s)
            if w is not None:
                return [_Item("sol", x) for x in w]
            return [_Item("asm", f"sstore({self.yul(s.args[0])}, {self.yul(s.args[1])})")]
        if op == "ERROR":
            name = s.args[1]
            if isinstance(name, tac.Var) and name.name in self.ctx.errors:
                return [
                    _Item(
                        "asm",
                        f"mstore({self.yul(s.args[0])}, {hex(self.ctx.errors[name.name])})  // {name.name}",
                    )
                ]
            raise DraftError(f"unknown error {tac.format_operand(name)}")
        if op == "EMIT":
            ev = s.args[0]
            if not isinstance(ev, tac.Var) or ev.name not in self.ctx.events:
                raise DraftError(f"unknown event {tac.format_operand(ev)}")
            topics = [hex(self.ctx.events[ev.name])] + [self.yul(a) for a in s.args[3:]]
            args = [self.yul(s.args[1]), self.yul(s.args[2]), *topics]
            return [_Item("asm", f"log{len(topics)}({', '.join(args)})  // emit {ev.name}")]
        if (
            op == "CODECOPY"
            and isinstance(s.args[1], tac.Const)
            and isinstance(s.args[2], tac.Const)
        ):
            return self.codecopy(s.args[0], s.args[1].value, s.args[2].value)
        if op == "EMITVALUES":
            name = s.args[0].name  # type: ignore[union-attr]
            try:
                vals = [
                    _from_word(self.u(a), t)
                    for a, (t, _ix) in zip(s.args[1:], self.ctx.event_params[name][1])
                ]
                return [_Item("sol", f"emit {name}({', '.join(vals)});")]
            except _NotSolidity:
                pass
            topic, params = self.ctx.event_params[name]
            data = [a for a, (_t, ix) in zip(s.args[1:], params) if not ix]
            topics = [hex(topic)] + [self.yul(a) for a, (_t, ix) in zip(s.args[1:], params) if ix]
            self.n_conds += 1
            e = f"__e{self.n_conds}"
            items = [_Item("decl", f"uint256 {e};"), _Item("asm", f"{e} := mload(64)")]
            items += [
                _Item("asm", f"mstore(add({e}, {32 * i}), {self.yul(a)})")
                for i, a in enumerate(data)
            ]
            return items + [
                _Item(
                    "asm",
                    f"log{len(topics)}({e}, {32 * len(data)}, {', '.join(topics)})  // emit {name}",
                )
            ]
        if op in ("CALLPRIVATE", "RESULT"):
            raise DraftError("internal calls in the call form (lift with inline_internal)")
        return [_Item("asm", self.yul_stmt(s))]

    def word(self, o: tac.Operand) -> str:
        """``o`` as a ``uint256`` expression (a literal converted: an argument of
        ``abi.encode``)."""
        t, k = self.sol(o)
        return f"uint256({t})" if k == "c" else self.u(o)

    def encode_items(self, s: tac.Stmt) -> list[_Item]:
        """``p = ENCODE…(w…)`` / ``h = ABIHASH…(w…)`` (:func:`_encoded_words`): Solidity's ABI
        encoding (``abi.encode``, ``abi.encodeWithSelector``), ``p`` its data pointer set in
        assembly, or ``h`` the hash; else the original's stores at ``mload(64)`` in
        assembly."""
        op, v = s.op or "", s.lhs or ""
        sel = op.endswith("SEL")
        words = s.args[1:] if sel else s.args
        n = 32 * len(words) + (4 if sel else 0)
        alloc = op.startswith("ALLOCENC")
        self.n_conds += 1
        e = f"__e{self.n_conds}"
        try:
            vals = [self.word(a) for a in words]
            if sel:
                x = s.args[0]
                vals.insert(
                    0,
                    f"bytes4(0x{x.value >> 224:08x})"
                    if isinstance(x, tac.Const)
                    else f"bytes4(bytes32({self.u(x)}))",
                )
                call = f"abi.encodeWithSelector({', '.join(vals)})"
            else:
                call = f"abi.encode({', '.join(vals)})"
            if op.startswith("ABIHASH"):
                return [self.set_sol(v, f"uint256(keccak256({call}))")]
            pre = [] if v in self.cross or v in self.ctx.spill else [_Item("decl", f"uint256 {v};")]
            if alloc:  # the object itself: its pointer is the encoding's
                return [
                    *pre,
                    _Item("open", "{"),
                    _Item("sol", f"bytes memory {e} = {call};"),
                    *self.set_yul(v, e, declare=False),
                    _Item("close", "}"),
                ]
            back = [_Item("asm", f"mstore(64, add({e}, 32))")] if s.note == "fmp" else []
            return [
                *pre,
                _Item("open", "{"),
                _Item("sol", f"bytes memory {e} = {call};"),
                *self.set_yul(v, f"add({e}, 32)", declare=False),
                *back,
                _Item("close", "}"),
            ]
        except _NotSolidity:
            pass
        if op.startswith("ABIHASH"):
            at, items = e, [_Item("decl", f"uint256 {e};"), _Item("asm", f"{e} := mload(64)")]
        elif alloc:  # the original's allocation: length, words, the pointer moved past them
            items = self.set_yul(v, "mload(64)")
            p = self.yul(tac.Var(v))
            items.append(_Item("asm", f"mstore({p}, {n})"))
            items.append(_Item("asm", f"mstore(64, add({p}, {32 + (n + 31) // 32 * 32}))"))
            at = f"add({p}, 32)"
        else:
            items = self.set_yul(v, "mload(64)")
            at = self.yul(tac.Var(v))
        if sel:
            items.append(_Item("asm", f"mstore({at}, {self.yul(s.args[0])})"))
        for k, a in enumerate(words):
            off = 32 * k + (4 if sel else 0)
            items.append(
                _Item("asm", f"mstore({f'add({at}, {off})' if off else at}, {self.yul(a)})")
            )
        if op.startswith("ABIHASH"):
            items += self.set_yul(v, f"keccak256({e}, {n})")
        return items

    def codecopy(self, dst: tac.Operand, off: int, n: int) -> list[_Item]:
        """A copy out of the original code is a copy of constants (the recompiled code is laid
        out differently): words of the original code, zeros past its end."""
        code, size = self.ctx.code, self.ctx.code_size
        d = self.yul(dst)
        if off >= size:
            return [
                _Item(
                    "asm",
                    f"calldatacopy({d}, calldatasize(), {_yul_const(n)})  // zeros (a copy past the code's end)",
                )
            ]
        if code is None or n > 32 * 16:
            return [
                _Item(
                    "asm",
                    f"codecopy({d}, {_yul_const(off)}, {_yul_const(n)})  // offsets of the original code",
                )
            ]
        data = code[off : off + n].ljust(n, b"\0")
        out = []
        for k in range(0, n, 32):
            chunk = data[k : k + 32]
            at = d if k == 0 else f"add({d}, {k})"
            if len(chunk) == 32:
                out.append(_Item("asm", f"mstore({at}, {hex(int.from_bytes(chunk, 'big'))})"))
            else:
                keep = (1 << (8 * (32 - len(chunk)))) - 1
                word = int.from_bytes(chunk.ljust(32, b"\0"), "big")
                out.append(
                    _Item("asm", f"mstore({at}, or(and(mload({at}), {hex(keep)}), {hex(word)}))")
                )
        return out

    def halt_items(self, s: tac.Stmt) -> list[_Item]:
        op, a = s.op, s.args
        if op == "ERROR" and isinstance(a[1], tac.Str):
            lit = _sol_string(a[1].text)
            if lit is not None:
                return [_Item("sol", f"revert({lit});")]
            data = a[1].text.encode("utf-8")
            p = self.yul(a[0])
            out = [
                _Item("asm", f"mstore({p}, {hex(ERROR_STRING)})"),
                _Item("asm", f"mstore(add({p}, 4), 32)"),
                _Item("asm", f"mstore(add({p}, 36), {len(data)})"),
            ]
            for k in range(0, len(data), 32):
                w = int.from_bytes(data[k : k + 32].ljust(32, b"\0"), "big")
                out.append(_Item("asm", f"mstore(add({p}, {68 + k}), {hex(w)})"))
            out.append(_Item("asm", f"revert({p}, {68 + (len(data) + 31) // 32 * 32})"))
            return out
        if op == "REVERT" and a == (tac.Const(0), tac.Const(0)):
            return [_Item("sol", "revert();")]
        if op == "STOP" and not self.ctx.has_outputs:
            return [_Item("sol", "return;")]
        if op == "PANIC":
            code = a[0]
            if self.ctx.checked and code == tac.Const(1):
                return [_Item("sol", "assert(false);")]
            if self.ctx.checked and isinstance(code, tac.Const) and code.value in _SOL_PANICS:
                decl, stmt = _SOL_PANICS[code.value]
                return [
                    _Item("open", "{"),
                    *([_Item("decl", decl)] if decl else []),
                    _Item("sol", f"{stmt}  // Panic({hex(code.value)})"),
                    _Item("close", "}"),
                ]
            return [_Item("asm", f"__panic({self.yul(code)})")]
        if op == "INVALID" and not self.ctx.checked and self.ctx.version >= (0, 4, 10):
            return [_Item("sol", "assert(false);")]
        if op == "RETURNVALUES":
            return self.return_values(s)
        if op == "REVERTERROR":
            name = s.args[0].name  # type: ignore[union-attr]
            sel, types = self.ctx.error_params[name]
            if name in self.ctx.solidity_errors:
                try:
                    vals = [_from_word(self.u(a), t) for a, t in zip(s.args[1:], types)]
                    ref = self.ctx.error_refs.get(name, name)
                    return [_Item("sol", f"revert {ref}({', '.join(vals)});")]
                except _NotSolidity:
                    pass
            if self.ctx.version >= (0, 8, 0):
                # an error the function cannot name (declared where the file does not see
                # it): Solidity ABI-encodes the data (the same bytes: selector, one word per
                # static argument), assembly only reverts with them
                try:
                    vals = [_from_word(self.u(a), t) for a, t in zip(s.args[1:], types)]
                    self.n_conds += 1
                    d = f"__d{self.n_conds}"
                    enc = ", ".join([f"bytes4(0x{sel >> 224:08x})", *vals])
                    return [
                        _Item(
                            "sol", f"bytes memory {d} = abi.encodeWithSelector({enc});  // {name}"
                        ),
                        _Item("asm", f"revert(add({d}, 32), mload({d}))"),
                    ]
                except _NotSolidity:
                    pass
            self.n_conds += 1
            r = f"__r{self.n_conds}"
            items = [
                _Item("decl", f"uint256 {r};"),
                _Item("asm", f"{r} := mload(64)"),
                _Item("asm", f"mstore({r}, {hex(sel)})  // {name}"),
            ]
            items += [
                _Item("asm", f"mstore(add({r}, {4 + 32 * i}), {self.yul(a)})")
                for i, a in enumerate(s.args[1:])
            ]
            return items + [_Item("asm", f"revert({r}, {4 + 32 * len(types)})")]
        return [_Item("asm", self.yul_stmt(s))]

    def typed_return(self, s: tac.Stmt) -> list[_Item] | None:
        return None

    def return_values(self, s: tac.Stmt) -> list[_Item]:
        """``return (x1, …);`` converted to the ABI output types; assembly when a value is not
        Solidity (it then writes the words and returns them, as the original did)."""
        try:
            vals = [_from_word(self.u(a), t) for a, t in zip(s.args, self.ctx.out_types)]
            for i, (sol_t, kind) in enumerate(self.ctx.out_sol[: len(vals)]):
                if kind == "contract":
                    v = vals[i]
                    if not (self.ctx.version >= (0, 8, 0) or v == "msg.sender"):
                        v = f"address({v})"
                    if self.ctx.version >= (0, 6, 0):
                        # a contract with a payable fallback or receive converts only from an
                        # `address payable`; any contract converts from one
                        v = f"payable({v})"
                    vals[i] = f"{sol_t}({v})"
                elif kind == "enum":
                    vals[i] = f"{sol_t}({vals[i]})"
                elif kind == "payable":
                    if self.ctx.version >= (0, 6, 0):
                        vals[i] = f"payable({vals[i]})"
                elif kind is not None:
                    raise _NotSolidity
            return [
                _Item(
                    "sol",
                    f"return {vals[0]};" if len(vals) == 1 else f"return ({', '.join(vals)});",
                )
            ]
        except _NotSolidity:
            self.n_conds += 1
            r = f"__r{self.n_conds}"
            items = [_Item("decl", f"uint256 {r};"), _Item("asm", f"{r} := mload(64)")]
            items += [
                _Item("asm", f"mstore(add({r}, {32 * i}), {self.yul(a)})")
                for i, a in enumerate(s.args)
            ]
            return items + [_Item("asm", f"return({r}, {32 * len(s.args)})")]

    # -- PHI copies on an edge -------------------------------------------------------------------
    def copies(self, p: str, s: str) -> list[_Item]:
        phis = self.blocks[s].phis
        pairs = [
            (lhs, ops[p])
            for lhs, ops in phis
            if p in ops and not (isinstance(ops[p], tac.Var) and ops[p].name == lhs)
        ]
        if not pairs:
            return []
        targets = {lhs for lhs, _ in pairs}
        conflict = any(targets & (_deep_vars(o, self) - {lhs}) for lhs, o in pairs)
        out: list[_Item] = []
        if conflict:
            base = self.n_conds
            self.n_conds += len(pairs)
            for i, (lhs, o) in enumerate(pairs):
                out.extend(self._assign(f"__t{base + i}", o, declare=True))
            for i, (lhs, _o) in enumerate(pairs):
                out.append(self.set_sol(lhs, f"__t{base + i}", declare=False))
            return [_Item("open", "{"), *out, _Item("close", "}")]
        for lhs, o in pairs:
            out.extend(self._assign(lhs, o))
        return out

    def _assign(self, lhs: str, o: tac.Operand, declare: bool = False) -> list[_Item]:
        try:
            if declare:
                return [_Item("sol", f"uint256 {lhs} = {self.u(o)};")]
            return [self.set_sol(lhs, self.u(o), declare=False)]
        except _NotSolidity:
            if declare:
                return [_Item("decl", f"uint256 {lhs};"), _Item("asm", f"{lhs} := {self.yul(o)}")]
            return self.set_yul(lhs, self.yul(o), declare=False)


def _enclosed(t: str) -> bool:
    """``t`` is one parenthesised expression: ``(…)`` whose outer pair match each other."""
    return t.startswith("(") and t.endswith(")") and _balanced(t[1:-1])


def _paren(t: str) -> str:
    return t if re.fullmatch(r"[\w.]+", t) or _enclosed(t) else f"({t})"


def _unparen(t: str) -> str:
    """``t`` without its outer parentheses (a condition of ``if``/``require``)."""
    return t[1:-1] if _enclosed(t) else t


def _lit_left(text: str, o: tac.Operand) -> str:
    """A literal left operand of ``<<``, ``>>`` or ``**`` gets the type uint256 (else the
    result would have the literal's small type)."""
    return f"uint256({text})" if isinstance(o, tac.Const) else text


def _vars(o: tac.Operand) -> list[str]:
    if isinstance(o, tac.Var):
        return [o.name]
    if isinstance(o, tac.Index):
        return _vars(o.base) + _vars(o.key)
    return []


def _leaf_vars(s: tac.Stmt, tr: _Translator, depth: int = 0) -> set[str]:
    out: set[str] = set()
    for a in s.args:
        for v in _vars(a):
            out.add(v)
            if v in tr.inlined and v in tr.defs and depth < 12:
                out |= _leaf_vars(tr.defs[v][2], tr, depth + 1)
    return out


def _deep_vars(o: tac.Operand, tr: _Translator) -> set[str]:
    out: set[str] = set()
    for v in _vars(o):
        out.add(v)
        if v in tr.inlined and v in tr.defs:
            out |= _leaf_vars(tr.defs[v][2], tr)
    return out


def ctx_idents(ctx: _Ctx) -> dict[str, tuple[str, str | None]]:
    return ctx.idents


def _from_word(x: str, t: str) -> str:
    """A uint256 expression as ABI type ``t`` (a static value type whose word it encodes)."""
    if t == "uint256":
        return x
    if t.startswith("uint"):
        return f"{t}({x})"
    if t == "int256":
        return f"int256({x})"
    if t.startswith("int"):
        return f"{t}(int256({x}))"
    if t == "address":
        if x == "0":
            return "address(0)"
        m = re.fullmatch(r"uint256\(uint160\(([\w.]+)\)\)", x)
        return m.group(1) if m else f"address(uint160({x}))"
    if t == "bool":
        return {"0": "false", "1": "true"}.get(x) or _bool_word(x) or f"({x} != 0)"
    if t == "bytes32":
        return f"bytes32({x})"
    return f"{t}(bytes32({x}))"


def _arg_to_uint(name: str, t: str, kind: str | None = None) -> str:
    if kind == "payable":  # 0.8 converts `address payable` to uint160 only through `address`
        return f"uint256(uint160(address({name})))"
    if kind == "contract":
        return f"uint256(uint160(address({name})))"
    if kind == "enum":
        return f"uint256({name})"
    if kind is not None:
        raise _NotSolidity
    if t == "uint256":
        return name
    if re.fullmatch(r"uint\d+", t):
        return f"uint256({name})"
    if t == "int256":
        return f"uint256({name})"
    if re.fullmatch(r"int\d+", t):
        return f"uint256(int256({name}))"
    if t == "address":
        return f"uint256(uint160({name}))"
    if t == "bool":
        return f"({name} ? uint256(1) : uint256(0))"
    if t == "bytes32":
        return f"uint256({name})"
    if re.fullmatch(r"bytes\d+", t):
        return f"uint256(bytes32({name}))"
    raise _NotSolidity


# ---------------------------------------------------------------------------------------------
# Structuring
# ---------------------------------------------------------------------------------------------


def _dominators(
    order: list[str], succ: Mapping[str, list[str]], entry: str
) -> dict[str, str | None]:
    """Immediate dominators (Cooper, Harvey, Kennedy, "A Simple, Fast Dominance Algorithm",
    2001) over the nodes reachable from ``entry``."""
    rpo: list[str] = []
    seen: set[str] = set()
    stack = [(entry, iter(succ.get(entry, [])))]
    seen.add(entry)
    while stack:
        n, it = stack[-1]
        for s in it:
            if s not in seen:
                seen.add(s)
                stack.append((s, iter(succ.get(s, []))))
                break
        else:
            stack.pop()
            rpo.append(n)
    rpo.reverse()
    index = {n: i for i, n in enumerate(rpo)}
    preds: dict[str, list[str]] = {n: [] for n in rpo}
    for n in rpo:
        for s in succ.get(n, []):
            if s in preds:
                preds[s].append(n)
    idom: dict[str, str | None] = {entry: entry}
    changed = True
    while changed:
        changed = False
        for n in rpo[1:]:
            ps = [p for p in preds[n] if p in idom]
            if not ps:
                continue
            new = ps[0]
            for p in ps[1:]:
                a, b = p, new
                while a != b:
                    while index[a] > index[b]:
                        a = idom[a]  # type: ignore[assignment]
                    while index[b] > index[a]:
                        b = idom[b]  # type: ignore[assignment]
                new = a
            if idom.get(n) != new:
                idom[n] = new
                changed = True
    idom[entry] = None
    return idom


class _Structurer:
    EXIT = "__exit__"

    def __init__(self, tr: _Translator) -> None:
        self.tr = tr
        order, blocks = tr.order, tr.blocks
        self.entry = order[0]
        self.succ = {n: _succ(blocks[n]) for n in order}
        for n in order:
            if blocks[n].term[0] == "multi":
                raise _Unstructured("a jump with several targets")
        self.idom = _dominators(order, self.succ, self.entry)
        rsucc: dict[str, list[str]] = {n: [] for n in order}
        rsucc[self.EXIT] = []
        for n in order:
            if not self.succ[n]:
                rsucc[self.EXIT].append(n)
            for s in self.succ[n]:
                rsucc[s].append(n)
        self.ipdom = _dominators([self.EXIT, *order], rsucc, self.EXIT)
        # loops: back edges u -> h with h dominating u; any other retreating edge: irreducible
        self.loops: dict[str, set[str]] = {}
        self._find_loops()
        self.reach_cache: dict[str, frozenset[str]] = {}

    def dominates(self, a: str, b: str) -> bool:
        while b is not None:
            if a == b:
                return True
            b = self.idom.get(b)  # type: ignore[assignment]
        return False

    def _find_loops(self) -> None:
        color: dict[str, int] = {}
        stack = [(self.entry, iter(self.succ[self.entry]))]
        color[self.entry] = 1
        while stack:
            n, it = stack[-1]
            for s in it:
                c = color.get(s, 0)
                if c == 0:
                    color[s] = 1
                    stack.append((s, iter(self.succ[s])))
                    break
                if c == 1:  # retreating edge n -> s
                    if not self.dominates(s, n):
                        raise _Unstructured("irreducible control flow")
                    body = self.loops.setdefault(s, {s})
                    work = [n]
                    while work:
                        x = work.pop()
                        if x not in body:
                            body.add(x)
                            work.extend(self.tr.blocks[x].preds)
            else:
                color[n] = 2
                stack.pop()

    def reach(self, n: str) -> frozenset[str]:
        r = self.reach_cache.get(n)
        if r is None:
            seen = {n}
            work = [n]
            while work:
                x = work.pop()
                for s in self.succ.get(x, []):
                    if s not in seen:
                        seen.add(s)
                        work.append(s)
            r = self.reach_cache[n] = frozenset(seen)
        return r

    def loop_follow(self, h: str) -> str | None:
        body = self.loops[h]
        # in block order: iterating the body set would make the choice depend on string hashing
        exits = list(
            dict.fromkeys(
                s for n in self.tr.order if n in body for s in self.succ[n] if s not in body
            )
        )
        if not exits:
            return None
        cand = self.ipdom.get(h)
        follow = (
            cand if cand not in (None, self.EXIT) and cand not in body and cand in exits else None
        )
        if follow is None:
            nonterm = [
                e
                for e in exits
                if self.reach(e) & body or any(e != o and o in self.reach(e) for o in exits)
            ]
            follow = max(exits, key=lambda e: len(self.reach(e))) if not nonterm else None
            if follow is None:
                candidates = [
                    e
                    for e in exits
                    if all(
                        o == e or (e in self.reach(o)) or not (self.reach(o) & (body | {e}))
                        for o in exits
                    )
                ]
                follow = next((c for c in candidates if self._sole_follow(c, exits, body)), None)
                if follow is None:
                    raise _Unstructured("a loop with several exits")
        if not self._sole_follow(follow, exits, body):
            raise _Unstructured("a loop with several exits")
        return follow

    def only_reverts(self, n: str) -> bool:
        """Every halt reachable from ``n`` reverts (a guard's failing side)."""
        blocks = self.tr.blocks
        return all(
            blocks[x].term[0] != "halt" or blocks[x].term[1].op in _REVERTING
            for x in self.reach(n)
            if x in blocks
        )

    def _sole_follow(self, follow: str, exits: list[str], body: set[str] | frozenset[str]) -> bool:
        """No other exit of the loop reaches ``follow`` or comes back into the loop."""
        return not any(
            e != follow and (follow in self.reach(e) or self.reach(e) & body) for e in exits
        )

    # -- emission --------------------------------------------------------------------------------
    def run(self) -> list[_Item]:
        out: list[_Item] = []
        self.seq(self.entry, None, [], out)
        return out

    def seq(
        self,
        n: str | None,
        stop: str | None,
        loops: list[tuple[str, frozenset[str], str | None]],
        out: list[_Item],
        enter: bool = False,
    ) -> None:
        """Emit from ``n`` until ``stop`` (a merge point the caller continues at), a halt, or a
        ``continue``/``break`` of the innermost loop. ``enter``: ``n`` is the header of the
        innermost loop, emitted for the first time inside its ``while``."""
        tr = self.tr
        first = enter
        while n is not None and n != stop:
            if loops and not first:
                h, _body, follow = loops[-1]
                if n == h:
                    out.append(_Item("sol", "continue;"))
                    return
                if n == follow:
                    out.append(_Item("sol", "break;"))
                    return
                for h2, _b2, f2 in loops[:-1]:
                    if n in (h2, f2):
                        raise _Unstructured("a jump out of nested loops")
            if not first and n in self.loops:
                follow = self.loop_follow(n)
                out.append(_Item("open", "while (true) {"))
                self.seq(n, None, [*loops, (n, frozenset(self.loops[n]), follow)], out, enter=True)
                out.append(_Item("close", "}"))
                n = follow
                continue
            first = False
            out.extend(tr.block_items(n))
            t = tr.blocks[n].term
            if t[0] == "halt":
                return
            if t[0] == "jump":
                out.extend(tr.copies(n, t[1]))
                n = t[1]
                continue
            _, tl, fl, c = t
            m = self.ipdom.get(n)
            if m == self.EXIT:
                m = None
            if loops and m is not None and m not in loops[-1][1] and m != loops[-1][2]:
                m = None
            if m is None:
                small_is_t = (len(self.reach(tl)), not self.only_reverts(tl)) <= (
                    len(self.reach(fl)),
                    not self.only_reverts(fl),
                )
                small, big = (tl, fl) if small_is_t else (fl, tl)
                text, is_sol = tr.cond(c, negate=not small_is_t)
                body: list[_Item] = list(tr.copies(n, small))
                self.seq(small, None, loops, body)
                self._emit_if(out, text, is_sol, body, None, tr.cond(c, negate=small_is_t))
                out.extend(tr.copies(n, big))
                n = big
                continue
            if m == tl or m == fl:
                other = fl if m == tl else tl
                text, is_sol = tr.cond(c, negate=(m == tl))
                body = list(tr.copies(n, other))
                self.seq(other, m, loops, body)
                self._emit_if(
                    out, text, is_sol, body, tr.copies(n, m) or None, tr.cond(c, negate=(m != tl))
                )
                n = m
                continue
            text, is_sol = tr.cond(c)
            body = list(tr.copies(n, tl))
            self.seq(tl, m, loops, body)
            els = list(tr.copies(n, fl))
            self.seq(fl, m, loops, els)
            self._emit_if(out, text, is_sol, body, els)
            n = m

    def _emit_if(
        self,
        out: list[_Item],
        text: str,
        is_sol: bool,
        body: list[_Item],
        els: list[_Item] | None,
        alt: tuple[str, bool] | None = None,
    ) -> None:
        """``if (text) { body } else { els }``; ``alt``: the negated condition, for
        ``require(alt, reason)`` when the body is only a revert."""
        if not body and not els:
            return  # conditions have no effects
        if text in ("!true", "false") and not els:
            return  # a test the declared parameters already passed
        if not body and els and alt is not None:
            text, is_sol, body, els, alt = alt[0], alt[1], els, None, (text, is_sol)
        if (
            els is None
            and alt is not None
            and alt[1]
            and is_sol
            and len(body) == 1
            and body[0].kind == "sol"
            and body[0].text.startswith("revert(")
        ):
            reason = body[0].text[len("revert(") : -2]
            c = _unparen(alt[0])
            out.append(_Item("sol", f"require({c}{', ' + reason if reason else ''});"))
            return
        if not is_sol:
            self.tr.n_conds += 1
            var = f"__c{self.tr.n_conds}"
            out.append(_Item("decl", f"uint256 {var};"))
            out.append(_Item("asm", f"{var} := {text}"))
            text = f"{var} != 0"
        out.append(_Item("open", f"if ({_unparen(text)}) {{"))
        out.extend(body)
        if els:
            out.append(_Item("mid", "} else {"))
            out.extend(els)
        out.append(_Item("close", "}"))


def _plain_addr(w: str, addr_names: frozenset[str]) -> str | None:
    """``a`` when the word text ``w`` is ``uint256(uint160(a))`` of ``msg.sender``,
    ``tx.origin``, ``address(…)`` or an identifier in ``addr_names`` (declared
    ``address``): converting it back to ``address`` gives ``a`` itself."""
    pre = "uint256(uint160("
    if not (w.startswith(pre) and w.endswith("))")):
        return None
    a = w[len(pre) : -2]
    if a in ("msg.sender", "tx.origin") or (
        a.startswith("address(") and a.endswith(")") and _balanced(a[8:-1])
    ):
        return a
    return a if a in addr_names else None


def _bool_word(t: str) -> str | None:
    """``c`` when the word text ``t`` is ``(c ? uint256(1) : uint256(0))`` (a bool as a word,
    written by :meth:`_Translator.u` or for a bool variable), else None."""
    for pre in ("((", "("):
        suf = ") ? uint256(1) : uint256(0))" if pre == "((" else " ? uint256(1) : uint256(0))"
        if t.startswith(pre) and t.endswith(suf):
            c = t[len(pre) : -len(suf)]
            if _balanced(c) and (pre == "((" or re.fullmatch(r"[\w.]+", c)):
                return c
    return None


def _balanced(t: str) -> bool:
    d = 0
    for ch in t:
        d += ch == "("
        d -= ch == ")"
        if d < 0:
            return False
    return d == 0


def _state_machine(tr: _Translator) -> list[_Item]:
    """The fallback: ``while (true)`` over a block-id local; every edge sets it and continues."""
    ids = {lab: i for i, lab in enumerate(tr.order)}
    out: list[_Item] = [_Item("sol", "uint256 __block = 0;"), _Item("open", "while (true) {")]
    for lab in tr.order:
        tr.emitted.clear()
        tr.budget = 1 << 30
        out.append(_Item("open", f"if (__block == {ids[lab]}) {{  // {lab}"))
        out.extend(tr.block_items(lab))
        t = tr.blocks[lab].term
        if t[0] == "jump":
            out.extend(tr.copies(lab, t[1]))
            out.append(_Item("sol", f"__block = {ids[t[1]]};"))
            out.append(_Item("sol", "continue;"))
        elif t[0] == "jumpi":
            _, tl, fl, c = t
            text, is_sol = tr.cond(c)
            if not is_sol:
                out.append(_Item("decl", f"uint256 __c{ids[lab]};"))
                out.append(_Item("asm", f"__c{ids[lab]} := {text}"))
                text = f"__c{ids[lab]} != 0"
            out.append(_Item("open", f"if ({text}) {{"))
            out.extend(tr.copies(lab, tl))
            out.append(_Item("sol", f"__block = {ids[tl]};"))
            out.append(_Item("mid", "} else {"))
            out.extend(tr.copies(lab, fl))
            out.append(_Item("sol", f"__block = {ids[fl]};"))
            out.append(_Item("close", "}"))
            out.append(_Item("sol", "continue;"))
        elif t[0] == "multi":
            tgt = tr.yul(t[1]) if t[1] is not None else "0"
            out.append(_Item("decl", f"uint256 __j{ids[lab]};"))
            out.append(_Item("asm", f"__j{ids[lab]} := {tgt}"))
            for s in t[2]:
                out.append(_Item("open", f"if (__j{ids[lab]} == {_base(s)}) {{"))
                out.extend(tr.copies(lab, s))
                out.append(_Item("sol", f"__block = {ids[s]};"))
                out.append(_Item("sol", "continue;"))
                out.append(_Item("close", "}"))
            out.append(_Item("asm", "invalid()"))
        out.append(_Item("close", "}"))
    out.append(_Item("close", "}"))
    return out


# ---------------------------------------------------------------------------------------------
# Rendering the items
# ---------------------------------------------------------------------------------------------


def _render(items: list[_Item], indent: int, needs_map: bool) -> tuple[list[str], int, int]:
    """Lines of a body; consecutive assembly items share one ``assembly { }`` block.
    Returns (lines, statements, assembly statements)."""
    lines: list[str] = []
    n_sol = n_asm = 0
    depth = indent
    i = 0
    while i < len(items):
        it = items[i]
        pad = "    " * depth
        if it.kind in ("asm", "decl") and any(x.kind == "asm" for x in items[i : i + 64]):
            run, decls = [], []
            j = i
            while j < len(items) and items[j].kind in ("asm", "decl"):
                j += 1
            if not any(x.kind == "asm" for x in items[i:j]):
                lines.append(pad + it.text)
                i += 1
                continue
            for x in items[i:j]:
                (run if x.kind == "asm" else decls).append(x.text)
            i = j
            lines.extend(pad + d for d in decls)
            lines.append(pad + "assembly {")
            need = {name for name in _YUL_HELPERS if any(name + "(" in r for r in run)}
            if need & {"__cadd", "__csub", "__cmul"}:
                need.add("__panic")
            lines.extend(pad + "    " + h for name, h in _YUL_HELPERS.items() if name in need)
            lines.extend(pad + "    " + r for r in run)
            lines.append(pad + "}")
            n_asm += len(run)
            continue
        if it.kind == "open":
            lines.append(pad + it.text)
            if it.text != "{":
                n_sol += 1
            depth += 1
        elif it.kind == "close":
            depth -= 1
            lines.append("    " * depth + it.text)
        elif it.kind == "mid":
            lines.append("    " * (depth - 1) + it.text)
        else:
            lines.append(pad + it.text)
            if it.kind == "sol":
                n_sol += 1
        i += 1
    return lines, n_sol + n_asm, n_asm


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------


def _abi_function(
    abi: Sequence[Mapping[str, Any]] | None, selector: str | None
) -> Mapping[str, Any] | None:
    if not abi or not selector:
        return None
    from evmlm.evm.abi import selector_of

    want = int(selector, 16)
    for e in abi:
        if e.get("type", "function") == "function" and selector_of(signature_of(e)) == want:
            return e
    return None


_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


def _sol_type(
    p: Mapping[str, Any] | str, version: tuple[int, int, int], loc: str
) -> tuple[str, str | None]:
    """(Solidity type of an ABI parameter with a data location for reference types, kind:
    ``contract`` / ``enum`` / ``struct`` / ``udvt`` when the internal type is not the ABI type)."""
    if isinstance(p, str):
        t, internal = p, None
    else:
        t, internal = str(p.get("type")), p.get("internalType")
    at = " " + loc if version >= (0, 5, 0) and loc else ""
    if t.startswith(("tuple", "(")):
        if isinstance(internal, str) and internal.startswith("struct "):
            return internal[len("struct ") :] + at, "struct"
        raise DraftError(f"a tuple parameter without a struct name ({t})")
    if isinstance(internal, str) and not t.endswith("]"):
        if internal == "address payable" and t == "address":
            return internal, "payable"  # an override must repeat it (or it overrides nothing)
        if internal.startswith("contract ") and t == "address":
            return internal[len("contract ") :], "contract"
        if internal.startswith("enum ") and t == "uint8":
            return internal[len("enum ") :], "enum"
        if (
            _IDENT.fullmatch(internal.replace(".", "_"))
            and internal != t
            and not internal.startswith("address")
        ):
            return internal, "udvt"
    if (
        isinstance(internal, str)
        and t.endswith("]")
        and re.match(r"(contract|enum|struct) |address payable\[", internal)
    ):
        return re.sub(r"^(contract|enum|struct) ", "", internal) + at, "array"
    if t in ("bytes", "string") or t.endswith("]"):
        return t + at, None
    return t, None


def _header(
    fn: LiftedFunction,
    entry: Mapping[str, Any] | None,
    ctx_version: tuple[int, int, int],
    contract_mode: bool,
    specifiers: str,
    reserved: Iterable[str] = (),
    visibility: str | None = None,
    param_names: Sequence[str | None] | None = None,
) -> tuple[
    str,
    list[str] | None,
    bool,
    str,
    dict[str, tuple[str, str | None]],
    list[tuple[str, str | None]],
]:
    """(header text up to the body, argument types, has outputs, mutability, TAC argument
    name -> (Solidity identifier, kind)). Parameter names come from the ABI when they are
    identifiers that clash with nothing in ``reserved`` (state variables), else ``argI``."""
    v = ctx_version
    if fn.kind == "fallback":
        head = "fallback() external payable" if v >= (0, 6, 0) else "function () external payable"
        if not fn.payable:
            head = head.replace(" payable", "")
        return head, [], False, "payable" if fn.payable else "nonpayable", {}, []
    if fn.kind == "receive":
        return "receive() external payable", [], False, "payable", {}, []
    sig = fn.signature or (signature_of(entry) if entry else None)
    if not sig:
        raise DraftError("no signature for this selector")
    name = sig[: sig.index("(")]
    reserved = set(reserved)
    if entry is not None:
        ins: list[Any] = list(entry.get("inputs", []))
        outs: list[Any] = list(entry.get("outputs", []))
        mut = str(
            entry.get("stateMutability")
            or (
                "payable"
                if entry.get("payable")
                else "view"
                if entry.get("constant")
                else "nonpayable"
            )
        )
        types = [_canon(p) for p in ins]
    else:
        types = signature_types(sig) or []
        ins = list(types)
        outs = []
        mut = "payable" if fn.payable else "nonpayable"
    if contract_mode:  # no contract, enum or struct names are declared in a file of its own
        ins = [
            {k: x for k, x in p.items() if k != "internalType"} if isinstance(p, Mapping) else p
            for p in ins
        ]
        outs = [
            {k: x for k, x in p.items() if k != "internalType"} if isinstance(p, Mapping) else p
            for p in outs
        ]
    params, idents, used = [], {}, set()
    for i, p in enumerate(ins):
        ty, kind = _sol_type(p, v, "memory")
        pname = p.get("name") if isinstance(p, Mapping) else None
        if param_names is not None and i < len(param_names) and param_names[i]:
            pname = param_names[i]
        if not (
            isinstance(pname, str)
            and _IDENT.fullmatch(pname)
            and pname not in reserved
            and pname not in used
            and not re.fullmatch(r"(v|arg|s|cd)\d+|__\w*", pname)
        ):
            pname = f"arg{i}"
        used.add(pname)
        params.append(f"{ty} {pname}")
        idents[f"arg{i}"] = (pname, kind)
    out_sol = [_sol_type(p, v, "memory") for p in outs]
    rets = ", ".join(t for t, _k in out_sol)
    parts = [
        f"function {name}({', '.join(params)})",
        visibility if visibility in ("internal", "private") else "public",
    ]
    if visibility in ("internal", "private") and mut == "payable":
        mut = "nonpayable"  # an internal function takes no value; the caller's check ran
    if mut != "nonpayable":
        parts.append(mut)
    if specifiers:
        parts.append(specifiers)
    if rets:
        parts.append(f"returns ({rets})")
    return " ".join(parts), types, bool(outs), mut, idents, out_sol


def _canon(p: Mapping[str, Any]) -> str:
    from evmlm.evm.abi import canonical_type

    return canonical_type(p)


def _event_params(
    abi: Sequence[Mapping[str, Any]] | None,
) -> dict[str, tuple[int, list[tuple[str, bool]]]]:
    """ABI events that ``emit Name(…)`` can say: non-anonymous, one per name (no overloads)."""
    from evmlm.evm.abi import topic_of

    out: dict[str, tuple[int, list[tuple[str, bool]]]] = {}
    seen: dict[str, int] = {}
    for e in abi or []:
        if e.get("type") != "event" or e.get("anonymous"):
            continue
        name = str(e.get("name"))
        seen[name] = seen.get(name, 0) + 1
        if not all(_plain(p) for p in e.get("inputs", [])):
            seen[name] += 1  # a contract, enum or user-defined type: raised in assembly
        out[name] = (
            topic_of(signature_of(e)),
            [(_canon(p), bool(p.get("indexed"))) for p in e.get("inputs", [])],
        )
    return {k: v for k, v in out.items() if seen[k] == 1}


def _event_overloads(
    abi: Sequence[Mapping[str, Any]] | None,
) -> dict[str, list[tuple[int, int, int | None]]]:
    """ABI events that share a name with another: name -> [(topic0, indexed parameters,
    data words when every data parameter is static, else None)]."""
    from evmlm.evm.abi import topic_of

    out: dict[str, list[tuple[int, int, int | None]]] = {}
    for e in abi or []:
        if e.get("type") != "event" or e.get("anonymous"):
            continue
        ins = e.get("inputs", [])
        data = [p for p in ins if not p.get("indexed")]
        static = all(_STATIC.fullmatch(_canon(p)) for p in data)
        out.setdefault(str(e.get("name")), []).append(
            (
                topic_of(signature_of(e)),
                len(ins) - len(data),
                len(data) if static else None,
            )
        )
    return {k: v for k, v in out.items() if len(v) > 1}


def _overloaded_events(blocks: dict[str, _Block], ctx: _Ctx) -> None:
    """The lifter names a log by its event's name, which overloads share (ERC-677's
    ``Transfer(address,address,uint256,bytes)`` beside ERC-20's): an ``EMIT`` of an
    overloaded name is renamed ``Name#topic0`` (``ctx.events`` gains it) when exactly one
    overload has its number of topics and its data size (a constant ``32·k`` for static
    data, not a constant for dynamic data); else the name keeps the last overload's topic."""
    if not ctx.event_overloads:
        return
    w = _Words(blocks)
    for b in blocks.values():
        for k, st in enumerate(b.stmts):
            name = st.args[0].name if st.op == "EMIT" and isinstance(st.args[0], tac.Var) else ""
            cands = ctx.event_overloads.get(name)
            if not cands:
                continue
            n = w.size(st.args[2], st.args[1])
            fit = [
                t
                for t, n_idx, words in cands
                if n_idx == len(st.args) - 3
                and (words is None) == (n is None)
                and (n is None or n == 32 * (words or 0))
            ]
            if len(fit) == 1:
                key = f"{name}#{fit[0] >> 224:08x}"
                ctx.events[key] = fit[0]
                b.stmts[k] = tac.Stmt(st.lhs, "EMIT", (tac.Var(key), *st.args[1:]), st.note)


def _plain(p: Mapping[str, Any]) -> bool:
    """An ABI parameter whose Solidity type is its ABI type."""
    it = p.get("internalType")
    return it is None or it == p.get("type") or it == "address payable"


def _error_params(abi: Sequence[Mapping[str, Any]] | None) -> dict[str, tuple[int, list[str]]]:
    """Custom errors by name (one per name): the ABI's, then the common ones."""
    out: dict[str, tuple[int, list[str]]] = {}
    for sel, (name, sig) in COMMON_ERRORS.items():
        if name not in ("Error", "Panic"):
            out[name] = (sel << 224, signature_types(sig) or [])
    seen: dict[str, int] = {}
    for e in abi or []:
        if e.get("type") == "error":
            name = str(e.get("name"))
            seen[name] = seen.get(name, 0) + 1
            sig = signature_of(e)
            from evmlm.evm.abi import selector_of

            out[name] = (selector_of(sig) << 224, [_canon(p) for p in e.get("inputs", [])])
            if not all(_plain(p) for p in e.get("inputs", [])):
                seen[name] += 1
    return {k: v for k, v in out.items() if seen.get(k, 1) == 1}


def _events_errors(
    abi: Sequence[Mapping[str, Any]] | None,
) -> tuple[dict[str, int], dict[str, int]]:
    info = AbiInfo.from_abi(list(abi) if abi else None)
    events: dict[str, int] = {}
    errors: dict[str, int] = {}
    for topic, (name, _sig) in list(COMMON_EVENTS.items()) + list(info.events.items()):
        events[name] = topic
    for sel, (name, _sig) in list(COMMON_ERRORS.items()) + list(info.errors.items()):
        errors[name] = sel << 224
    return events, errors


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


#: Estimated stack slots (locals, parameters, returns) above which values live in a memory
#: array instead (legacy code generation reaches 16 slots: "Stack too deep").
SPILL_ABOVE = 11


def _dead_code(order: list[str], blocks: dict[str, _Block]) -> None:
    """Drop side-effect-free definitions (and PHIs) whose values are unused, to a fixpoint."""
    from evmlm.evm.ssa import NO_EFFECT

    while True:
        used: set[str] = set()
        for lab in order:
            b = blocks[lab]
            for st in b.stmts:
                for a in st.args:
                    used.update(_vars(a))
            if b.term[0] == "jumpi":
                used.update(_vars(b.term[3]))
            if b.term[0] == "multi" and b.term[1] is not None:
                used.update(_vars(b.term[1]))
            for _lhs, ops in b.phis:
                for o in ops.values():
                    used.update(_vars(o))
        removed = False
        for lab in order:
            b = blocks[lab]
            keep = [
                st
                for st in b.stmts
                if not (st.lhs and st.lhs not in used and (st.op in NO_EFFECT or st.op is None))
            ]
            phis = [ph for ph in b.phis if ph[0] in used]
            if len(keep) != len(b.stmts) or len(phis) != len(b.phis):
                b.stmts, b.phis = keep, phis
                removed = True
        if not removed:
            return


_STATIC_OUT = re.compile(r"u?int\d*|address|bool|bytes([1-9]|[12]\d|3[0-2])")


class _Words:
    """Words an ABI encoding stored at ``p = mload(0x40)`` before a RETURN or a LOG that
    reads ``[p, p + 32·k)``: found in the statement's block before it and in the
    single-predecessor blocks on the straight path to it, with no call or memory copy in
    between."""

    def __init__(self, blocks: dict[str, _Block]) -> None:
        self.blocks = blocks
        self.defs = {s.lhs: s for b in blocks.values() for s in b.stmts if s.lhs}

    def is_fmp(self, o: tac.Operand) -> bool:
        d = self.defs.get(o.name) if isinstance(o, tac.Var) else None
        return d is not None and d.op == "MLOAD" and d.args == (tac.Const(0x40),)

    def lin(self, o: tac.Operand, depth: int = 0) -> tuple[int, int] | None:
        """``o`` as ``a·fmp + c`` (fmp: the free memory pointer, every ``mload(0x40)`` on the
        path being the same value), or None."""
        if isinstance(o, tac.Const):
            return 0, o.value
        if self.is_fmp(o):
            return 1, 0
        d = self.defs.get(o.name) if isinstance(o, tac.Var) else None
        if d is None or depth > 12 or d.op not in ("ADD", "SUB") or len(d.args) != 2:
            return None
        x, y = self.lin(d.args[0], depth + 1), self.lin(d.args[1], depth + 1)
        if x is None or y is None:
            return None
        sign = 1 if d.op == "ADD" else -1
        return x[0] + sign * y[0], (x[1] + sign * y[1]) % (1 << 256)

    def offset(self, o: tac.Operand, base: tac.Operand) -> int | None:
        a, b = self.lin(o), self.lin(base)
        if a is None or b is None or a[0] != b[0]:
            return None
        return (a[1] - b[1]) % (1 << 256)

    def size(self, n: tac.Operand, p: tac.Operand) -> int | None:
        a = self.lin(n)
        return a[1] if a is not None and a[0] == 0 else None

    def find(self, lab: str, stmt: tac.Stmt, p: tac.Operand, k: int) -> list[tac.Stmt] | None:
        """The k stores (in word order), or None."""
        path = _straight_path(lab, self.blocks)
        values: dict[int, tac.Stmt] = {}
        for blab in path:
            stmts = self.blocks[blab].stmts
            if blab == lab:
                stmts = stmts[: next(i for i, x in enumerate(stmts) if x is stmt)]
            for st in reversed(stmts):
                if st.op == "MSTORE" and (off := self.offset(st.args[0], p)) is not None:
                    if off % 32 or off >= 32 * k:
                        return None
                    values.setdefault(off // 32, st)
                elif st.op in _MEMORY_BARRIERS:
                    return None
            if len(values) == k:
                break
        if len(values) != k:
            return None
        return [values[j] for j in range(k)]

    def drop(self, stores: list[tac.Stmt]) -> None:
        ids = {id(x) for x in stores}
        for b in self.blocks.values():
            if any(id(x) in ids for x in b.stmts):
                b.stmts = [x for x in b.stmts if id(x) not in ids]


_STATIC = re.compile(r"u?int\d*|address|bool|bytes([1-9]|[12]\d|3[0-2])")


def _typed_returns(order: list[str], blocks: dict[str, _Block], out_types: list[str]) -> None:
    """``RETURN(p, 32·k)`` of words stored at ``p = mload(0x40)`` -> ``RETURNVALUES(x1…xk)``
    (a Solidity ``return``) when the function returns k static value types."""
    k = len(out_types)
    if not k or not all(_STATIC.fullmatch(t) for t in out_types):
        return
    w = _Words(blocks)
    for lab in order:
        b = blocks[lab]
        if b.term[0] != "halt" or b.term[1].op != "RETURN":
            continue
        ret = b.term[1]
        p, n = ret.args
        if not w.is_fmp(p) or w.size(n, p) != 32 * k:
            continue
        stores = w.find(lab, ret, p, k)
        if stores is None:
            continue
        w.drop(stores)
        new = tac.Stmt(None, "RETURNVALUES", tuple(x.args[1] for x in stores))
        b.stmts = [x for x in b.stmts if x is not ret] + [new]
        b.term = ("halt", new)


def _typed_events(
    order: list[str],
    blocks: dict[str, _Block],
    events: Mapping[str, tuple[int, list[tuple[str, bool]]]],
) -> None:
    """``EMIT(Name, p, 32·k, topics…)`` of an ABI event with static parameters whose data
    words were stored at ``p = mload(0x40)`` -> ``EMITVALUES(Name, args in declared order)``."""
    w = _Words(blocks)
    for lab in order:
        b = blocks[lab]
        for i, st in enumerate(list(b.stmts)):
            if (
                st.op != "EMIT"
                or not isinstance(st.args[0], tac.Var)
                or st.args[0].name not in events
            ):
                continue
            _topic, params = events[st.args[0].name]
            data = [t for t, ix in params if not ix]
            n_idx = sum(1 for _t, ix in params if ix)
            if n_idx != len(st.args) - 3 or not all(_STATIC.fullmatch(t) for t, _ in params):
                continue
            p, n = st.args[1], st.args[2]
            if w.size(n, p) != 32 * len(data) or (data and not w.is_fmp(p)):
                continue
            stores = w.find(lab, st, p, len(data)) if data else []
            if stores is None:
                continue
            w.drop(stores)
            words, topics = iter(x.args[1] for x in stores), iter(st.args[3:])
            args = tuple(next(topics) if ix else next(words) for _t, ix in params)
            new = tac.Stmt(None, "EMITVALUES", (st.args[0], *args))
            b.stmts = [new if x is st else x for x in b.stmts]


def _typed_errors(
    order: list[str], blocks: dict[str, _Block], errors: Mapping[str, tuple[int, list[str]]]
) -> None:
    """``ERROR(p, Name)``, argument words at ``p + 4 + 32·i``, ``REVERT(p, 4 + 32·k)`` on a
    straight path -> ``REVERTERROR(Name, args…)`` (``revert Name(args)``) for custom errors
    with static parameters. The revert may sit in a block shared by several raising blocks
    (its size a PHI): each raising block then halts itself."""
    w = _Words(blocks)

    def search(
        lab: str, before: tac.Stmt | None, q: tac.Operand, size: int | None
    ) -> tac.Stmt | None:
        path = _straight_path(lab, blocks)
        found = None
        words: dict[int, tac.Stmt] = {}
        for blab in path:
            stmts = blocks[blab].stmts
            if blab == lab and before is not None:
                stmts = stmts[: next(i for i, x in enumerate(stmts) if x is before)]
            for st in reversed(stmts):
                if (
                    st.op == "ERROR"
                    and isinstance(st.args[1], tac.Var)
                    and w.offset(st.args[0], q) == 0
                ):
                    found = st
                    break
                if (
                    st.op == "MSTORE"
                    and (off := w.offset(st.args[0], q)) is not None
                    and off >= 4
                    and (off - 4) % 32 == 0
                ):
                    words.setdefault((off - 4) // 32, st)
                elif st.op in _MEMORY_BARRIERS:
                    return None
            if found is not None:
                break
        if found is None:
            return None
        name = found.args[1].name  # type: ignore[union-attr]
        if name not in errors:
            return None
        types = errors[name][1]
        if (
            size != 4 + 32 * len(types)
            or set(words) != set(range(len(types)))
            or not all(_STATIC.fullmatch(t) for t in types)
        ):
            return None
        w.drop([found, *words.values()])
        return tac.Stmt(
            None, "REVERTERROR", (found.args[1], *(words[i].args[1] for i in range(len(types))))
        )

    for lab in order:
        b = blocks[lab]
        if b.term[0] != "halt" or b.term[1].op != "REVERT":
            continue
        rev = b.term[1]
        q, n = rev.args
        if not w.is_fmp(q):
            continue
        new = search(lab, rev, q, w.size(n, q))
        if new is not None:
            b.stmts = [x for x in b.stmts if x is not rev] + [new]
            b.term = ("halt", new)
            continue
        # a shared revert block: only loads and arithmetic, its size a PHI over the raisers
        d = w.defs.get(n.name) if isinstance(n, tac.Var) else None
        phis = {lhs: ops for lhs, ops in b.phis}
        if (
            d is None
            or d.op != "SUB"
            or not isinstance(d.args[0], tac.Var)
            or d.args[0].name not in phis
            or w.offset(d.args[1], q) != 0
        ):
            continue
        if any(x.op not in ("MLOAD", "SUB", "ADD") and x is not rev for x in b.stmts):
            continue
        ops = phis[d.args[0].name]
        for pred in list(b.preds):
            pb = blocks[pred]
            if pb.term != ("jump", lab) or pred not in ops:
                continue
            new = search(pred, None, q, w.offset(ops[pred], q))
            if new is None:
                continue
            pb.stmts.append(new)
            pb.term = ("halt", new)
            b.preds.remove(pred)


def _straight_path(lab: str, blocks: dict[str, _Block]) -> list[str]:
    """``lab`` and the blocks that only jump into it, back to the first join (at most 6)."""
    path = [lab]
    while (
        len(path) < 6
        and len(blocks[path[-1]].preds) == 1
        and blocks[blocks[path[-1]].preds[0]].term[0] == "jump"
    ):
        path.append(blocks[path[-1]].preds[0])
    return path


def _const_stores(
    blocks: dict[str, _Block], lab: str, before: tac.Stmt, offsets: set[int]
) -> dict[int, tac.Stmt] | None:
    """The last ``MSTORE(c, x)`` at each constant offset ``c`` in ``offsets`` before
    ``before`` on the straight path to it; None when any other memory write or call lies in
    between or an offset is not found."""
    found: dict[int, tac.Stmt] = {}
    for blab in _straight_path(lab, blocks):
        stmts = blocks[blab].stmts
        if blab == lab:
            stmts = stmts[: next(i for i, x in enumerate(stmts) if x is before)]
        for st in reversed(stmts):
            if (
                st.op in ("MSTORE", "ERROR")
                and isinstance(st.args[0], tac.Const)
                and st.args[0].value in offsets
            ):
                found.setdefault(st.args[0].value, st)
                if len(found) == len(offsets):
                    return found
            elif st.op in _MEMORY_BARRIERS:
                return None
    return None


def _fmp_valid_out(
    order: list[str], blocks: dict[str, _Block], skip: frozenset[int]
) -> dict[str, bool]:
    """Per block, whether the free memory pointer is valid at its end on every path from the
    entry (a forward must-analysis to a fixpoint): a store that may clobber it
    (:func:`_fmp_clobbered`) makes it invalid, a store of the pointer plus a constant (an
    allocation, or Solady's restore of a saved ``mload(0x40)``) valid again. Statements whose
    id is in ``skip`` are not counted."""
    w = _Words(blocks)
    out = {lab: True for lab in order}
    changed = True
    while changed:
        changed = False
        for lab in order:
            b = blocks[lab]
            v = all(out.get(p, True) for p in b.preds) if b.preds else True
            for st in b.stmts:
                if id(st) in skip:
                    continue
                if st.op == "MSTORE" and st.args[0] == tac.Const(0x40):
                    v = not _clobbers(st, w)
                elif _clobbers(st, w):
                    v = False
            if out[lab] != v:
                out[lab] = v
                changed = True
    return out


def _fmp_clobbered(blocks: dict[str, _Block], skip: frozenset[int] = frozenset()) -> bool:
    """Whether a statement may leave the free memory pointer (``[0x40, 0x60)``) invalid:
    inline assembly (Solady) uses it as scratch (``mstore(0x40, to)``, ``mstore(0x2c, …)``)
    and restores it later, so Solidity code that allocates (``abi.encode``) must not replace
    scratch-space code there. A store at 0x40 of the free memory pointer plus a constant (an
    allocation) keeps it valid. Statements whose id is in ``skip`` are not counted."""
    w = _Words(blocks)
    return any(id(st) not in skip and _clobbers(st, w) for b in blocks.values() for st in b.stmts)


def _clobbers(st: tac.Stmt, w: _Words) -> bool:
    """Whether ``st`` may leave the free memory pointer invalid (see :func:`_fmp_clobbered`)."""

    def hits(dst: tac.Operand, size: tac.Operand | None) -> bool:
        if not isinstance(dst, tac.Const) or dst.value >= 0x60:
            return False
        if size is None:
            return dst.value + 32 > 0x40
        return not isinstance(size, tac.Const) or dst.value + size.value > 0x40

    a = st.args
    if st.op == "MSTORE":
        if a[0] == tac.Const(0x40):
            v = w.lin(a[1])
            return v is None or v[0] != 1 or v[1] >= 1 << 255
        return hits(a[0], None)
    if st.op == "MSTORE8" and isinstance(a[0], tac.Const):
        return 0x40 <= a[0].value < 0x60
    if st.op in ("CALLDATACOPY", "CODECOPY", "RETURNDATACOPY", "MCOPY"):
        return hits(a[0], a[-1])
    if st.op == "EXTCODECOPY":
        return hits(a[1], a[3])
    if st.op in ("CALL", "CALLCODE"):
        return hits(a[5], a[6])
    if st.op in ("STATICCALL", "DELEGATECALL"):
        return hits(a[4], a[5])
    return False


def _block_of(blocks: dict[str, _Block], st: tac.Stmt) -> str | None:
    return next((lab for lab, b in blocks.items() if any(x is st for x in b.stmts)), None)


def _scratch_errors(
    order: list[str],
    blocks: dict[str, _Block],
    errors: Mapping[str, tuple[int, list[str]]],
    nameable: frozenset[str],
) -> None:
    """A custom error written in scratch space, the inline-assembly idiom
    ``mstore(0, selector) [mstore(0x20, a) …] revert(0x1c, 4 + 32·k)`` (Solady and others),
    -> ``REVERTERROR(Name, a…)`` (``revert Name(a…);``) when the selector is that of an error
    in ``nameable``, with k static parameters. The revert data are the same bytes
    (ABI encoding: selector, then one word per static argument); only scratch memory, dead
    after the revert, is no longer written. ``Panic(code)`` raised so becomes ``PANIC(code)``
    (a Solidity statement raising it where there is one)."""
    by_sel = {
        sel >> 224: (name, types)
        for name, (sel, types) in errors.items()
        if name in nameable and all(_STATIC.fullmatch(t) for t in types)
    }
    pending: list[tuple[_Block, tac.Stmt, list[tac.Stmt], tac.Stmt]] = []
    for lab in order:
        b = blocks[lab]
        if b.term[0] != "halt" or b.term[1].op != "REVERT":
            continue
        rev = b.term[1]
        q, n = rev.args
        if not (isinstance(q, tac.Const) and q.value in (0, 28) and isinstance(n, tac.Const)):
            continue
        if n.value < 4 or (n.value - 4) % 32:
            continue
        k = (n.value - 4) // 32
        # at 0x1c: the selector is the low 4 bytes of word 0, argument j is word j + 1; at 0
        # (via-IR): the selector is the top 4 bytes of word 0, argument j is at 4 + 32·j and
        # overwrites the rest of word 0, so word 0 must be written first
        at = [4 + 32 * j for j in range(k)] if q.value == 0 else [32 * (j + 1) for j in range(k)]
        stores = _const_stores(blocks, lab, rev, {0, *at})
        if stores is None or any(stores[o].op != "MSTORE" for o in at):
            continue
        w0 = stores[0]
        if w0.op == "ERROR":  # the lifter's name for a known selector word at 0
            named = errors.get(w0.args[1].name) if isinstance(w0.args[1], tac.Var) else None
            if named is None or q.value != 0:
                continue
            sel = named[0]
        elif isinstance(w0.args[1], tac.Const):
            sel = w0.args[1].value
        else:
            continue
        if q.value == 0:
            sel >>= 224
            pos = {id(x): i for b_ in blocks.values() for i, x in enumerate(b_.stmts)}
            first = stores[0]
            if k and any(
                _block_of(blocks, x) == _block_of(blocks, first)
                and pos[id(x)] < pos[id(first)]
                or _block_of(blocks, x) != _block_of(blocks, first)
                for x in (stores[o] for o in at)
            ):
                continue
        if sel == PANIC_WORD >> 224 and k == 1:  # Panic(uint256): as the compiler raises it
            _Words(blocks).drop(list(stores.values()))
            new = tac.Stmt(None, "PANIC", (stores[at[0]].args[1],))
            b.stmts = [x for x in b.stmts if x is not rev] + [new]
            b.term = ("halt", new)
            continue
        hit = by_sel.get(sel)
        if hit is None or len(hit[1]) != k:
            continue
        new = tac.Stmt(None, "REVERTERROR", (tac.Var(hit[0]), *(stores[o].args[1] for o in at)))
        pending.append((b, rev, list(stores.values()), new))
    # the stores of these errors lie on straight paths to their reverts: they cannot change
    # the free memory pointer anywhere else
    if not pending:
        return
    valid = _fmp_valid_out(order, blocks, frozenset(id(x) for p in pending for x in p[2]))
    for b, rev, dead, new in pending:
        if not valid.get(b.label, False):
            continue  # Solidity would encode the data at an invalid free memory pointer
        _Words(blocks).drop(dead)
        b.stmts = [x for x in b.stmts if x is not rev] + [new]
        b.term = ("halt", new)


# memory ranges a statement reads: op -> (offset argument, size argument or a constant size)
_MEMORY_READS: dict[str, tuple[int, int | tac.Const]] = {
    "MLOAD": (0, tac.Const(32)),
    "KECCAK256": (0, 1),
    "RETURN": (0, 1),
    "REVERT": (0, 1),
    "LOG0": (0, 1),
    "LOG1": (0, 1),
    "LOG2": (0, 1),
    "LOG3": (0, 1),
    "LOG4": (0, 1),
    "EMIT": (1, 2),
    "MCOPY": (1, 2),
    "CREATE": (1, 2),
    "CREATE2": (1, 2),
    "CALL": (3, 4),
    "CALLCODE": (3, 4),
    "DELEGATECALL": (2, 3),
    "STATICCALL": (2, 3),
}
#: statements that read no memory (besides those in _MEMORY_READS and the pure ones)
_NO_MEMORY_READ = frozenset(
    {"MSTORE", "MSTORE8", "SSTORE", "SLOAD", "TSTORE", "TLOAD", "CALLDATACOPY", "CODECOPY"}
    | {"RETURNDATACOPY", "EXTCODECOPY", "STOP", "INVALID", "PANIC", "SELFDESTRUCT", "ERROR"}
    | {"RETURNVALUES", "REVERTERROR", "EMITVALUES", "HASHWORD"}
)


def _scratch_unread(blocks: dict[str, _Block], skip: set[int]) -> bool:
    """Whether no statement (but those whose id is in ``skip``) reads scratch space
    (``[0, 64)``): every memory read is at a constant offset >= 64, of size 0, or at the free
    memory pointer plus a constant (the pointer is >= 0x80: Solidity docs, "Layout in
    Memory")."""
    w = _Words(blocks)
    for b in blocks.values():
        for st in b.stmts:
            op = st.op
            if id(st) in skip or op is None or op in PURE or op in ENV_CONST:
                continue
            if op in _NO_MEMORY_READ or op in READS and op not in _MEMORY_READS:
                continue
            if op not in _MEMORY_READS:
                return False
            i, n = _MEMORY_READS[op]
            size = n if isinstance(n, tac.Const) else st.args[n]
            if isinstance(size, tac.Const) and size.value == 0:
                continue
            at = w.lin(st.args[i])
            if at is None or at[0] not in (0, 1) or at[0] == 0 and at[1] < 64:
                return False
            if at[0] == 1 and at[1] >= 1 << 255:
                return False
    return True


def _hashed_words(order: list[str], blocks: dict[str, _Block]) -> None:
    """``MSTORE(0, x)`` then ``KECCAK256(0, 32)`` (the data area of a dynamic storage array,
    a hashed key) -> ``HASHWORD(x)`` (``uint256(keccak256(abi.encode(x)))``: the ABI
    encoding of one uint256 is its 32-byte word, Solidity docs "Contract ABI
    Specification"). When nothing else reads scratch space, the stores into it (at 0 and
    0x20: hashing a mapping key or an array slot that the lifter folded into the key) are
    dead and are dropped."""
    stores: list[tac.Stmt] = []
    hashes: set[int] = set()
    for lab in order:
        b = blocks[lab]
        for i, st in enumerate(b.stmts):
            if st.op != "KECCAK256" or st.args != (tac.Const(0), tac.Const(32)):
                continue
            found = _const_stores(blocks, lab, st, {0})
            if found is None:
                continue
            x = found[0].args[1]
            if isinstance(x, tac.Const):  # a constant's hash is a constant (as the lifter folds)
                h = int.from_bytes(keccak(x.value.to_bytes(32, "big")), "big")
                new = tac.Stmt(st.lhs, None, (tac.Const(h),), st.note)
            else:
                new = tac.Stmt(st.lhs, "HASHWORD", (x,), st.note)
            b.stmts[i] = new
            hashes.add(id(new))
            stores.append(found[0])
    stores += [
        st
        for lab in order
        for st in blocks[lab].stmts
        if st.op == "MSTORE" and st.args[0] in (tac.Const(0), tac.Const(32))
    ]
    if stores and _scratch_unread(blocks, hashes):
        _Words(blocks).drop(stores)


# ---------------------------------------------------------------------------------------------
# ABI-encoded words at the free memory pointer -> abi.encode / abi.encodeWithSelector
# ---------------------------------------------------------------------------------------------

#: ops that read a memory range built by stores at the free memory pointer (the ABI encoding
#: of call arguments, log data, return or revert data, hashed data): (start, size) arguments
_ENCODED_SINKS = {k: v for k, v in _MEMORY_READS.items() if k not in ("MLOAD", "MCOPY")}
#: reads that neither read nor write memory, allowed between the stores and their reader
_NO_MEMORY = frozenset(
    {"SLOAD", "TLOAD", "BALANCE", "SELFBALANCE", "EXTCODESIZE", "EXTCODEHASH"}
    | {"RETURNDATASIZE", "GAS", "BLOCKHASH", "CADD", "CSUB", "CMUL"}
)


def _encoded_words(order: list[str], blocks: dict[str, _Block]) -> int:
    """Words stored at ``p = mload(0x40)`` and read at once as ``[p, p + n)`` by a call, a log,
    a return, a revert, a creation or a hash -> one Solidity ABI encoding of the words:
    ``p = ENCODE(w…)`` (``abi.encode(uint256(w)…)``, ``n = 32·k``) or ``p = ENCODESEL(s,
    w…)`` (``abi.encodeWithSelector(bytes4(bytes32(s)), uint256(w)…)``, ``n = 4 + 32·k``,
    the word at ``p`` written before the one at ``p + 4``) just before the reader, ``p``
    then being the encoding's data pointer; ``h = keccak256(p, n)`` with ``p`` used nowhere
    else -> ``h = ABIHASH(w…)`` (``uint256(keccak256(abi.encode(…)))``). The ABI encoding
    of a ``uint256`` is its 32-byte word and ``encodeWithSelector`` puts the 4 selector
    bytes first (Solidity docs, "Contract ABI Specification"): the range holds the same
    bytes.

    Found on the straight path to the reader (:func:`_straight_path`) back to ``p``'s
    definition, with nothing in between but the stores, scratch-space stores (below 0x40),
    statements that neither read nor write memory, and reads of the free memory pointer (and
    sums of them) used only by the stores' addresses and the reader's range. Solidity
    allocates the encoding (the free memory pointer moves past it; the original wrote past
    the pointer without moving it): later code addresses memory relative to ``p`` or to the
    pointer, so the bytes it reads are the same. The caller skips functions that may use the
    pointer's word as scratch (:func:`_fmp_foreign`). Returns the number of rewritten
    readers."""
    return _rewrite_each(order, blocks, _encode_one)


def _fmp_foreign(blocks: dict[str, _Block]) -> bool:
    """Whether a statement may put a value that is not a memory address into the free memory
    pointer's word (:func:`_clobbers`, but for an allocation: a store at 0x40 of a sum with
    a read of the pointer, ``mstore(0x40, add(p, size))``, and for a store in a block that
    halts without reading the pointer again): inline assembly that uses the
    word as scratch (Solady's ``mstore(0x40, to)``) reads it back as data, so Solidity code
    must not allocate (move the pointer) while it holds one."""
    w = _Words(blocks)
    for b in blocks.values():
        for k, st in enumerate(b.stmts):
            if not _clobbers(st, w):
                continue
            if b.term[0] == "halt" and not any(w.is_fmp(tac.Var(x.lhs or "")) for x in b.stmts[k:]):
                continue  # the call ends before the word is read (a bubbled revert's copy)
            d = w.defs.get(st.args[1].name) if isinstance(st.args[1], tac.Var) else None
            if (
                st.op == "MSTORE"
                and st.args[0] == tac.Const(0x40)
                and d is not None
                and d.op == "ADD"
                and any((x := w.lin(a)) is not None and x[0] == 1 for a in d.args)
            ):
                continue
            return True
    return False


def _fmp_vars(o: tac.Operand, w: _Words, depth: int = 0) -> set[str] | None:
    """The free-memory-pointer reads in ``o``'s ADD/SUB tree (None when it has other leaves
    than constants and those)."""
    if isinstance(o, tac.Const):
        return set()
    if w.is_fmp(o):
        return {o.name}  # type: ignore[union-attr]
    d = w.defs.get(o.name) if isinstance(o, tac.Var) else None
    if d is None or depth > 12 or d.op not in ("ADD", "SUB") or len(d.args) != 2:
        return None
    x, y = _fmp_vars(d.args[0], w, depth + 1), _fmp_vars(d.args[1], w, depth + 1)
    return None if x is None or y is None else x | y


def _encode_one(
    lab: str,
    i: int,
    blocks: dict[str, _Block],
    w: _Words,
    uses: dict[str, list[tuple[str, int]]],
) -> bool:
    """Rewrite the reader ``blocks[lab].stmts[i]`` (see :func:`_encoded_words`); False when it
    does not match."""
    b = blocks[lab]
    st = b.stmts[i]
    if st.op not in _ENCODED_SINKS:
        return False
    si, ni = _ENCODED_SINKS[st.op]
    start, size = st.args[si], st.args[ni]  # type: ignore[index]
    if not w.is_fmp(start):
        return False
    n = w.size(size, start)  # type: ignore[arg-type]
    if n is None or not n or n % 32 not in (0, 4) or n > 32 * 64:
        return False
    p = start.name  # type: ignore[union-attr]
    sel = n % 32 == 4
    want = {0, *(4 + 32 * j for j in range(n // 32))} if sel else set(range(0, n, 32))
    fmps = (_fmp_vars(start, w) or set()) | (_fmp_vars(size, w) or set())
    found: dict[int, tuple[int, tac.Stmt]] = {}  # offset -> (backward rank, last store)
    drop: list[tac.Stmt] = []  # the stores, the latest first
    defs: dict[str, tac.Stmt] = {}
    derived: set[str] = set()  # sums of pointer reads (addresses), defined on the path
    rank = 0
    path = _straight_path(lab, blocks)
    complete = False
    for blab in path:
        stmts = blocks[blab].stmts[:i] if blab == lab else blocks[blab].stmts
        for x in reversed(stmts):
            rank += 1
            if x.lhs is not None and w.is_fmp(tac.Var(x.lhs)):
                defs[x.lhs] = x
                if fmps <= set(defs) and len(found) == len(want):
                    complete = True
                    break
                continue
            if x.op == "MSTORE":
                off = w.offset(x.args[0], start)
                if off is not None:
                    av = _fmp_vars(x.args[0], w)
                    if off not in want or av is None:
                        return False
                    fmps |= av
                    drop.append(x)
                    found.setdefault(off, (rank, x))
                    continue
                a = x.args[0]
                if isinstance(a, tac.Const) and a.value + 32 <= 0x40:
                    continue  # scratch space: neither the range nor the pointer
                return False
            if x.op is None or x.op in PURE or x.op in ENV_CONST or x.op in _NO_MEMORY:
                if x.lhs is not None and x.op in ("ADD", "SUB"):
                    if _fmp_vars(tac.Var(x.lhs), w):
                        derived.add(x.lhs)
                continue
            return False
        if complete:
            break
    if not complete or (sel and n > 4 and found[0][0] < found[4][0]):
        return False  # (the selector word must be written before the first argument)
    words = [found[o][1].args[1] for o in sorted(want) if not sel or o]
    last = drop[0]
    selw = (found[0][1].args[1],) if sel else ()
    tainted = fmps | derived | set(defs)  # (a read of the pointer in between: the same value)
    if any(set(_vars(x)) & tainted for x in (*selw, *words)):
        return False  # a word holds the pointer itself (a dynamic offset): not a value
    dropped = {id(x) for x in drop}
    on_path = set(path)
    only_here = True  # p is used by nothing but the stores and the reader's range
    for v in tainted:
        for ulab, ui in uses.get(v, []):
            x = blocks[ulab].stmts[ui] if ulab in on_path else None
            if ulab == lab and ui == i:
                rest = [a for k, a in enumerate(st.args) if k not in (si, ni)]
                if any(v in _vars(a) for a in rest):
                    if v != p:
                        return False
                    only_here = False
            elif ulab == lab and ui > i and v == p:
                only_here = False
            elif x is not None and (id(x) in dropped or x.lhs in derived):
                if id(x) in dropped and v in _vars(x.args[1]):
                    return False
            elif v == p and ulab and ulab not in on_path:
                only_here = False
            else:
                return False
    hashed = st.op == "KECCAK256" and st.lhs is not None and only_here
    # a call's result is decoded where a new read of the pointer points (the original's
    # pointer never moved): the pointer goes back to the encoding's data ("fmp" note)
    restore = "fmp" if st.op in ("CALL", "CALLCODE", "STATICCALL", "DELEGATECALL") else None
    enc = tac.Stmt(p, "ENCODESEL" if sel else "ENCODE", (*selw, *words), restore)
    for blab in path:  # the encoding where the last store was (a read of gas() stays after)
        blocks[blab].stmts = [
            enc if x is last and not hashed else x
            for x in blocks[blab].stmts
            if id(x) not in dropped or x is last and not hashed
        ]
    blocks[_block_of(blocks, defs[p]) or lab].stmts.remove(defs[p])
    j = next(k for k, x in enumerate(b.stmts) if x is st)
    if hashed:
        b.stmts[j] = tac.Stmt(st.lhs, "ABIHASHSEL" if sel else "ABIHASH", (*selw, *words))
        return True
    args = list(st.args)
    args[si], args[ni] = tac.Var(p), tac.Const(n)
    new = tac.Stmt(st.lhs, st.op, tuple(args), st.note)
    b.stmts[j] = new
    if b.term[0] == "halt" and b.term[1] is st:
        b.term = ("halt", new)
    return True


def _allocated_encodings(order: list[str], blocks: dict[str, _Block]) -> int:
    """A ``bytes memory`` object that Solidity's ``abi.encode`` (or ``encodeWithSelector``)
    built: at ``p = mload(0x40)`` the length ``L``, the words (the selector word first) at
    ``p + 32…``, then ``mstore(0x40, p + 32 + L)`` (``L`` rounded up to 32 or not) ->
    ``p = ALLOCENC(w…)`` / ``ALLOCENCSEL(s, w…)`` where the pointer was moved (the same
    bytes, allocated the same way); ``h = keccak256(add(p, 32), mload(p))`` of such an object
    used nowhere else -> ``h = ABIHASH(w…)``. Found as in :func:`_encoded_words` (the straight
    path back from the pointer's store, nothing in between that reads or writes memory).
    Returns the number of rewritten objects."""
    return _rewrite_each(order, blocks, _allocated_one)


def _rewrite_each(
    order: list[str],
    blocks: dict[str, _Block],
    one: Callable[[str, int, dict[str, _Block], _Words, dict[str, list[tuple[str, int]]]], bool],
) -> int:
    """Apply ``one(lab, i, blocks, words, uses)`` at every statement; after a rewrite the
    definitions and uses are recounted and the block is scanned again. Returns the number of
    rewrites."""
    done = 0
    w, uses = _Words(blocks), _uses(order, blocks)
    for lab in order:
        i = 0
        while i < len(blocks[lab].stmts):
            if one(lab, i, blocks, w, uses):
                done += 1
                w, uses = _Words(blocks), _uses(order, blocks)
                i = 0
                continue
            i += 1
    return done


def _uses(order: list[str], blocks: dict[str, _Block]) -> dict[str, list[tuple[str, int]]]:
    """var -> (block, statement index) of each use; ``("", 0)`` for a jump condition or a PHI
    operand."""
    uses: dict[str, list[tuple[str, int]]] = {}
    for lab in order:
        b = blocks[lab]
        for i, st in enumerate(b.stmts):
            for a in st.args:
                for v in _vars(a):
                    uses.setdefault(v, []).append((lab, i))
        t = b.term
        extra = t[3] if t[0] == "jumpi" else t[1] if t[0] == "multi" else None
        if extra is not None:
            for v in _vars(extra):
                uses.setdefault(v, []).append(("", 0))
        for _lhs, ops in b.phis:
            for o in ops.values():
                for v in _vars(o):
                    uses.setdefault(v, []).append(("", 0))
    return uses


def _allocated_one(
    lab: str,
    i: int,
    blocks: dict[str, _Block],
    w: _Words,
    uses: dict[str, list[tuple[str, int]]],
) -> bool:
    """Rewrite the object whose pointer store is ``blocks[lab].stmts[i]`` (see
    :func:`_allocated_encodings`); False when it does not match."""
    b = blocks[lab]
    bump = b.stmts[i]
    if bump.op != "MSTORE" or bump.args[0] != tac.Const(0x40):
        return False
    end = w.lin(bump.args[1])
    fmps = _fmp_vars(bump.args[1], w)
    if end is None or end[0] != 1 or not fmps or not 64 <= end[1] <= 32 * 66:
        return False
    stores: dict[int, tac.Stmt] = {}  # offset from the pointer -> the last store there
    ranks: dict[int, int] = {}
    drop: list[tac.Stmt] = []
    defs: dict[str, tac.Stmt] = {}
    derived: set[str] = set()
    path = _straight_path(lab, blocks)

    def wanted() -> set[int] | None:
        if 0 not in stores:
            return None
        n = w.lin(stores[0].args[1])
        if n is None or n[0] != 0 or n[1] % 32 not in (0, 4) or not n[1]:
            return None
        if end[1] - 32 not in (n[1], (n[1] + 31) // 32 * 32):
            return None
        if n[1] % 32 == 4:
            return {0, 32, *(36 + 32 * j for j in range(n[1] // 32))}
        return {0, *(32 + 32 * j for j in range(n[1] // 32))}

    rank, complete = 0, False
    for blab in path:
        for x in reversed(blocks[blab].stmts[:i] if blab == lab else blocks[blab].stmts):
            rank += 1
            if x.lhs is not None and w.is_fmp(tac.Var(x.lhs)):
                defs[x.lhs] = x
                want = wanted()
                if want is not None and set(stores) == want and fmps <= set(defs):
                    complete = True
                    break
                continue
            if x.op == "MSTORE":
                at = w.lin(x.args[0])
                av = _fmp_vars(x.args[0], w)
                if at is not None and at[0] == 1 and av and at[1] < end[1]:
                    fmps |= av
                    drop.append(x)
                    stores.setdefault(at[1], x)
                    ranks.setdefault(at[1], rank)
                    continue
                a = x.args[0]
                if isinstance(a, tac.Const) and a.value + 32 <= 0x40:
                    continue
                return False
            if x.op is None or x.op in PURE or x.op in ENV_CONST or x.op in _NO_MEMORY:
                if x.lhs is not None and x.op in ("ADD", "SUB") and _fmp_vars(tac.Var(x.lhs), w):
                    derived.add(x.lhs)
                continue
            return False
        if complete:
            break
    want = wanted()
    if not complete or want is None:
        return False
    sel = 32 in want and 36 in want
    if sel and ranks[32] < ranks[36]:
        return False  # the selector word after the first argument
    length = stores[0]
    if not w.is_fmp(length.args[0]):
        return False
    p = length.args[0].name  # type: ignore[union-attr]
    words = [stores[o].args[1] for o in sorted(want) if o and (not sel or o != 32)]
    selw = (stores[32].args[1],) if sel else ()
    tainted = fmps | derived | set(defs)
    if any(set(_vars(x)) & tainted for x in (*selw, *words)):
        return False
    dropped = {id(x) for x in drop}
    on_path = set(path)
    after: list[tac.Stmt] = []  # uses of p after the pointer's store, in this block
    for v in tainted:
        for ulab, ui in uses.get(v, []):
            x = blocks[ulab].stmts[ui] if ulab in on_path else None
            if x is bump or (x is not None and (id(x) in dropped or x.lhs in derived)):
                if x is not bump and x is not length and id(x) in dropped:
                    if v in _vars(x.args[1]):
                        return False
                continue
            if v == p and ulab == lab and ui > i:
                after.append(blocks[lab].stmts[ui])
            elif v == p and ulab and ulab not in on_path:
                after.append(tac.Stmt(None, "OTHER", ()))
            else:
                return False
    op = "ALLOCENCSEL" if sel else "ALLOCENC"
    enc = tac.Stmt(p, op, (*selw, *words))
    hashed = _hash_of(after, p, uses, blocks[lab].stmts)
    for blab in path:
        blocks[blab].stmts = [
            x for x in blocks[blab].stmts if id(x) not in dropped and x is not defs[p]
        ]
    if hashed is None:
        b.stmts[b.stmts.index(bump)] = enc
        return True
    h, extra = hashed
    b.stmts = [x for x in b.stmts if x is not bump and all(x is not e for e in extra)]
    j = next(k for k, x in enumerate(b.stmts) if x is h)
    b.stmts[j] = tac.Stmt(h.lhs, "ABIHASHSEL" if sel else "ABIHASH", (*selw, *words), h.note)
    return True


def _hash_of(
    after: list[tac.Stmt],
    p: str,
    uses: dict[str, list[tuple[str, int]]],
    stmts: list[tac.Stmt],
) -> tuple[tac.Stmt, list[tac.Stmt]] | None:
    """``(h, [the length read, the data address])`` when ``p``'s only uses are
    ``h = keccak256(add(p, 32), mload(p))`` (each part used once, in ``h``)."""
    m = [x for x in after if x.op == "MLOAD"]
    a = [x for x in after if x.op == "ADD"]
    if len(m) != 1 or len(a) != 1 or len(after) != 2 or m[0].lhs is None or a[0].lhs is None:
        return None
    if m[0].args != (tac.Var(p),) or set(a[0].args) != {tac.Var(p), tac.Const(32)}:
        return None
    hs = [x for x in stmts if x.op == "KECCAK256" and x.lhs is not None]
    h = next((x for x in hs if x.args == (tac.Var(a[0].lhs), tac.Var(m[0].lhs))), None)
    if h is None or len(uses.get(m[0].lhs, [])) != 1 or len(uses.get(a[0].lhs, [])) != 1:
        return None
    return h, [m[0], a[0]]


# ---------------------------------------------------------------------------------------------
# Checked arithmetic (solc >= 0.8): the compiler's overflow test + Panic(0x11) -> `a + b`
# ---------------------------------------------------------------------------------------------

_WORD = (1 << 256) - 1
_OVERFLOW = {
    "ADD": lambda x, y: x + y > _WORD,
    "SUB": lambda x, y: y > x,
    "MUL": lambda x, y: x * y > _WORD,
}
# Yul helpers for a checked operation whose operands are only sayable in assembly: the same
# test and Panic(0x11) revert data as the compiler's checked_add/sub/mul (Solidity 0.8 docs,
# "Checked or Unchecked Arithmetic"; panic codes in "Panic via assert and Error via require").
_YUL_HELPERS = {
    "__panic": (
        f"function __panic(__code) {{ mstore(0, {hex(PANIC_WORD)}) mstore(4, __code) "
        "revert(0, 0x24) }"
    ),
    "__map": (
        "function __map(__k, __p) -> __h { mstore(0, __k) mstore(0x20, __p) "
        "__h := keccak256(0, 0x40) }"
    ),
    "__hash1": "function __hash1(__x) -> __h { mstore(0, __x) __h := keccak256(0, 0x20) }",
    "__cadd": (
        "function __cadd(__x, __y) -> __z { __z := add(__x, __y) "
        "if lt(__z, __x) { __panic(0x11) } }"
    ),
    "__csub": (
        "function __csub(__x, __y) -> __z { __z := sub(__x, __y) "
        "if gt(__y, __x) { __panic(0x11) } }"
    ),
    "__cmul": (
        "function __cmul(__x, __y) -> __z { __z := mul(__x, __y) "
        "if iszero(or(iszero(__x), eq(__y, div(__z, __x)))) { __panic(0x11) } }"
    ),
}


def _samples(seed: int = 11) -> list[int]:
    import random

    rnd = random.Random(seed)
    base = [0, 1, 2, 3, 255, 256, 1 << 128, (1 << 128) - 1, 1 << 255, _WORD, _WORD - 1]
    base += [rnd.getrandbits(rnd.choice((8, 64, 128, 255, 256))) for _ in range(12)]
    return base


def _pairs(x: tac.Operand, y: tac.Operand) -> list[tuple[int, int]]:
    """Operand pairs for the overflow test: edge values and the boundaries of each operation."""
    xs = [x.value] if isinstance(x, tac.Const) else _samples()
    ys0 = [y.value] if isinstance(y, tac.Const) else _samples(12)
    out = []
    for a in xs:
        ys = list(ys0)
        if not isinstance(y, tac.Const):
            ys += [_WORD - a, (_WORD - a + 1) & _WORD, a, (a + 1) & _WORD, (a - 1) & _WORD]
            if a:
                ys += [_WORD // a, _WORD // a + 1]
        out += [(a, b & _WORD) for b in ys]
    if isinstance(x, tac.Const) and not isinstance(y, tac.Const):
        pass
    elif isinstance(y, tac.Const) and not isinstance(x, tac.Const):
        b = y.value
        out += [(a, b) for a in (_WORD - b, (_WORD - b + 1) & _WORD, b, b + 1, (b - 1) & _WORD)]
        if b:
            out += [(_WORD // b, b), ((_WORD // b + 1) & _WORD, b)]
    return out


def _is_panic11(lab: str, blocks: dict[str, _Block]) -> bool:
    seen = set()
    while lab in blocks and lab not in seen:
        seen.add(lab)
        b = blocks[lab]
        if b.stmts and not (len(b.stmts) == 1 and b.term[0] == "halt" and b.stmts[0] is b.term[1]):
            return False
        if b.term[0] == "jump":
            lab = b.term[1]
            continue
        return (
            b.term[0] == "halt" and b.term[1].op == "PANIC" and b.term[1].args == (tac.Const(0x11),)
        )
    return False


def _arith_form(s: tac.Stmt) -> tac.Stmt | None:
    """``s`` as an ADD, SUB or MUL of two operands, or None: the optimizer writes ``x - c`` as
    ``ADD(x, 2**256 - c)`` and ``x * 2**k`` as ``SHL(k, x)``."""
    if s.lhs is None or len(s.args) != 2:
        return None
    a, b = s.args
    if s.op == "ADD":
        for x, c in ((a, b), (b, a)):
            if isinstance(c, tac.Const) and c.value >= 1 << 255 and not isinstance(x, tac.Const):
                return tac.Stmt(s.lhs, "SUB", (x, tac.Const((1 << 256) - c.value)), s.note)
    if s.op == "SHL" and isinstance(a, tac.Const) and a.value < 256:
        return tac.Stmt(s.lhs, "MUL", (b, tac.Const(1 << a.value)), s.note)
    return s if s.op in _OVERFLOW else None


def _branches(
    order: list[str], blocks: dict[str, _Block]
) -> Iterable[tuple[str, _Block, str, str, Any]]:
    """``(label, block, true target, false target, condition)`` of every block in ``order``
    that ends in a ``jumpi``."""
    for lab in order:
        b = blocks[lab]
        if b.term[0] == "jumpi":
            _, t, f, cond = b.term
            yield lab, b, t, f, cond


def _decoder_size_check(order: list[str], blocks: dict[str, _Block], head: int) -> int:
    """Drop the ABI decoder's calldata size check, in place: a two-way branch whose condition
    reads only ``CALLDATASIZE`` and constants and equals ``calldatasize - 4 < n`` (signed or
    unsigned) for every size from 0 to ``head + 103`` and some large ones, with ``n <= head``
    (the parameters' head size in bytes), and whose true side is an empty ``revert(0, 0)``
    becomes a plain jump to the other side. The recompiled function declares the same
    parameter types, so the compiler's own decoder (solc >= 0.5: "revert if calldata is too
    short") makes the same check, with the same empty revert, before the body runs: the
    body's copy never fails. Returns the number of dropped checks."""
    defs = {st.lhs: st for lab in order for st in blocks[lab].stmts if st.lhs is not None}

    def ev(o: tac.Operand, cds: int, depth: int = 0) -> int:
        if isinstance(o, tac.Const):
            return o.value
        if not isinstance(o, tac.Var) or depth > 12 or o.name not in defs:
            raise KeyError
        d = defs[o.name]
        if d.op == "CALLDATASIZE":
            return cds
        if d.op is None:
            return ev(d.args[0], cds, depth + 1)
        if d.op not in PURE:
            raise KeyError
        r = fold(d.op, [ev(a, cds, depth + 1) for a in d.args])
        if r is None:
            raise KeyError
        return r

    def empty_revert(lab: str) -> bool:
        seen: set[str] = set()
        while lab in blocks and lab not in seen:
            seen.add(lab)
            t = blocks[lab].term
            if blocks[lab].stmts not in ([], [t[1]] if t[0] == "halt" else []):
                return False
            if t[0] == "jump":
                lab = t[1]
                continue
            empty = (tac.Const(0), tac.Const(0))
            return t[0] == "halt" and t[1].op == "REVERT" and t[1].args == empty
        return False

    sizes = [*range(head + 104), 1 << 32, 1 << 64, 1 << 128]
    signed = [[(c - 4) % (1 << 256) < lim or c < 4 for c in sizes] for lim in range(head + 1)]
    unsigned = [[(c - 4) % (1 << 256) < lim for c in sizes] for lim in range(1, head + 1)]
    n = 0
    for lab, b, tl, fl, cond in _branches(order, blocks):
        for fails, ok, sense in ((tl, fl, True), (fl, tl, False)):
            if not empty_revert(fails):
                continue
            try:
                got = [(ev(cond, c) != 0) == sense for c in sizes]
            except (KeyError, ZeroDivisionError, IndexError, TypeError):
                break
            if got in signed or got in unsigned:
                b.term = ("jump", ok)
                b.succ = [ok]
                n += 1
            break
    return n


def _checked_arith(order: list[str], blocks: dict[str, _Block]) -> int:
    """Fold the compiler's overflow tests back into checked operations, in place.

    A two-way branch to a ``PANIC(0x11)`` block whose condition equals, on edge and boundary
    operand values, the overflow of an ``ADD``/``SUB``/``MUL`` of the same block (the test
    after the operation, solc >= 0.8.?) or of the block it continues to (the test before it,
    older 0.8 releases) becomes a plain jump, and the operation becomes ``CADD``/``CSUB``/
    ``CMUL``: Solidity's checked ``+ - *``, which reverts with the same Panic(0x11) data.
    Returns the number of folded tests."""
    defs: dict[str, tac.Stmt] = {}
    for lab in order:
        for s in blocks[lab].stmts:
            if s.lhs is not None:
                defs[s.lhs] = s

    same: dict[tuple, str] = {}  # (op, args) of an operand's definition -> the operand

    def ev(o: tac.Operand, env: dict[str, int], depth: int = 0) -> int:
        if isinstance(o, tac.Const):
            return o.value
        if not isinstance(o, tac.Var) or depth > 12:
            raise KeyError
        if o.name in env:
            return env[o.name]
        d = defs.get(o.name)
        if d is not None and (d.op, d.args) in same:  # the same operation, computed again
            return env[same[(d.op, d.args)]]
        if d is None or d.op is None or d.op not in PURE:
            if d is not None and d.op is None:
                return ev(d.args[0], env, depth + 1)
            raise KeyError
        r = fold(d.op, [ev(a, env, depth + 1) for a in d.args])
        if r is None:
            raise KeyError
        return r

    def matches(s: tac.Stmt, cond: tac.Operand, panic_if: bool) -> bool:
        x, y = s.args
        if not all(isinstance(a, (tac.Var, tac.Const)) for a in (x, y)):
            return False
        over = _OVERFLOW[s.op]  # type: ignore[index]
        same.clear()
        for a in (x, y):
            if isinstance(a, tac.Var) and a.name in defs and defs[a.name].op in PURE:
                same.setdefault((defs[a.name].op, defs[a.name].args), a.name)
        try:
            for a, b in _pairs(x, y):
                env = {s.lhs: fold(s.op, [a, b])}  # type: ignore[arg-type, dict-item]
                if isinstance(x, tac.Var):
                    env[x.name] = a
                if isinstance(y, tac.Var):
                    if isinstance(x, tac.Var) and y.name == x.name and a != b:
                        continue
                    env[y.name] = b
                if (ev(cond, env) != 0) != (over(a, b) == panic_if):
                    return False
        except (KeyError, ZeroDivisionError, IndexError, TypeError):
            return False
        return True

    n = 0
    for lab, b, t, f, cond in _branches(order, blocks):
        if _is_panic11(t, blocks) and not _is_panic11(f, blocks):
            ok, panic_if = f, True
        elif _is_panic11(f, blocks) and not _is_panic11(t, blocks):
            ok, panic_if = t, False
        else:
            continue
        cands = [(b, i) for i in range(len(b.stmts) - 1, -1, -1)]
        prv, seen = lab, {lab}  # blocks that only fall through into this one
        while len(blocks[prv].preds) == 1 and blocks[prv].preds[0] not in seen:
            pb = blocks[blocks[prv].preds[0]]
            if pb.term != ("jump", prv) or blocks[prv].phis:
                break
            seen.add(pb.label)
            cands += [(pb, i) for i in range(len(pb.stmts) - 1, -1, -1)]
            prv = pb.label
        nxt, seen = ok, {lab}
        while nxt in blocks and nxt not in seen and len(blocks[nxt].preds) == 1:
            seen.add(nxt)
            nb = blocks[nxt]
            if nb.phis:
                break
            cands += [(nb, i) for i in range(len(nb.stmts))]
            if nb.stmts or nb.term[0] != "jump":
                break
            nxt = nb.term[1]
        for cb, i in cands:
            s = _arith_form(cb.stmts[i])
            if s is not None and matches(s, cond, panic_if):
                cb.stmts[i] = tac.Stmt(s.lhs, "C" + s.op, s.args, s.note)  # type: ignore[operator]
                b.term = ("jump", ok)
                b.succ = [ok]
                n += 1
                break
    return n


def _reachable(order: list[str], blocks: dict[str, _Block]) -> list[str]:
    """The blocks reachable from the entry (``order[0]``), in order; predecessor lists redone."""
    seen, stack = {order[0]}, [order[0]]
    while stack:
        for x in _succ(blocks[stack.pop()]):
            if x in blocks and x not in seen:
                seen.add(x)
                stack.append(x)
    order = [x for x in order if x in seen]
    for x in order:
        blocks[x].preds = []
    for x in order:
        for y in _succ(blocks[x]):
            if x not in blocks[y].preds:
                blocks[y].preds.append(x)
    return order


_DECL = re.compile(r"(uint256|int256|bool|bytes32|bytes memory) (\w+) = (.*);")


def _unchecked(items: list[_Item]) -> list[_Item]:
    """Put each Solidity statement with wrapping arithmetic (marked ``WRAP``) in its own
    ``unchecked { }``; everything else stays checked, so that a folded overflow test is a
    checked ``+``. A declaration becomes ``T v; unchecked { v = …; }``; an ``if`` condition is
    computed into the bool ``__u`` first (one top-level local, read at once by the ``if``)."""
    out: list[_Item] = []
    need_u = False
    for it in items:
        if WRAP not in it.text:
            out.append(it)
            continue
        text = it.text.replace(WRAP, "")
        if it.kind == "open" and text.startswith("if (") and text.endswith(") {"):
            need_u = True
            out.append(_Item("aux", f"unchecked {{ __u = {text[4:-3]}; }}"))
            out.append(_Item("open", "if (__u) {"))
            continue
        if it.kind != "sol":
            raise DraftError(f"wrapping arithmetic in {it.kind} item {text!r}")
        m = re.fullmatch(r"(.*;)(\s*//.*)?", text)
        stmt, comment = (m.group(1), m.group(2) or "") if m else (text, "")
        d = _DECL.fullmatch(stmt)
        if d:
            t, v, e = d.groups()
            out.append(_Item("sol", f"{t} {v}; unchecked {{ {v} = {e}; }}{comment}"))
        else:
            out.append(_Item("sol", f"unchecked {{ {stmt} }}{comment}"))
    if need_u:
        out.insert(0, _Item("decl", "bool __u;"))
    return out


def _translate(fn: LiftedFunction, ctx: _Ctx, n_outputs: int = 0) -> tuple[list[_Item], bool, bool]:
    f = tac.parse_function(fn.tac)
    order, blocks = _prepare(f, ctx.payable)
    if ctx.checked and _checked_arith(order, blocks):
        order = _reachable(order, blocks)
    if ctx.version >= (0, 5, 0) and ctx.arg_types is not None and fn.kind == "public":
        head = 32 * sum(_head_words(t) for t in ctx.arg_types)
        if _decoder_size_check(order, blocks, head):
            order = _reachable(order, blocks)
    _overloaded_events(blocks, ctx)
    _typed_returns(order, blocks, ctx.out_types)
    _typed_events(order, blocks, ctx.event_params)
    _typed_errors(order, blocks, ctx.error_params)
    # from 0.8 an error the function cannot name is still ABI-encoded by Solidity
    sayable = ctx.solidity_errors if ctx.version < (0, 8, 0) else frozenset(ctx.error_params)
    _scratch_errors(order, blocks, ctx.error_params, sayable)
    ctx.fmp_clobbered = _fmp_clobbered(blocks)
    _hashed_words(order, blocks)
    if ctx.version >= (0, 5, 0) and not _fmp_foreign(blocks):
        _allocated_encodings(order, blocks)
        _encoded_words(order, blocks)
    unmerged = (list(order), copy.deepcopy(blocks))
    order = _merge_straight(order, blocks)
    _dead_code(order, blocks)
    tr = _Translator(order, blocks, ctx)
    local = _locals(tr)
    per_block: dict[str, int] = {}
    for v in local:
        if v not in tr.cross and v in tr.defs:
            per_block[tr.defs[v][0]] = per_block.get(tr.defs[v][0], 0) + 1
    pressure = len(tr.cross) + max(per_block.values(), default=0) + len(ctx.idents) + n_outputs
    if pressure > SPILL_ABOVE:
        # spilled locals live in memory: keep the original blocks (and so the inlining of
        # memory reads as it was), which the behaviour checks measured as the same
        order, blocks = unmerged
        _dead_code(order, blocks)
        tr = _Translator(order, blocks, ctx)
        local = _locals(tr)
        ctx.spill.update({v: i for i, v in enumerate(sorted(set(local), key=_var_key))})
        tr = _Translator(order, blocks, ctx)
    try:
        items = _Structurer(tr).run()
        structured = True
    except _Unstructured as e:
        log.debug("%s: state machine (%s)", fn.name, e)
        tr = _Translator(order, blocks, ctx)
        items = _state_machine(tr)
        structured = False
    if items and items[-1].kind == "sol" and items[-1].text == "return;":
        items.pop()  # the end of the body returns as well
    at_def = _declared_at_definition(items, tr.cross - set(ctx.spill))
    named = set(re.findall(r"\b(?:v\d+|s\d+)\b", "\n".join(it.text for it in items)))
    decls = [
        _Item("decl", f"uint256 {v};")
        for v in sorted(tr.cross, key=_var_key)
        if v not in ctx.spill
        and v not in at_def
        and (v in named or not re.fullmatch(r"[vs]\d+", v))
    ]
    if ctx.spill:
        decls.insert(0, _Item("decl", f"uint256[{len(ctx.spill)}] memory __s;"))
    return decls + items, structured, tr.needs_map


def _locals(tr: _Translator) -> list[str]:
    """The variables a body needs as locals: defined, not inlined and used, and the PHIs."""
    return [v for v in tr.defs if v not in tr.inlined and tr.uses.get(v)] + sorted(tr.phi_vars)


def _addr_names(
    idents: Mapping[str, tuple[str, str | None]], types: Sequence[str] | None, st: _Storage
) -> frozenset[str]:
    """The identifiers a draft reads as ``address``: parameters declared ``address`` and
    packed state variables of an address type that no parameter shadows."""
    params = {name for name, _k in idents.values()}
    out = {
        name
        for key, (name, kind) in idents.items()
        if kind is None
        and types is not None
        and re.fullmatch(r"arg\d+", key)
        and int(key[3:]) < len(types)
        and types[int(key[3:])] == "address"
    }
    out |= {
        label
        for label, tl, _n in st.packed.values()
        if tl.startswith("address") and label not in params
    }
    return frozenset(out)


def _declared_at_definition(items: list[_Item], names: set[str]) -> set[str]:
    """Turn ``v = e;`` into ``uint256 v = e;``, in place, for each local ``v`` of ``names``
    assigned once, by a Solidity statement at the top level of the body (outside every
    ``if``/``while``), and named nowhere before it: the declaration's scope then runs to the
    end of the body and covers every use. Returns the names so declared."""
    done: set[str] = set()
    if not names:
        return done
    word = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
    first: dict[str, int] = {}
    assigns: dict[str, list[int]] = {}
    depth_at: list[int] = []
    depth = 0
    for i, it in enumerate(items):
        if it.kind == "close":
            depth -= 1
        depth_at.append(depth if it.kind != "mid" else depth - 1)
        if it.kind == "open":
            depth += 1
        for m in word.finditer(it.text):
            first.setdefault(m.group(1), i)
        m = re.match(r"(\w+) (=|:=) ", it.text)
        if m and m.group(1) in names:
            assigns.setdefault(m.group(1), []).append(i)
    for v, at in assigns.items():
        i = at[0]
        if (
            len(at) == 1
            and first.get(v) == i
            and depth_at[i] == 0
            and items[i].kind == "sol"
            and items[i].text.startswith(f"{v} = ")
            and len(word.findall(items[i].text.split(" = ", 1)[0])) == 1
            and v not in word.findall(items[i].text.split(" = ", 1)[1])
        ):
            items[i] = _Item("sol", f"uint256 {items[i].text}")
            done.add(v)
    return done


def _var_key(v: str) -> tuple[int, str]:
    m = re.fullmatch(r"v(\d+)", v)
    return (int(m.group(1)), "") if m else (1 << 30, v)


def _getter(fn: LiftedFunction, layout: Mapping[str, Any] | None) -> str | None:
    """A public state variable's declaration (``uint256 public totalSupply``, no ``;``) when
    the function is its getter: a function cannot share a state variable's name, so a layout
    entry named like the function is the variable the getter reads."""
    if not layout or not fn.signature:
        return None
    name = fn.signature.split("(")[0]
    types = layout.get("types") or {}
    for e in layout.get("storage", []) or []:
        if e.get("label") == name:
            label = str((types.get(e.get("type")) or {}).get("label", ""))
            label = re.sub(r"\b(struct|contract|enum) ", "", label)
            if label:
                return f"{label} public {name}"
    return None


def _constant_getter(
    fn: LiftedFunction, entry: Mapping[str, Any] | None, v: tuple[int, int, int], specifiers: str
) -> str | None:
    """``T public constant NAME = value`` (no ``;``) for a getter whose every return is one
    constant word of a static value type (a constant; an immutable reads the same once
    deployed, but cannot be declared so: its constructor assigns it)."""
    outs = list((entry or {}).get("outputs", []))
    if len(outs) != 1 or (entry or {}).get("inputs") or not fn.signature:
        return None
    t = _canon(outs[0])
    if not _STATIC.fullmatch(t) or not _plain(outs[0]):
        return None
    try:
        order, blocks = _prepare(tac.parse_function(fn.tac), False)
    except (DraftError, tac.TacSyntaxError):
        return None
    _typed_returns(order, blocks, [t])
    rets = [
        blocks[x].term[1]
        for x in order
        if blocks[x].term[0] == "halt"
        and blocks[x].term[1].op in ("RETURNVALUES", "RETURN", "STOP")
    ]
    if len(rets) != 1 or rets[0].op != "RETURNVALUES" or not isinstance(rets[0].args[0], tac.Const):
        return None
    c = rets[0].args[0].value
    if t == "address":
        value = f"address(uint160({_sol_const(c)}))"
    elif t == "bool":
        value = "true" if c else "false"
    elif t.startswith("bytes"):
        n = int(t[5:])
        value = f"{t}(0x{(c >> (8 * (32 - n))):0{2 * n}x})" if n < 32 else f"0x{c:064x}"
    elif t.startswith("int") and c >> 255:
        value = f"-{(1 << 256) - c}"
    else:
        value = _sol_const(c) if not t.startswith("int") else str(c)
    spec = f" {specifiers}" if specifiers else ""
    return f"{t} public constant{spec} {fn.signature.split('(')[0]} = {value}"


def draft_function(
    lifted: LiftedContract,
    fn: LiftedFunction,
    *,
    abi: Sequence[Mapping[str, Any]] | None = None,
    storage_layout: Mapping[str, Any] | None = None,
    solc_version: str | None = None,
    specifiers: str = "",
    scope: SpliceScope | None = None,
    runtime_bytecode: str | bytes | None = None,
    getter: bool = False,
    visibility: str | None = None,
    param_names: Sequence[str | None] | None = None,
    _contract_maps: Mapping[int, int] | None = None,
    _unnamed: tuple[list[str] | None] | None = None,
) -> DraftFunction:
    """The structural draft of one lifted function, to be spliced into its original contract.

    ``abi``: the contract's ABI (header: parameter and return types, mutability; event topics,
    error selectors); ``storage_layout``: solc's ``storageLayout`` (state variables by name;
    it must be the layout the TAC was lifted with, as the TAC names slots by it);
    ``solc_version``: the compiler the text is for (``unchecked`` from 0.8, syntax of 0.4-0.7;
    default a recent 0.8); ``specifiers``: added to the header (e.g. ``"override"``,
    ``"virtual"``), never inferred; ``scope``: what the function's contract can name
    (:func:`splice_scope`): other state variables (a base contract's private ones) are
    reached through their slots in assembly, other events and errors are raised in assembly;
    None: all of the layout's variables and the ABI's events by name, custom errors in
    assembly; ``runtime_bytecode``: the lifted code (hex or bytes), so
    that constants the code copies out of itself (``CODECOPY``) are written as constants.
    ``getter``: the original is a public state variable (its source range, which the
    draft replaces, excludes the ``;``): the draft then ends with a declaration that takes
    that ``;``, when the variable is not found in the layout (constants, immutables).
    ``visibility``: the original's; ``internal``/``private`` are kept (an internal function
    reached through a wrapper must stay internal: a public library function is called by
    ``DELEGATECALL``), any other gives ``public``. ``param_names``: the original's parameter
    names (:func:`parameter_names`), which its NatSpec ``@param`` tags must match; else the
    ABI's. Never raises for a function's content: see
    :attr:`DraftFunction.error`.
    """
    v = _version(solc_version)
    entry = _abi_function(abi, fn.selector)
    declaration = _getter(fn, storage_layout)
    if declaration is None and getter and _contract_maps is None:
        declaration = _constant_getter(fn, entry, v, specifiers)
    if declaration is not None and _contract_maps is None:
        return DraftFunction(fn.selector, fn.signature, declaration, 1, 0)
    events, errors = _events_errors(abi)
    contract_mode = _contract_maps is not None
    try:
        storage = (
            _storage_from_layout(storage_layout, None if scope is None else scope.state_variables)
            if not contract_mode
            else _Storage(slot_of=_storage_from_layout(storage_layout, None).slot_of)
        )
        if _unnamed is not None:  # contract mode, no signature: reached through the fallback
            head = f"function {unnamed_function_name(fn.selector or '')}() private"
            types, has_out, mut, idents, out_sol = _unnamed[0], False, "payable", {}, []
        else:
            head, types, has_out, mut, idents, out_sol = _header(
                fn,
                entry,
                v,
                contract_mode,
                specifiers,
                visibility=visibility,
                param_names=param_names,
            )
        if getter and not contract_mode and mut == "view":
            # a constant's or immutable's getter (a layout variable's is its declaration):
            # its body reads no state, and an interface may declare it pure (a view
            # override of a pure function does not compile)
            head, mut = head.replace(" view", " pure", 1), "pure"
        shadowed = {name for name, _k in idents.values()}
        storage.named = {k: x for k, x in storage.named.items() if x[0] not in shadowed}
        storage.maps = {k: x for k, x in storage.maps.items() if x[0] not in shadowed}
    except DraftError as e:
        name = (fn.signature or "unknown()").split("(")[0]
        text = f"// {fn.name}: {e}\nfunction {name}() public {{\n    revert();\n}}\n"
        return DraftFunction(fn.selector, fn.signature, text, 1, 0, True, str(e))
    payable = (
        mut == "payable"
        if entry is not None or fn.kind != "public" or _unnamed is not None
        else fn.payable
    )
    error_params = _error_params(abi)
    error_refs: dict[str, str] = {}
    for ename, (ref, esel, etypes) in (scope.qualified_errors if scope else {}).items():
        if not all(_STATIC.fullmatch(t) for t in etypes):
            continue
        known = error_params.get(ename)
        if known is None:  # raised only in assembly: not in the ABI
            error_params[ename] = (esel << 224, list(etypes))
        elif known != (esel << 224, list(etypes)):
            continue
        error_refs[ename] = ref
    ctx = _Ctx(
        version=v,
        payable=payable,
        arg_types=types,
        arg_names=_arg_names(types if fn.kind == "public" else []),
        storage=storage,
        contract_maps=dict(_contract_maps or {}),
        contract_mode=contract_mode,
        events=events,
        errors=errors,
        has_outputs=has_out,
        idents=idents,
        addr_names=_addr_names(idents, types, storage),
        out_types=[_canon(p) for p in (entry or {}).get("outputs", [])] if entry else [],
        out_sol=out_sol,
        event_params={
            k: v for k, v in _event_params(abi).items() if scope is None or k in scope.events
        },
        error_params=error_params,
        event_overloads=_event_overloads(abi),
        solidity_errors=frozenset(scope.errors) | frozenset(error_refs)
        if scope is not None and v >= (0, 8, 4)
        else frozenset(),
        error_refs=error_refs,
        code=bytes.fromhex(runtime_bytecode.removeprefix("0x"))
        if isinstance(runtime_bytecode, str)
        else runtime_bytecode,
        code_size=lifted.code_size,
    )
    error = None
    structured = True
    try:
        items, structured, needs_map = _translate(
            fn, ctx, len(entry.get("outputs", [])) if entry else 0
        )
    except Exception as e:  # noqa: BLE001 -- the draft is the fallback of every system: never raise
        if not isinstance(e, (DraftError, tac.TacSyntaxError, RecursionError)):
            log.warning("%s: structural draft failed: %s: %s", fn.name, type(e).__name__, e)
        error = f"{type(e).__name__}: {e}"
        items, needs_map = [_Item("sol", f"revert();  // not drafted: {str(e)[:80]}")], False
    body_items = _unchecked(items) if ctx.checked else items
    lines, n_st, n_asm = _render(body_items, 1, needs_map)
    comment = f"// {fn.selector or fn.kind}" + (
        "" if structured else " (state machine: unstructured control flow)"
    )
    text = "\n".join([comment, head + " {", *lines, "}"]) + "\n"
    if getter:  # the original's ';' follows the spliced text
        text += (
            f"uint256 private constant __getter_{(fn.selector or fn.kind).removeprefix('0x')} = 0"
        )
    return DraftFunction(
        fn.selector,
        fn.signature or (signature_of(entry) if entry else None),
        text,
        n_st,
        n_asm,
        structured,
        error,
    )


@dataclass(frozen=True)
class SpliceScope:
    """What code at one place of a source file can name: state variables, events and custom
    errors (by bare name). Built by :func:`splice_scope` from solc ASTs."""

    state_variables: frozenset[str]
    events: frozenset[str]
    errors: frozenset[str]
    #: errors declared in another contract or library that the file names (``Lib.Name``):
    #: name -> (``Lib.Name``, selector, parameter types); names declared twice are left out
    qualified_errors: Mapping[str, tuple[str, int, tuple[str, ...]]] = field(default_factory=dict)


def splice_scope(asts: Mapping[str, Any], source_path: str, start: int) -> SpliceScope | None:
    """The :class:`SpliceScope` of byte ``start`` of ``source_path`` (solc ASTs by path, as in
    :class:`evmlm.solc.CompileResult`): the state variables of its contract and the non-private
    ones of its bases, the events and errors declared in those contracts, and file-level
    events and errors of the job's files. None when no contract holds ``start``."""
    by_id: dict[int, Mapping[str, Any]] = {}
    here = None
    file_level: dict[str, set[str]] = {"EventDefinition": set(), "ErrorDefinition": set()}
    for path, ast in asts.items():
        for node in (ast or {}).get("nodes", []):
            kind = node.get("nodeType")
            if kind in file_level:
                file_level[kind].add(str(node.get("name")))
            if kind != "ContractDefinition":
                continue
            by_id[int(node["id"])] = node
            if path == source_path:
                s_, ln, _ = (int(x) for x in str(node["src"]).split(":"))
                if s_ <= start < s_ + ln:
                    here = node
    if here is None:
        return None
    names: set[str] = set()
    events, errors = set(file_level["EventDefinition"]), set(file_level["ErrorDefinition"])
    for cid in here.get("linearizedBaseContracts", [here["id"]]):
        c = by_id.get(int(cid))
        if c is None:
            continue
        for d in c.get("nodes", []):
            kind = d.get("nodeType")
            if (
                kind == "VariableDeclaration"
                and d.get("stateVariable")
                and d.get("mutability", "mutable") == "mutable"
                and not d.get("constant")
                and (c is here or d.get("visibility") != "private")
            ):
                names.add(str(d.get("name")))
            elif kind == "EventDefinition":
                events.add(str(d.get("name")))
            elif kind == "ErrorDefinition":
                errors.add(str(d.get("name")))
    # errors of the other contracts and libraries the file can name (its own and imported
    # top-level symbols: the source unit's `exportedSymbols`), qualified by the contract name
    here_bases = {int(c) for c in here.get("linearizedBaseContracts", [here["id"]])}
    qualified: dict[str, tuple[str, int, tuple[str, ...]]] = {}
    twice: set[str] = set()
    for cname, ids in ((asts.get(source_path) or {}).get("exportedSymbols") or {}).items():
        for cid in ids or []:
            c = by_id.get(int(cid))
            if c is None or int(cid) in here_bases or c.get("name") != cname:
                continue
            for d in c.get("nodes", []):
                if d.get("nodeType") != "ErrorDefinition" or not d.get("errorSelector"):
                    continue
                ename = str(d.get("name"))
                types = tuple(
                    str((q.get("typeDescriptions") or {}).get("typeString"))
                    for q in (d.get("parameters") or {}).get("parameters", [])
                )
                if ename in qualified:
                    twice.add(ename)
                qualified[ename] = (f"{cname}.{ename}", int(d["errorSelector"], 16), types)
    for ename in twice | errors:
        qualified.pop(ename, None)
    return SpliceScope(frozenset(names), frozenset(events), frozenset(errors), qualified)


def parameter_names(original: str) -> list[str | None]:
    """The parameter names of an original function's header (None for an unnamed one)."""
    head = re.sub(r"//[^\n]*|/\*.*?\*/", " ", original.split("{", 1)[0], flags=re.DOTALL)
    i = head.find("(")
    if i < 0:
        return []
    depth, j = 0, i
    for j in range(i, len(head)):
        depth += head[j] == "("
        depth -= head[j] == ")"
        if depth == 0:
            break
    out: list[str | None] = []
    for part in split_types(head[i + 1 : j]):
        words = part.split()
        last = words[-1] if len(words) > 1 else None
        keep = (
            last
            if last
            and _IDENT.fullmatch(last)
            and last not in ("memory", "calldata", "storage", "payable")
            else None
        )
        out.append(keep)
    return out


def header_specifiers(original: str, solc_version: str | None = None) -> str:
    """``virtual`` / ``override(…)`` of an original function's header, for a draft that must
    compile in its place (they change nothing at run time; modifiers are not copied: the TAC
    already holds their code). '' before solc 0.6, which has neither."""
    if _version(solc_version) < (0, 6, 0):
        return ""
    head = original.split("{", 1)[0]
    head = re.sub(r"//[^\n]*|/\*.*?\*/", " ", head, flags=re.DOTALL)
    out = []
    if re.search(r"\bvirtual\b", head):
        out.append("virtual")
    m = re.search(r"\boverride\b(\s*\([^)]*\))?", head)
    if m:
        out.append(re.sub(r"\s+", "", m.group(0)).replace(",", ", "))
    return " ".join(out)


def _contract_storage(lifted: LiftedContract, layout: Mapping[str, Any] | None) -> dict[int, int]:
    """Contract mode: slot -> mapping depth (0: a plain word) for slots used one way only."""
    slot_of = _storage_from_layout(layout, None).slot_of
    kinds: dict[int, set[int]] = {}

    def slot_depth(o: tac.Operand) -> tuple[int, int] | None:
        d = 0
        while isinstance(o, tac.Index):
            d += 1
            o = o.base
        if isinstance(o, tac.Const):
            return o.value, d
        if isinstance(o, tac.Var) and o.name in slot_of:
            return slot_of[o.name], d
        return None

    for fn in lifted.functions:
        if fn.kind == "internal":
            continue
        try:
            f = tac.parse_function(fn.tac)
        except tac.TacSyntaxError:
            continue
        for b in f.blocks:
            for s in b.stmts:
                if s.op in ("SLOAD", "SSTORE") and s.args:
                    sd = slot_depth(s.args[0])
                    if sd is not None:
                        kinds.setdefault(sd[0], set()).add(sd[1])
                for a in s.args:
                    if isinstance(a, tac.Index) and s.op not in ("SLOAD", "SSTORE"):
                        sd = slot_depth(a)
                        if sd is not None:
                            kinds.setdefault(sd[0], set()).add(-1)
    return {
        slot: next(iter(k))
        for slot, k in kinds.items()
        if len(k) == 1 and -1 not in k and slot < 256
    }


def draft_contract(
    lifted: LiftedContract,
    *,
    abi: Sequence[Mapping[str, Any]] | None = None,
    storage_layout: Mapping[str, Any] | None = None,
    name: str = "Decompiled",
    solc_version: str | None = None,
    runtime_bytecode: str | bytes | None = None,
    argument_types: Mapping[str, Sequence[str] | None] | None = None,
) -> DraftContract:
    """A whole ``.sol`` file: ``pragma``, ``contract <name>`` with ``stor_<slot>`` state
    variables (``uint256`` words and ``mapping(uint256 => …)`` in slot order, so that slot
    numbers match the bytecode's) and every public function, plus the fallback and receive
    functions. A function with a known signature is declared by it. One without (no name
    hashes to its selector) is a private function ``__selector_<hex>()`` reading its
    arguments from calldata, called from the fallback when ``msg.sig`` is its selector
    (:func:`unnamed_function_name`); ``argument_types``: selector → the argument types the
    lifter named its TAC's ``arg<i>`` by (evmole's, when the lift had no ABI), else each
    ``arg<i>`` is calldata word i."""
    v = _version(solc_version)
    maps = _contract_storage(lifted, storage_layout)
    events = {
        k: ps
        for k, (_t, ps) in _event_params(abi).items()
        if all(_STATIC.fullmatch(t) for t, _ix in ps)
    }
    scope = SpliceScope(frozenset(), frozenset(events), frozenset())
    funcs: dict[str, DraftFunction] = {}
    texts: list[str] = []
    unnamed = [
        fn.selector
        for fn in lifted.functions
        if fn.kind == "public"
        and fn.selector
        and not fn.signature
        and _abi_function(abi, fn.selector) is None
    ]
    fallback = next((fn for fn in lifted.functions if fn.kind == "fallback"), None)
    if unnamed and fallback is not None and not fallback.payable:
        # the fallback now also takes the unnamed functions' calls: it accepts value, and
        # its own callvalue check stays in its body (it is not folded away)
        fallback = replace(fallback, payable=True)
    for fn in lifted.functions:
        if fn.kind == "internal":
            continue
        if fn.kind == "fallback":
            fn = fallback or fn
        types = list((argument_types or {}).get(fn.selector or "") or []) or None
        d = draft_function(
            lifted,
            fn,
            abi=abi,
            storage_layout=storage_layout,
            solc_version=solc_version,
            runtime_bytecode=runtime_bytecode,
            scope=scope,
            _contract_maps=maps,
            _unnamed=(types,) if fn.selector in unnamed else None,
        )
        if fn.kind == "fallback" and unnamed:
            d = replace(d, text=_dispatching(d.text, unnamed, v))
        funcs[fn.selector or fn.kind] = d
        texts.append(d.text)
    if unnamed and fallback is None:
        texts.append(_dispatching(None, unnamed, v))
    decls = []
    top = max(maps) if maps else -1
    for slot in range(top + 1):
        depth = maps.get(slot, 0)
        ty = "uint256"
        for _ in range(depth):
            ty = f"mapping(uint256 => {ty})"
        decls.append(f"    {ty} stor_{slot};")
    for ev, ps in sorted(events.items()):
        decls.append(
            f"    event {ev}({', '.join(t + (' indexed' if ix else '') for t, ix in ps)});"
        )
    ver = f"{v[0]}.{v[1]}.{v[2]}"
    body = "\n".join(decls)
    fns = "\n".join(
        "    " + line if line else "" for t in texts for line in t.rstrip("\n").split("\n")
    )
    note = (
        f"    // selectors without a known signature (private functions called from the"
        f" fallback): {', '.join(unnamed)}\n"
        if unnamed
        else ""
    )
    src = f"// SPDX-License-Identifier: UNLICENSED\npragma solidity {ver};\n\ncontract {name} {{\n{body}\n{note}\n{fns}\n}}\n"
    return DraftContract(src, funcs)


def unnamed_function_name(selector: str) -> str:
    """The private function that holds the draft of a public function without a known
    signature in contract mode: ``__selector_<8 hex>``."""
    return "__selector_" + selector.lower().removeprefix("0x")


def _dispatching(fallback_text: str | None, selectors: Sequence[str], v: tuple[int, ...]) -> str:
    """The fallback function with a dispatch of ``selectors`` (``msg.sig``, calldata of at
    least 4 bytes, as the compiler's dispatcher checks) to their private functions in front
    of ``fallback_text``'s body (None: no fallback in the original, so the rest reverts with
    empty data, as the original's dispatcher does). Each branch ends with ``return;``: a
    private body that ends with ``return;`` (the original's ``STOP``) stops there too."""
    calls = [
        f"        if (msg.sig == bytes4({sel.lower()})) {{ {unnamed_function_name(sel)}(); return; }}"
        for sel in selectors
    ]
    dispatch = ["    if (msg.data.length >= 4) {", *calls, "    }"]
    if fallback_text is None:
        head = "fallback() external payable" if v >= (0, 6, 0) else "function () external payable"
        lines = ["// fallback: the selectors without a known signature", head + " {"]
        return "\n".join([*lines, *dispatch, "    revert();", "}"]) + "\n"
    i = fallback_text.index("{\n") + 2
    return fallback_text[:i] + "\n".join(dispatch) + "\n" + fallback_text[i:]


def draft_pair(
    lifted: LiftedContract,
    fn: LiftedFunction,
    *,
    abi: Sequence[Mapping[str, Any]] | None,
    storage_layout: Mapping[str, Any] | None,
    solc_version: str | None,
    solidity: str,
    asts: Mapping[str, Any] | None,
    source_path: str,
    source_start: int | None,
    runtime_bytecode: str | bytes | None,
    kind: str | None = None,
    visibility: str | None = None,
) -> DraftFunction:
    """The draft of one pair record's function (:func:`draft_function`), with the one set of
    inputs the dataset stage (the record's ``draft`` field, in fine-tuning prompts) and the
    evaluation (the ``structural`` system, the ``model_draft`` prompts) both use:
    ``header_specifiers`` of the record's ``solidity``, :func:`splice_scope` at its
    ``source_start`` in the compile result's ``asts`` (None: no scope), the record's
    ``kind`` (``getter``) and ``visibility``. Never raises for a function's content."""
    scope = (
        splice_scope(asts, source_path, int(source_start))
        if asts is not None and source_start is not None
        else None
    )
    return draft_function(
        lifted,
        fn,
        abi=abi,
        storage_layout=storage_layout,
        solc_version=solc_version,
        specifiers=header_specifiers(solidity, solc_version),
        scope=scope,
        runtime_bytecode=runtime_bytecode,
        getter=kind == "getter",
        visibility=visibility,
    )

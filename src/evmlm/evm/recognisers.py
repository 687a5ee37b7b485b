"""Recognisers: rewrite raw TAC statements into named forms. Each one is switchable.

Names (``lift.recognisers``):

- ``args``: ``CALLDATALOAD(4 + 32·k)`` in a public function -> ``arg<i>`` (the ABI head word of
  argument i; Solidity ABI spec, "Formal Specification of the Encoding"), types from the
  signature (ABI or evmole).
- ``msg_sender``: ``CALLER()`` -> ``msg.sender``.
- ``mapping``: ``MSTORE(0x0, key); MSTORE(0x20, slot); KECCAK256(0x0, 0x40)`` -> ``slot[key]``
  (nested mappings nest: ``_allowances[arg0][msg.sender]``), the storage location of a mapping
  value (Solidity docs, "Layout of State Variables in Storage": keccak256(h(k) . p)).
- ``storage_vars``: constant storage slots -> state-variable names from solc's ``storageLayout``.
- ``events``: ``LOGn`` with a known topic0 (ABI events, else a table of common ones) ->
  ``EMIT(Name, offset, size, topics…)``.
- ``require``: ``Error(string)`` encodings (selector 0x08c379a0, offset, length, data words) ->
  ``ERROR(ptr, "reason")`` (data words stored as constants, or CODECOPY'd from the code by
  0.4-0.5 code); custom errors with a known selector -> ``ERROR(ptr, Name)``.
- ``panic``: a block that encodes ``Panic(uint256)`` (selector 0x4e487b71; 0x11 = checked
  arithmetic over/underflow) and reverts -> the single statement ``PANIC(code)``.
- ``calls``: CALL / STATICCALL / DELEGATECALL / CALLCODE whose input starts with a constant
  selector (stored in the call's block, else in the nearest predecessor that stores one; also
  ``OR``-ed in by ``abi.encodeWithSelector``) get the note ``callee 0x<selector> [signature]``.

Vyper code (``dialect="vyper"``, see docs/vyper.md) differs in three forms, handled here:
a ``HashMap`` entry is ``keccak256(slot . key)`` (slot at 0x0, key at 0x20: the reverse of
Solidity's order); ``Error(string)`` and an external call's selector are stored unshifted
(``MSTORE(p, 0x08c379a0)``, data from ``p + 28``). ``panic`` does not apply (Vyper reverts with
no data where Solidity raises ``Panic``) (:attr:`Recognisers.notes` says so); ``storage_vars`` reads
Vyper's ``-f layout`` too (:func:`evmlm.evm.vyper.storage_layout`) and notes the immutables that
Vyper reads by ``CODECOPY`` from past the runtime code (``# immutable asset``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping

from evmlm.config import LIFT_RECOGNISERS
from evmlm.evm import tac
from evmlm.evm.abi import (
    COMMON_ERRORS,
    COMMON_EVENTS,
    COMMON_FUNCTIONS,
    AbiInfo,
    signature_types,
    tuple_components,
)

log = logging.getLogger(__name__)

RECOGNISERS = LIFT_RECOGNISERS

ERROR_STRING = 0x08C379A0 << 224
PANIC = 0x4E487B71 << 224
LOW224 = (1 << 224) - 1
_VNAME = re.compile(r"v\d+$")
DIALECTS = ("solidity", "vyper")
VYPER_NOT_APPLICABLE = {
    "panic": "Vyper reverts with no data where Solidity raises Panic(uint256)",
}


def _head_words(t: str) -> int:
    """ABI head size in 32-byte words of a type (dynamic types take one word: the offset)."""
    if t.endswith("]"):
        base, n = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        if not n or _is_dynamic(base):
            return 1
        return int(n) * _head_words(base)
    if t.startswith("("):
        parts = tuple_components(t)
        return 1 if _is_dynamic(t) else sum(_head_words(p) for p in parts)
    return 1


def _is_dynamic(t: str) -> bool:
    if t in ("bytes", "string") or t.endswith("[]"):
        return True
    if t.endswith("]"):
        return _is_dynamic(t[: t.rindex("[")])
    if t.startswith("("):
        return any(_is_dynamic(p) for p in tuple_components(t))
    return False


def _slot_names(layout: Mapping[str, Any] | None) -> dict[int, str]:
    names: dict[int, str] = {}
    if not layout:
        return names
    if "storage_layout" in layout:  # Vyper's -f layout
        from evmlm.evm.vyper import storage_layout

        layout = storage_layout(layout)
    for e in layout.get("storage", []) or []:
        try:
            slot = int(e["slot"])
        except (KeyError, ValueError, TypeError):
            continue
        label = str(e.get("label", ""))
        if re.fullmatch(r"[A-Za-z_$][\w$]*", label) and (
            slot not in names or int(e.get("offset", 0)) == 0
        ):
            names[slot] = label
    return names


def _subst(o: tac.Operand, ren: dict[str, tac.Operand], deep: bool = True) -> tac.Operand:
    """Replace variables by ``ren``; ``deep`` also rewrites inside replacements (chained renames)."""
    if isinstance(o, tac.Var) and o.name in ren:
        r = ren[o.name]
        return r if (r == o or not deep) else _subst(r, ren)
    if isinstance(o, tac.Index):
        return tac.Index(_subst(o.base, ren, deep), _subst(o.key, ren, deep))
    return o


class Recognisers:
    """The enabled recognisers with what they need (ABI info, storage layout, evmole types)."""

    def __init__(
        self,
        enabled: tuple[str, ...] | list[str],
        info: AbiInfo,
        layout: Mapping[str, Any] | None,
        moles: Mapping[int, tuple[str | None, str | None]],
        code: bytes = b"",
        dialect: str = "solidity",
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect {dialect!r}: expected one of {DIALECTS}")
        self.dialect = dialect
        self.vyper = dialect == "vyper"
        self.requested = frozenset(enabled)
        self.enabled = self.requested - (
            frozenset(VYPER_NOT_APPLICABLE) if self.vyper else frozenset()
        )
        self.code = code
        self.info = info
        self.slots = _slot_names(layout)
        self.immutables: dict[int, tuple[str, int]] = {}
        if self.vyper and layout:
            from evmlm.evm.vyper import immutables

            self.immutables = immutables(layout)
        self.moles = moles

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per requested recogniser that does not apply to this code's dialect."""
        if not self.vyper:
            return ()
        return tuple(
            f"recogniser {k} off for Vyper: {why}"
            for k, why in VYPER_NOT_APPLICABLE.items()
            if k in self.requested
        )

    def for_function(
        self, selector: int | None, signature: str | None
    ) -> Callable[[tac.Function], tac.Function]:
        types = signature_types(signature)
        if (
            types is None
            and selector is not None
            and self.moles.get(selector, (None, None))[0] is not None
        ):
            args = self.moles[selector][0] or ""
            types = signature_types(f"f({args})")
        return lambda f: self.apply(f, selector is not None, types)

    def apply(self, f: tac.Function, public: bool, types: list[str] | None) -> tac.Function:
        on = self.enabled
        if "panic" in on:
            self._panic(f)
        if "require" in on:
            self._require_vyper(f) if self.vyper else self._require(f)
        ren: dict[str, tac.Operand] = {}
        if "msg_sender" in on:
            self._rename_defs(
                f, ren, lambda s: s.op == "CALLER" and not s.args, lambda s: tac.Var("msg.sender")
            )
        if "args" in on and public:
            names = self._arg_names(types)
            self._rename_defs(
                f,
                ren,
                lambda s: (
                    s.op == "CALLDATALOAD"
                    and len(s.args) == 1
                    and isinstance(s.args[0], tac.Const)
                    and s.args[0].value >= 4
                    and (s.args[0].value - 4) % 32 == 0
                    and s.args[0].value < 4 + 32 * 64
                ),
                lambda s: tac.Var(names(s.args[0].value)),
            )  # type: ignore[union-attr]
        self._apply_renames(f, ren)
        if "mapping" in on:
            self._mapping(f)
        if "storage_vars" in on and self.slots:
            self._storage(f)
        if "storage_vars" in on and self.immutables:
            self._immutables_vyper(f)
        if "events" in on:
            self._events(f)
        if "calls" in on:
            self._calls(f)
        _dead_code(f)
        _renumber(f)
        return f

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _arg_names(types: list[str] | None) -> Callable[[int], str]:
        starts: dict[int, str] = {}
        if types is not None:
            w = 0
            for i, t in enumerate(types):
                n = _head_words(t)
                for j in range(n):
                    starts[w + j] = f"arg{i}" if j == 0 else f"arg{i}.w{j}"
                w += n

        def name(off: int) -> str:
            word = (off - 4) // 32
            return starts.get(word, f"arg{word}" if types is None else f"cd{word}")

        return name

    @staticmethod
    def _rename_defs(
        f: tac.Function,
        ren: dict[str, tac.Operand],
        match: Callable[[tac.Stmt], bool],
        new: Callable[[tac.Stmt], tac.Operand],
    ) -> None:
        for b in f.blocks:
            keep = []
            for s in b.stmts:
                if s.lhs is not None and match(s):
                    ren[s.lhs] = new(s)
                else:
                    keep.append(s)
            b.stmts = keep

    @staticmethod
    def _apply_renames(f: tac.Function, ren: dict[str, tac.Operand]) -> None:
        if not ren:
            return
        for b in f.blocks:
            for s in b.stmts:
                s.args = tuple(_subst(a, ren) for a in s.args)

    @staticmethod
    def _defs(f: tac.Function) -> dict[str, tac.Stmt]:
        return {s.lhs: s for b in f.blocks for s in b.stmts if s.lhs is not None}

    @staticmethod
    def _base_off(o: tac.Operand, defs: dict[str, tac.Stmt]) -> tuple[Any, int]:
        """Decompose an address into (base, constant offset) through ADD(x, c)."""
        off = 0
        for _ in range(8):
            if isinstance(o, tac.Const):
                return None, o.value + off
            if not isinstance(o, tac.Var):
                break
            d = defs.get(o.name)
            if d is None or d.op != "ADD" or len(d.args) != 2:
                break
            a, b = d.args
            if isinstance(b, tac.Const):
                o, off = a, off + b.value
            elif isinstance(a, tac.Const):
                o, off = b, off + a.value
            else:
                break
        return o, off

    # -- recognisers ----------------------------------------------------------------------------
    def _panic(self, f: tac.Function) -> None:
        for b in f.blocks:
            if not b.stmts or b.stmts[-1].op != "REVERT":
                continue
            sel = [
                s
                for s in b.stmts
                if s.op == "MSTORE"
                and isinstance(s.args[1], tac.Const)
                and s.args[1].value == PANIC
            ]
            if not sel:
                continue
            code = next(
                (
                    s.args[1]
                    for s in b.stmts
                    if s.op == "MSTORE"
                    and isinstance(s.args[0], tac.Const)
                    and s.args[0].value == 4
                    and isinstance(s.args[1], tac.Const)
                ),
                None,
            )
            if code is not None:
                b.stmts = [tac.Stmt(None, "PANIC", (code,))]

    def _require(self, f: tac.Function) -> None:
        defs = self._defs(f)
        stores: list[tuple[tac.Block, tac.Stmt, Any, int]] = []
        copies: list[
            tuple[tac.Stmt, Any, int]
        ] = []  # CODECOPY of a string literal (0.4-0.5 codegen)
        for b in f.blocks:
            for s in b.stmts:
                if s.op == "MSTORE" and len(s.args) == 2:
                    base, off = self._base_off(s.args[0], defs)
                    stores.append((b, s, base, off))
                elif (
                    s.op == "CODECOPY"
                    and len(s.args) == 3
                    and all(isinstance(a, tac.Const) for a in s.args[1:])
                ):
                    base, off = self._base_off(s.args[0], defs)
                    copies.append((s, base, off))
        errors = dict(COMMON_ERRORS)
        errors.update(self.info.errors)
        by_base: dict[Any, dict[int, tac.Stmt]] = {}
        for _b, st, ba, o in stores:
            by_base.setdefault(ba, {})[o] = st
        dropped: set[int] = set()
        for b, s, base, off in stores:
            val = s.args[1]
            if not isinstance(val, tac.Const) or val.value & LOW224 or not val.value:
                continue
            if val.value == ERROR_STRING:
                same = by_base.get(base, {})
                ln = same.get(off + 0x24)
                if ln is None or not isinstance(ln.args[1], tac.Const) or ln.args[1].value > 4096:
                    continue
                n = ln.args[1].value
                data = b""
                used = [ln]
                if off + 4 in same:
                    used.append(same[off + 4])
                ok = True
                cc = next(
                    (
                        (st, st.args[1].value, st.args[2].value)
                        for st, ba, o in copies
                        if ba == base and o == off + 0x44
                    ),
                    None,
                )  # type: ignore[union-attr]
                if cc is not None and cc[2] >= n and self.code:
                    data = self.code[cc[1] : cc[1] + n]
                    used.append(cc[0])
                    n = len(data)
                for k in range(0 if data else (n + 31) // 32):
                    w = same.get(off + 0x44 + 32 * k)
                    if w is None or not isinstance(w.args[1], tac.Const):
                        ok = False
                        break
                    data += w.args[1].value.to_bytes(32, "big")
                    used.append(w)
                if not ok:
                    continue
                reason = data[:n].decode("utf-8", errors="replace")
                idx = next(i for i, x in enumerate(b.stmts) if x is s)
                b.stmts[idx] = tac.Stmt(None, "ERROR", (s.args[0], tac.Str(reason)))
                dropped.update(id(u) for u in used)
            elif (val.value >> 224) in errors and val.value != PANIC:
                name = errors[val.value >> 224][0]
                idx = next((i for i, x in enumerate(b.stmts) if x is s), None)
                if idx is not None:
                    b.stmts[idx] = tac.Stmt(None, "ERROR", (s.args[0], tac.Var(name)))
        if dropped:
            for bb in f.blocks:
                bb.stmts = [x for x in bb.stmts if id(x) not in dropped]

    def _require_vyper(self, f: tac.Function) -> None:
        """Vyper's ``assert c, "reason"`` / ``raise "reason"``: a reverting block that stores the
        reason as a length word and constant data words (printable UTF-8) at constant
        addresses, ABI-encodes it
        and stores ``0x08c379a0`` unshifted at ``p`` (revert data from ``p + 28``). The block
        becomes ``ERROR(p + 28, "reason")``; custom errors do not exist before Vyper 0.4's
        ``raise`` of an interface error, which reverts the same way with its own selector."""
        for b in f.blocks:
            if not b.stmts or b.stmts[-1].op != "REVERT":
                continue
            stores = {
                s.args[0].value: s
                for s in b.stmts
                if s.op == "MSTORE"
                and isinstance(s.args[0], tac.Const)
                and isinstance(s.args[1], tac.Const)
            }  # type: ignore[union-attr]
            sel = next(
                (a for a, st in stores.items() if st.args[1].value == ERROR_STRING >> 224), None
            )  # type: ignore[union-attr]
            if sel is None:
                continue
            for a in sorted(stores):
                n = stores[a].args[1].value  # type: ignore[union-attr]
                if (
                    a in (sel, sel + 32)
                    or not 0 < n <= 4096
                    or any(a + 32 * (k + 1) not in stores for k in range((n + 31) // 32))
                ):
                    continue
                data = b"".join(
                    stores[a + 32 * (k + 1)].args[1].value.to_bytes(32, "big")
                    for k in range((n + 31) // 32)
                )  # type: ignore[union-attr]
                if any(data[n:]):
                    continue
                try:
                    reason = data[:n].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if not reason.isprintable():  # an ABI offset or length word, not the text
                    continue
                b.stmts = [tac.Stmt(None, "ERROR", (tac.Const(sel + 28), tac.Str(reason)))]
                break

    def _mapping(self, f: tac.Function) -> None:
        ren: dict[str, tac.Operand] = {}
        # scratch words hashed: 0x0 (solc; Vyper >= 0.3), 0xc0 (Vyper 0.2's FREE_VAR_SPACE)
        scratch = (0, 0xC0) if self.vyper else (0,)
        words = {a + d for a in scratch for d in (0, 0x20)}
        for b in f.blocks:
            mem: dict[int, tuple[int, tac.Stmt]] = {}
            drop: set[int] = set()
            keep: list[tac.Stmt] = []
            for s in b.stmts:
                s.args = tuple(_subst(a, ren) for a in s.args)
                if (
                    s.op == "MSTORE"
                    and isinstance(s.args[0], tac.Const)
                    and s.args[0].value in words
                ):
                    mem[s.args[0].value] = (len(keep), s)
                elif s.op in (
                    "MSTORE",
                    "MSTORE8",
                    "CALLDATACOPY",
                    "CODECOPY",
                    "RETURNDATACOPY",
                    "MCOPY",
                    "EXTCODECOPY",
                    "CALL",
                    "STATICCALL",
                    "DELEGATECALL",
                    "CALLCODE",
                ):
                    mem.clear()
                at = (
                    s.args[0].value
                    if s.op == "KECCAK256" and len(s.args) == 2 and isinstance(s.args[0], tac.Const)
                    else -1
                )
                if (
                    at in scratch
                    and s.lhs
                    and s.args[1] == tac.Const(0x40)
                    and at in mem
                    and at + 0x20 in mem
                ):
                    key, slot = mem[at][1].args[1], mem[at + 0x20][1].args[1]
                    if self.vyper:  # Vyper hashes slot . key (vyper/codegen: sha3_64(slot, key))
                        key, slot = slot, key
                    base: tac.Operand = slot
                    if (
                        isinstance(slot, tac.Const)
                        and "storage_vars" in self.enabled
                        and slot.value in self.slots
                    ):
                        base = tac.Var(self.slots[slot.value])
                    ren[s.lhs] = tac.Index(base, key)
                    drop.update((mem[at][0], mem[at + 0x20][0]))
                    continue
                keep.append(s)
            b.stmts = [s for i, s in enumerate(keep) if i not in drop]
        self._apply_renames(f, ren)

    def _storage(self, f: tac.Function) -> None:
        for b in f.blocks:
            for s in b.stmts:
                if (
                    s.op in ("SLOAD", "SSTORE")
                    and isinstance(s.args[0], tac.Const)
                    and s.args[0].value in self.slots
                ):
                    s.args = (tac.Var(self.slots[s.args[0].value]), *s.args[1:])

    def _immutables_vyper(self, f: tac.Function) -> None:
        """Vyper's immutables: ``CODECOPY(dst, len(code) + offset, n)`` gets the note
        ``immutable <name>`` (``+k`` inside a longer one) from the layout's ``code_layout``."""
        spans = sorted(self.immutables.items())
        for b in f.blocks:
            for s in b.stmts:
                if s.op != "CODECOPY" or len(s.args) != 3 or not isinstance(s.args[1], tac.Const):
                    continue
                off = s.args[1].value - len(self.code)
                hit = next(((o, nm) for o, (nm, n) in spans if o <= off < o + n), None)
                if hit is not None:
                    s.note = f"immutable {hit[1]}" + (f"+{off - hit[0]}" if off != hit[0] else "")

    def _events(self, f: tac.Function) -> None:
        events = dict(COMMON_EVENTS)
        events.update(self.info.events)
        for b in f.blocks:
            for i, s in enumerate(b.stmts):
                if s.op and s.op.startswith("LOG") and s.op != "LOG0" and len(s.args) >= 3:
                    t0 = s.args[2]
                    if isinstance(t0, tac.Const) and t0.value in events:
                        b.stmts[i] = tac.Stmt(
                            s.lhs,
                            "EMIT",
                            (tac.Var(events[t0.value][0]), s.args[0], s.args[1], *s.args[3:]),
                            s.note,
                        )

    def _calls(self, f: tac.Function) -> None:
        known = dict(COMMON_FUNCTIONS)
        known.update({k: v[0] for k, v in self.info.functions.items()})
        defs = self._defs(f)

        def selector(v: tac.Operand) -> int | None:
            if isinstance(v, tac.Var) and v.name in defs and defs[v.name].op == "OR":
                v = next((a for a in defs[v.name].args if isinstance(a, tac.Const)), v)
            if (
                isinstance(v, tac.Const)
                and v.value
                and not v.value & LOW224
                and v.value not in (ERROR_STRING, PANIC)
            ):
                return v.value >> 224
            if (
                self.vyper
                and isinstance(v, tac.Const)
                and 0 < v.value <= 0xFFFFFFFF
                and v.value != ERROR_STRING >> 224
            ):
                return v.value  # unshifted; the call's input starts 28 bytes after the store
            return None

        if self.vyper:
            self._calls_vyper(f, known, selector)
            return
        last_in_block: dict[str, int] = {}  # block label -> last selector stored in it
        for b in f.blocks:
            for s in b.stmts:
                if s.op == "MSTORE" and (sel := selector(s.args[1])) is not None:
                    last_in_block[b.label] = sel
        by_label = {b.label: b for b in f.blocks}

        def from_preds(b: tac.Block) -> int | None:
            seen, frontier = {b.label}, list(b.prev)
            for _ in range(8):
                nxt = []
                for lab in frontier:
                    if lab in last_in_block:
                        return last_in_block[lab]
                    if lab not in seen and lab in by_label:
                        seen.add(lab)
                        nxt.extend(by_label[lab].prev)
                frontier = nxt
            return None

        for b in f.blocks:
            here: dict[str, int] = {}
            latest: int | None = None
            for s in b.stmts:
                if s.op == "MSTORE" and (sel := selector(s.args[1])) is not None:
                    here[tac.format_operand(s.args[0])] = latest = sel
                elif (
                    s.op in ("CALL", "CALLCODE", "STATICCALL", "DELEGATECALL") and len(s.args) >= 6
                ):
                    inp = s.args[3] if s.op in ("CALL", "CALLCODE") else s.args[2]
                    sel = here.get(tac.format_operand(inp), latest)
                    if sel is None:
                        sel = from_preds(b)
                    if sel is not None:
                        sig = known.get(sel)
                        s.note = f"callee {sel:#010x}" + (f" {sig}" if sig else "")

    @staticmethod
    def _calls_vyper(
        f: tac.Function, known: Mapping[int, str], selector: Callable[[tac.Operand], int | None]
    ) -> None:
        """Vyper's external calls: the selector stored unshifted at a constant ``p`` and the
        call's input at the constant ``p + 28``; the store is looked for at exactly ``p``, in
        the call's block before it, else in the nearest predecessor that writes ``p`` (no
        other constant stands in for it: memory holds many small constants)."""
        last: dict[str, dict[int, int | None]] = {}  # block -> address -> selector last stored
        for b in f.blocks:
            mem: dict[int, int | None] = {}
            for s in b.stmts:
                if s.op == "MSTORE" and isinstance(s.args[0], tac.Const):
                    mem[s.args[0].value] = selector(s.args[1])
            last[b.label] = mem
        by_label = {b.label: b for b in f.blocks}

        def from_preds(b: tac.Block, addr: int) -> int | None:
            seen, frontier = {b.label}, list(b.prev)
            for _ in range(8):
                nxt = []
                for lab in frontier:
                    if addr in last.get(lab, {}):
                        return last[lab][addr]
                    if lab not in seen and lab in by_label:
                        seen.add(lab)
                        nxt.extend(by_label[lab].prev)
                frontier = nxt
            return None

        for b in f.blocks:
            here: dict[int, int | None] = {}
            for s in b.stmts:
                if s.op == "MSTORE" and isinstance(s.args[0], tac.Const):
                    here[s.args[0].value] = selector(s.args[1])
                elif (
                    s.op in ("CALL", "CALLCODE", "STATICCALL", "DELEGATECALL") and len(s.args) >= 6
                ):
                    inp = s.args[3] if s.op in ("CALL", "CALLCODE") else s.args[2]
                    if not isinstance(inp, tac.Const) or inp.value < 28:
                        continue
                    addr = inp.value - 28
                    sel = here[addr] if addr in here else from_preds(b, addr)
                    if sel is not None:
                        sig = known.get(sel)
                        s.note = f"callee {sel:#010x}" + (f" {sig}" if sig else "")


def _uses(o: tac.Operand, out: set[str]) -> None:
    if isinstance(o, tac.Var):
        out.add(o.name)
    elif isinstance(o, tac.Index):
        _uses(o.base, out)
        _uses(o.key, out)


def _dead_code(f: tac.Function) -> None:
    """Drop side-effect-free statements whose results became unused after rewriting."""
    from evmlm.evm.ssa import NO_EFFECT

    while True:
        used: set[str] = set()
        for b in f.blocks:
            for s in b.stmts:
                for a in s.args:
                    _uses(a, used)
        removed = False
        for b in f.blocks:
            keep = [
                s
                for s in b.stmts
                if not (s.lhs is not None and s.op in NO_EFFECT and s.lhs not in used)
            ]
            removed |= len(keep) != len(b.stmts)
            b.stmts = keep
        if not removed:
            return


def _renumber(f: tac.Function) -> None:
    """Rename v-variables to v0, v1, ... in order of definition."""
    ren: dict[str, tac.Operand] = {}
    for b in f.blocks:
        for s in b.stmts:
            if s.lhs is not None and _VNAME.match(s.lhs):
                ren[s.lhs] = tac.Var(f"v{len(ren)}")
    for b in f.blocks:
        for s in b.stmts:
            if s.lhs is not None and s.lhs in ren:
                s.lhs = ren[s.lhs].name  # type: ignore[union-attr]
            s.args = tuple(_subst(a, ren, deep=False) for a in s.args)

"""Vyper's selector tables: jump tables in the data section, read by running the dispatcher.

Vyper >= 0.3.10 dispatches external functions through a hash-bucket jump table stored in the
runtime code's data section (``vyper/codegen/module.py``, ``_selector_section_sparse`` /
``_selector_section_dense``; see docs/vyper.md):

- *sparse* (``-O gas``, the default, and ``-O codesize`` with at most 4 functions):
  ``CODECOPY(30, BUCKETS + 2 * (sel % n), 2); JUMP(MLOAD(0))`` into a bucket, then a linear
  chain of ``sel == c`` checks within the bucket, then ``goto fallback``;
- *dense* (``-O codesize``): ``CODECOPY`` a 5-byte bucket header (magic, location, size), a
  perfect hash ``((sel * magic) >> 24) % size`` picks a function-info record
  (method id <4> | label <2> | calldatasize/payable bits), ``sel == method id`` or
  ``goto fallback``, then ``JUMP`` to the label;
- *linear* (``-O none``, and every release before 0.3.10): ``calldatasize < 4`` to the
  fallback, then a chain of ``sel == c`` checks, which :mod:`evmlm.evm.cfg` reads directly
  (0.3.x), or with the selector loaded from memory (0.2), which it cannot.

The abstract stack of the CFG walk does not model memory, so the table jumps (targets read
from code into memory) stay unknown there. :func:`read_tables` resolves them by *running* the
dispatcher concretely from offset 0 (:func:`run_dispatcher`, a small EVM subset: stack,
memory, code, calldata; no storage, no calls) once per probe selector:

- every residue of the bucket modulus (the divisor of a ``MOD`` whose dividend depends on
  ``calldataload(0)``, observed while running selector 0): so every table entry of a sparse
  table, empty buckets (-> fallback) included, is taken by some run;
- every 4-byte string of the code followed by a 2-byte JUMPDEST offset: the dense table's
  records ``method id | label``; the real ones pass the ``sel == method id`` check and jump to
  their function, the others fall back (run only when empty calldata takes no table jump: a
  sparse table jumps for any calldata).

A jump whose target came from memory is a *table jump*; its targets over all runs are handed to
the CFG walk (``ContractCFG(..., jump_tables=...)``). A selector is *dense-dispatched* when its
run takes a table jump at a site that no non-selector probe reaches (the dense table's final
jump); its target is that function's entry. After the walk (:func:`apply_to_cfg`): the
fallback is the first block that every probe's run (empty calldata included) enters and no
public function's run does; a function is payable when its run with 1 wei takes the same path
as with none; and where the walk reads no selector from a Vyper-looking linear chain (0.2
reads the selector through memory), every small constant is run as a selector.

Runs are bounded (:data:`MAX_STEPS` instructions) and stop at the first instruction outside the
subset. Code that neither copies code before its first jump (:func:`_gate`, at most 64
instructions decoded) nor opens like Vyper's table-less dispatchers (:func:`_prologue`) is not
run at all: :func:`dialect` is then ``solidity`` and every result here is empty.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evmlm.evm.cfg import PURE  # what run_dispatcher executes; anything else ends a run
from evmlm.evm.disasm import Instruction, disassemble
from evmlm.evm.opcodes import HALTS, op_info

if TYPE_CHECKING:
    from evmlm.evm.cfg import ContractCFG

log = logging.getLogger(__name__)

WORD = (1 << 256) - 1
MAX_STEPS = 400  # instructions per run: the dispatcher takes < 60; the rest is the body's start
MAX_PROBES = 4096  # bucket residues probed at most (vyper's bucket counts are ~ #functions)
EMPTY = -1  # the probe "selector" of a run with empty calldata
LINEAR_PROBES = 8  # probe selectors run on a linear Vyper dispatcher (for its fallback)
CALLDATA_WORDS = 32  # zero argument words after the selector: every calldatasize check passes


@dataclass
class Run:
    """One concrete run of the dispatcher for ``selector``.

    ``targets``: jump targets taken, in order (bytecode offsets); ``visited``: basic blocks
    entered, in order (JUMPDESTs executed and fall-throughs of JUMPIs not taken);
    ``table_jumps``: (jump site,
    target) for jumps whose target was read from memory; ``moduli``: divisors of ``MOD``s of a
    selector-derived value; ``codecopy_first``: a ``CODECOPY`` ran before the first jump;
    ``end``: the offset of the instruction the run stopped at.
    """

    selector: int
    targets: list[int] = field(default_factory=list)
    visited: list[int] = field(default_factory=list)
    table_jumps: list[tuple[int, int]] = field(default_factory=list)
    moduli: list[int] = field(default_factory=list)
    codecopy_first: bool = False
    end: int = 0  # the offset where the run stopped


def run_dispatcher(
    code: bytes,
    by_pc: dict[int, Instruction],
    jumpdests: frozenset[int],
    selector: int,
    max_steps: int = MAX_STEPS,
    value: int = 0,
) -> Run:
    """Run ``code`` from offset 0 with calldata ``selector`` (4 bytes, big-endian) followed by
    :data:`CALLDATA_WORDS` zero words (empty calldata for :data:`EMPTY`) and ``value`` wei,
    until a halt, an instruction outside the subset (storage, calls, environment other than
    calldata, callvalue and code), an invalid jump or
    ``max_steps`` instructions. Taint: values derived from ``calldataload(0)`` (for ``moduli``)
    and values loaded from memory (for ``table_jumps``). Never raises on any code."""
    from evmlm.evm.cfg import fold

    run = Run(selector)
    calldata = (
        b"" if selector == EMPTY else selector.to_bytes(4, "big") + bytes(32 * CALLDATA_WORDS)
    )
    st: list[int] = []
    sel_taint: list[bool] = []
    mem_taint: list[bool] = []
    mem = bytearray()
    pc = 0
    jumped = False

    def mem_extend(end: int) -> bool:
        if end > 1 << 20:
            return False
        if end > len(mem):
            mem.extend(bytes(((end + 31) // 32) * 32 - len(mem)))
        return True

    for _ in range(max_steps):
        run.end = pc
        ins = by_pc.get(pc)
        if ins is None:
            return run
        op, name = ins.op, ins.name
        if len(st) < op.pops:
            return run
        nxt = pc + ins.size
        if ins.arg is not None:
            st.append(ins.arg)
            sel_taint.append(False)
            mem_taint.append(False)
        elif op.is_dup:
            st.append(st[-op.pops])
            sel_taint.append(sel_taint[-op.pops])
            mem_taint.append(mem_taint[-op.pops])
        elif op.is_swap:
            n = op.pops
            for s in (st, sel_taint, mem_taint):
                s[-1], s[-n] = s[-n], s[-1]
        elif name == "JUMPDEST":
            run.visited.append(pc)
        elif name in ("JUMP", "JUMPI"):
            tgt, from_mem = st.pop(), mem_taint.pop()
            sel_taint.pop()
            cond = 1
            if name == "JUMPI":
                cond = st.pop()
                sel_taint.pop()
                mem_taint.pop()
            if cond:
                if tgt not in jumpdests:
                    return run
                run.targets.append(tgt)
                if from_mem:
                    run.table_jumps.append((pc, tgt))
                nxt = tgt
            elif nxt not in jumpdests:
                run.visited.append(nxt)  # the fall-through block of a JUMPI not taken
            jumped = True
        else:
            args = [st.pop() for _ in range(op.pops)]
            ts = [sel_taint.pop() for _ in range(op.pops)]
            ms = [mem_taint.pop() for _ in range(op.pops)]
            out: int | None
            t_sel, t_mem = any(ts), any(ms)
            if name in PURE:
                out = fold(name, args)
                if name == "MOD" and ts[0] and not ts[1] and args[1] > 1:
                    run.moduli.append(args[1])
            elif name == "CALLDATALOAD":
                o = args[0]
                out = (
                    int.from_bytes(calldata[o : o + 32].ljust(32, b"\0"), "big")
                    if o < len(calldata)
                    else 0
                )
                t_sel = o < 4
            elif name == "CALLDATASIZE":
                out = len(calldata)
            elif name == "CALLVALUE":
                out = value
            elif name == "CODESIZE":
                out = len(code)
            elif name == "PC":
                out = pc
            elif name == "POP":
                out = None
            elif name == "MLOAD":
                if not mem_extend(args[0] + 32):
                    return run
                out = int.from_bytes(mem[args[0] : args[0] + 32], "big")
                t_mem = True
            elif name in ("MSTORE", "MSTORE8"):
                size = 32 if name == "MSTORE" else 1
                if not mem_extend(args[0] + size):
                    return run
                val = args[1] if size == 32 else args[1] & 0xFF
                mem[args[0] : args[0] + size] = val.to_bytes(size, "big")
                out = None
            elif name == "CODECOPY":
                dst, src, size = args
                if not mem_extend(dst + size) or size > 1 << 16:
                    return run
                chunk = code[src : src + size] if src < len(code) else b""
                mem[dst : dst + size] = chunk.ljust(size, b"\0")
                if not jumped:
                    run.codecopy_first = True
                out = None
            else:
                return run  # outside the subset (or a halt)
            if op.pushes:
                st.append(0 if out is None else out & WORD)
                sel_taint.append(t_sel)
                mem_taint.append(t_mem)
        pc = nxt
    return run


def _record_candidates(code: bytes, jumpdests: frozenset[int]) -> set[int]:
    """Every 4-byte string of ``code`` followed by a 2-byte big-endian JUMPDEST offset (the
    dense table's ``method id | label`` records, and some noise that the runs discard)."""
    out = set()
    for p in range(len(code) - 5):
        if int.from_bytes(code[p + 4 : p + 6], "big") in jumpdests:
            out.add(int.from_bytes(code[p : p + 4], "big"))
    return out


@dataclass
class SelectorTables:
    """What running the dispatcher found (empty when the code has no Vyper table).

    ``jump_tables``: table-jump site -> every target taken there (bytecode offsets);
    ``dense``: selector -> its function's entry offset (dense tables only); ``payable``:
    selector -> whether its run with 1 wei takes the same path as with none (Vyper checks
    callvalue first: in the function, in the dense table's dispatcher, or for all functions
    before the selector chain in 0.3.9 and older; filled by :func:`apply_to_cfg`);
    ``probe_runs``:
    the runs of probe selectors (bucket residues that are no candidate record), for the
    fallback; ``runs``: every run by selector.
    """

    jump_tables: dict[int, frozenset[int]] = field(default_factory=dict)
    dense: dict[int, int] = field(default_factory=dict)
    dense_site: dict[int, int] = field(default_factory=dict)  # selector -> its table-jump site
    payable: dict[int, bool] = field(default_factory=dict)  # selector -> accepts value
    probe_runs: list[Run] = field(default_factory=list)
    runs: dict[int, Run] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.jump_tables or self.dense)


def _gate(code: bytes) -> bool:
    """Whether the straight-line code at offset 0 executes a ``CODECOPY`` before any jump or
    halt (Vyper's table dispatchers do; solc's and Vyper's linear ones do not). Decodes at
    most 64 instructions, so a contract without a table costs next to nothing."""
    pc = 0
    for _ in range(64):
        if pc >= len(code):
            return False
        op = op_info(code[pc])
        if op.name == "CODECOPY":
            return True
        if op.name in ("JUMP", "JUMPI", "JUMPDEST") or op.name in HALTS:
            return False
        pc += 1 + op.push_bytes
    return False


def read_tables(code: bytes) -> SelectorTables:
    """Resolve the table jumps of a Vyper selector table in ``code`` (metadata stripped).

    Returns an empty :class:`SelectorTables` for code whose dispatcher copies no code before
    its first jump (solc, Vyper's linear dispatcher). Cost: one run per bucket residue and per
    candidate record, each at most :data:`MAX_STEPS` instructions."""
    out = SelectorTables()
    table = _gate(code)
    if not table and not _prologue(code):
        return out
    by_pc = {i.pc: i for i in disassemble(code)}
    jumpdests = frozenset(i.pc for i in by_pc.values() if i.name == "JUMPDEST")
    if not table:  # Vyper's linear dispatcher: probes for the fallback only
        for s in (EMPTY, *range(LINEAR_PROBES)):
            out.runs[s] = run_dispatcher(code, by_pc, jumpdests, s)
        out.probe_runs = list(out.runs.values())
        return out
    first = run_dispatcher(code, by_pc, jumpdests, 0)
    if not first.codecopy_first:
        return out
    n = min(max(first.moduli, default=256), MAX_PROBES)
    empty = run_dispatcher(code, by_pc, jumpdests, EMPTY)
    # a sparse table jumps for any calldata (empty too); a dense one only for a method id
    # that passed its check, so only then are the candidate records worth running
    records = set() if empty.table_jumps else _record_candidates(code, jumpdests)
    probes = [EMPTY, *(s for s in range(n) if s not in records)]
    for s in sorted(set(probes) | records):
        r = first if s == 0 else empty if s == EMPTY else run_dispatcher(code, by_pc, jumpdests, s)
        out.runs[s] = r
    out.probe_runs = [out.runs[s] for s in probes]
    sites: dict[int, set[int]] = {}
    for r in out.runs.values():
        for site, tgt in r.table_jumps:
            sites.setdefault(site, set()).add(tgt)
    out.jump_tables = {k: frozenset(v) for k, v in sites.items()}
    probe_sites = {site for r in out.probe_runs for site, _ in r.table_jumps}
    for s in records:
        r = out.runs[s]
        dense = [(site, t) for site, t in r.table_jumps if site not in probe_sites]
        if dense:
            out.dense_site[s], out.dense[s] = dense[0]
    log.debug(
        "vyper tables: %d table-jump sites, %d dense selectors, %d probes",
        len(out.jump_tables),
        len(out.dense),
        len(probes),
    )
    return out


class _Nodes:
    """CFG node keys (opaque values) by block start and by the offset of a block's last
    instruction, built once per contract."""

    def __init__(self, cfg: ContractCFG) -> None:
        self.cfg = cfg
        self.by_start: dict[int, Any] = {}
        self.by_last: dict[int, list[Any]] = {}
        for key, node in cfg.nodes.items():
            self.by_start.setdefault(node.block.start, key)
            self.by_last.setdefault(node.block.last.pc, []).append(key)

    def first(self, pc: int, preds_at: int | None = None) -> Any:
        """A node of the block at ``pc`` (the first one walked; one entered from a node whose
        block's final jump is at ``preds_at`` when given); None when the walk never got there."""
        if preds_at is None:
            return self.by_start.get(pc)
        for key in self.by_last.get(preds_at, ()):
            for s in self.cfg.nodes[key].succ:
                if self.cfg.nodes[s].block.start == pc:
                    return s
        return None


def apply_to_cfg(cfg: ContractCFG, tables: SelectorTables) -> None:
    """Complete ``cfg.dispatch`` from the tables: the dense selectors' entry nodes and the
    fallback entry (the first block on the probes' paths that every probe enters and no
    public function's run does). CFG node keys are used as opaque values."""
    if not (tables.found or tables.probe_runs):
        return
    d = cfg.dispatch
    nodes = _Nodes(cfg)
    for sel, entry in sorted(tables.dense.items()):
        key = nodes.first(entry, tables.dense_site[sel])
        if key is not None:
            d.selectors.setdefault(sel, key)
            d.has_selector_check = True
    by_pc = {i.pc: i for b in cfg.blocks.values() for i in b.instructions}
    if not d.selectors and tables.probe_runs:
        _linear_by_runs(cfg, tables, by_pc, nodes)
    public: set[int] = set()
    for sel in d.selectors:
        r = tables.runs.get(sel) or run_dispatcher(cfg.code, by_pc, cfg.jumpdests, sel)
        paid = run_dispatcher(cfg.code, by_pc, cfg.jumpdests, sel, value=1)
        tables.payable[sel] = (paid.visited, paid.end) == (r.visited, r.end)
        public.update(r.visited)
    probes = [r for r in tables.probe_runs if r.selector not in d.selectors]
    if not probes:
        return
    common = set(probes[0].visited).intersection(*(set(r.visited) for r in probes[1:]))
    fb = next((t for t in probes[0].visited if t in common and t not in public), None)
    if fb is not None:  # replaces the walk's: Vyper's calldatasize < 4 branch is a trampoline
        d.fallback = nodes.first(fb) or d.fallback


def _linear_by_runs(
    cfg: ContractCFG, tables: SelectorTables, by_pc: dict[int, Instruction], nodes: _Nodes
) -> None:
    """Selectors of a linear chain the CFG walk cannot read (Vyper 0.2: the selector is
    ``MLOAD(0)`` after ``MSTORE(28, calldataload(0))``, and the walk does not model memory):
    every ``PUSH1``-``PUSH4`` constant is run as a selector; one whose run enters a block that
    no probe's run enters is a selector, that block its entry."""
    seen = {t for r in tables.probe_runs for t in r.visited}
    consts = {i.arg for i in by_pc.values() if i.arg is not None and 1 <= i.op.push_bytes <= 4}
    for c in sorted(consts):
        r = tables.runs.get(c) or run_dispatcher(cfg.code, by_pc, cfg.jumpdests, c)
        entry = next((t for t in r.visited if t not in seen), None)
        key = nodes.first(entry) if entry is not None else None
        if key is not None:
            tables.runs[c] = r
            cfg.dispatch.selectors[c] = key
            cfg.dispatch.has_selector_check = True


_PROLOGUE = re.compile(
    rb"\x60\x04\x36\x10\x15\x61\x00\x0d\x57"  # calldatasize < 4 -> fallback (linear; 0.2-0.4)
    rb"|\x60\x03\x36\x11\x61\x00\x0c\x57"  # calldatasize > 3 -> the chain (0.3.x <= 0.3.9)
    rb"|(?:\x5f|\x60\x00)\x35\x60\xe0\x1c\x63[\x00-\xff]{4}\x81\x18",  # one bucket: sel ^ c
    re.DOTALL,
)


def _prologue(code: bytes) -> bool:
    """Whether ``code`` starts with one of Vyper's table-less dispatcher openings: the
    ``calldatasize`` check that jumps just past itself, or the selector read followed by
    ``PUSH4 c; DUP2; XOR`` (a single bucket). Huff's ``DUP1 PUSH4 EQ`` and solc's free memory
    pointer do not match."""
    return _PROLOGUE.match(code) is not None


def dialect(code: bytes) -> str:
    """``"vyper"`` when ``code`` (metadata stripped) starts like Vyper's dispatchers
    (:func:`_prologue`, or a selector table: :func:`_gate`); ``"solidity"`` otherwise. solc's code always starts by
    setting the free memory pointer (``PUSH1 0x80 PUSH1 0x40 MSTORE``), Vyper's never does."""
    if _prologue(code) or _gate(code):
        return "vyper"
    return "solidity"


def storage_layout(layout: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Vyper's ``-f layout`` (``{"storage_layout": {name: {"type", "slot"}, module: {...}}}``,
    modules nested in 0.4) as solc's ``storageLayout`` shape (``{"storage": [{"label", "slot",
    "offset", "type"}]}``), labels being the variables' own names. Entries without an integer
    ``slot`` (e.g. 0.3's ``nonreentrant.lock`` keys are kept: they name their slot) are
    skipped. Raises nothing on malformed input: what cannot be read is left out."""
    out: list[dict[str, Any]] = []

    def walk(d: Mapping[str, Any]) -> None:
        for name, v in d.items():
            if not isinstance(v, Mapping):
                continue
            if isinstance(v.get("slot"), int) and isinstance(v.get("type"), str):
                label = name.replace(".", "_").replace(" ", "_")
                out.append({"label": label, "slot": str(v["slot"]), "offset": 0, "type": v["type"]})
            else:
                walk(v)

    sl = layout.get("storage_layout")
    if isinstance(sl, Mapping):
        walk(sl)
    return {"storage": out}


def immutables(layout: Mapping[str, Any] | None) -> dict[int, tuple[str, int]]:
    """Vyper's immutables from ``-f layout``'s ``code_layout`` (modules nested in 0.4): byte
    offset after the end of the runtime code -> (name, length in bytes). Vyper appends their
    values to the runtime code at deployment and reads them with ``CODECOPY``. Empty for no or
    malformed input."""
    out: dict[int, tuple[str, int]] = {}

    def walk(d: Mapping[str, Any]) -> None:
        for name, v in d.items():
            if not isinstance(v, Mapping):
                continue
            if isinstance(v.get("offset"), int) and isinstance(v.get("length"), int):
                out[v["offset"]] = (name, v["length"])
            else:
                walk(v)

    cl = (layout or {}).get("code_layout")
    if isinstance(cl, Mapping):
        walk(cl)
    return out

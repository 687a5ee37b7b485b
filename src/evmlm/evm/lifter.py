"""``lift_contract``: runtime bytecode -> context-sensitive CFG -> functions -> TAC per function.

Functions come from the dispatcher read by the CFG walk (:mod:`evmlm.evm.cfg`): one public
function per ``selector == c`` branch (linear and binary-search dispatchers alike), the
fallback (the ``calldatasize < 4`` / no-match target) and receive (the ``calldatasize == 0``
branch). Fallback and receive exist when their code does more than revert (the bytecode
decides; an ABI entry adds one whose body only reverts, the ABI never removes one).
Internal functions are recognised by the call/return pattern (:mod:`evmlm.evm.internal`).
A function's body is every CFG node reachable from its entry node, so shared internal code is
inlined in each caller's own context. Signatures and mutability come from the ABI when given,
else from evmole (selectors' argument types and state mutability); the CFG is the authority
for bodies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from evmlm.evm import tac
from evmlm.evm.abi import COMMON_FUNCTIONS, AbiInfo, normalise_selector
from evmlm.evm.cfg import AnalysisLimitError, ContractCFG, NodeKey, budget_clock
from evmlm.evm.disasm import BytecodeError, load_bytecode, split_metadata
from evmlm.evm.opcodes import HALTS, STATE_CHANGING
from evmlm.evm.ssa import build_ssa, to_tac

log = logging.getLogger(__name__)


@dataclass
class LiftedFunction:
    """One recovered function and its TAC.

    ``selector`` is ``"0x"`` + 8 hex digits (None for fallback/receive/internal); ``entry`` the
    bytecode offset (bytes) of its first block; ``tac`` the printed TAC (:mod:`evmlm.evm.tac`);
    ``n_blocks`` the CFG nodes of its body (clones counted); ``complexity`` McCabe's cyclomatic
    number E - N + 2 of that graph (McCabe, IEEE TSE 1976); ``blocks`` / ``edges`` the body
    projected onto bytecode block offsets (for soundness checks).
    """

    selector: str | None
    kind: str
    entry: int
    signature: str | None
    tac: str
    n_blocks: int
    complexity: int
    payable: bool
    view_like: bool
    n_instructions: int = 0
    unresolved_jumps: int = 0
    blocks: tuple[int, ...] = ()
    edges: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        return self.selector or (
            f"internal_{self.entry:#x}" if self.kind == "internal" else self.kind
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = list(self.blocks)
        d["edges"] = [list(e) for e in self.edges]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LiftedFunction":
        d = dict(d)
        d["blocks"] = tuple(d.get("blocks", ()))
        d["edges"] = tuple(tuple(e) for e in d.get("edges", ()))
        return cls(**d)


@dataclass
class LiftedContract:
    """All functions of one contract plus CFG statistics.

    ``unresolved_jumps``: jump sites whose target stayed unknown; ``context_fallbacks``: blocks
    that hit ``max_contexts_per_block`` and were merged; ``invalid_jumps``: jump sites with a
    constant non-JUMPDEST target (exceptional halts); sizes are in bytes; ``dialect``: the
    compiler family the code looks like (``solidity`` / ``vyper``); ``notes``: recognisers
    that do not apply to it. ``partial``: None for a complete lift, else one line saying which
    budget ran out where (``lift.max_seconds``, ``lift.max_nodes``): the functions listed are
    then those lifted before it, their bodies possibly cut at unexplored nodes. ``seconds``:
    wall-clock time of the lift.
    """

    functions: list[LiftedFunction]
    code_size: int
    metadata_size: int
    n_nodes: int
    unresolved_jumps: int
    context_fallbacks: int
    invalid_jumps: int
    dialect: str = "solidity"  # "vyper" for Vyper's code (evmlm.evm.vyper.dialect)
    notes: tuple[str, ...] = ()  # recognisers that do not apply to this dialect, and why
    partial: str | None = None
    seconds: float = 0.0

    def function(self, selector: str) -> LiftedFunction | None:
        try:
            sel = normalise_selector(selector)
        except ValueError:
            return None
        return next((f for f in self.functions if f.selector == sel), None)

    @property
    def selectors(self) -> list[str]:
        return [f.selector for f in self.functions if f.selector]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "functions"}
        d["functions"] = [f.to_dict() for f in self.functions]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LiftedContract":
        d = dict(d)
        d["functions"] = [LiftedFunction.from_dict(f) for f in d.get("functions", [])]
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


#: evmole's argument / mutability analysis grows quadratically with the selector count (linear
#: dispatcher, measured on the 2-core machine: 0.13 s at 250 selectors, 1.7 s at 1,000, so
#: ~12 min at 20,000); past this many selectors the lifter does without it (no argument types,
#: payable from the CALLVALUE guard). Real contracts stay far below (the default corpus' largest
#: has ~200).
EVMOLE_MAX_SELECTORS = 300
#: Share of ``lift.max_seconds`` the CFG walk may use; the rest is left to lift the functions
#: it found (a walk cut by the budget still yields functions).
WALK_SHARE = 0.6


def _evmole_info(code: bytes, n_selectors: int) -> dict[int, tuple[str | None, str | None]]:
    """selector -> (argument types, state mutability) from evmole; {} when evmole fails or the
    dispatcher has more than :data:`EVMOLE_MAX_SELECTORS` selectors."""
    if n_selectors > EVMOLE_MAX_SELECTORS:
        return {}
    try:
        import evmole

        info = evmole.contract_info(code, selectors=True, arguments=True, state_mutability=True)
    except Exception as e:  # evmole is advisory only
        log.debug("evmole failed: %s", e)
        return {}
    return {int(f.selector, 16): (f.arguments, f.state_mutability) for f in info.functions or []}


def _exits_ok(cfg: ContractCFG, nodes: list[NodeKey]) -> bool:
    """Whether a region does anything but revert: a STOP/RETURN exit or a state change."""
    for k in nodes:
        block = cfg.nodes[k].block
        names = {i.name for i in block.instructions}
        if names & STATE_CHANGING or names & {"STOP", "RETURN"}:
            return True
        if (
            block.last.name not in HALTS
            and block.last.name not in ("JUMP", "JUMPI")
            and block.end >= len(cfg.code)
        ):
            return True  # running off the end of the code is a STOP
    return False


def _has_callvalue_guard(cfg: ContractCFG, nodes: list[NodeKey]) -> bool:
    for k in nodes[:4]:
        ins = cfg.nodes[k].block.instructions
        if any(i.name == "CALLVALUE" for i in ins) and ins[-1].name == "JUMPI":
            return True
    return False


def _body(
    cfg: ContractCFG,
    entry: NodeKey,
    stop: Sequence[NodeKey] = (),
    calls: Mapping[NodeKey, Any] | None = None,
) -> list[NodeKey]:
    """Nodes of a function: reachable from ``entry``; with ``calls`` (call form), a call site
    continues at its continuation instead of entering the callee."""
    if not calls:
        return cfg.reachable(entry, stop)
    stop_set = set(stop)
    seen, order, i = {entry}, [entry], 0
    while i < len(order):
        k = order[i]
        i += 1
        nxt = calls[k].continuations if k in calls else cfg.nodes[k].succ
        for s in nxt:
            if s not in seen and s not in stop_set:
                seen.add(s)
                order.append(s)
    return order


def _check(deadline: float) -> None:
    """Raise :class:`AnalysisLimitError` past ``deadline`` (a :func:`budget_clock` value)."""
    if budget_clock() > deadline:
        raise AnalysisLimitError("time budget")


def _make_function(
    cfg: ContractCFG,
    kind: str,
    entry: NodeKey,
    nodes: list[NodeKey],
    selector: int | None,
    signature: str | None,
    payable: bool,
    recognise: Any,
    calls: Mapping[NodeKey, Any] | None = None,
    deadline: float | None = None,
) -> LiftedFunction:
    """One function's TAC; raises :class:`AnalysisLimitError` past ``deadline``."""
    inside = set(nodes)
    ssa = build_ssa(
        cfg, entry, nodes, {k: v for k, v in (calls or {}).items() if k in inside}, deadline
    )
    internal_name = f"internal_{entry.pc:#x}" if kind == "internal" else kind
    name = f"{selector:#010x}" if selector is not None else internal_name
    effect_nodes = cfg.reachable(entry) if calls else nodes  # the call form hides callees' effects
    ops = {i.name for k in effect_nodes for i in cfg.nodes[k].block.instructions}
    view_like = not (ops & STATE_CHANGING)
    flags = tuple(f for f, on in (("payable", payable), ("view", view_like)) if on)
    if deadline is not None:
        _check(deadline)
    f = to_tac(ssa, name, signature, flags)
    if recognise is not None:
        if deadline is not None:
            _check(deadline)
        f = recognise(f)
    text = tac.print_function(f)
    n_edges = sum(len(v) for v in ssa.succ.values())
    blocks = tuple(sorted({k.pc for k in nodes}))
    edges = tuple(sorted({(k.pc, s.pc) for k in nodes for s in ssa.succ[k]}))
    return LiftedFunction(
        selector=f"{selector:#010x}" if selector is not None else None,
        kind=kind,
        entry=entry.pc,
        signature=signature,
        tac=text,
        n_blocks=len(nodes),
        complexity=max(1, n_edges - len(nodes) + 2),
        payable=payable,
        view_like=view_like,
        n_instructions=sum(len(cfg.nodes[k].block.instructions) for k in nodes),
        unresolved_jumps=sum(1 for k in nodes if cfg.nodes[k].unresolved),
        blocks=blocks,
        edges=edges,
    )


def _walk(exe: bytes, cfg_: Any, full_size: int, deadline: float) -> tuple[ContractCFG, Any]:
    """The CFG of ``exe`` (metadata stripped), Vyper's selector tables resolved first
    (:mod:`evmlm.evm.vyper`; empty for code without one), and those tables."""
    from evmlm.evm import vyper

    tables = vyper.read_tables(exe)
    cfg = ContractCFG(
        exe,
        max_contexts_per_block=cfg_.max_contexts_per_block,
        max_nodes=cfg_.max_nodes,
        full_size=full_size,
        deadline=deadline,
        policy=cfg_.context_policy,
        jump_tables=tables.jump_tables,
    )
    vyper.apply_to_cfg(cfg, tables)
    return cfg, tables


def lift_contract(
    bytecode: str | bytes | Mapping[str, Any],
    *,
    abi: list | None = None,
    storage_layout: dict | None = None,
    config: Any = None,
    what: str = "bytecode",
) -> LiftedContract:
    """Lift runtime bytecode into per-function TAC.

    ``bytecode``: hex (with or without 0x), raw bytes or an artifact (see
    :func:`evmlm.evm.disasm.load_bytecode`). ``abi`` gives signatures, event and error names;
    ``storage_layout`` (solc's ``storageLayout``) names state variables; ``config`` is a
    :class:`evmlm.config.LiftConfig` (recognisers, context bound, node budget).
    Raises :class:`~evmlm.evm.disasm.BytecodeError` for bad input. Past the node or time
    budget (``max_nodes``, ``max_seconds``) it returns what it has, marked
    :attr:`LiftedContract.partial` (docs/lifter.md, "Time budget").
    """
    from evmlm.config import LiftConfig
    from evmlm.evm.internal import find_internal_functions
    from evmlm.evm.recognisers import Recognisers

    cfg_ = config if config is not None else LiftConfig()
    code = load_bytecode(bytecode, what=what)
    exe, meta = split_metadata(code)
    info = AbiInfo.from_abi(abi, what=f"{what} abi")
    t0 = time.monotonic()
    c0 = budget_clock()  # CPU time: t0 (wall) is only what LiftedContract.seconds reports
    deadline = c0 + cfg_.max_seconds
    walk_deadline = c0 + WALK_SHARE * cfg_.max_seconds
    cfg, tables = _walk(exe, cfg_, len(code), walk_deadline)
    moles = _evmole_info(code, len(cfg.dispatch.selectors)) if not info.given else {}
    from evmlm.evm.vyper import dialect

    rec = Recognisers(cfg_.recognisers, info, storage_layout, moles, code, dialect=dialect(exe))
    vy = rec.dialect == "vyper"
    d = cfg.dispatch
    calls = None
    if not cfg_.inline_internal:
        from evmlm.evm.internal import call_sites

        calls = call_sites(cfg)
    funcs: list[LiftedFunction] = []
    where = ""
    try:
        entries = set(d.selectors.values())
        for i, sel in enumerate(sorted(d.selectors)):
            where = f"after {i} of {len(d.selectors)} public functions"
            _check(deadline)
            key = d.selectors[sel]
            nodes = _body(cfg, key, calls=calls)
            if sel in info.functions:
                sig, mut = info.functions[sel]
                payable = mut == "payable"
            else:
                sig = COMMON_FUNCTIONS.get(sel) if not info.given else None
                _args, mut = moles.get(sel, (None, None))
                if vy:  # evmole reads unoptimised Vyper functions as payable; tables check value
                    payable = tables.payable.get(sel, not _has_callvalue_guard(cfg, nodes))
                else:
                    payable = (mut == "payable") if mut else not _has_callvalue_guard(cfg, nodes)
            rec_f = rec.for_function(sel, sig)
            funcs.append(
                _make_function(cfg, "public", key, nodes, sel, sig, payable, rec_f, calls, deadline)
            )
        where = "before the receive and fallback functions"
        _check(deadline)
        fb_key = d.fallback if d.has_selector_check else (d.fallback or cfg.start)
        if d.receive is not None:
            nodes = _body(cfg, d.receive, stop=entries, calls=calls)
            if info.receive or _exits_ok(cfg, nodes):
                rec_f = rec.for_function(None, None)
                funcs.append(
                    _make_function(
                        cfg,
                        "receive",
                        d.receive,
                        nodes,
                        None,
                        "receive()",
                        True,
                        rec_f,
                        calls,
                        deadline,
                    )
                )
        if fb_key is not None:
            stop = entries | ({d.receive} if d.receive else set())
            nodes = _body(cfg, fb_key, stop=stop, calls=calls)
            # The bytecode decides: an ABI without a fallback entry (or an empty ABI) does not
            # hide a fallback that does something; an ABI entry adds one that only reverts.
            if info.fallback is not None or _exits_ok(cfg, nodes):
                if info.fallback is not None:
                    payable = info.fallback == "payable"
                else:
                    payable = not _has_callvalue_guard(cfg, nodes)
                rec_f = rec.for_function(None, None)
                funcs.append(
                    _make_function(
                        cfg,
                        "fallback",
                        fb_key,
                        nodes,
                        None,
                        "fallback()",
                        payable,
                        rec_f,
                        calls,
                        deadline,
                    )
                )
        if cfg_.internal_functions:
            where = "before the internal functions"
            _check(deadline)
            internal = find_internal_functions(cfg, deadline)
            for i, (entry_key, nodes) in enumerate(internal):
                where = f"after {i} of {len(internal)} internal functions"
                _check(deadline)
                if calls is not None:
                    keep = set(nodes)
                    nodes = [n for n in _body(cfg, entry_key, calls=calls) if n in keep]
                rec_f = rec.for_function(None, None)
                funcs.append(
                    _make_function(
                        cfg, "internal", entry_key, nodes, None, None, False, rec_f, calls, deadline
                    )
                )
        partial = cfg.partial
    except AnalysisLimitError:
        partial = cfg.partial or f"time budget ({cfg_.max_seconds:g} s) ran out {where}"
    return LiftedContract(
        functions=funcs,
        code_size=len(code),
        metadata_size=len(meta),
        n_nodes=len(cfg.nodes),
        unresolved_jumps=len(cfg.unresolved_jumps),
        context_fallbacks=len(cfg.fallback_blocks),
        invalid_jumps=len(cfg.invalid_jumps),
        dialect=rec.dialect,
        notes=rec.notes,
        partial=partial,
        seconds=round(time.monotonic() - t0, 4),
    )


def recover_selectors(
    bytecode: str | bytes | Mapping[str, Any], *, config: Any = None, what: str = "bytecode"
) -> list[str]:
    """The public selectors ("0x" + 8 hex) that :func:`lift_contract` would lift, from the CFG
    walk alone (no TAC): the fast path for selector-recovery checks. Same errors as lift_contract."""
    from evmlm.config import LiftConfig

    cfg_ = config if config is not None else LiftConfig()
    code = load_bytecode(bytecode, what=what)
    exe, _ = split_metadata(code)
    cfg, _ = _walk(exe, cfg_, len(code), budget_clock() + cfg_.max_seconds)
    return [f"{s:#010x}" for s in sorted(cfg.dispatch.selectors)]


def render(
    lc: LiftedContract,
    *,
    selector: str | None = None,
    signature: str | None = None,
    fmt: str = "tac",
    internal: bool = True,
) -> str:
    """Text of a lifted contract for the CLI: all functions' TAC (or JSON), or one function's.

    Raises :class:`BytecodeError` naming the selectors found when the asked one is not there."""
    import json

    from evmlm.evm.abi import selector_of

    funcs = [f for f in lc.functions if internal or f.kind != "internal"]
    if signature is not None:
        selector = f"{selector_of(signature.replace(' ', '')):#010x}"
    if selector is not None:
        f = lc.function(selector)
        if f is None:
            have = ", ".join(lc.selectors) or "none"
            raise BytecodeError(f"selector {selector}: not in this contract (found: {have})")
        funcs = [f]
    if fmt == "json":
        d = lc.to_dict()
        d["functions"] = [f.to_dict() for f in funcs]
        return json.dumps(d, indent=1)
    return "\n".join(f.tac for f in funcs)

"""Internal (private/internal Solidity) functions by the call/return pattern.

Solidity's legacy and via-IR code generators call an internal function by pushing a return
address (a JUMPDEST) and the arguments, then jumping to the callee's entry; the callee returns
with a JUMP to a target taken from the stack it was entered with. A *call site* is a block whose
final JUMP goes to a constant it pushed itself while another JUMPDEST constant it pushed stays
on the stack; the call is confirmed when some block's final JUMP, whose target came from its
entry stack (a *return jump*), goes to that return address.

Each internal function is lifted once, in the context of its first call site; nested calls
are inlined in that context and the return edges back to the caller are cut. For the *call
form* of TAC (``lift.inline_internal=false``), :func:`call_sites` gives every call site with its
continuation, so a caller's TAC shows ``CALLPRIVATE(0x<entry>, args…)`` instead of the body.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from evmlm.evm.cfg import AnalysisLimitError, ContractCFG, NodeKey, budget_clock
from evmlm.evm.disasm import BasicBlock


def _local_jump(block: BasicBlock, jumpdests: frozenset[int]) -> tuple[object, list[int]]:
    """(target origin, JUMPDEST constants pushed in the block still on the stack at the final JUMP).

    Origins: ``("push", value)`` for a constant pushed in the block, ``("in", depth)`` for an entry
    slot, None for a computed value.
    """
    st: list[object] = []
    consumed = 0
    for ins in block.instructions[:-1]:
        op = ins.op
        n = op.pops
        while len(st) < n:
            st.insert(0, ("in", consumed))
            consumed += 1
        if ins.arg is not None:
            st.append(("push", ins.arg))
        elif op.is_dup:
            st.append(st[-n])
        elif op.is_swap:
            st[-1], st[-n] = st[-n], st[-1]
        else:
            if n:
                del st[len(st) - n :]
            st.extend([None] * op.pushes)
    if not st:
        st.insert(0, ("in", consumed))
    target = st[-1]
    pushed = [
        v[1] for v in st[:-1] if isinstance(v, tuple) and v[0] == "push" and v[1] in jumpdests
    ]  # type: ignore[index]
    return target, pushed


@dataclass(frozen=True)
class CallSite:
    """An internal call: the callee's entry node, the return address, and the caller's
    continuation nodes (where the callee's return jumps land in this context)."""

    callee: NodeKey
    ret: int
    continuations: tuple[NodeKey, ...]


def _analyse(
    cfg: ContractCFG,
) -> tuple[dict[int, tuple[object, list[int]]], dict[NodeKey, tuple[NodeKey, int]]]:
    """(local jump analysis per block, call-site node -> (callee node, return address))."""
    cached = cfg.__dict__.get("_internal")
    if cached is not None:
        return cached
    local: dict[int, tuple[object, list[int]]] = {}
    returns: set[int] = set()
    for pc, block in cfg.blocks.items():
        if block.last.name == "JUMP":
            local[pc] = _local_jump(block, cfg.jumpdests)
    for key, node in cfg.nodes.items():
        origin = local.get(key.pc, (None, []))[0]
        if isinstance(origin, tuple) and origin[0] == "in":
            returns.update(s.pc for s in node.succ)
    calls: dict[NodeKey, tuple[NodeKey, int]] = {}
    for key, node in cfg.nodes.items():
        origin, pushed = local.get(key.pc, (None, []))
        if not (isinstance(origin, tuple) and origin[0] == "push"):
            continue
        ret = next((r for r in reversed(pushed) if r in returns and r != origin[1]), None)
        if ret is None:
            continue
        for s in node.succ:
            if s.pc == origin[1]:
                calls[key] = (s, ret)
    cfg.__dict__["_internal"] = (local, calls)
    return local, calls


def find_internal_functions(
    cfg: ContractCFG, deadline: float | None = None
) -> list[tuple[NodeKey, list[NodeKey]]]:
    """Internal functions as (entry node, body nodes), one per entry offset, sorted by offset.

    Raises :class:`~evmlm.evm.cfg.AnalysisLimitError` past ``deadline`` (a
    :func:`~evmlm.evm.cfg.budget_clock` value).
    """
    local, calls = _analyse(cfg)
    sites: dict[int, tuple[NodeKey, int]] = {}
    for key in cfg.nodes:
        if key in calls:
            callee, ret = calls[key]
            sites.setdefault(callee.pc, (callee, ret))
    out = []
    for e in sorted(sites):
        if deadline is not None and budget_clock() > deadline:
            raise AnalysisLimitError("time budget")
        out.append((sites[e][0], _body(cfg, sites[e][0], sites[e][1], local)))
    return out


def call_sites(cfg: ContractCFG) -> dict[NodeKey, CallSite]:
    """Every call-site node with its callee and continuation nodes (for the call form of TAC)."""
    local, calls = _analyse(cfg)
    out = {}
    for key, (callee, ret) in calls.items():
        conts = _continuations(cfg, callee, ret, local)
        if conts:
            out[key] = CallSite(callee, ret, tuple(conts))
    return out


def _continuations(
    cfg: ContractCFG, start: NodeKey, ret: int, local: dict[int, tuple[object, list[int]]]
) -> list[NodeKey]:
    out: list[NodeKey] = []
    for k in _body(cfg, start, ret, local):
        origin = local.get(k.pc, (None, []))[0]
        if isinstance(origin, tuple) and origin[0] == "in":
            out.extend(s for s in cfg.nodes[k].succ if s.pc == ret and s not in out)
    return out


def _body(
    cfg: ContractCFG, start: NodeKey, ret: int, local: dict[int, tuple[object, list[int]]]
) -> list[NodeKey]:
    seen = {start}
    order = [start]
    q = deque([start])
    while q:
        k = q.popleft()
        origin = local.get(k.pc, (None, []))[0]
        is_return = isinstance(origin, tuple) and origin[0] == "in"
        for s in cfg.nodes[k].succ:
            if is_return and s.pc == ret:
                continue
            if s not in seen:
                seen.add(s)
                order.append(s)
                q.append(s)
    return order

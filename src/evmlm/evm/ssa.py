"""SSA construction: a function's CFG nodes -> TAC with PHI at merges and constants inlined.

Each node's block is executed symbolically over a stack of SSA values; stack slots read below
the block's own pushes are *entry slots*, resolved on demand through the predecessors: a slot
with one predecessor takes that predecessor's exit value, a slot at a merge gets a PHI with one
operand per predecessor, and PHIs whose operands are all the same value are removed (Braun et
al., "Simple and Efficient Construction of Static Single Assignment Form", CC 2013, §2-3).
Slots the abstract interpretation proved constant in the node's context are constants, so jump
targets and return addresses print as constants. Pure operations on constants are folded;
side-effect-free statements whose results are unused are removed. In the call form, an
internal call is one statement, ``v = CALLPRIVATE(0x<entry>, args…)`` (further results as
``RESULT(v, i)``), and the callee's blocks are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from evmlm.evm import tac
from evmlm.evm.cfg import (
    PURE,
    AnalysisLimitError,
    ContractCFG,
    NodeKey,
    Refined,
    budget_clock,
    fold,
)

#: Side-effect-free operations: removed when their result is unused.
NO_EFFECT = PURE | frozenset(
    {
        "KECCAK256",
        "ADDRESS",
        "BALANCE",
        "ORIGIN",
        "CALLER",
        "CALLVALUE",
        "CALLDATALOAD",
        "CALLDATASIZE",
        "CODESIZE",
        "GASPRICE",
        "EXTCODESIZE",
        "RETURNDATASIZE",
        "EXTCODEHASH",
        "BLOCKHASH",
        "COINBASE",
        "TIMESTAMP",
        "NUMBER",
        "PREVRANDAO",
        "GASLIMIT",
        "CHAINID",
        "SELFBALANCE",
        "BASEFEE",
        "BLOBHASH",
        "BLOBBASEFEE",
        "MLOAD",
        "SLOAD",
        "TLOAD",
        "PC",
        "MSIZE",
        "GAS",
        "PHI",
    }
)


class SVar:
    """An SSA value defined by a statement, a PHI, or the function's entry stack (``s<d>``)."""

    __slots__ = ("n", "phi_ops", "node", "input_depth")

    def __init__(self, n: int, node: NodeKey | None = None, input_depth: int | None = None) -> None:
        self.n = n
        self.phi_ops: list | None = None
        self.node = node
        self.input_depth = input_depth


@dataclass(frozen=True, slots=True)
class Slot:
    """Placeholder for entry stack slot ``d`` (0 = top) of ``node``."""

    node: NodeKey
    d: int


@dataclass
class _NodeCode:
    stmts: list = field(default_factory=list)  # [lhs SVar|None, op, args, ins_pc]
    exit: list = field(default_factory=list)  # stack top last
    consumed: int = 0


@dataclass
class FunctionSSA:
    """A function's nodes in order, block labels, and per node: PHIs and statements (resolved)."""

    nodes: list[NodeKey]
    labels: dict[NodeKey, str]
    preds: dict[NodeKey, list[NodeKey]]
    succ: dict[NodeKey, list[NodeKey]]
    phis: dict[NodeKey, list[SVar]]
    code: dict[NodeKey, list]


class _Builder:
    def __init__(
        self,
        cfg: ContractCFG,
        entry: NodeKey,
        nodes: list[NodeKey],
        calls: Mapping[NodeKey, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.entry = entry
        self.nodes = nodes
        self.calls = calls or {}
        inside = set(nodes)
        self.succ = {
            k: [
                s
                for s in (self.calls[k].continuations if k in self.calls else cfg.nodes[k].succ)
                if s in inside
            ]
            for k in nodes
        }
        self.preds: dict[NodeKey, list[NodeKey]] = {k: [] for k in nodes}
        for k in nodes:
            for s in self.succ[k]:
                if k not in self.preds[s]:
                    self.preds[s].append(k)
        self.counter = 0
        self.code: dict[NodeKey, _NodeCode] = {}
        self.memo: dict[tuple[NodeKey, int], object] = {}
        self.phis: list[SVar] = []
        self.pending: list[tuple[SVar, NodeKey, int]] = []
        self.inputs: dict[int, SVar] = {}
        self.deadline: float | None = None

    def new(self, node: NodeKey | None = None) -> SVar:
        self.counter += 1
        return SVar(self.counter, node)

    # -- per-node symbolic execution ----------------------------------------------------------
    def entry_value(self, key: NodeKey, d: int) -> object:
        entry = self.cfg.nodes[key].entry
        if d < len(entry):
            v = entry[-1 - d]
            if isinstance(v, int) and type(v) is not Refined:
                return int(v)
        return Slot(key, d)

    def exec_node(self, key: NodeKey) -> None:
        """Symbolic execution of a node's block; cached on the CFG (a node's code does not
        depend on the function it is part of), copied per function."""
        cache: dict = self.cfg.__dict__.setdefault("_ssa_nodes", {})
        raw = cache.get(key)
        if raw is None:
            raw = cache[key] = self._exec_node(key)
        self.code[key] = _NodeCode(
            [[v, op, list(args), pc] for v, op, args, pc in raw.stmts], raw.exit, raw.consumed
        )
        if key in self.calls:
            self._call_form(key, self.calls[key])

    def _call_form(self, key: NodeKey, site: Any) -> None:
        """Replace the call's final JUMP by ``CALLPRIVATE(0x<entry>, args…)`` defining the results.

        Arguments are the stack items above the return address (top first); the number of
        results follows from the stack heights at the callee's entry and at the continuation.
        """
        nc = self.code[key]
        exit_ = nc.exit
        pos = next(
            (
                i
                for i in range(len(exit_) - 1, -1, -1)
                if isinstance(exit_[i], int) and exit_[i] == site.ret
            ),
            None,
        )
        cont = self.cfg.nodes[site.continuations[0]]
        callee = self.cfg.nodes[site.callee]
        if pos is None or cont.key.is_merged:
            return
        n_args = len(exit_) - 1 - pos
        m = len(cont.entry) - (len(callee.entry) - 1 - n_args)
        if m < 0:
            return
        args = exit_[pos + 1 :][::-1]
        pc = nc.stmts[-1][3] if nc.stmts else key.pc
        if nc.stmts and nc.stmts[-1][1] == "JUMP":
            nc.stmts.pop()
        results: list = []
        if m == 0:
            nc.stmts.append([None, "CALLPRIVATE", [site.callee.pc, *args], pc])
        else:
            first = self.new(key)
            nc.stmts.append([first, "CALLPRIVATE", [site.callee.pc, *args], pc])
            results.append(first)
            for i in range(1, m):
                v = self.new(key)
                nc.stmts.append([v, "RESULT", [first, i], pc])
                results.append(v)
        nc.exit = exit_[:pos] + results

    def _exec_node(self, key: NodeKey) -> _NodeCode:
        nc = _NodeCode()
        st: list = []
        code_size = self.cfg.code_size

        def need(n: int) -> None:
            while len(st) < n:
                st.insert(0, self.entry_value(key, nc.consumed))
                nc.consumed += 1

        for ins in self.cfg.nodes[key].block.instructions:
            op = ins.op
            name = ins.name
            if ins.arg is not None:
                st.append(ins.arg)
                continue
            if op.is_dup:
                if len(st) < op.pops:
                    need(op.pops)
                st.append(st[-op.pops])
                continue
            if op.is_swap:
                if len(st) < op.pops:
                    need(op.pops)
                st[-1], st[-op.pops] = st[-op.pops], st[-1]
                continue
            need(op.pops)
            args = st[len(st) - op.pops :][::-1] if op.pops else []
            if op.pops:
                del st[len(st) - op.pops :]
            if name in ("POP", "JUMPDEST"):
                continue
            if op.pushes:
                if name in PURE and all(isinstance(a, int) for a in args):
                    st.append(fold(name, args))
                    continue
                if name == "PC":
                    st.append(ins.pc)
                    continue
                if name == "CODESIZE":
                    st.append(code_size)
                    continue
                v = self.new(key)
                nc.stmts.append([v, name, args, ins.pc])
                st.append(v)
            else:
                nc.stmts.append([None, name, args, ins.pc])
        nc.exit = st
        return nc

    def exit_value(self, key: NodeKey, d: int) -> object:
        nc = self.code[key]
        if d < len(nc.exit):
            return nc.exit[-1 - d]
        return self.entry_value(key, nc.consumed + d - len(nc.exit))

    # -- slot resolution ----------------------------------------------------------------------
    def read_entry(self, key: NodeKey, d: int) -> object:
        path = []
        while True:
            if (key, d) in self.memo:
                v = self.memo[(key, d)]
                break
            ps = self.preds[key]
            if d >= len(self.cfg.nodes[key].entry) and key != self.entry:
                # below the known stack: an underflow at run time (or a merged node's joined,
                # shortened stack); read it as an input slot instead of chasing it around loops
                ps = []
            if key == self.entry or len(ps) != 1:
                if not ps:  # the entry (or a node entered only from outside the function)
                    v = self.inputs.get(d)
                    if v is None:
                        v = self.inputs[d] = SVar(0, None, d)
                else:
                    v = self.new(key)
                    v.phi_ops = []
                    self.phis.append(v)
                    self.pending.append((v, key, d))
                self.memo[(key, d)] = v
                break
            path.append((key, d))
            ex = self.exit_value(ps[0], d)
            if not isinstance(ex, Slot):
                v = ex
                break
            key, d = ex.node, ex.d
        for k in path:
            self.memo[k] = v
        return v

    def resolve(self, v: object) -> object:
        return self.read_entry(v.node, v.d) if isinstance(v, Slot) else v

    def _check(self, i: int) -> None:
        if self.deadline is not None and i % 64 == 63 and budget_clock() > self.deadline:
            raise AnalysisLimitError("time budget")

    def build(self) -> FunctionSSA:
        for i, k in enumerate(self.nodes):
            self._check(i)
            self.exec_node(k)
        for i, k in enumerate(self.nodes):
            self._check(i)
            for st in self.code[k].stmts:
                st[2] = [self.resolve(a) for a in st[2]]
        i = 0
        while self.pending:
            i += 1
            self._check(i)
            phi, key, d = self.pending.pop()
            ops = []
            if key == self.entry:
                inp = self.inputs.get(d) or self.inputs.setdefault(d, SVar(0, None, d))
                ops.append(inp)
            for p in self.preds[key]:
                ops.append(self.resolve(self.exit_value(p, d)))
            phi.phi_ops = ops
        repl = self._remove_trivial_phis()

        def find(v: object) -> object:
            while isinstance(v, SVar) and v in repl:
                v = repl[v]
            return v

        for k in self.nodes:
            for st in self.code[k].stmts:
                st[2] = [find(a) for a in st[2]]
        live_phis = [p for p in self.phis if p not in repl]
        for p in live_phis:
            p.phi_ops = [find(a) for a in p.phi_ops]  # type: ignore[union-attr]
        self._dead_code(live_phis)
        phis: dict[NodeKey, list[SVar]] = {k: [] for k in self.nodes}
        for p in live_phis:
            if p.phi_ops is not None:
                phis[p.node].append(p)  # type: ignore[index]
        for k in phis:
            phis[k].sort(key=lambda p: p.n)
        labels: dict[NodeKey, str] = {}
        clones: dict[int, int] = {}
        for k in self.nodes:
            i = clones.get(k.pc, 0)
            clones[k.pc] = i + 1
            labels[k] = f"{k.pc:#x}" if i == 0 else f"{k.pc:#x}_{i}"
        return FunctionSSA(
            self.nodes,
            labels,
            self.preds,
            self.succ,
            phis,
            {k: self.code[k].stmts for k in self.nodes},
        )

    def _remove_trivial_phis(self) -> dict[SVar, object]:
        """Replace PHIs whose operands are one value (besides themselves) by that value.

        A worklist over PHI users with path-compressed lookups (Braun et al. 2013, §3.1)."""
        repl: dict[SVar, object] = {}

        def find(v: object) -> object:
            root = v
            while isinstance(root, SVar) and root in repl:
                root = repl[root]
            while isinstance(v, SVar) and v in repl and repl[v] is not root:
                repl[v], v = root, repl[v]
            return root

        users: dict[SVar, list[SVar]] = {}
        for p in self.phis:
            for o in p.phi_ops:  # type: ignore[union-attr]
                if isinstance(o, SVar) and o.phi_ops is not None:
                    users.setdefault(o, []).append(p)
        work = list(self.phis)
        while work:
            p = work.pop()
            if p in repl:
                continue
            ops = {find(o) for o in p.phi_ops} - {p}  # type: ignore[union-attr]
            if len(ops) == 1:
                repl[p] = ops.pop()
                work.extend(u for u in users.get(p, ()) if u not in repl)
        for p in list(repl):
            repl[p] = find(p)
        return repl

    def _dead_code(self, live_phis: list[SVar]) -> None:
        while True:
            used: set[int] = set()
            for k in self.nodes:
                for st in self.code[k].stmts:
                    used.update(id(a) for a in st[2] if isinstance(a, SVar))
            for p in live_phis:
                if p.phi_ops is not None:
                    used.update(id(a) for a in p.phi_ops if isinstance(a, SVar) and a is not p)
            removed = False
            for k in self.nodes:
                stmts = self.code[k].stmts
                keep = [
                    s
                    for s in stmts
                    if not (s[0] is not None and s[1] in NO_EFFECT and id(s[0]) not in used)
                ]
                if len(keep) != len(stmts):
                    self.code[k].stmts = keep
                    removed = True
            for p in live_phis:
                if p.phi_ops is not None and id(p) not in used:
                    p.phi_ops = None
                    removed = True
            if not removed:
                return


def build_ssa(
    cfg: ContractCFG,
    entry: NodeKey,
    nodes: list[NodeKey],
    calls: Mapping[NodeKey, Any] | None = None,
    deadline: float | None = None,
) -> FunctionSSA:
    """SSA form of the function made of ``nodes`` (``entry`` first) of ``cfg``; ``calls`` maps
    call-site nodes to :class:`evmlm.evm.internal.CallSite` for the call form. Raises
    :class:`~evmlm.evm.cfg.AnalysisLimitError` past ``deadline`` (a
    :func:`~evmlm.evm.cfg.budget_clock` value)."""
    b = _Builder(cfg, entry, nodes, calls)
    b.deadline = deadline
    return b.build()


def to_tac(
    ssa: FunctionSSA, name: str, signature: str | None, flags: tuple[str, ...]
) -> tac.Function:
    """Print-ready TAC of an SSA function; variables are numbered in order of definition."""
    names: dict[int, str] = {}
    counter = 0

    def nm(v: SVar) -> str:
        nonlocal counter
        if v.input_depth is not None:
            return f"s{v.input_depth}"
        if id(v) not in names:
            names[id(v)] = f"v{counter}"
            counter += 1
        return names[id(v)]

    def opnd(a: object) -> tac.Operand:
        if isinstance(a, SVar):
            return tac.Var(nm(a))
        return tac.Const(int(a))  # type: ignore[call-overload]

    f = tac.Function(name, signature, flags)
    for k in ssa.nodes:
        b = tac.Block(
            ssa.labels[k],
            tuple(ssa.labels[p] for p in ssa.preds[k]),
            tuple(ssa.labels[s] for s in ssa.succ[k]),
        )
        for p in ssa.phis[k]:
            lhs = nm(p)
            b.stmts.append(tac.Stmt(lhs, "PHI", tuple(opnd(a) for a in p.phi_ops)))  # type: ignore[union-attr]
        for lhs_v, op, args, _pc in ssa.code[k]:
            lhs = nm(lhs_v) if lhs_v is not None else None
            b.stmts.append(tac.Stmt(lhs, op, tuple(opnd(a) for a in args)))
        f.blocks.append(b)
    return f

"""Context-sensitive control-flow graph by abstract interpretation of the EVM stack.

The whole runtime code is walked from offset 0 with an abstract stack whose items are:
``None`` (unknown), an ``int`` constant, a :class:`Label` (a constant pushed by a PUSH whose
value is a JUMPDEST: a jump target or return address), a small ``frozenset`` of constants
(at most :data:`MAX_SET` values, the join of differing constants), or a :class:`Sym` marker used
to read the dispatcher (the selector ``shr(224, calldataload(0))``, ``selector == c``,
``calldatasize < 4``, ``calldatasize == 0``).

A CFG *node* is a basic block in a *context*: the positions and values of the labels on the
stack at block entry (which also fixes the stack height). Shared internal functions are so
cloned per return-address context and callers do not merge — the context-sensitive walk of
Vandal/Gigahorse-style decompilers (Grech et al., "Gigahorse", ICSE 2019, §3). When a block is
reached in more than ``max_contexts_per_block`` contexts, further contexts flow into one
*merged* node keyed by the stack height and only the innermost two return addresses
(k-limiting; outer labels joined into sets of JUMPDESTs); past the bound again, into one node
per block for any stack height and the block is reported as a
context-bound fallback; so is a context holding the same return address twice (recursion:
the same call site active twice), which would otherwise clone without end. A jump whose target is unknown is *unresolved*: counted per jump site
and reported, never dropped silently. A constant target that is not a JUMPDEST is an
exceptional halt (``invalid_jumps``), as the EVM specifies (yellow paper §9.4.3).

Budget: past ``max_nodes`` nodes or its deadline the walk stops and the CFG is *partial*
(``partial`` names why; nodes whose successors were not explored are marked ``unexplored``):
a recorded partial result, never a hang and never an exception.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import product
from typing import Iterable, Mapping, Union

from evmlm.config import LIFT_POLICIES
from evmlm.errors import EvmlmError
from evmlm.evm.disasm import BasicBlock, Instruction, basic_blocks, disassemble

log = logging.getLogger(__name__)

MAX_SET = 8
MERGED_SET = 256  # merged (context-bound) nodes keep up to this many return addresses per slot
MERGED_K = 2  # return addresses kept in the context of a merged node
PER_HEIGHT_FACTOR = 4  # labels-branch: per-height merged nodes of a block, x the context bound
MAX_REPEAT = 3  # labels-branch: copies of one label in a context before it counts as recursion
EXACT, KLIMITED, PER_BLOCK = 0, 1, 2  # NodeKey.tier
WORD = (1 << 256) - 1
SIGN = 1 << 255


class AnalysisLimitError(EvmlmError, RuntimeError):
    """A lifting budget ran out. Raised inside the lifter (SSA construction past its deadline)
    and caught by :func:`evmlm.evm.lift_contract`, which returns a partial result
    (``LiftedContract.partial``) instead; kept public so that callers catching it still work."""


def budget_clock() -> float:
    """The clock of the lifter's time budget (``lift.max_seconds``): CPU seconds of the calling
    thread, so that the same bytecode lifts to the same result on a loaded machine as on a
    quiet one (docs/lifter.md, "Time budget"). Deadlines are values of this clock."""
    return time.thread_time()


class Label(int):
    """A constant pushed by PUSH whose value is a valid JUMPDEST (a jump target or return address)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"L{int(self):#x}"


class Refined(int):
    """A constant the walk learnt from a branch (:func:`refine`), not from the code: used to
    decide later branches; SSA does not print it as a constant (the TAC keeps the variable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"R{int(self)}"


@dataclass(frozen=True, slots=True)
class Sym:
    """A dispatcher marker: kind in sel, seleq, selne, cdl0, cds, cdslt4, cdsge4, cdsz, cdsnz."""

    kind: str
    c: int = 0


Value = Union[None, int, frozenset, Sym]


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A CFG node: the basic block at offset ``pc`` (bytes) in a context.

    ``tier`` says what the context is: ``EXACT`` (0): ``ctx`` holds, per entry stack slot
    (bottom first), the :class:`Label` there (``labels-branch``: or a set of return addresses)
    or None, so ``height == len(ctx)``; ``KLIMITED``
    (1, past the context bound): ``ctx`` holds ``(slot index, label)`` of the innermost
    :data:`MERGED_K` labels (``labels-branch``: also ``(slot, None)`` for the outer ones) and
    ``height`` the entry stack height; ``PER_BLOCK`` (2, past the bound again): one node for
    the block and height (``ctx``: ``(slot, None)`` per label slot), or for any height
    (``ctx == ()``, ``height == -1``).
    ``cond`` (policy ``labels-branch``): the truth (0 or 1) of the entry slot that decides the
    block's final JUMPI when the walk knows it, else None. Raises ValueError for an
    inconsistent key.
    """

    pc: int
    ctx: tuple = ()
    height: int = 0
    tier: int = EXACT
    cond: int | None = None
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if self.tier == EXACT and self.height != len(self.ctx):
            raise ValueError(
                f"NodeKey {self.pc:#x}: exact context of {len(self.ctx)} slots, "
                f"height {self.height}"
            )
        any_height_ok = self.tier == PER_BLOCK and not self.ctx
        if (
            self.tier not in (EXACT, KLIMITED, PER_BLOCK)
            or self.height < -1
            or (self.height == -1 and not any_height_ok)
        ):
            raise ValueError(f"NodeKey {self.pc:#x}: bad tier {self.tier} / height {self.height}")
        object.__setattr__(self, "_hash", hash(self._fields()))

    def _fields(self) -> tuple:
        return (self.pc, self.ctx, self.height, self.tier, self.cond)

    def __hash__(self) -> int:  # keys live in many dicts and sets: hash once
        return self._hash

    def __eq__(self, other: object) -> bool:  # the cached hash first: most keys differ there
        if self is other:
            return True
        if type(other) is not NodeKey or self._hash != other._hash:
            return False
        return self._fields() == other._fields()

    @property
    def is_merged(self) -> bool:
        """Whether this is a merged (context-bound fallback) node."""
        return self.tier != EXACT


def _signed(x: int) -> int:
    return x - (1 << 256) if x & SIGN else x


def fold(name: str, a: list[int]) -> int | None:
    """Evaluate a pure EVM operation on constant operands (``a[0]`` = top of stack).

    Semantics of the yellow paper, Appendix H; returns None for non-pure operations.
    """
    if name == "ADD":
        return (a[0] + a[1]) & WORD
    if name == "SUB":
        return (a[0] - a[1]) & WORD
    if name == "MUL":
        return (a[0] * a[1]) & WORD
    if name == "DIV":
        return a[0] // a[1] if a[1] else 0
    if name == "MOD":
        return a[0] % a[1] if a[1] else 0
    if name == "SDIV":
        x, y = _signed(a[0]), _signed(a[1])
        return (abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)) & WORD if y else 0
    if name == "SMOD":
        x, y = _signed(a[0]), _signed(a[1])
        return (abs(x) % abs(y) * (-1 if x < 0 else 1)) & WORD if y else 0
    if name == "ADDMOD":
        return (a[0] + a[1]) % a[2] if a[2] else 0
    if name == "MULMOD":
        return (a[0] * a[1]) % a[2] if a[2] else 0
    if name == "EXP":
        return pow(a[0], a[1], 1 << 256)
    if name == "SIGNEXTEND":
        if a[0] >= 31:
            return a[1]
        bit = 8 * a[0] + 7
        mask = (1 << bit) - 1
        return (a[1] | (WORD ^ mask)) & WORD if a[1] & (1 << bit) else a[1] & mask
    if name == "LT":
        return int(a[0] < a[1])
    if name == "GT":
        return int(a[0] > a[1])
    if name == "SLT":
        return int(_signed(a[0]) < _signed(a[1]))
    if name == "SGT":
        return int(_signed(a[0]) > _signed(a[1]))
    if name == "EQ":
        return int(a[0] == a[1])
    if name == "ISZERO":
        return int(a[0] == 0)
    if name == "AND":
        return a[0] & a[1]
    if name == "OR":
        return a[0] | a[1]
    if name == "XOR":
        return a[0] ^ a[1]
    if name == "NOT":
        return WORD ^ a[0]
    if name == "BYTE":
        return (a[1] >> (8 * (31 - a[0]))) & 0xFF if a[0] < 32 else 0
    if name == "SHL":
        return (a[1] << a[0]) & WORD if a[0] < 256 else 0
    if name == "SHR":
        return a[1] >> a[0] if a[0] < 256 else 0
    if name == "SAR":
        return (_signed(a[1]) >> min(a[0], 256)) & WORD
    return None


PURE = frozenset(
    {
        "ADD",
        "SUB",
        "MUL",
        "DIV",
        "MOD",
        "SDIV",
        "SMOD",
        "ADDMOD",
        "MULMOD",
        "EXP",
        "SIGNEXTEND",
        "LT",
        "GT",
        "SLT",
        "SGT",
        "EQ",
        "ISZERO",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "BYTE",
        "SHL",
        "SHR",
        "SAR",
    }
)


def _as_set(v: Value) -> frozenset | None:
    if isinstance(v, frozenset):
        return v
    if isinstance(v, int):
        return frozenset((int(v),))
    return None


def join(a: Value, b: Value, jumpdests: frozenset[int] = frozenset()) -> Value:
    """Least upper bound of two abstract values: constants join into sets of at most
    :data:`MAX_SET` values (:data:`MERGED_SET` when all are JUMPDESTs: return addresses merged
    past the context bound), then unknown."""
    if a is b:
        return a
    if type(a) is type(b) and a == b:
        return a
    sa, sb = _as_set(a), _as_set(b)
    if sa is None or sb is None:
        return None
    s = sa | sb
    if len(s) == 1:
        return next(iter(s))
    if len(s) <= MAX_SET or (len(s) <= MERGED_SET and s <= jumpdests):
        return s
    return None


def _sym_op(name: str, args: list[Value]) -> Value:
    """Dispatcher markers: selector extraction and comparisons against the selector / calldatasize."""
    x, y = args[0], args[1] if len(args) > 1 else None
    if name == "SHR" and x == 224 and isinstance(y, Sym) and y.kind == "cdl0":
        return Sym("sel")
    if name == "DIV" and isinstance(x, Sym) and x.kind == "cdl0" and y == 1 << 224:
        return Sym("sel")
    if name == "AND":
        if isinstance(x, Sym) and x.kind == "sel" and y == 0xFFFFFFFF:
            return x
        if isinstance(y, Sym) and y.kind == "sel" and x == 0xFFFFFFFF:
            return y
        # Vyper: calldatasize >= 4 && selector == c for selectors ending in a zero byte
        for a, b in ((x, y), (y, x)):
            if (
                isinstance(a, Sym)
                and a.kind == "cdsge4"
                and isinstance(b, Sym)
                and b.kind == "seleq"
            ):
                return b
    if name in ("EQ", "SUB", "XOR"):
        for s, c in ((x, y), (y, x)):
            if isinstance(s, Sym) and s.kind == "sel" and isinstance(c, int) and c <= 0xFFFFFFFF:
                return Sym("seleq" if name == "EQ" else "selne", int(c))
    if name == "ISZERO" and isinstance(x, Sym):
        flip = {
            "seleq": "selne",
            "selne": "seleq",
            "cdslt4": "cdsge4",
            "cdsge4": "cdslt4",
            "cds": "cdsz",
            "cdsz": "cdsnz",
            "cdsnz": "cdsz",
        }
        if x.kind in flip:
            return Sym(flip[x.kind], x.c)
    if name == "LT" and isinstance(x, Sym) and x.kind == "cds" and y == 4:
        return Sym("cdslt4")
    if name == "GT" and x == 4 and isinstance(y, Sym) and y.kind == "cds":
        return Sym("cdslt4")
    if name == "SLT" and isinstance(x, Sym) and x.kind == "cds" and y == 4:
        return Sym("cdslt4")
    if (name == "GT" and isinstance(x, Sym) and x.kind == "cds" and y == 3) or (
        name == "LT" and x == 3 and isinstance(y, Sym) and y.kind == "cds"
    ):
        return Sym("cdsge4")
    return None


def eval_op(ins: Instruction, args: list[Value], code_size: int) -> Value:
    """Abstract result of a one-output instruction given abstract operands (top first)."""
    name = ins.name
    if name in PURE:
        if all(isinstance(a, int) for a in args):
            return fold(name, [int(a) for a in args])  # type: ignore[arg-type]
        sets = [_as_set(a) for a in args]
        if all(s is not None for s in sets):
            n = 1
            for s in sets:
                n *= len(s)  # type: ignore[arg-type]
            if n <= MAX_SET:
                out = frozenset(fold(name, list(c)) for c in product(*sets))  # type: ignore[arg-type,misc]
                return next(iter(out)) if len(out) == 1 else out  # type: ignore[return-value]
            return None
        return _sym_op(name, args)
    if name == "PC":
        return ins.pc
    if name == "CODESIZE":
        return code_size
    if name == "CALLDATALOAD" and args[0] == 0:
        return Sym("cdl0")
    if name == "CALLDATASIZE":
        return Sym("cds")
    return None


@dataclass
class Node:
    """A block in a context: its abstract entry stack (top last) and successor node keys."""

    key: NodeKey
    block: BasicBlock
    entry: tuple
    succ: list = field(default_factory=list)
    unresolved: bool = False
    invalid_jump: bool = False
    unexplored: bool = False  # a partial walk (budget) did not finish this node's successors


@dataclass
class Dispatch:
    """What the walk read from the dispatcher: selector -> entry node, fallback and receive entries."""

    selectors: dict[int, NodeKey] = field(default_factory=dict)
    fallback: NodeKey | None = None
    receive: NodeKey | None = None
    has_selector_check: bool = False


BOOLEAN_OPS = frozenset({"ISZERO", "EQ", "LT", "GT", "SLT", "SGT"})  # results are 0 or 1


@dataclass(frozen=True, slots=True)
class BranchShape:
    """What a block's final JUMPI tests, from a local symbolic run of the block.

    ``root``: the term the condition is ``ISZERO`` applied ``flips`` times to: ``("in", d)`` for
    entry slot ``d`` (0 = top), ``("op", i, name)`` for the ``i``-th instruction's result;
    ``boolean``: whether ``root`` is 0 or 1 (a comparison or ISZERO result); ``exit``: the terms
    of the stack after the JUMPI (top last; slots below are the untouched entry slots
    ``("in", consumed + j)``); ``steps``: per ISZERO in the chain, its term.
    """

    root: tuple
    flips: int
    boolean: bool
    exit: tuple
    consumed: int
    steps: tuple


def branch_shape(block: BasicBlock) -> BranchShape | None:
    """The :class:`BranchShape` of a block ending in JUMPI, else None."""
    if block.last.name != "JUMPI":
        return None
    st: list[tuple] = []
    consumed = 0
    made: dict[tuple, tuple] = {}  # ISZERO result term -> its operand term
    for i, ins in enumerate(block.instructions):
        op = ins.op
        n = op.pops
        while len(st) < n:
            st.insert(0, ("in", consumed))
            consumed += 1
        if ins.arg is not None:
            st.append(("const", i))
        elif op.is_dup:
            st.append(st[-n])
        elif op.is_swap:
            st[-1], st[-n] = st[-n], st[-1]
        else:
            args = st[len(st) - n :][::-1]
            if n:
                del st[len(st) - n :]
            if ins.name == "JUMPI":
                cond = args[1]
                break
            if op.pushes:
                t = ("op", i, ins.name)
                if ins.name == "ISZERO":
                    made[t] = args[0]
                st.append(t)
    steps = []
    while cond in made:
        steps.append(cond)
        cond = made[cond]
    boolean = cond[0] == "op" and cond[2] in BOOLEAN_OPS
    return BranchShape(cond, len(steps), boolean, tuple(st), consumed, tuple(steps))


def refine(shape: BranchShape, stack: list[Value], taken: bool) -> list[Value]:
    """The exit stack on one side of a JUMPI, with the slots the condition decides set.

    ``cond = ISZERO^flips(root)``: on the side where ``root == 0`` every copy of ``root`` is 0
    and every copy of ``ISZERO^j(root)`` is ``j % 2``; on the other side a boolean ``root``
    is 1 and ``ISZERO^j(root)`` is ``1 - j % 2`` for ``j >= 1``. Sound: only values the branch
    implies are written (the JUMPI semantics, yellow paper §9.4.3)."""
    root_zero = (shape.flips % 2 == 1) == taken
    vals: dict[tuple, int] = {}
    if root_zero:
        vals[shape.root] = Refined(0)
    elif shape.boolean:
        vals[shape.root] = Refined(1)
    for j, t in enumerate(reversed(shape.steps), start=1):
        vals[t] = Refined(j % 2 if root_zero else 1 - j % 2)
    if not vals:
        return stack
    out = list(stack)
    n = len(shape.exit)
    for i, t in enumerate(shape.exit):
        v = vals.get(t)
        if v is not None:
            out[len(out) - n + i] = v
    return out


class ContextPolicy:
    """How the walk names the node of a block reached with a given abstract stack.

    One object per walk (it counts contexts per block). :meth:`node_key` returns the
    :class:`NodeKey` for block ``pc`` entered with ``stack`` and records context-bound
    fallbacks in ``fallback_blocks``; ``refine_branches`` says whether the walk writes the
    values a JUMPI condition implies into each side's stack (:func:`refine`); ``pc_order``
    whether the worklist takes the lowest block offset first (code mostly flows forward, so
    a node is mostly re-run after all its forward predecessors changed: on Optimism's
    L1CrossDomainMessenger 27,600 instead of 42,400 block runs) or first in, first out.

    ``labels`` (the baseline, the walk before policies existed): the context is the labels; past
    ``max_contexts`` contexts of one block, a k-limited merged node (stack height and the
    innermost :data:`MERGED_K` labels); past the bound again, one node per block. A context
    holding one label twice (recursion) goes straight to the merged tiers.
    """

    name = "labels"
    refine_branches = False
    pc_order = False  # worklist: first in, first out (False) or lowest block offset first

    def __init__(self, max_contexts: int) -> None:
        self.max_contexts = max_contexts
        self.contexts: dict[int, int] = {}
        self.merged: dict[int, int] = {}
        self.fallback_blocks: set[int] = set()
        self.known: set[NodeKey] = set()

    def exact(self, pc: int, stack: list[Value]) -> NodeKey:
        """The exact-tier key: labels per slot."""
        ctx = tuple([v if type(v) is Label else None for v in stack])
        return NodeKey(pc, ctx, len(ctx))

    def recursive(self, ctx: tuple) -> bool:
        """Whether a context looks recursive: one label twice (the same call site active twice)."""
        labels_in_ctx = [v for v in ctx if v is not None]
        return len(labels_in_ctx) != len(set(labels_in_ctx))

    def node_key(self, pc: int, stack: list[Value]) -> NodeKey:
        key = self.exact(pc, stack)
        if key in self.known:
            return key
        n = self.contexts.get(pc, 0)
        recursive = self.recursive(key.ctx)
        if n < self.max_contexts and not recursive:
            self.contexts[pc] = n + 1
            self.known.add(key)
            return key
        if pc not in self.fallback_blocks:
            log.debug("block %#x: more than %d contexts; merging", pc, self.max_contexts)
        self.fallback_blocks.add(pc)
        mkey = self.merged_key(pc, stack)
        if mkey not in self.known and self.merged.get(pc, 0) >= self.max_contexts:
            mkey = self.last_key(pc, stack)
        if mkey not in self.known:
            self.merged[pc] = self.merged.get(pc, 0) + 1
            self.known.add(mkey)
        return mkey

    def last_key(self, pc: int, stack: list[Value]) -> NodeKey:
        """Last tier: one node per block for any height (stacks joined from the top, truncated
        to the shortest), so recursion that grows the stack converges."""
        return NodeKey(pc, (), -1, PER_BLOCK)

    def merged_key(self, pc: int, stack: list[Value]) -> NodeKey:
        """The k-limited key: the innermost :data:`MERGED_K` return addresses (and the height);
        the outer ones are forgotten (they join into sets of JUMPDESTs)."""
        labels = tuple((i, int(v)) for i, v in enumerate(stack) if type(v) is Label)[-MERGED_K:]
        return NodeKey(pc, labels, len(stack), KLIMITED)


class BranchPolicy(ContextPolicy):
    """``labels-branch``: the ``labels`` contexts, plus branch refinement and the truth of the
    entry slot that decides the block's JUMPI (when the block tests one) in the key.

    The worklist takes the lowest block offset first. A JUMPI's two sides get the values its
    condition implies (:func:`refine`: after
    ``success ISZERO DUP1 ISZERO JUMPI`` the copy is 0 on the taken side), and a block that
    tests an entry slot gets one node per truth value of that slot, so a flag set on one path
    and tested after a merge point (solc's try/catch, via-IR's ``if success``) keeps its
    correlation instead of opening an infeasible path whose stack has another height (whose
    return jump then reads data as its target: an unresolved jump).
    """

    name = "labels-branch"
    refine_branches = True
    pc_order = True

    def __init__(
        self,
        max_contexts: int,
        blocks: dict[int, BasicBlock],
        jumpdests: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(max_contexts)
        self.blocks = blocks
        self.jumpdests = jumpdests
        self._shapes: dict[int, BranchShape | None] = {}
        self._per_height: dict[int, int] = {}

    def recursive(self, ctx: tuple) -> bool:
        """One label more than :data:`MAX_REPEAT` times. solc's optimiser shares return tails
        (``JUMPDEST SWAP1 POP SWAP1 JUMP``) between call sites, so nested calls can hold one
        return address twice without recursion; true recursion adds a copy per level and is
        caught here or by the context bound."""
        seen: dict[int, int] = {}
        for v in ctx:
            if v is not None:
                seen[v] = seen.get(v, 0) + 1
                if seen[v] > MAX_REPEAT:
                    return True
        return False

    def merged_key(self, pc: int, stack: list[Value]) -> NodeKey:
        """The k-limited key keeps where every label is (``(slot, None)`` for the outer ones):
        contexts merged into one node hold return addresses in the same slots, so a slot's
        labels join into a set of JUMPDESTs and never with data (which would make the return
        jump through that slot unresolved)."""
        slots = self._label_slots(stack)
        inner = len(slots) - MERGED_K
        ctx = tuple(
            (i, int(stack[i]) if j >= inner and type(stack[i]) is Label else None)
            for j, i in enumerate(slots)
        )
        return NodeKey(pc, ctx, len(stack), KLIMITED)

    def shape(self, pc: int) -> BranchShape | None:
        """:func:`branch_shape` of block ``pc``, computed once."""
        if pc not in self._shapes:
            self._shapes[pc] = branch_shape(self.blocks[pc]) if pc in self.blocks else None
        return self._shapes[pc]

    def last_key(self, pc: int, stack: list[Value]) -> NodeKey:
        """Past the k-limited bound: one node per block, stack height, label positions and
        the innermost label's value (a helper called from many sites of many contexts keeps
        its own return address and keeps return-address slots apart from data); past
        :data:`PER_HEIGHT_FACTOR` x :attr:`max_contexts` such nodes, one per block for any
        height (the baseline's last tier: recursion that grows the stack converges)."""
        slots = self._label_slots(stack)
        last = len(slots) - 1
        ctx = tuple(
            (i, int(stack[i]) if j == last and type(stack[i]) is Label else None)
            for j, i in enumerate(slots)
        )
        key = NodeKey(pc, ctx, len(stack), PER_BLOCK)
        if key in self.known:
            return key
        n = self._per_height.get(pc, 0)
        if n >= PER_HEIGHT_FACTOR * self.max_contexts:
            return NodeKey(pc, (), -1, PER_BLOCK)
        self._per_height[pc] = n + 1
        return key

    def _label_slots(self, stack: list[Value]) -> list[int]:
        jd = self.jumpdests
        return [
            i
            for i, v in enumerate(stack)
            if type(v) is Label or type(v) is frozenset and v and v <= jd
        ]

    def tested_slot(self, pc: int) -> int | None:
        """Entry slot depth (0 = top) whose truth decides block ``pc``'s JUMPI, or None."""
        shape = self.shape(pc)
        root = shape.root if shape is not None else None
        return root[1] if root is not None and root[0] == "in" else None

    def slot_context(self, v: Value) -> Value:
        """What a stack slot contributes to an exact context: a label, or a set of return
        addresses (the exit of a merged node returning through an outer slot whose labels it
        joined). With labels only, such a set counted as data: the contexts downstream of the
        merged node shared one exact node with paths holding data in that slot, the set joined
        with the data into unknown, and the return through it was unresolved (7 of the 21
        contracts of the 3-setting full build with an unresolved jump; docs/lifter.md)."""
        if type(v) is Label or (type(v) is frozenset and v and v <= self.jumpdests):
            return v
        return None

    def exact(self, pc: int, stack: list[Value]) -> NodeKey:
        ctx = tuple([self.slot_context(v) for v in stack])
        key = NodeKey(pc, ctx, len(ctx))
        d = self.tested_slot(pc)
        if d is None or d >= len(stack):
            return key
        v = stack[-1 - d]
        if isinstance(v, frozenset):
            truth = 1 if 0 not in v else (0 if v == {0} else None)
        elif isinstance(v, int):
            truth = int(v != 0)
        else:
            truth = None
        return key if truth is None else NodeKey(pc, key.ctx, key.height, EXACT, truth)


POLICIES = LIFT_POLICIES  # names for lift.context_policy; the first is the baseline


def make_policy(
    name: str,
    max_contexts: int,
    blocks: dict[int, BasicBlock],
    jumpdests: frozenset[int] = frozenset(),
) -> ContextPolicy:
    """A fresh :class:`ContextPolicy` by name (one of :data:`POLICIES`); ValueError otherwise."""
    if name == "labels":
        return ContextPolicy(max_contexts)
    if name == "labels-branch":
        return BranchPolicy(max_contexts, blocks, jumpdests)
    raise ValueError(f"unknown context policy {name!r} (known: {', '.join(POLICIES)})")


class ContractCFG:
    """The context-sensitive CFG of one runtime bytecode (metadata already stripped).

    Attributes: ``blocks`` (start offset -> :class:`BasicBlock`), ``jumpdests``, ``nodes``
    (key -> :class:`Node`), ``preds``, ``dispatch``, ``fallback_blocks`` (offsets of blocks that
    hit the context bound), ``unresolved_jumps`` (offsets of jump instructions whose target
    stayed unknown), ``invalid_jumps`` (offsets of jumps to a constant that is not a JUMPDEST).
    ``jump_tables`` (jump offset -> targets, e.g. Vyper's selector tables read by
    :func:`evmlm.evm.vyper.read_tables`) is used only where the abstract target is unknown.
    """

    def __init__(
        self,
        code: bytes,
        *,
        max_contexts_per_block: int = 64,
        max_nodes: int = 100_000,
        full_size: int | None = None,
        deadline: float | None = None,
        policy: str = "labels-branch",
        jump_tables: Mapping[int, frozenset[int]] | None = None,
    ) -> None:
        self.code = code
        # jump site -> targets read from a table in the code (Vyper's selector tables,
        # evmlm.evm.vyper), used where the abstract stack leaves a target unknown
        self.jump_tables = dict(jump_tables or {})
        self.code_size = full_size if full_size is not None else len(code)
        self.instructions = disassemble(code)
        self.blocks = basic_blocks(self.instructions)
        self.jumpdests = frozenset(i.pc for i in self.instructions if i.name == "JUMPDEST")
        self.max_contexts = max_contexts_per_block
        self.max_nodes = max_nodes
        self.deadline = deadline  # budget_clock() value past which the walk stops
        self.nodes: dict[NodeKey, Node] = {}
        self.policy = make_policy(policy, max_contexts_per_block, self.blocks, self.jumpdests)
        self.fallback_blocks = self.policy.fallback_blocks
        self.dispatch = Dispatch()
        self.unresolved_jumps: set[int] = set()
        self.invalid_jumps: set[int] = set()
        self._walk()
        self._prune()
        self.preds: dict[NodeKey, list[NodeKey]] = {k: [] for k in self.nodes}
        for n in self.nodes.values():
            for s in n.succ:
                if n.key not in self.preds[s]:
                    self.preds[s].append(n.key)

    # -- abstract execution of one block ------------------------------------------------------
    def run_block(
        self, block: BasicBlock, entry: tuple, lenient: bool = False
    ) -> tuple[list[Value] | None, Value, Value]:
        """Execute ``block`` abstractly. Returns (exit stack or None on underflow/overflow,
        jump target, jump condition) where the last two are for a final JUMP/JUMPI.
        ``lenient`` (merged nodes, whose joined stack may be shorter than the real one) reads
        unknown values below the stack instead of treating underflow as a halt."""
        st = list(entry)
        if lenient:
            need = sum(i.op.pops for i in block.instructions)
            st[:0] = [None] * max(0, need - len(st))
        target: Value = None
        cond: Value = None
        jd = self.jumpdests
        for ins in block.instructions:
            op = ins.op
            name = ins.name
            if ins.arg is not None:
                st.append(Label(ins.arg) if ins.arg in jd else ins.arg)
            elif op.is_dup:
                n = op.pops
                if len(st) < n:
                    return None, None, None
                st.append(st[-n])
            elif op.is_swap:
                n = op.pops
                if len(st) < n:
                    return None, None, None
                st[-1], st[-n] = st[-n], st[-1]
            else:
                if len(st) < op.pops:
                    return None, None, None
                args = st[len(st) - op.pops :][::-1] if op.pops else []
                if op.pops:
                    del st[len(st) - op.pops :]
                if name == "JUMP":
                    target = args[0]
                elif name == "JUMPI":
                    target, cond = args[0], args[1]
                elif op.pushes:
                    st.append(eval_op(ins, args, self.code_size))
            if len(st) > 1024:
                return None, None, None
        return st, target, cond

    def _targets(self, ins: Instruction, target: Value, node: Node) -> list[int]:
        vals = _as_set(target)
        if vals is None and ins.pc in self.jump_tables:
            vals = self.jump_tables[ins.pc]
        if vals is None:
            self.unresolved_jumps.add(ins.pc)
            node.unresolved = True
            return []
        good = sorted(v for v in vals if v in self.jumpdests)
        if len(good) < len(vals):
            self.invalid_jumps.add(ins.pc)
            node.invalid_jump = True
        return good

    def _walk(self) -> None:
        self.start: NodeKey | None = None
        self.partial: str | None = None
        if 0 not in self.blocks:
            return
        start = self.start = self.policy.node_key(0, [])
        self.nodes[start] = Node(start, self.blocks[0], ())
        work: list = [(0, 0, start)]  # (priority, arrival, key): a heap
        seq = 0
        pc_order = self.policy.pc_order
        queued = {start}
        steps = 0
        while work:
            steps += 1
            if self.deadline is not None and steps % 256 == 0 and budget_clock() > self.deadline:
                left = len(work)
                self.partial = f"the CFG walk's time budget ran out ({left} nodes left unexplored)"
                break
            key = heapq.heappop(work)[2]
            queued.discard(key)
            node = self.nodes[key]
            block = node.block
            exit_stack, target, cond = self.run_block(block, node.entry, lenient=key.is_merged)
            node.succ = []
            if exit_stack is None:
                continue
            last = block.last
            nexts: list[int] = []
            two_sided = False  # a JUMPI with an unknown condition: refine each side's stack
            if last.name == "JUMP":
                nexts = self._targets(last, target, node)
            elif last.name == "JUMPI":
                fall = block.end
                if isinstance(cond, int) and not isinstance(cond, bool):
                    nexts = (
                        self._targets(last, target, node)
                        if cond
                        else ([fall] if fall in self.blocks else [])
                    )
                else:
                    nexts = self._targets(last, target, node)
                    two_sided = fall in self.blocks and fall not in nexts
                    nexts += [fall] if fall in self.blocks else []
            elif last.name not in ("STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT"):
                if block.end in self.blocks:
                    nexts = [block.end]
            fall_stack = exit_stack
            if two_sided and self.policy.refine_branches and not isinstance(cond, Sym):
                shape = self.policy.shape(block.start)  # type: ignore[attr-defined]
                if shape is not None:
                    fall_stack = refine(shape, exit_stack, taken=False)
                    exit_stack = refine(shape, exit_stack, taken=True)
            for i, pc in enumerate(nexts):
                st = fall_stack if two_sided and i == len(nexts) - 1 else exit_stack
                skey, sstack = self.policy.node_key(pc, st), tuple(st)
                old = self.nodes.get(skey)
                if old is None:
                    if len(self.nodes) >= self.max_nodes:
                        self.partial = f"node budget ({self.max_nodes}) ran out in the CFG walk"
                        node.unexplored = True
                        continue
                    self.nodes[skey] = Node(skey, self.blocks[pc], sstack)
                    changed = True
                elif old.entry == sstack:
                    changed = False
                else:
                    new = self._join_stacks(old.entry, sstack, self.jumpdests)
                    changed = new != old.entry
                    if changed:
                        old.entry = new
                if skey not in node.succ:
                    node.succ.append(skey)
                if changed and skey not in queued:
                    seq += 1
                    heapq.heappush(work, (skey.pc if pc_order else 0, seq, skey))
                    queued.add(skey)
            if last.name == "JUMPI" and isinstance(cond, Sym):
                self._read_dispatch(cond, node, last, block.end)
        self.block_runs = steps  # block executions (a node re-runs when its entry changes)
        for _, _, k in work:
            self.nodes[k].unexplored = True

    def _prune(self) -> None:
        """Drop the nodes no longer reachable from the start and count unresolved and invalid
        jumps on the others only. A node re-runs when its entry grows, and its successors' keys
        can change then (a tested slot's truth becomes unknown, a block passes the context
        bound): the nodes of the earlier run stay behind with no edge into them, and their
        stale, narrower stacks must not count (on Chainlink's FunctionsClientExample, via-IR,
        2,200 of 11,300 nodes)."""
        if self.start is None:
            return
        d = self.dispatch  # entries the walk read (kept even if a later run re-keyed them)
        roots = [self.start, *d.selectors.values(), d.fallback, d.receive]
        live: set[NodeKey] = set()
        for r in roots:
            if r is not None and r not in live and r in self.nodes:
                live.update(self.reachable(r, live))
        if len(live) == len(self.nodes):
            return
        self.nodes = {k: n for k, n in self.nodes.items() if k in live}
        self.unresolved_jumps = {n.block.last.pc for n in self.nodes.values() if n.unresolved}
        self.invalid_jumps = {n.block.last.pc for n in self.nodes.values() if n.invalid_jump}

    @staticmethod
    def _join_stacks(a: tuple, b: tuple, jumpdests: frozenset[int]) -> tuple:
        if len(a) != len(b):
            n = min(len(a), len(b))
            a, b = a[len(a) - n :], b[len(b) - n :]
        return tuple([x if x is y else join(x, y, jumpdests) for x, y in zip(a, b)])

    def _read_dispatch(self, cond: Sym, node: Node, last: Instruction, fall: int) -> None:
        d = self.dispatch
        by_pc = {k.pc: k for k in node.succ}
        tgt_keys = [k for k in node.succ if k.pc != fall]
        tgt = tgt_keys[0] if len(tgt_keys) == 1 else None
        ft = by_pc.get(fall)
        if cond.kind == "seleq" and tgt is not None:
            d.selectors.setdefault(cond.c, tgt)
            d.has_selector_check = True
        elif cond.kind == "selne" and ft is not None:
            d.selectors.setdefault(cond.c, ft)
            d.has_selector_check = True
        elif cond.kind == "cdslt4" and tgt is not None and d.fallback is None:
            d.fallback = tgt
        elif cond.kind == "cdsge4" and ft is not None and d.fallback is None:
            d.fallback = ft
        elif cond.kind == "cdsz" and tgt is not None and d.receive is None:
            d.receive = tgt
            d.fallback = ft if ft is not None else d.fallback
        elif cond.kind in ("cdsnz", "cds") and ft is not None and d.receive is None:
            d.receive = ft
            d.fallback = tgt if tgt is not None else d.fallback

    # -- queries ------------------------------------------------------------------------------
    def reachable(self, start: NodeKey, stop: Iterable[NodeKey] = ()) -> list[NodeKey]:
        """Nodes reachable from ``start`` (breadth-first order, ``start`` first), not entering ``stop``."""
        stop_set = set(stop)
        seen = {start}
        order = [start]
        q = deque([start])
        while q:
            k = q.popleft()
            for s in self.nodes[k].succ:
                if s not in seen and s not in stop_set:
                    seen.add(s)
                    order.append(s)
                    q.append(s)
        return order

"""Quality checks of the lifter against ground truth: selector recovery and soundness.

- :func:`selector_recovery`: recovered selector sets vs the ABI's, precision/recall/F1 with
  every miss and every extra listed.
- :func:`soundness`: executes random ABI-encoded calls of each public function in py-evm with
  per-instruction tracing and checks that every executed instruction, and every taken jump
  edge, after the function's entry lies in that function's lifted CFG.

Contracts come from compiler output (:func:`iter_compiled`, the compile stage), from the JSON
artifacts shipped in npm packages (:func:`iter_artifacts`: ``deployedBytecode`` + ``abi``),
or from the test fixtures. Run ``python -m evmlm.evm.checks selectors|soundness --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tqdm import tqdm

from evmlm.evm.abi import canonical_type, random_value, selector_of, signature_of
from evmlm.evm.disasm import basic_blocks, disassemble, load_bytecode, split_metadata
from evmlm.evm.lifter import LiftedContract, lift_contract, recover_selectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contract:
    """A contract to check: a name, runtime bytecode (hex) and its ABI (list of entries)."""

    name: str
    runtime: str
    abi: list
    method_identifiers: dict[str, str] | None = (
        None  # signature -> 8-hex selector, when the compiler gave them
    )

    @property
    def is_library(self) -> bool:
        """Solidity library code starts with its call protection: PUSH20 <address> ADDRESS EQ."""
        code = self.runtime.lower().removeprefix("0x")
        return code.startswith("73") and code[42:46] == "3014"

    def expected_selectors(self) -> dict[str, str]:
        """selector ("0x" + 8 hex) -> signature: the compiler's method identifiers, else the ABI's."""
        if self.method_identifiers:
            return {"0x" + v.lower(): k for k, v in self.method_identifiers.items()}
        return {
            f"{selector_of(signature_of(e)):#010x}": signature_of(e)
            for e in self.abi
            if e.get("type", "function") == "function"
        }


#: Time budget (s) of the lifts the checks make: they measure the analysis, not the default
#: ``lift.max_seconds`` cut on a loaded machine (docs/lifter.md, "Time budget").
CHECK_SECONDS = 120.0
MAX_CODE_SIZE = 24_576  # EIP-170: larger runtime code cannot be deployed (Foundry scripts/tests)


def iter_artifacts(
    root: str | Path, *, limit: int | None = None, max_code_size: int | None = MAX_CODE_SIZE
) -> Iterator[Contract]:
    """Hardhat/Truffle/Foundry artifacts under ``root`` with non-empty ``deployedBytecode`` and an ABI.

    Skips debug files (``*.dbg.json``), runtime code over ``max_code_size`` bytes (EIP-170's
    limit by default: such artifacts are scripts and tests that cannot be deployed), and
    artifacts whose bytecode equals one already yielded (packages ship contracts several times).
    """
    seen: set[str] = set()
    n = 0
    for p in sorted(Path(root).rglob("*.json")):
        if p.name.endswith(".dbg.json") or p.name == "package.json" or "node_modules" in p.parts:
            continue
        try:
            if p.stat().st_size > 5_000_000:
                continue
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(d, dict) or not isinstance(d.get("abi"), list):
            continue
        code = d.get("deployedBytecode")
        if isinstance(code, dict):
            code = code.get("object")
        if not isinstance(code, str) or len(code.removeprefix("0x")) < 4:
            continue
        key = code.removeprefix("0x").lower()
        if key in seen or (max_code_size is not None and len(key) // 2 > max_code_size):
            continue
        seen.add(key)
        mids = d.get("methodIdentifiers") if isinstance(d.get("methodIdentifiers"), dict) else None
        yield Contract(str(p.relative_to(root)), key, d["abi"], mids)
        n += 1
        if limit is not None and n >= limit:
            return


def iter_compiled(compile_dir: str | Path, *, limit: int | None = None) -> Iterator[Contract]:
    """Deployable contracts of the compile stage's results (:func:`evmlm.solc.stage.iter_results`)."""
    from evmlm.solc.stage import iter_results

    n = 0
    seen: set[str] = set()
    for r in iter_results(compile_dir):
        for c in r.contracts:
            if not c.runtime_bytecode or c.runtime_bytecode in seen:
                continue
            seen.add(c.runtime_bytecode)
            yield Contract(
                f"{c.source_path}:{c.name}@{r.setting.name}",
                c.runtime_bytecode,
                c.abi,
                c.method_identifiers,
            )
            n += 1
            if limit is not None and n >= limit:
                return


def synthetic_dispatcher(n_selectors: int, *, seed: int = 0) -> tuple[bytes, list[int]]:
    """Runtime bytecode of a solc-style *linear* dispatcher over ``n_selectors`` selectors.

    ``PUSH1 0x80 PUSH1 0x40 MSTORE``, ``calldatasize < 4`` -> fallback (revert), the selector
    ``shr(224, calldataload(0))``, then per selector ``DUP1 PUSH4 sel EQ PUSH3 body JUMPI``
    (12 bytes), then one ``JUMPDEST STOP`` body per selector: 20,000 selectors give 280 KB (no
    compiler accepts a contract that large; it is the shape of the time check in
    docs/lifter.md). Selectors are the first 4 bytes of SHA-256 of ``f"{seed}:{i}"``, distinct
    and sorted. Returns (code, selectors). Raises ValueError for ``n_selectors < 1``.
    """
    import hashlib

    if n_selectors < 1:
        raise ValueError(f"n_selectors must be >= 1, not {n_selectors}")
    sels: set[int] = set()
    i = 0
    while len(sels) < n_selectors:
        sels.add(int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:4], "big"))
        i += 1
    ordered = sorted(sels)
    head = 5 + 9 + 6
    fallback = head + 12 * len(ordered)
    code = bytearray(bytes.fromhex("6080604052"))
    code += bytes([0x60, 4, 0x36, 0x10, 0x62]) + fallback.to_bytes(3, "big") + bytes([0x57])
    code += bytes([0x60, 0, 0x35, 0x60, 0xE0, 0x1C])
    for k, sel in enumerate(ordered):
        body = fallback + 5 + 2 * k
        code += bytes([0x80, 0x63]) + sel.to_bytes(4, "big")  # DUP1 PUSH4 sel
        code += bytes([0x14, 0x62]) + body.to_bytes(3, "big") + bytes([0x57])  # EQ PUSH3 body JUMPI
    code += bytes([0x5B, 0x60, 0, 0x80, 0xFD])  # fallback: JUMPDEST PUSH1 0 DUP1 REVERT
    code += bytes([0x5B, 0x00]) * len(ordered)
    return bytes(code), ordered


# -- selector recovery ---------------------------------------------------------------------------


@dataclass
class SelectorReport:
    """Selector recovery over many contracts: counts, F1, and every miss / extra."""

    contracts: int = 0
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    misses: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # contract, selector, signature
    extras: list[tuple[str, str]] = field(default_factory=list)
    # libraries without compiler method identifiers: their ABI cannot give the real selectors
    # (solc hashes library signatures with struct/contract/enum names and "storage" pointers)
    library_unverifiable: list[tuple[str, int, int, int]] = field(
        default_factory=list
    )  # name, matched, ABI-only, code-only
    seconds: list[tuple[float, str]] = field(default_factory=list)  # lift time per contract

    @property
    def precision(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_pos)

    @property
    def recall(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_neg)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def selector_recovery(contracts: Iterable[Contract], *, progress: bool = False) -> SelectorReport:
    """Recover each contract's selectors *without* its ABI (the CFG walk of :func:`lift_contract`,
    :func:`recover_selectors`) and compare them with the compiler's / the ABI's."""
    from evmlm.config import LiftConfig

    rep = SelectorReport()
    for c in tqdm(list(contracts), desc="selectors", unit="contract", disable=not progress):
        want = c.expected_selectors()
        t0 = time.perf_counter()
        try:
            budget = LiftConfig(max_seconds=CHECK_SECONDS)
            got = set(recover_selectors(c.runtime, what=c.name, config=budget))
        except Exception as e:  # a failure is a miss of every selector, recorded
            rep.failures.append((c.name, f"{type(e).__name__}: {e}"))
            got = set()
        rep.seconds.append((time.perf_counter() - t0, c.name))
        rep.contracts += 1
        if c.is_library and not c.method_identifiers and got != set(want):
            rep.library_unverifiable.append(
                (c.name, len(got & set(want)), len(set(want) - got), len(got - set(want)))
            )
            continue
        rep.true_pos += len(got & set(want))
        rep.false_pos += len(got - set(want))
        rep.false_neg += len(set(want) - got)
        rep.misses.extend((c.name, s, want[s]) for s in sorted(set(want) - got))
        rep.extras.extend((c.name, s) for s in sorted(got - set(want)))
    return rep


# -- soundness -----------------------------------------------------------------------------------


@dataclass
class SoundnessReport:
    """Executed behaviour vs lifted CFGs: counts and every counterexample, by class."""

    contracts: int = 0
    functions: int = 0
    calls: int = 0
    instructions: int = 0
    edges: int = 0
    bad_instructions: int = 0
    bad_edges: int = 0
    entry_not_reached: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counterexamples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def edge_share(self) -> float:
        return 1.0 - self.bad_edges / max(1, self.edges)

    @property
    def instruction_share(self) -> float:
        return 1.0 - self.bad_instructions / max(1, self.instructions)

    def classes(self) -> Counter:
        return Counter(c["class"] for c in self.counterexamples)


class _Traced:
    """Wraps one py-evm opcode function to record ``(call depth, pc)`` before it runs."""

    __slots__ = ("fn", "sink")

    def __init__(self, fn: Any, sink: list[tuple[int, int]]) -> None:
        self.fn = fn
        self.sink = sink

    def __call__(self, computation: Any) -> Any:
        self.sink.append((computation.msg.depth, computation.code.program_counter - 1))
        return self.fn(computation=computation)


class _Tracer:
    """Message calls in py-evm (Prague rules) with per-instruction tracing.

    pyrevm 0.3.7 can trace only by printing EIP-3155 JSON to stdout, which measured ~1 s per
    call here (vs ~1 ms for py-evm with wrapped opcode functions), so py-evm is used.
    """

    def __init__(self) -> None:
        from eth.chains.base import MiningChain
        from eth.db.atomic import AtomicDB
        from eth.tools.builder.chain import build, disable_pow_check, fork_at, genesis
        from eth.vm.forks.prague import PragueVM

        chain = build(
            MiningChain,
            fork_at(PragueVM, 0),
            disable_pow_check(),
            genesis(
                db=AtomicDB(),
                params={"difficulty": 0, "gas_limit": 30_000_000, "nonce": b"\x00" * 8},
            ),
        )
        self.state = chain.get_vm().state
        self.trace: list[tuple[int, int]] = []
        base = self.state.computation_class
        self.computation = type(
            "TracedComputation",
            (base,),
            {"opcodes": {b: _Traced(fn, self.trace) for b, fn in base.opcodes.items()}},
        )
        self.codes: dict[bytes, bytes] = {}

    def install(self, address: str, code: bytes) -> None:
        a = bytes.fromhex(address.removeprefix("0x"))
        self.state.set_code(a, code)
        self.codes[a] = code

    def call(self, caller: str, to: str, data: bytes, value: int) -> list[int]:
        """pcs executed in the called contract's own frame (depth 0), in order."""
        from eth.vm.message import Message

        sender, target = (
            bytes.fromhex(caller.removeprefix("0x")),
            bytes.fromhex(to.removeprefix("0x")),
        )
        self.state.set_balance(sender, 10**24)
        snap = self.state.snapshot()
        self.trace.clear()
        try:
            msg = Message(
                gas=10_000_000,
                to=target,
                sender=sender,
                value=value,
                data=data,
                code=self.codes[target],
            )
            ctx = self.state.get_transaction_context_class()(gas_price=1, origin=sender)
            self.computation.apply_message(self.state, msg, ctx)
        finally:
            self.state.revert(snap)
        return [pc for depth, pc in self.trace if depth == 0]


def _block_index(code: bytes) -> dict[int, int]:
    """instruction pc -> start of its basic block."""
    exe, _ = split_metadata(code)
    out = {}
    for start, b in basic_blocks(disassemble(exe)).items():
        for ins in b.instructions:
            out[ins.pc] = start
    return out


def check_contract(
    c: Contract,
    *,
    calls_per_function: int,
    rng: random.Random,
    rep: SoundnessReport,
    tracer: _Tracer | None = None,
    lifted: LiftedContract | None = None,
) -> int:
    """Check every public function of ``c`` with ABI-typed random calls; returns functions checked."""
    import eth_abi

    from evmlm.config import LiftConfig

    code = load_bytecode(c.runtime, what=c.name)
    lc = lifted or lift_contract(
        code, abi=c.abi, what=c.name, config=LiftConfig(max_seconds=CHECK_SECONDS)
    )
    if lc.partial:  # a budget cut, not the analysis, would be measured: say so, check nothing
        rep.skipped.append((c.name, f"partial lift: {lc.partial}"))
        return 0
    block_of = _block_index(code)
    tracer = tracer or _Tracer()
    addr = "0x" + "c0" * 20
    actors = ["0x" + "a1" * 20, "0x" + "a2" * 20, addr]
    tracer.install(addr, code)
    n_fn = 0
    rep.contracts += 1
    for e in c.abi:
        if e.get("type", "function") != "function":
            continue
        sig = signature_of(e)
        fn = lc.function(f"{selector_of(sig):#010x}")
        if fn is None:
            rep.skipped.append((c.name, f"{sig}: not recovered"))
            continue
        types = [canonical_type(p) for p in e.get("inputs", [])]
        body = set(fn.blocks)
        edges = set(fn.edges)
        n_fn += 1
        rep.functions += 1
        for _ in range(calls_per_function):
            try:
                args = [random_value(t, rng, actors) for t in types]
                data = bytes.fromhex(fn.selector[2:]) + eth_abi.encode(types, args)  # type: ignore[index]
            except Exception as ex:
                rep.skipped.append((c.name, f"{sig}: cannot encode ({ex})"))
                break
            # Value only to payable functions: a non-payable call with value may be rejected by the
            # dispatcher before the function's entry (solc hoists the check when nothing is payable).
            value = (
                rng.choice((0, 1))
                if e.get("stateMutability") == "payable" or e.get("payable")
                else 0
            )
            pcs = tracer.call(rng.choice(actors[:2]), addr, data, value)
            rep.calls += 1
            try:
                start = pcs.index(fn.entry)
            except ValueError:
                rep.entry_not_reached += 1
                if len(rep.counterexamples) < 1000:
                    rep.counterexamples.append(
                        {"class": "entry not reached", "contract": c.name, "function": sig}
                    )
                continue
            _check_path(
                pcs, start, block_of, body, edges, rep, {"contract": c.name, "function": sig}
            )
    return n_fn


def _check_path(
    pcs: list[int],
    start: int,
    block_of: dict[int, int],
    body: set[int],
    edges: set[tuple[int, int]],
    rep: SoundnessReport,
    where: dict[str, Any],
) -> None:
    """Count the instructions and taken edges of ``pcs[start:]``; record the first one outside
    ``body`` / ``edges`` as a counterexample (``where`` names the contract and function)."""
    prev_block = None
    for pc in pcs[start:]:
        blk = block_of.get(pc)
        rep.instructions += 1
        if blk not in body:
            rep.bad_instructions += 1
            if len(rep.counterexamples) < 1000:
                rep.counterexamples.append({"class": "instruction outside body", **where, "pc": pc})
            return
        if prev_block is not None and pc == blk:  # control entered a block: a taken edge
            rep.edges += 1
            if (prev_block, blk) not in edges:
                rep.bad_edges += 1
                if len(rep.counterexamples) < 1000:
                    rep.counterexamples.append(
                        {"class": "edge missing", **where, "edge": [prev_block, blk]}
                    )
                return
        prev_block = blk


def check_fallback(
    c: Contract,
    *,
    calls: int,
    rng: random.Random,
    rep: SoundnessReport,
    tracer: _Tracer | None = None,
    lifted: LiftedContract | None = None,
) -> int:
    """Check the lifted fallback of ``c`` (0 when it has none) with calls that match no
    selector: empty calldata, 1-3 bytes, and an unknown 4-byte selector with 0-2 random words,
    with 0 or 1 wei when the fallback is payable; from the fallback's entry on, executed
    instructions and taken edges must lie in its lifted body. Returns functions checked."""
    code = load_bytecode(c.runtime, what=c.name)
    lc = lifted or lift_contract(code, abi=c.abi, what=c.name)
    fb = next((f for f in lc.functions if f.kind == "fallback"), None)
    if fb is None:
        return 0
    known = {int(s, 16) for s in c.expected_selectors()}
    block_of = _block_index(code)
    tracer = tracer or _Tracer()
    addr = "0x" + "c0" * 20
    tracer.install(addr, code)
    rep.functions += 1
    body, edges = set(fb.blocks), set(fb.edges)
    for _ in range(calls):
        kind = rng.choice(("empty", "short", "unknown"))
        if kind == "empty":
            data = b""
        elif kind == "short":
            data = rng.randbytes(rng.choice((1, 2, 3)))
        else:
            sel = rng.getrandbits(32)
            while sel in known:
                sel = rng.getrandbits(32)
            data = sel.to_bytes(4, "big") + rng.randbytes(32 * rng.choice((0, 1, 2)))
        value = rng.choice((0, 1)) if fb.payable else 0
        pcs = tracer.call("0x" + "a1" * 20, addr, data, value)
        rep.calls += 1
        try:
            start = pcs.index(fb.entry)
        except ValueError:
            rep.entry_not_reached += 1
            if len(rep.counterexamples) < 1000:
                rep.counterexamples.append(
                    {
                        "class": "entry not reached",
                        "contract": c.name,
                        "function": "fallback",
                        "calldata": data.hex(),
                    }
                )
            continue
        _check_path(
            pcs, start, block_of, body, edges, rep, {"contract": c.name, "function": "fallback"}
        )
    return 1


def soundness(
    contracts: Iterable[Contract],
    *,
    calls_per_function: int = 20,
    seed: int = 0,
    min_functions: int = 0,
    progress: bool = False,
    fallback: bool = False,
) -> SoundnessReport:
    """Check contracts until all are done (and at least ``min_functions`` functions were checked);
    ``fallback`` also checks each lifted fallback (:func:`check_fallback`)."""
    from evmlm.config import LiftConfig

    rep = SoundnessReport()
    rng = random.Random(seed)
    tracer = _Tracer()
    for c in tqdm(list(contracts), desc="soundness", unit="contract", disable=not progress):
        try:
            lc = lift_contract(
                c.runtime, abi=c.abi, what=c.name, config=LiftConfig(max_seconds=CHECK_SECONDS)
            )
            check_contract(
                c, calls_per_function=calls_per_function, rng=rng, rep=rep, tracer=tracer, lifted=lc
            )
            if fallback:
                check_fallback(
                    c, calls=calls_per_function, rng=rng, rep=rep, tracer=tracer, lifted=lc
                )
        except Exception as e:  # recorded; the batch goes on
            rep.skipped.append((c.name, f"{type(e).__name__}: {e}"))
    return rep


# -- entry point ---------------------------------------------------------------------------------


def _contracts(args: argparse.Namespace) -> list[Contract]:
    out: list[Contract] = []
    if args.compile_dir:
        out.extend(iter_compiled(args.compile_dir, limit=args.limit))
    if args.artifacts:
        out.extend(iter_artifacts(args.artifacts, limit=args.limit))
    if args.fixtures:
        for p in sorted(Path(args.fixtures).glob("*.json")):
            for name, c in json.loads(p.read_text())["contracts"].items():
                out.append(
                    Contract(
                        f"{p.stem}:{name}",
                        c["runtime_bytecode"],
                        c["abi"],
                        c.get("method_identifiers"),
                    )
                )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evmlm.evm.checks", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("check", choices=("selectors", "soundness"))
    ap.add_argument("--compile-dir", help="a compile stage folder (runs/<name>/compile)")
    ap.add_argument(
        "--artifacts", help="a folder searched for npm JSON artifacts (e.g. vendor/corpora)"
    )
    ap.add_argument("--fixtures", help="tests/fixtures/evm")
    ap.add_argument(
        "--limit", type=int, default=None, help="at most this many contracts per source"
    )
    ap.add_argument("--calls", type=int, default=20, help="random calls per function (soundness)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--fallback",
        action="store_true",
        help="soundness: also check each lifted fallback with calls that match no selector",
    )
    ap.add_argument("--json", help="write the full report (with every miss / counterexample) here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    contracts = _contracts(args)
    if not contracts:
        print("error: no contracts; pass --compile-dir, --artifacts or --fixtures", file=sys.stderr)
        return 2
    if args.check == "selectors":
        rep = selector_recovery(contracts, progress=True)
        print(
            f"contracts {rep.contracts}  selectors: tp {rep.true_pos}  fp {rep.false_pos}  fn {rep.false_neg}  failures {len(rep.failures)}"
        )
        print(f"precision {rep.precision:.4f}  recall {rep.recall:.4f}  F1 {rep.f1:.4f}")
        lib_t, lib_m, lib_e = (sum(x[i] for x in rep.library_unverifiable) for i in (1, 2, 3))
        print(
            f"libraries without method identifiers whose ABI selectors differ (not scored above): {len(rep.library_unverifiable)} ({lib_t} matched, {lib_m} ABI-only, {lib_e} code-only)"
        )
        tp, fp, fn = rep.true_pos + lib_t, rep.false_pos + lib_e, rep.false_neg + lib_m
        print(f"F1 counting those libraries too: {2 * tp / max(1, 2 * tp + fp + fn):.4f}")
        for name, t, m, e in rep.library_unverifiable[:20]:
            print(f"  library {name}: {t} matched, {m} ABI-only, {e} code-only")
        for name, sel, sig in rep.misses[:50]:
            print(f"  miss  {sel} {sig}  in {name}")
        for name, sel in rep.extras[:50]:
            print(f"  extra {sel}  in {name}")
        for name, err in rep.failures[:20]:
            print(f"  failed {name}: {err}")
        for sec, name in sorted(rep.seconds, reverse=True)[:5]:
            print(f"  slowest {sec:.2f} s  {name}")
        out: dict[str, Any] = {
            "contracts": rep.contracts,
            "tp": rep.true_pos,
            "fp": rep.false_pos,
            "fn": rep.false_neg,
            "precision": rep.precision,
            "recall": rep.recall,
            "f1": rep.f1,
            "misses": rep.misses,
            "extras": rep.extras,
            "failures": rep.failures,
            "library_unverifiable": rep.library_unverifiable,
        }
    else:
        srep = soundness(
            contracts,
            calls_per_function=args.calls,
            seed=args.seed,
            progress=True,
            fallback=args.fallback,
        )
        print(
            f"contracts {srep.contracts}  functions {srep.functions}  calls {srep.calls}  instructions {srep.instructions}  edges {srep.edges}"
        )
        print(
            f"edges in lifted CFG {srep.edge_share:.4%}  instructions in body {srep.instruction_share:.4%}  entry not reached {srep.entry_not_reached}"
        )
        print(
            f"counterexample classes: {dict(srep.classes()) or 'none'}  skipped: {len(srep.skipped)}"
        )
        for cx in srep.counterexamples[:20]:
            print(f"  {cx}")
        out = {
            "contracts": srep.contracts,
            "functions": srep.functions,
            "calls": srep.calls,
            "instructions": srep.instructions,
            "edges": srep.edges,
            "bad_edges": srep.bad_edges,
            "bad_instructions": srep.bad_instructions,
            "entry_not_reached": srep.entry_not_reached,
            "classes": dict(srep.classes()),
            "counterexamples": srep.counterexamples,
            "skipped": srep.skipped,
        }
    if args.json:
        from evmlm import atomic

        atomic.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does a decompiled function compile in its contract, and does it behave like the original?

Two checks, both on the function's *own contract*, never on a fragment compiled alone
(fragments fail for lack of state variables and modifiers; docs/architecture.md, "Evaluation
design"):

- **recompiles** (:func:`recompile`): the decompiled text is spliced into the original source
  file at the function's UTF-8 byte range (``source_start``, ``source_length``) and the whole
  compile job is compiled again with the same solc version and setting
  (:func:`evmlm.solc.compile_sources`).
- **behaves the same** (:func:`compare_behaviour`): the original and the spliced contract are
  each deployed in a fresh pyrevm EVM by the same deployer (so at the same address, with the
  state their constructors set), then the function under test is called with edge values and
  at least 32 random ABI-encoded argument tuples, from the deployer and from a stranger, each
  call starting from the post-constructor state. Compared per call: success, return (or revert)
  data, emitted logs (topics and data) and the contract's storage afterwards (slot → value,
  zero slots dropped). Any difference makes the function "not the same".
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from evmlm.evaluate.errors import SpliceError
from evmlm.evm.abi import tuple_components

log = logging.getLogger(__name__)

DEPLOYER = "0x" + "d0" * 20
STRANGER = "0x" + "5e" * 20
OTHER = "0x" + "a1" * 20
_BALANCE_WEI = 10**24
_REVERT_RE = re.compile(r"output:\s*0x([0-9a-fA-F]*)")
_SLOT_RE = re.compile(r"(\d+): StorageSlot \{[^}]*?present_value: (\d+)")


# ---------------------------------------------------------------------------------------------
# Splice + recompile
# ---------------------------------------------------------------------------------------------


def splice_function(source: str, start: int, length: int, replacement: str) -> str:
    """``source`` with the UTF-8 byte range ``[start, start+length)`` replaced by ``replacement``.

    Offsets are solc AST ``src`` offsets (bytes, not characters). Raises
    :class:`SpliceError` when the range lies outside the file or splits a UTF-8 character.
    """
    data = source.encode("utf-8")
    if start < 0 or length < 0 or start + length > len(data):
        raise SpliceError(f"byte range {start}+{length} is outside the {len(data)}-byte source; check source_start/source_length")
    try:
        head, tail = data[:start].decode("utf-8"), data[start + length :].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpliceError(f"byte range {start}+{length} splits a UTF-8 character; offsets must be solc AST byte offsets") from e
    return head + replacement + tail


@dataclass(frozen=True)
class RecompileResult:
    """Outcome of compiling the spliced contract.

    ``ok``: solc compiled it and the contract is still there; ``error``: solc's first error (one
    line) otherwise; ``creation_bytecode``/``original_creation_bytecode``: hex without 0x (None
    when not compiled); ``abi``: the original contract's ABI.
    """

    ok: bool
    error: str | None
    creation_bytecode: str | None
    original_creation_bytecode: str | None
    abi: list[Any]


def recompile(original: Any, source_path: str, contract: str, source_start: int, source_length: int, decompiled: str, *, selector: str | None = None) -> RecompileResult:
    """Splice ``decompiled`` into the original compile job and compile it again.

    ``original``: the function's :class:`evmlm.solc.CompileResult` (its sources, solc version,
    setting and remappings are reused, so the job is compiled exactly as before);
    ``source_path``: the file that defines the function (for an inherited function, a base
    contract's file); ``contract``: the deployed contract, ``"path:Name"`` (or just ``Name``
    when it is in ``source_path``); ``source_start``/``source_length``: the function's UTF-8
    byte range in ``source_path``; ``selector``: finds the deployed contract when ``contract``
    names an abstract contract or library that a generated wrapper deploys (see
    :func:`deployed_contract`). Raises :class:`SpliceError` for a missing file, contract or bad offsets; a solc error in the
    spliced job is a result (``ok=False``, ``error`` = solc's first error), not an exception.
    """
    from evmlm.solc import CompileError, compile_sources

    if source_path not in original.sources:
        raise SpliceError(f"{source_path}: not among the compile job's sources; cannot splice")
    if ":" not in contract:
        contract = f"{source_path}:{contract}"
    orig = deployed_contract(original, contract, selector)
    contract_path, contract_name = orig.source_path, orig.name
    spliced_sources = dict(original.sources)
    spliced_sources[source_path] = splice_function(original.sources[source_path], source_start, source_length, decompiled)
    try:
        spliced = compile_sources(spliced_sources, setting=original.setting, version=original.version, remappings=tuple(original.remappings))
    except CompileError as e:
        return RecompileResult(False, (str(e).splitlines() or ["solc error"])[0], None, orig.creation_bytecode, list(orig.abi))
    new = _find_contract(spliced.contracts, contract_path, contract_name)
    if new is None:
        return RecompileResult(False, f"{contract_name} is missing from the spliced compile output", None, orig.creation_bytecode, list(orig.abi))
    return RecompileResult(True, None, new.creation_bytecode, orig.creation_bytecode, list(orig.abi))


def deployed_contract(result: Any, contract: str, selector: str | None = None) -> Any:
    """The artifact in ``result`` that deploys ``contract`` (``"path:Name"``).

    The named contract itself when it has creation bytecode; else (an abstract contract or a
    library, deployed through a generated wrapper by the dataset stage) the wrapper
    ``Name__EvmlmConcrete``, else the first deployable contract whose ABI has ``selector``.
    Raises :class:`SpliceError` when there is none.
    """
    path, name = contract.rsplit(":", 1)
    found = _find_contract(result.contracts, path, name)
    if found is not None and found.creation_bytecode:
        return found
    sel = (selector or "").lower().removeprefix("0x")
    deployable = [c for c in result.contracts if c.creation_bytecode]
    for c in deployable:
        if c.name == f"{name}__EvmlmConcrete":
            return c
    for c in sorted(deployable, key=lambda c: (c.source_path, c.name)):
        if sel and sel in {v.lower() for v in c.method_identifiers.values()}:
            return c
    raise SpliceError(f"{contract}: no deployable contract for it in compile result {str(getattr(result, 'key', ''))[:12]}")


def _find_contract(contracts: Iterable[Any], source_path: str, name: str) -> Any | None:
    for c in contracts:
        if c.source_path == source_path and c.name == name:
            return c
    return None


# ---------------------------------------------------------------------------------------------
# Random ABI values
# ---------------------------------------------------------------------------------------------


def abi_type(param: Mapping[str, Any]) -> str:
    """eth-abi type string of an ABI parameter (tuples expanded: ``(uint256,address)[]``)."""
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param.get("components", []))
        return f"({inner}){t[len('tuple'):]}"
    return t


def _edge_value(t: str, which: int, addresses: Sequence[str]) -> Any:
    """Edge value number ``which`` (0: zero-like, 1: one-like, 2: max-like) of ABI type ``t``."""
    if t.endswith("]"):
        base, dim = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        n = int(dim) if dim else (0, 1, 3)[which]
        return [_edge_value(base, which, addresses) for _ in range(n)]
    if t.startswith("("):
        return tuple(_edge_value(c, which, addresses) for c in tuple_components(t))
    if t.startswith("uint"):
        bits = int(t[4:] or 256)
        return (0, 1, 2**bits - 1)[which]
    if t.startswith("int"):
        bits = int(t[3:] or 256)
        return (0, -1, 2 ** (bits - 1) - 1)[which]
    if t == "address":
        return addresses[which % len(addresses)]
    if t == "bool":
        return which == 1
    if t.startswith("bytes") and t != "bytes":
        n = int(t[5:])
        return (b"\x00" * n, b"\x01" * n, b"\xff" * n)[which]
    if t == "bytes":
        return (b"", b"\x01", b"\xff" * 33)[which]
    if t == "string":
        return ("", "a", "x" * 40)[which]
    raise ValueError(f"unsupported ABI type {t}")


def _random_value(t: str, rng: random.Random, addresses: Sequence[str]) -> Any:
    if t.endswith("]"):
        base, dim = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        n = int(dim) if dim else rng.randint(0, 3)
        return [_random_value(base, rng, addresses) for _ in range(n)]
    if t.startswith("("):
        return tuple(_random_value(c, rng, addresses) for c in tuple_components(t))
    if t.startswith("uint"):
        bits = int(t[4:] or 256)
        # mix small values (typical amounts, indices) with full-width ones
        return rng.choice([rng.randint(0, 1000), rng.getrandbits(bits)])
    if t.startswith("int"):
        bits = int(t[3:] or 256)
        return rng.choice([rng.randint(-1000, 1000), rng.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)])
    if t == "address":
        return rng.choice(list(addresses))
    if t == "bool":
        return rng.random() < 0.5
    if t.startswith("bytes") and t != "bytes":
        return rng.randbytes(int(t[5:]))
    if t == "bytes":
        return rng.randbytes(rng.randint(0, 70))
    if t == "string":
        return "".join(rng.choice("abcxyz019 ") for _ in range(rng.randint(0, 40)))
    raise ValueError(f"unsupported ABI type {t}")


def call_inputs(types: Sequence[str], *, n_random: int = 32, seed: int = 0, addresses: Sequence[str] = (DEPLOYER, STRANGER, OTHER)) -> list[tuple[Any, ...]]:
    """Argument tuples for a function with ABI ``types``: 3 edge tuples, then ``n_random`` random ones.

    Deterministic for a given ``seed``. Raises ValueError for an unsupported ABI type.
    """
    rng = random.Random(seed)
    out = [tuple(_edge_value(t, w, addresses) for t in types) for w in range(3)]
    out += [tuple(_random_value(t, rng, addresses) for t in types) for _ in range(n_random)]
    return out


# ---------------------------------------------------------------------------------------------
# Differential execution in pyrevm
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallOutcome:
    """What one call did: success, return or revert data, logs ``(topics, data)``, storage after."""

    success: bool
    output: bytes
    logs: tuple[tuple[tuple[str, ...], bytes], ...]
    storage: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BehaviourResult:
    """Outcome of :func:`compare_behaviour`.

    ``same``: no call differed (None when undetermined: the original did not deploy or the
    ABI has an unsupported type); ``n_calls``: calls compared; ``n_different``: calls that
    differed; ``first_difference``: a one-line description of the first difference or of why
    the result is undetermined.
    """

    same: bool | None
    n_calls: int
    n_different: int
    first_difference: str | None


class _Deployment:
    def __init__(self, creation_hex: str, constructor_args: bytes) -> None:
        import pyrevm

        self.evm = pyrevm.EVM()
        for a in (DEPLOYER, STRANGER, OTHER):
            self.evm.set_balance(a, _BALANCE_WEI)
        code = bytes.fromhex(creation_hex.removeprefix("0x")) + constructor_args
        self.address = self.evm.deploy(DEPLOYER, code, gas=30_000_000)
        self.checkpoint = self.evm.snapshot()

    def storage(self) -> tuple[tuple[int, int], ...]:
        js = self.evm.journal_str
        key = self.address.lower().removeprefix("0x")
        i = js.lower().find(f"0x{key}: account")
        if i < 0:
            return ()
        j = js.find("status: AccountStatus", i)
        section = js[i : j if j > 0 else len(js)]
        return tuple(sorted((int(s), int(v)) for s, v in _SLOT_RE.findall(section) if v != "0"))

    def call(self, caller: str, calldata: bytes, value: int) -> CallOutcome:
        self.evm.revert(self.checkpoint)
        self.checkpoint = self.evm.snapshot()
        try:
            out = self.evm.message_call(caller, self.address, calldata, value=value or None, gas=10_000_000)
            ok = True
            logs = tuple((tuple(t.lower() for t in lg.topics), bytes(lg.data[1])) for lg in self.evm.result.logs)
        except RuntimeError as e:  # pyrevm raises on revert / halt with the output in the message
            m = _REVERT_RE.search(str(e))
            out = bytes.fromhex(m.group(1)) if m else str(e).split("{")[0].strip().encode()
            ok = False
            logs = ()
        return CallOutcome(ok, bytes(out), logs, self.storage() if ok else ())


def _diff(a: CallOutcome, b: CallOutcome) -> str | None:
    if a.success != b.success:
        return f"success {a.success} vs {b.success}"
    if a.output != b.output:
        return f"{'return' if a.success else 'revert'} data 0x{a.output.hex()[:40]} vs 0x{b.output.hex()[:40]}"
    if a.logs != b.logs:
        return f"logs differ ({len(a.logs)} vs {len(b.logs)})"
    if a.storage != b.storage:
        sa, sb = dict(a.storage), dict(b.storage)
        slot = next(s for s in sorted(set(sa) | set(sb)) if sa.get(s) != sb.get(s))
        return f"storage slot {hex(slot)}: {sa.get(slot, 0)} vs {sb.get(slot, 0)}"
    return None


def compare_behaviour(
    original_creation: str,
    candidate_creation: str,
    abi: Sequence[Mapping[str, Any]],
    selector: str,
    *,
    n_random: int = 32,
    seed: int = 0,
) -> BehaviourResult:
    """Differential test of one function (``selector``, 8 hex digits, 0x optional) of two contracts.

    ``original_creation`` / ``candidate_creation``: creation bytecode (hex); ``abi``: the
    original contract's ABI (the function's inputs and the constructor's are read from it).
    Makes ``2 × (3 + n_random)`` calls per contract (deployer and stranger callers; payable
    functions also get 1 wei). Constructor arguments: the first of several edge / random tuples
    the original accepts, the same for both. Never raises for contract behaviour; see
    :class:`BehaviourResult`.
    """
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    sel = selector.lower().removeprefix("0x")
    fn = None
    for item in abi:
        if item.get("type") == "function":
            sig = f"{item['name']}({','.join(abi_type(p) for p in item.get('inputs', []))})"
            if function_signature_to_4byte_selector(sig).hex() == sel:
                fn = item
                break
    if fn is None:
        return BehaviourResult(None, 0, 0, f"selector 0x{sel} not in the contract ABI")
    try:
        types = [abi_type(p) for p in fn.get("inputs", [])]
        inputs = call_inputs(types, n_random=n_random, seed=seed)
        ctor = next((i for i in abi if i.get("type") == "constructor"), None)
        ctor_types = [abi_type(p) for p in (ctor or {}).get("inputs", [])]
        # constructor arguments: the "one-like" edge tuple first, then the others and 3 random ones
        ctor_cands = call_inputs(ctor_types, n_random=3, seed=seed) if ctor_types else [()]
        ctor_cands = [ctor_cands[1], *ctor_cands[:1], *ctor_cands[2:]] if ctor_types else ctor_cands
        ctor_encoded = [encode(ctor_types, list(a)) if ctor_types else b"" for a in ctor_cands]
        calldatas = [bytes.fromhex(sel) + encode(types, list(args)) for args in inputs]
    except (ValueError, TypeError, OverflowError) as e:
        return BehaviourResult(None, 0, 0, f"cannot encode arguments: {e}")
    if "__$" in original_creation or "__$" in candidate_creation:
        return BehaviourResult(None, 0, 0, "bytecode needs linked libraries")
    orig = None
    for ctor_args in ctor_encoded:  # the first arguments the original constructor accepts
        try:
            orig = _Deployment(original_creation, ctor_args)
            break
        except RuntimeError as e:
            deploy_error = str(e)[:80]
    if orig is None:
        return BehaviourResult(None, 0, 0, f"original does not deploy with {len(ctor_encoded)} argument sets: {deploy_error}")
    try:
        cand = _Deployment(candidate_creation, ctor_args)
    except RuntimeError as e:
        return BehaviourResult(False, 0, 1, f"candidate does not deploy: {str(e)[:80]}")
    value = 1 if fn.get("stateMutability") == "payable" else 0
    n_calls = n_diff = 0
    first = None
    for caller in (DEPLOYER, STRANGER):
        for data in calldatas:
            n_calls += 1
            d = _diff(orig.call(caller, data, value), cand.call(caller, data, value))
            if d is not None:
                n_diff += 1
                first = first or d
    return BehaviourResult(n_diff == 0, n_calls, n_diff, first)

"""Does a contract's function behave like the original's? Differential execution in pyrevm.

Shared by verified selection (:mod:`evmlm.decompile.select`), whole-contract decompilation
(:func:`evmlm.decompile.decompile`) and evaluation (:mod:`evmlm.evaluate`).

Each side runs in its own pyrevm EVM at the same address, so ``address(this)`` agrees:

- :func:`compare_deployed`: both contracts are deployed from *creation* code by the same
  deployer (with the state their constructors set; evaluation, where the source is known);
- :func:`compare_runtime`: both *runtime* codes are installed with empty storage
  (``insert_account_info``; decompiling unknown bytecode, where no constructor exists).

The function under test is then called with 3 edge-value and ``n_random`` random ABI-encoded
argument tuples (:func:`evmlm.evm.abi.call_inputs`), from the deployer and from a stranger,
each call starting from the same state. Compared per call: success, return (or revert) data,
emitted logs (topics and data) and the contract's storage afterwards (slot → value, zero slots
dropped). Any difference makes the function "not the same". When the original reverted with
empty data on *every* call (a function that needs state or arguments the calls never reach),
agreeing proves nothing: the result is undetermined (``same=None``), never "the same".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from evmlm.evm.abi import (
    call_inputs,
    canonical_type,
    normalise_selector,
    selector_of,
    signature_of,
    split_types,
)

log = logging.getLogger(__name__)

DEPLOYER = "0x" + "d0" * 20
STRANGER = "0x" + "5e" * 20
OTHER = "0x" + "a1" * 20
CALLERS = (DEPLOYER, STRANGER)
ADDRESSES = (DEPLOYER, STRANGER, OTHER)
CONTRACT = "0x" + "c0" * 20
_BALANCE_WEI = 10**24
_REVERT_RE = re.compile(r"output:\s*0x([0-9a-fA-F]*)")
_SLOT_RE = re.compile(r"(\d+): StorageSlot \{[^}]*?present_value: (\d+)")
ONLY_EMPTY_REVERTS = "the original reverts with empty data on every call"


@dataclass(frozen=True)
class CallOutcome:
    """What one call did: success, return or revert data, logs ``(topics, data)``, storage after."""

    success: bool
    output: bytes
    logs: tuple[tuple[tuple[str, ...], bytes], ...]
    storage: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BehaviourResult:
    """Outcome of a differential test of one function.

    ``same``: True when no call differed, False when one did, None when undetermined (the
    original did not deploy, the arguments cannot be encoded, or the original reverted with
    empty data on every call); ``n_calls``: calls compared; ``n_different``: calls that
    differed; ``first_difference``: a one-line description of the first difference or of why
    the result is undetermined.
    """

    same: bool | None
    n_calls: int
    n_different: int
    first_difference: str | None


class Machine:
    """One pyrevm EVM holding one contract at :data:`CONTRACT`-like address ``address``.

    Build with :meth:`deploy` (creation code + constructor arguments, by :data:`DEPLOYER`)
    or :meth:`install` (runtime code, empty storage). Raises RuntimeError when deployment
    reverts (pyrevm's error).
    """

    def __init__(self) -> None:
        import pyrevm

        # no EIP-170 size limit: a decompiled contract may be larger than the original without
        # behaving differently (the limit is a deployment rule, not behaviour)
        self.evm = pyrevm.EVM(env=pyrevm.Env(cfg=pyrevm.CfgEnv(limit_contract_code_size=2**32)))
        for a in ADDRESSES:
            self.evm.set_balance(a, _BALANCE_WEI)
        self.address = CONTRACT
        self.checkpoint: Any = None

    @classmethod
    def deploy(cls, creation_hex: str, constructor_args: bytes = b"") -> "Machine":
        m = cls()
        code = bytes.fromhex(creation_hex.removeprefix("0x")) + constructor_args
        m.address = m.evm.deploy(DEPLOYER, code, gas=30_000_000)
        m.checkpoint = m.evm.snapshot()
        return m

    @classmethod
    def install(cls, runtime: bytes) -> "Machine":
        import pyrevm

        m = cls()
        m.evm.insert_account_info(CONTRACT, pyrevm.AccountInfo(code=bytes(runtime)))
        m.checkpoint = m.evm.snapshot()
        return m

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
        """One message call from the saved state (the state is restored before each call)."""
        self.evm.revert(self.checkpoint)
        self.checkpoint = self.evm.snapshot()
        try:
            out = self.evm.message_call(
                caller, self.address, calldata, value=value or None, gas=10_000_000
            )
            ok = True
            logs = tuple(
                (tuple(t.lower() for t in lg.topics), bytes(lg.data[1]))
                for lg in self.evm.result.logs
            )
        except RuntimeError as e:  # pyrevm raises on revert / halt with the output in the message
            m = _REVERT_RE.search(str(e))
            out = bytes.fromhex(m.group(1)) if m else str(e).split("{")[0].strip().encode()
            ok = False
            logs = ()
        return CallOutcome(ok, bytes(out), logs, self.storage() if ok else ())


def difference(a: CallOutcome, b: CallOutcome) -> str | None:
    """One line describing how two call outcomes differ, or None when they agree."""
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


def calldatas(
    selector: str, types: Sequence[str], *, n_random: int = 32, seed: int = 0
) -> list[bytes]:
    """Calldata of 3 edge and ``n_random`` random argument tuples for ``selector`` (8 hex
    digits, 0x optional) with ABI ``types``. Raises ValueError / TypeError / OverflowError
    when a type is unsupported."""
    from eth_abi import encode

    sel = bytes.fromhex(normalise_selector(selector)[2:])
    return [
        sel + encode(list(types), list(args))
        for args in call_inputs(types, n_random=n_random, seed=seed, addresses=ADDRESSES)
    ]


def run_calls(
    original: Machine, candidate: Machine, datas: Sequence[bytes], value: int
) -> BehaviourResult:
    """Compare ``original`` and ``candidate`` on every calldata from each of :data:`CALLERS`."""
    n_calls = n_diff = n_empty_reverts = 0
    first = None
    for caller in CALLERS:
        for data in datas:
            n_calls += 1
            a = original.call(caller, data, value)
            n_empty_reverts += not a.success and not a.output
            d = difference(a, candidate.call(caller, data, value))
            if d is not None:
                n_diff += 1
                first = first or d
    if n_diff == 0 and n_empty_reverts == n_calls:
        return BehaviourResult(None, n_calls, 0, f"{ONLY_EMPTY_REVERTS} ({n_calls} calls)")
    return BehaviourResult(n_diff == 0, n_calls, n_diff, first)


def function_entry(
    abi: Sequence[Mapping[str, Any]],
    selector: str,
    method_identifiers: Mapping[str, str] | None = None,
) -> Mapping[str, Any] | None:
    """The ABI function entry whose selector is ``selector`` (8 hex digits, 0x optional).

    The selector is computed from the entry's ABI signature; when none matches and the
    compiler's ``method_identifiers`` (signature → selector) name it, the entry with that name
    and parameter count is taken (solc hashes some signatures with types the ABI spells
    differently, e.g. a library's ``S storage`` or a contract type). None when absent."""
    sel = int(normalise_selector(selector), 16)
    functions = [i for i in abi if i.get("type", "function") == "function"]
    for item in functions:
        if selector_of(signature_of(item)) == sel:
            return item
    for sig, mid in (method_identifiers or {}).items():
        if int(mid, 16) == sel:
            name, n = (
                sig.split("(", 1)[0],
                len(split_types(sig[sig.index("(") + 1 : sig.rindex(")")])),
            )
            same = [i for i in functions if i.get("name") == name and len(i.get("inputs", [])) == n]
            if len(same) == 1:
                return same[0]
    return None


def constructor_arguments(abi: Sequence[Mapping[str, Any]], seed: int = 0) -> list[bytes]:
    """Encoded constructor argument sets to try in order: the "one-like" edge tuple first, then
    the zero-like and max-like ones and 3 random ones (``[b""]`` without constructor inputs).
    Raises ValueError / TypeError / OverflowError for an unsupported type."""
    from eth_abi import encode

    ctor = next((i for i in abi if i.get("type") == "constructor"), None)
    types = [canonical_type(p) for p in (ctor or {}).get("inputs", [])]
    if not types:
        return [b""]
    cands = call_inputs(types, n_random=3, seed=seed, addresses=ADDRESSES)
    return [encode(types, list(a)) for a in [cands[1], *cands[:1], *cands[2:]]]


def deploy_original(
    creation_hex: str, abi: Sequence[Mapping[str, Any]], seed: int = 0
) -> tuple[Machine | None, bytes, str]:
    """``(machine, constructor arguments, error)``: the original deployed with the first
    argument set of :func:`constructor_arguments` its constructor accepts (machine None and
    the last error when none does)."""
    try:
        sets = constructor_arguments(abi, seed)
    except (ValueError, TypeError, OverflowError) as e:
        return None, b"", f"cannot encode constructor arguments: {e}"
    error = ""
    for args in sets:
        try:
            return Machine.deploy(creation_hex, args), args, ""
        except RuntimeError as e:
            error = str(e)[:80]
    return None, b"", f"original does not deploy with {len(sets)} argument sets: {error}"


def deployed_runtime(
    creation_hex: str, abi: Sequence[Mapping[str, Any]], seed: int = 0
) -> str | None:
    """The runtime code (hex) the original has once deployed as :func:`compare_deployed`
    deploys it: immutables filled in, where a compiler artifact's runtime code has zeros.
    None when it does not deploy or needs linked libraries."""
    if "__$" in creation_hex:
        return None
    m, _, _ = deploy_original(creation_hex, abi, seed)
    if m is None:
        return None
    code = m.evm.get_code(m.address)
    return bytes(code).hex() if code else None


def compare_deployed(
    original_creation: str,
    candidate_creation: str,
    abi: Sequence[Mapping[str, Any]],
    selector: str,
    *,
    n_random: int = 32,
    seed: int = 0,
    method_identifiers: Mapping[str, str] | None = None,
) -> BehaviourResult:
    """Differential test of one function (``selector``) of two contracts deployed from creation
    code (hex). ``abi``: the original contract's ABI (the function's inputs and the
    constructor's are read from it); ``method_identifiers``: the compiler's, to find the entry
    of a selector the ABI's types do not hash to (:func:`function_entry`). Makes ``2 × (3 + n_random)`` calls per contract; payable
    functions get 1 wei. Constructor arguments: the first of several edge / random tuples the
    original accepts, the same for both. Never raises for contract behaviour; see
    :class:`BehaviourResult`.
    """
    fn = function_entry(abi, selector, method_identifiers)
    if fn is None:
        return BehaviourResult(
            None, 0, 0, f"selector 0x{selector.lower().removeprefix('0x')} not in the contract ABI"
        )
    try:
        types = [canonical_type(p) for p in fn.get("inputs", [])]
        datas = calldatas(selector, types, n_random=n_random, seed=seed)
    except (ValueError, TypeError, OverflowError) as e:
        return BehaviourResult(None, 0, 0, f"cannot encode arguments: {e}")
    if "__$" in original_creation or "__$" in candidate_creation:
        return BehaviourResult(None, 0, 0, "bytecode needs linked libraries")
    orig, ctor_args, error = deploy_original(original_creation, abi, seed)
    if orig is None:
        return BehaviourResult(None, 0, 0, error)
    try:
        cand = Machine.deploy(candidate_creation, ctor_args)
    except RuntimeError as e:
        return BehaviourResult(False, 0, 1, f"candidate does not deploy: {str(e)[:80]}")
    value = 1 if fn.get("stateMutability") == "payable" else 0
    return run_calls(orig, cand, datas, value)


def compare_runtime(
    original_runtime: bytes,
    candidate_runtime: bytes,
    selector: str,
    types: Sequence[str] | None,
    *,
    payable: bool = False,
    n_random: int = 32,
    seed: int = 0,
) -> BehaviourResult:
    """Differential test of one function (``selector``) of two *runtime* codes installed with
    empty storage. ``types``: the function's ABI parameter types (from its resolved
    signature); None when unknown (then undetermined). ``payable``: calls carry 1 wei.
    Never raises for contract behaviour; see :class:`BehaviourResult`.
    """
    if types is None:
        return BehaviourResult(None, 0, 0, "no signature: argument types unknown")
    try:
        datas = calldatas(selector, types, n_random=n_random, seed=seed)
    except (ValueError, TypeError, OverflowError) as e:
        return BehaviourResult(None, 0, 0, f"cannot encode arguments: {e}")
    return run_calls(
        Machine.install(original_runtime),
        Machine.install(candidate_runtime),
        datas,
        1 if payable else 0,
    )

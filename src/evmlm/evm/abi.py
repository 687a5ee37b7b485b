"""What the lifter takes from a contract ABI: selectors, signatures, events, errors, mutability.

Selectors and event topics are the first 4 / all 32 bytes of keccak-256 of the canonical
signature (Solidity ABI specification, "Function Selector" and "Events"). Tuple parameters are
written as ``(t1,t2)`` followed by any array suffix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from eth_utils import keccak

from evmlm.evm.disasm import BytecodeError


def split_types(params: str) -> list[str]:
    """Split a comma-separated type (or parameter) list at the top level: commas inside tuple
    parentheses do not split. ``"uint256,(address,bool)[],bytes"`` → ``["uint256",
    "(address,bool)[]", "bytes"]``. Items are stripped; empty items are dropped."""
    parts, depth, cur = [], 0, ""
    for ch in params:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def tuple_components(t: str) -> list[str]:
    """Component types of a tuple type ``(t1,t2,...)`` (an array suffix is ignored)."""
    return split_types(t[1 : t.rindex(")")])


def signature_types(signature: str | None) -> list[str] | None:
    """Parameter types of ``name(t1,t2,...)``, or None when there is no parameter list."""
    if not signature or "(" not in signature or ")" not in signature:
        return None
    return split_types(signature[signature.index("(") + 1 : signature.rindex(")")])


_NAMED = ("function", "event", "error")


def _check_params(params: Any, where: str) -> None:
    if not isinstance(params, list):
        got = "null" if params is None else type(params).__name__
        raise BytecodeError(f"{where}: must be a list of parameters, got {got}")
    for j, prm in enumerate(params):
        if not isinstance(prm, Mapping) or not isinstance(prm.get("type"), str) or not prm["type"]:
            raise BytecodeError(f"{where}[{j}]: a parameter needs a 'type' string, got {prm!r:.80}")
        if prm["type"].startswith("tuple"):
            _check_params(prm.get("components"), f"{where}[{j}].components")


def check_abi(abi: Any, what: str = "abi") -> list[dict[str, Any]]:
    """``abi`` validated as a JSON ABI: a list of objects whose ``type`` (default
    ``function``) is a string; functions, events and errors have a ``name`` string, and their
    ``inputs`` (absent = none; ``null`` is an error) and functions' ``outputs`` are lists of
    parameters with a ``type`` string (tuples with a ``components`` list). Returns it as a list
    of dicts.

    Raises :class:`BytecodeError` naming ``what`` and the first bad entry (e.g. ``inputs: null``).
    """
    if not isinstance(abi, (list, tuple)):
        raise BytecodeError(
            f"{what}: an ABI must be a JSON list of entries (objects with 'type'),"
            f" got {type(abi).__name__}"
        )
    for i, e in enumerate(abi):
        if not isinstance(e, Mapping):
            raise BytecodeError(f"{what}: entry {i} is not an object (got {type(e).__name__})")
        kind = e.get("type", "function")
        if not isinstance(kind, str):
            raise BytecodeError(f"{what}: entry {i}: 'type' must be a string, got {kind!r:.80}")
        if kind not in _NAMED:
            continue
        name = e.get("name")
        if not isinstance(name, str) or not name:
            raise BytecodeError(
                f"{what}: entry {i} ({kind}): 'name' must be a non-empty string, got {name!r:.80}"
            )
        _check_params(e.get("inputs", []), f"{what}: entry {i} ({kind} {name}): inputs")
        if kind == "function" and "outputs" in e and e["outputs"] is not None:
            _check_params(e["outputs"], f"{what}: entry {i} ({kind} {name}): outputs")
    return [dict(e) for e in abi]


def canonical_type(param: Mapping[str, Any]) -> str:
    t = str(param.get("type", ""))
    if t.startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in param.get("components", [])) + ")" + t[5:]
    return t


def signature_of(entry: Mapping[str, Any]) -> str:
    """``name(type1,type2)`` of an ABI function, event or error entry."""
    return f"{entry.get('name', '')}(" + ",".join(canonical_type(p) for p in entry.get("inputs", [])) + ")"


def selector_of(signature: str) -> int:
    """The 4-byte function selector of a canonical signature, as an int."""
    return int.from_bytes(keccak(text=signature)[:4], "big")


def topic_of(signature: str) -> int:
    """The 32-byte event topic0 of a canonical event signature, as an int."""
    return int.from_bytes(keccak(text=signature), "big")


@dataclass
class AbiInfo:
    """Lookups built from an ABI: selector -> (signature, mutability); topic0 -> event; selector -> error."""

    functions: dict[int, tuple[str, str]] = field(default_factory=dict)
    events: dict[int, tuple[str, str]] = field(default_factory=dict)  # topic0 -> (name, signature)
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # selector -> (name, signature)
    fallback: str | None = None  # mutability, None when absent
    receive: bool = False
    given: bool = False

    @classmethod
    def from_abi(cls, abi: Sequence[Mapping[str, Any]] | None, *, what: str = "abi") -> "AbiInfo":
        """Raises :class:`BytecodeError` when ``abi`` is not a valid ABI (:func:`check_abi`)."""
        info = cls()
        if abi is None:
            return info
        abi = check_abi(abi, what)
        info.given = True
        for e in abi:
            kind = e.get("type", "function")
            mut = str(e.get("stateMutability") or ("payable" if e.get("payable") else ("view" if e.get("constant") else "nonpayable")))
            if kind == "function":
                sig = signature_of(e)
                info.functions[selector_of(sig)] = (sig, mut)
            elif kind == "event":
                sig = signature_of(e)
                info.events[topic_of(sig)] = (str(e.get("name")), sig)
            elif kind == "error":
                sig = signature_of(e)
                info.errors[selector_of(sig)] = (str(e.get("name")), sig)
            elif kind == "fallback":
                info.fallback = mut
            elif kind == "receive":
                info.receive = True
        return info


#: Well-known events and errors, used when no ABI is given (topic0 / selector -> (name, signature)).
COMMON_EVENTS = {topic_of(s): (s.split("(")[0], s) for s in (
    "Transfer(address,address,uint256)", "Approval(address,address,uint256)", "ApprovalForAll(address,address,bool)",
    "OwnershipTransferred(address,address)", "Paused(address)", "Unpaused(address)", "Deposit(address,uint256)",
    "Withdrawal(address,uint256)", "Sync(uint112,uint112)", "Swap(address,uint256,uint256,uint256,uint256,address)",
    "Mint(address,uint256,uint256)", "Burn(address,uint256,uint256,address)", "RoleGranted(bytes32,address,address)",
    "RoleRevoked(bytes32,address,address)", "Upgraded(address)", "Initialized(uint8)", "Initialized(uint64)",
    "TransferSingle(address,address,address,uint256,uint256)", "TransferBatch(address,address,address,uint256[],uint256[])",
)}
COMMON_ERRORS = {selector_of(s): (s.split("(")[0], s) for s in (
    "Error(string)", "Panic(uint256)", "OwnableUnauthorizedAccount(address)", "ERC20InsufficientBalance(address,uint256,uint256)",
    "ERC20InsufficientAllowance(address,uint256,uint256)", "ERC20InvalidSender(address)", "ERC20InvalidReceiver(address)",
    "ERC20InvalidApprover(address)", "ERC20InvalidSpender(address)", "ReentrancyGuardReentrantCall()", "EnforcedPause()",
)}
COMMON_FUNCTIONS = {selector_of(s): s for s in (
    "transfer(address,uint256)", "transferFrom(address,address,uint256)", "approve(address,uint256)",
    "balanceOf(address)", "totalSupply()", "allowance(address,address)", "decimals()", "name()", "symbol()",
    "safeTransferFrom(address,address,uint256)", "ownerOf(uint256)", "getReserves()", "deposit()", "withdraw(uint256)",
    "onERC721Received(address,address,uint256,bytes)", "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
)}

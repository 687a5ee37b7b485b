"""What the lifter takes from a contract ABI: selectors, signatures, events, errors, mutability.

Selectors and event topics are the first 4 / all 32 bytes of keccak-256 of the canonical
signature (Solidity ABI specification, "Function Selector" and "Events"). Tuple parameters are
written as ``(t1,t2)`` followed by any array suffix.
"""

from __future__ import annotations

import random
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
    return (
        f"{entry.get('name', '')}("
        + ",".join(canonical_type(p) for p in entry.get("inputs", []))
        + ")"
    )


def normalise_selector(selector: str | int) -> str:
    """The one spelling of a 4-byte function selector: ``0x`` and 8 lowercase hex digits
    (``"A9059CBB"``, ``"0xa9059cbb"`` and ``0xa9059cbb`` all give ``"0xa9059cbb"``; leading
    zeros are restored). Raises ValueError for text that is not hex or a value over 4 bytes."""
    if isinstance(selector, int):
        value = selector
    else:
        digits = selector.strip().lower().removeprefix("0x")
        if not digits or len(digits) > 8 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError(f"{selector!r} is not a 4-byte selector (0x + up to 8 hex digits)")
        value = int(digits, 16)
    if not 0 <= value < 1 << 32:
        raise ValueError(f"{selector!r} is not a 4-byte selector")
    return f"{value:#010x}"


def selector_of(signature: str) -> int:
    """The 4-byte function selector of a canonical signature, as an int."""
    return int.from_bytes(keccak(text=signature)[:4], "big")


def topic_of(signature: str) -> int:
    """The 32-byte event topic0 of a canonical event signature, as an int."""
    return int.from_bytes(keccak(text=signature), "big")


# -- ABI values for executing calls --------------------------------------------------------------

_EDGE_UINTS = (0, 1, 2, 10**18, (1 << 256) - 1, (1 << 255), (1 << 128) - 1)


def _int_bits(t: str, prefix: str) -> int:
    bits = int(t[len(prefix) :] or 256)
    if not (8 <= bits <= 256 and bits % 8 == 0):
        raise ValueError(f"unsupported ABI type {t}")
    return bits


def edge_value(t: str, which: int, addresses: Sequence[str]) -> Any:
    """Edge value number ``which`` (0: zero-like, 1: one-like, 2: max-like) of ABI type ``t``,
    encodable by eth_abi (integers stay within ``t``'s bit width). Raises ValueError for an
    unsupported type."""
    if t.endswith("]"):
        base, dim = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        n = int(dim) if dim else (0, 1, 3)[which]
        return [edge_value(base, which, addresses) for _ in range(n)]
    if t.startswith("("):
        return tuple(edge_value(c, which, addresses) for c in tuple_components(t))
    if t.startswith("uint"):
        return (0, 1, 2 ** _int_bits(t, "uint") - 1)[which]
    if t.startswith("int"):
        return (0, -1, 2 ** (_int_bits(t, "int") - 1) - 1)[which]
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


def random_value(t: str, rng: random.Random, addresses: Sequence[str]) -> Any:
    """A random value of ABI type ``t``, encodable by eth_abi: integers mix edge values
    (0, 1, 2, 10**18, 2**255, 2**128 - 1, the maximum), small values (0..1000, typical
    amounts and indices) and full-width ones, every one reduced into ``t``'s bit width
    (``uintN``: ``[0, 2**N)``, ``intN``: ``[-2**(N-1), 2**(N-1))``); addresses mostly from
    ``addresses`` (the callers, so ownership checks pass sometimes), else random. Raises
    ValueError for an unsupported type."""
    if t.endswith("]"):
        base, dim = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        n = int(dim) if dim else rng.randint(0, 3)
        return [random_value(base, rng, addresses) for _ in range(n)]
    if t.startswith("("):
        return tuple(random_value(c, rng, addresses) for c in tuple_components(t))
    if t.startswith("uint"):
        bits = _int_bits(t, "uint")
        pick = rng.random()
        v = (
            rng.choice(_EDGE_UINTS)
            if pick < 0.3
            else rng.randint(0, 1000)
            if pick < 0.65
            else rng.getrandbits(bits)
        )
        return v % (1 << bits)
    if t.startswith("int"):
        bits = _int_bits(t, "int")
        half = 1 << (bits - 1)
        pick = rng.random()
        v = (
            rng.choice((0, 1, -1, half - 1, -half))
            if pick < 0.3
            else rng.randint(-1000, 1000)
            if pick < 0.65
            else rng.getrandbits(bits) - half
        )
        return (v + half) % (1 << bits) - half
    if t == "address":
        return rng.choice(list(addresses)) if rng.random() < 0.8 else "0x" + rng.randbytes(20).hex()
    if t == "bool":
        return rng.random() < 0.5
    if t.startswith("bytes") and t != "bytes":
        n = int(t[5:])
        if not 1 <= n <= 32:
            raise ValueError(f"unsupported ABI type {t}")
        return rng.randbytes(n)
    if t == "bytes":
        return rng.randbytes(rng.choice((0, 1, 4, 32, 68)))
    if t == "string":
        return "".join(rng.choice("abcxyz019 ") for _ in range(rng.randint(0, 40)))
    raise ValueError(f"unsupported ABI type {t}")


def call_inputs(
    types: Sequence[str], *, n_random: int = 32, seed: int = 0, addresses: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Argument tuples for a function with ABI ``types``: 3 edge tuples (:func:`edge_value`),
    then ``n_random`` random ones (:func:`random_value`). Deterministic for a given ``seed``.
    Raises ValueError for an unsupported ABI type."""
    rng = random.Random(seed)
    out = [tuple(edge_value(t, w, addresses) for t in types) for w in range(3)]
    out += [tuple(random_value(t, rng, addresses) for t in types) for _ in range(n_random)]
    return out


@dataclass
class AbiInfo:
    """Lookups built from an ABI: selector -> (signature, mutability); topic0 -> event; selector -> error."""

    functions: dict[int, tuple[str, str]] = field(default_factory=dict)
    events: dict[int, tuple[str, str]] = field(default_factory=dict)  # topic0 -> (name, signature)
    errors: dict[int, tuple[str, str]] = field(
        default_factory=dict
    )  # selector -> (name, signature)
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
            mut = str(
                e.get("stateMutability")
                or (
                    "payable"
                    if e.get("payable")
                    else ("view" if e.get("constant") else "nonpayable")
                )
            )
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
COMMON_EVENTS = {
    topic_of(s): (s.split("(")[0], s)
    for s in (
        "Transfer(address,address,uint256)",
        "Approval(address,address,uint256)",
        "ApprovalForAll(address,address,bool)",
        "OwnershipTransferred(address,address)",
        "Paused(address)",
        "Unpaused(address)",
        "Deposit(address,uint256)",
        "Withdrawal(address,uint256)",
        "Sync(uint112,uint112)",
        "Swap(address,uint256,uint256,uint256,uint256,address)",
        "Mint(address,uint256,uint256)",
        "Burn(address,uint256,uint256,address)",
        "RoleGranted(bytes32,address,address)",
        "RoleRevoked(bytes32,address,address)",
        "Upgraded(address)",
        "Initialized(uint8)",
        "Initialized(uint64)",
        "TransferSingle(address,address,address,uint256,uint256)",
        "TransferBatch(address,address,address,uint256[],uint256[])",
    )
}
COMMON_ERRORS = {
    selector_of(s): (s.split("(")[0], s)
    for s in (
        "Error(string)",
        "Panic(uint256)",
        "OwnableUnauthorizedAccount(address)",
        "ERC20InsufficientBalance(address,uint256,uint256)",
        "ERC20InsufficientAllowance(address,uint256,uint256)",
        "ERC20InvalidSender(address)",
        "ERC20InvalidReceiver(address)",
        "ERC20InvalidApprover(address)",
        "ERC20InvalidSpender(address)",
        "ReentrancyGuardReentrantCall()",
        "EnforcedPause()",
    )
}
COMMON_FUNCTIONS = {
    selector_of(s): s
    for s in (
        "transfer(address,uint256)",
        "transferFrom(address,address,uint256)",
        "approve(address,uint256)",
        "balanceOf(address)",
        "totalSupply()",
        "allowance(address,address)",
        "decimals()",
        "name()",
        "symbol()",
        "safeTransferFrom(address,address,uint256)",
        "ownerOf(uint256)",
        "getReserves()",
        "deposit()",
        "withdraw(uint256)",
        "onERC721Received(address,address,uint256,bytes)",
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    )
}

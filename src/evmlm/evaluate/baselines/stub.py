"""Signature-only baseline: the function header from the resolved signature, with an empty body.

What a decompiler gets for free from a selector database; any model must beat it on every
metric except, by construction, strict signature match.
"""

from __future__ import annotations

import re

from evmlm.evm.abi import split_types

_SIG = re.compile(r"^\s*([A-Za-z_$][A-Za-z0-9_$]*)\((.*)\)\s*$", re.S)


def _location(t: str) -> str:
    return " memory" if t in ("bytes", "string") or t.endswith("]") or t.startswith("(") else ""


def signature_stub(
    signature: str | None,
    selector: str | None = None,
    *,
    payable: bool = False,
    view_like: bool = False,
) -> str:
    """``function name(type arg0, ...) external [payable|view] {}`` for a text signature.

    ``signature``: ``"transfer(address,uint256)"`` or None (then the function is named after
    ``selector``: ``function func_a9059cbb() external {}``). Tuple parameters keep their ABI
    spelling. Never raises.
    """
    m = _SIG.match(signature or "")
    if m:
        name, params = m.group(1), split_types(m.group(2))
    else:
        name, params = f"func_{(selector or '0x00000000').lower().removeprefix('0x')}", []
    args = ", ".join(f"{t}{_location(t)} arg{i}" for i, t in enumerate(params))
    mut = " payable" if payable else (" view" if view_like else "")
    return f"function {name}({args}) external{mut} {{}}"

"""The one ABI type-list splitter (used by the recognisers, the soundness check and evaluation)."""

from __future__ import annotations

import pytest

from evmlm.evm.abi import signature_types, split_types, tuple_components


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", []),
        ("uint256", ["uint256"]),
        ("address,uint256", ["address", "uint256"]),
        ("uint256,(address,bool)[],bytes", ["uint256", "(address,bool)[]", "bytes"]),
        ("(uint8,(bool,bytes)),string", ["(uint8,(bool,bytes))", "string"]),
        ("uint256 amount, address to", ["uint256 amount", "address to"]),
    ],
)
def test_split_types(params: str, expected: list[str]) -> None:
    assert split_types(params) == expected


def test_tuple_components_and_signature_types() -> None:
    assert tuple_components("(uint8,(bool,bytes))[2]") == ["uint8", "(bool,bytes)"]
    assert signature_types("transfer(address,uint256)") == ["address", "uint256"]
    assert signature_types("f()") == []
    assert signature_types(None) is None
    assert signature_types("fallback") is None

"""One spelling of a function selector (evmlm.evm.abi.normalise_selector)."""

import pytest

from evmlm.evm.abi import normalise_selector, selector_of


@pytest.mark.parametrize(
    "given",
    [
        "0xa9059cbb",
        "A9059CBB",
        " 0xA9059cbb ",
        0xA9059CBB,
        selector_of("transfer(address,uint256)"),
    ],
)
def test_every_spelling_gives_one(given):
    assert normalise_selector(given) == "0xa9059cbb"


def test_leading_zeros_restored():
    assert normalise_selector("0x1") == "0x00000001"
    assert normalise_selector(0) == "0x00000000"


@pytest.mark.parametrize("bad", ["", "0x", "0xzz", "0x123456789", 1 << 32, -1])
def test_not_a_selector(bad):
    with pytest.raises(ValueError):
        normalise_selector(bad)

"""Robustness: random, structured-random and truncated bytecode never raise anything but the
lifter's typed errors (BytecodeError, AnalysisLimitError) and each input finishes within the
stated bound, :data:`BOUND_MS` (hypothesis ``deadline``), under the default node budget.

The default suite runs a few hundred cases; the slow suite (``-m slow``) runs >= 10,000.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evmlm.evm import (
    AnalysisLimitError,
    BytecodeError,
    lift_contract,
    parse_function,
    print_function,
)

from .conftest import FIXTURE_NAMES, load_fixture

BOUND_MS = 10_000  # per input, on a shared 2-core machine; typical inputs take < 50 ms

# Opcodes that stress the CFG walk: jumps to small constants, stack shuffles, calldata, halts.
_STRUCTURED = st.lists(
    st.one_of(
        st.sampled_from(
            [
                0x5B,
                0x56,
                0x57,
                0x80,
                0x81,
                0x82,
                0x90,
                0x91,
                0x50,
                0x35,
                0x36,
                0x01,
                0x03,
                0x14,
                0x15,
                0x1C,
                0x00,
                0xF3,
                0xFD,
                0x5F,
                0x33,
                0x54,
                0x55,
                0xA1,
                0xF1,
            ]
        ),
        st.integers(0, 64).map(lambda v: bytes([0x60, v])),
        st.integers(0, 300).map(lambda v: bytes([0x61]) + v.to_bytes(2, "big")),
        st.just(bytes.fromhex("63a9059cbb")),  # PUSH4 selector
    ),
    max_size=300,
).map(lambda xs: b"".join(bytes([x]) if isinstance(x, int) else x for x in xs))

_REAL = [bytes.fromhex(load_fixture(n)["runtime_bytecode"]) for n in FIXTURE_NAMES]


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from(_REAL))
    cut = draw(st.integers(0, len(code)))
    code = bytearray(code[:cut])
    for _ in range(draw(st.integers(0, 3))):
        if code:
            code[draw(st.integers(0, len(code) - 1))] = draw(st.integers(0, 255))
    return bytes(code)


_INPUTS = st.one_of(st.binary(max_size=2048), _STRUCTURED, _truncated(), st.text(max_size=64))


def _check(code: bytes | str) -> None:
    try:
        lc = lift_contract(code)
    except (BytecodeError, AnalysisLimitError) as e:
        assert str(e) and "\n" not in str(e)
        return
    for f in lc.functions:
        assert print_function(parse_function(f.tac)) == f.tac
    assert all(0 <= f.entry < lc.code_size for f in lc.functions)


@settings(
    max_examples=250,
    deadline=timedelta(milliseconds=BOUND_MS),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_INPUTS)
def test_random_and_truncated_bytecode(code: bytes | str) -> None:
    _check(code)


@pytest.mark.slow
@settings(
    max_examples=10_000,
    deadline=timedelta(milliseconds=BOUND_MS),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_INPUTS)
def test_random_and_truncated_bytecode_10k(code: bytes | str) -> None:
    _check(code)

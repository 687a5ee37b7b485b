"""Soundness against execution: executed instructions and taken jump edges lie in the lifted CFG.

Default suite: the fixtures (13 real contracts, 5 random calls per function). Slow suite:
>= 120 third-party contracts from the npm packages' artifacts (vendor/corpora), >= 1,500
functions, 10 random ABI-encoded calls each (about 5 minutes on the 2-core machine). The full figure comes from
``python -m evmlm.evm.checks soundness --artifacts vendor/corpora``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evmlm.evm.checks import (
    Contract,
    SoundnessReport,
    _Tracer,
    check_contract,
    iter_artifacts,
    soundness,
)

from .conftest import FIXTURE_NAMES, load_fixture

VENDOR = Path(__file__).resolve().parents[2] / "vendor" / "corpora"


def test_fixtures_execute_inside_their_lifted_cfg() -> None:
    contracts = [
        Contract(n, load_fixture(n)["runtime_bytecode"], load_fixture(n)["abi"])
        for n in FIXTURE_NAMES
    ]
    rep = soundness(contracts, calls_per_function=5, seed=1)
    assert rep.contracts == len(FIXTURE_NAMES) and rep.functions >= 150 and rep.calls >= 750
    assert rep.edges > 5000 and rep.instructions > 50_000
    assert rep.counterexamples == [] and rep.edge_share == 1.0 and rep.instruction_share == 1.0


def test_a_wrong_cfg_is_caught() -> None:
    """The checker is not vacuous: cut an edge from a lifted function and it reports it."""
    from evmlm.evm import lift_contract

    c = load_fixture("weth9_0426_opt200")
    lc = lift_contract(c["runtime_bytecode"], abi=c["abi"])
    f = lc.function("0xa9059cbb")
    f.edges = tuple(e for e in f.edges if e[0] != f.entry)  # every call leaves the entry block
    rep = SoundnessReport()
    check_contract(
        Contract("weth", c["runtime_bytecode"], c["abi"]),
        calls_per_function=3,
        rng=random.Random(0),
        rep=rep,
        tracer=_Tracer(),
        lifted=lc,
    )
    assert rep.bad_edges > 0 and {x["class"] for x in rep.counterexamples} == {"edge missing"}


@pytest.mark.slow
@pytest.mark.skipif(
    not VENDOR.is_dir(), reason="vendor/corpora not fetched (scripts/fetch_corpora.py)"
)
def test_third_party_artifacts_1500_functions() -> None:
    contracts = [
        c
        for c in iter_artifacts(VENDOR, limit=1000)
        if 3 <= sum(e.get("type") == "function" for e in c.abi) <= 40
    ][:150]
    rep = soundness(contracts, calls_per_function=10, seed=0)
    assert rep.contracts >= 120 and rep.functions >= 1500
    assert rep.edge_share == 1.0, rep.classes()
    assert rep.instruction_share == 1.0, rep.classes()

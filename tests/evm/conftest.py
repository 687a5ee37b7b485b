"""Shared fixtures for the lifter tests: real solc-js outputs frozen in tests/fixtures/evm/."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evm"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@lru_cache(maxsize=None)
def load_fixture(name: str) -> dict[str, Any]:
    """The single contract of fixture ``name``: runtime_bytecode, abi, storage_layout, method_identifiers."""
    d = json.loads((FIXTURES / f"{name}.json").read_text())
    (c,) = d["contracts"].values()
    return {**c, "compiler": d["compiler"], "setting": d["setting"]}


@lru_cache(maxsize=None)
def lifted(name: str, recognisers: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    from evmlm.config import LiftConfig
    from evmlm.evm import lift_contract

    c = load_fixture(name)
    cfg = LiftConfig() if recognisers is None else LiftConfig(recognisers=recognisers)
    return lift_contract(
        c["runtime_bytecode"], abi=c["abi"], storage_layout=c.get("storage_layout"), config=cfg
    )


@pytest.fixture(params=FIXTURE_NAMES)
def fixture_name(request: pytest.FixtureRequest) -> str:
    return request.param

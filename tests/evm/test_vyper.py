"""Vyper bytecode: selector recovery, fallback, soundness and recognisers on snekmate contracts.

The fixtures (tests/fixtures/evm/vyper/, made by scripts/make_vyper_fixtures.py) are snekmate's
ERC-20, ERC-721, ERC-1155, ERC-4626 and TimelockController compiled by vyper 0.4.3 and 0.3.10
with ``--optimize gas`` (sparse selector table), ``codesize`` (dense table) and ``none``
(linear chain), 0.4.3 also by its experimental Venom backend (gas, codesize), by vyper 0.3.9
(linear chain) optimised and not, and a small contract by 0.3.10 and 0.2.16 (selector read
through memory). The TimelockController, the ERC-1155 wrapper and the small contract have a
payable ``__default__``. Expected selectors are the compiler's method identifiers.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from evmlm.config import LiftConfig
from evmlm.evm.abi import selector_of
from evmlm.evm.checks import (
    CHECK_SECONDS,
    Contract,
    SoundnessReport,
    _Tracer,
    check_contract,
    check_fallback,
    selector_recovery,
    soundness,
)

from .conftest import FIXTURE_NAMES
from .conftest import lifted as lifted_solc

VYPER = Path(__file__).resolve().parents[1] / "fixtures" / "evm" / "vyper"
NAMES = sorted(p.stem for p in VYPER.glob("*.json"))
# one contract per compiler and setting (every dispatcher variant), for the default suite
QUICK = sorted({n for n in NAMES if n.startswith(("erc20_", "default_", "erc1155_default_"))})
# compiled by vyper 0.4.3 and 0.3.10 with ``--optimize gas`` (sparse selector table), ``codesize``
# (dense table) and ``none`` (linear chain), 0.4.3 also by its Venom backend (gas, codesize)


@cache
def fixture(name: str) -> dict[str, Any]:
    d = json.loads((VYPER / f"{name}.json").read_text())
    ((cname, c),) = d["contracts"].items()
    return {**c, "name": cname, "compiler": d["compiler"], "setting": d["setting"]}


def contract(name: str) -> Contract:
    c = fixture(name)
    return Contract(name, c["runtime_bytecode"], c["abi"], c["method_identifiers"])


@cache
def lifted(name: str):  # type: ignore[no-untyped-def]
    from evmlm.evm import lift_contract

    c = fixture(name)
    return lift_contract(c["runtime_bytecode"], abi=c["abi"], storage_layout=c["storage_layout"])


def test_fixtures_cover_the_versions_and_dispatchers() -> None:
    compilers = {fixture(n)["compiler"] for n in NAMES}
    assert compilers == {"vyper-0.4.3", "vyper-0.3.10", "vyper-0.3.9", "vyper-0.2.16"}
    for v in ("v043", "v0310"):
        for s in ("gas", "codesize", "none"):
            assert sum(n.endswith(f"_{v}_{s}") for n in NAMES) >= 4, (v, s)
    assert sum("_v039_" in n for n in NAMES) >= 8
    assert sum("_venom_" in n for n in NAMES) >= 8
    code = {n: fixture(n)["runtime_bytecode"] for n in NAMES if "_venom_" not in n}
    # sparse: CODECOPY of a 2-byte bucket entry; dense: of a 5-byte header; linear: none
    assert all("601e395f51565b" in c for n, c in code.items() if n.endswith("_gas"))
    assert all("601b395f51" in c for n, c in code.items() if n.endswith("_codesize"))
    assert not any(
        "601e395f51565b" in c or "601b395f51" in c
        for n, c in code.items()
        if n.endswith(("_none", "_opt", "_noopt"))
    )


def test_selector_f1_per_fixture() -> None:
    """Selectors recovered without the ABI against the compiler's method identifiers."""
    low = {}
    for n in NAMES:
        rep = selector_recovery([contract(n)])
        assert not rep.failures, rep.failures
        if rep.f1 < 0.99:
            low[n] = (rep.f1, rep.misses, rep.extras)
    assert low == {}


def test_without_the_tables_the_dense_and_sparse_dispatchers_are_lost() -> None:
    """Negative control: the walk alone (no jump tables read) recovers nothing of a dense table
    and leaves the sparse table's jump unresolved."""
    import time

    from evmlm.evm.cfg import ContractCFG

    for n in ("erc20_v043_codesize", "erc20_v043_gas"):
        code = bytes.fromhex(fixture(n)["runtime_bytecode"])
        cfg = ContractCFG(code, deadline=time.monotonic() + 60)
        assert cfg.dispatch.selectors == {} and len(cfg.unresolved_jumps) >= 1, n
        assert len(lifted(n).selectors) == len(fixture(n)["method_identifiers"])


def test_fallback_and_payable_found_without_abi() -> None:
    """Without the ABI: a fallback exactly where Vyper has a ``__default__``, and every public
    function's payable flag as the ABI's stateMutability says (Vyper checks callvalue in the
    function, in the dense table's dispatcher, or before the whole chain in 0.3.9)."""
    from evmlm.evm import lift_contract
    from evmlm.evm.abi import selector_of, signature_of

    for n in QUICK + [
        "erc4626_v0310_codesize",
        "erc721_v039_opt",
        "erc1155_v039_noopt",
        "timelock_v043_venom_codesize",
        "timelock_v0310_none",
    ]:
        c = fixture(n)
        has_default = any(e.get("type") == "fallback" for e in c["abi"])
        lc = lift_contract(c["runtime_bytecode"], config=LiftConfig(max_seconds=CHECK_SECONDS))
        kinds = [f.kind for f in lc.functions]
        assert ("fallback" in kinds) == has_default, n
        assert "receive" not in kinds, n
        want = {
            f"{selector_of(signature_of(e)):#010x}": e["stateMutability"] == "payable"
            for e in c["abi"]
            if e.get("type") == "function"
        }
        got = {f.selector: f.payable for f in lc.functions if f.selector}
        assert got == want, n
    assert sum(any(e.get("type") == "fallback" for e in fixture(n)["abi"]) for n in NAMES) >= 6


def test_soundness_quick() -> None:
    """Random ABI calls of every public function, and calls matching no selector for the
    __default__, executed in py-evm: every executed edge lies in the lifted CFG."""
    rep = soundness([contract(n) for n in QUICK], calls_per_function=3, seed=3, fallback=True)
    assert rep.contracts == len(QUICK) and rep.functions >= 180 and rep.skipped == []
    assert rep.edges > 1500 and rep.entry_not_reached == 0
    assert rep.counterexamples == [] and rep.edge_share == 1.0 and rep.instruction_share == 1.0


@pytest.mark.slow
def test_soundness_all_fixtures() -> None:
    rep = soundness([contract(n) for n in NAMES], calls_per_function=20, seed=0, fallback=True)
    assert rep.contracts == len(NAMES) and rep.functions >= 800 and rep.skipped == []
    assert rep.entry_not_reached == 0 and rep.counterexamples == []
    assert rep.edge_share == 1.0 and rep.instruction_share == 1.0


def test_a_wrong_vyper_cfg_is_caught() -> None:
    """Negative controls: a cut edge in a dense-dispatched function, and in the fallback."""
    from evmlm.evm import lift_contract

    n = "erc1155_default_v043_codesize"
    lc = lift_contract(fixture(n)["runtime_bytecode"], abi=fixture(n)["abi"])
    f = lc.function("0x00fdd58e")  # balanceOf(address,uint256)
    assert f is not None
    f.edges = tuple(e for e in f.edges if e[0] != f.entry)
    rep = SoundnessReport()
    tracer = _Tracer()
    check_contract(
        contract(n), calls_per_function=3, rng=random.Random(0), rep=rep, tracer=tracer, lifted=lc
    )
    fb = next(x for x in lc.functions if x.kind == "fallback")
    fb.edges = tuple(e for e in fb.edges if e[0] != fb.entry)
    check_fallback(contract(n), calls=3, rng=random.Random(0), rep=rep, tracer=tracer, lifted=lc)
    bad = {x["function"] for x in rep.counterexamples if x["class"] == "edge missing"}
    assert {"balanceOf(address,uint256)", "fallback"} <= bad


# what snekmate's contracts call: ERC-20 (the 4626 vault's asset), the receiver hooks, ERC-1271
CALLEES = {
    f"{selector_of(sig):#010x}"
    for sig in (
        "balanceOf(address)",
        "transfer(address,uint256)",
        "transferFrom(address,address,uint256)",
        "onERC721Received(address,address,uint256,bytes)",
        "onERC1155Received(address,address,uint256,uint256,bytes)",
        "onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)",
        "isValidSignature(bytes32,bytes)",
        "decimals()",
    )
}


def _reasons(name: str) -> set[str]:
    found = re.findall(
        r'ERROR\(0x[0-9a-f]+, "((?:[^"\\]|\\.)*)"\)',
        "\n".join(f.tac for f in lifted(name).functions),
    )
    return {json.loads(f'"{r}"') for r in found}


def _reason_in_code(reason: str, name: str) -> bool:
    """The reason's 32-byte words are PUSH immediates of the code; Venom's codesize mode builds
    short constants by shifts, so for Venom the legacy backend's reasons are the reference."""
    if "_venom_" in name:
        return reason in _reasons(name.replace("_venom_", "_"))
    raw = reason.encode()
    code = bytes.fromhex(fixture(name)["runtime_bytecode"])
    return all(raw[i : i + 32] in code for i in range(0, len(raw), 32))


@pytest.mark.parametrize(
    "name",
    QUICK
    + ["erc4626_v043_gas", "erc721_v0310_codesize", "erc1155_v039_noopt", "timelock_v043_gas"],
)
def test_recognisers_on_vyper_do_not_misfire(name: str) -> None:
    c = fixture(name)
    lc = lifted(name)
    from evmlm.evm.vyper import storage_layout

    slots = {e["label"] for e in storage_layout(c["storage_layout"])["storage"]}
    events = {e["name"] for e in c["abi"] if e.get("type") == "event"}
    assert lc.dialect == "vyper" and any("panic" in n for n in lc.notes)
    n_err = n_map = 0
    for f in lc.functions:
        assert "PANIC(" not in f.tac
        for reason in re.findall(r'ERROR\(0x[0-9a-f]+, "((?:[^"\\]|\\.)*)"\)', f.tac):
            reason = json.loads(f'"{reason}"')
            assert reason.isprintable() and _reason_in_code(reason, name), (f.name, reason)
            n_err += 1
        for base in re.findall(r"S(?:LOAD|STORE)\(([\w.]+)\[", f.tac):
            assert base in slots, (f.name, base)  # Vyper's slot . key order: the slot is the base
            n_map += 1
        for ev in re.findall(r"EMIT\((\w+),", f.tac):
            assert ev in events, (f.name, ev)
        for sel in re.findall(r"# callee (0x[0-9a-f]{8})", f.tac):
            assert sel in CALLEES, (f.name, sel)  # not a length word or a memory offset
    assert n_map > 0
    if not name.startswith("default_"):
        assert n_err > 0


def test_external_call_selectors_in_vyper_form() -> None:
    f = lifted("erc4626_v043_gas").function("0x01e1d114")  # totalAssets()
    assert f is not None and "callee 0x70a08231 balanceOf(address)" in f.tac
    for n in ("erc721_v0310_gas", "erc1155_default_v043_codesize"):
        notes = {
            x for g in lifted(n).functions for x in re.findall(r"# callee (0x[0-9a-f]{8})", g.tac)
        }
        assert notes and notes <= CALLEES, (n, notes)


def test_solidity_code_is_not_taken_for_vyper() -> None:
    from evmlm.evm.vyper import dialect, read_tables

    for n in FIXTURE_NAMES:
        lc = lifted_solc(n)
        assert lc.dialect == "solidity" and lc.notes == (), n
    from .conftest import load_fixture

    code = bytes.fromhex(load_fixture(FIXTURE_NAMES[0])["runtime_bytecode"].removeprefix("0x"))
    assert dialect(code) == "solidity" and not read_tables(code).found
    # a Huff-style dispatcher (selector, DUP1 PUSH4 EQ PUSH2 JUMPI) is not Vyper's either
    huff = bytes.fromhex("5f3560e01c8063a9059cbb14610013575f5ffd5b00")
    assert dialect(huff) == "solidity"
    # Vyper with one function: a single bucket, no table
    assert dialect(bytes.fromhex("5f3560e01c6360fe47b181186100205760243610341761002457")) == "vyper"


def test_vyper_storage_layout_nested_modules() -> None:
    from evmlm.evm.vyper import storage_layout

    got = storage_layout(fixture("erc4626_v043_gas")["storage_layout"])["storage"]
    by = {e["label"]: int(e["slot"]) for e in got}
    assert by["owner"] == 0 and by["balanceOf"] == 1 and by["allowance"] == 2
    assert storage_layout({}) == {"storage": []}


def test_dense_table_runs_reach_each_function_once() -> None:
    """Every method id of a dense table is dispatched by its own run to one entry, distinct per
    selector; runs of non-selectors never take that jump."""
    from evmlm.evm.vyper import read_tables

    c = fixture("erc721_v043_codesize")
    t = read_tables(bytes.fromhex(c["runtime_bytecode"]))
    want = {int(v, 16) for v in c["method_identifiers"].values()}
    assert set(t.dense) == want and len(set(t.dense.values())) == len(want)
    assert len(set(t.dense_site.values())) == 1
    assert all(site not in t.dense_site.values() for r in t.probe_runs for site, _ in r.table_jumps)


def test_evmlm_lift_on_vyper_bytecode(tmp_path: Path) -> None:
    """`evmlm lift` as a user runs it: hex of a dense-table contract, Vyper's own layout file."""
    import subprocess
    import sys

    c = fixture("erc4626_v043_codesize")
    (tmp_path / "vault.hex").write_text(c["runtime_bytecode"])
    (tmp_path / "layout.json").write_text(json.dumps(c["storage_layout"]))
    src = Path(__file__).resolve().parents[2] / "src"
    args = [
        str(tmp_path / "vault.hex"),
        "--storage-layout",
        str(tmp_path / "layout.json"),
        "--no-internal",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "evmlm", "lift", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)},
    )
    assert r.returncode == 0, r.stderr
    assert "29 public" in r.stderr and "0 unresolved jumps" in r.stderr
    assert "vyper code: recogniser panic off" in r.stderr
    assert r.stdout.count("function 0x") == 29 and "# callee 0x70a08231" in r.stdout
    assert "SLOAD(totalSupply)" in r.stdout and "balanceOf[" in r.stdout


def test_table_reader_never_raises_on_vyper_looking_garbage() -> None:
    """Random code behind Vyper's prologues (and a mutated real table) is read without error."""
    from evmlm.evm.vyper import read_tables

    prologues = [
        bytes.fromhex(h)
        for h in ("600436101561000d57", "6003361161000c57", "5f3560e01c6360fe47b18118")
    ]

    rng = random.Random(7)
    real = bytearray(bytes.fromhex(fixture("erc20_v043_codesize")["runtime_bytecode"]))
    for i in range(150):
        if i % 3 == 2:
            code = bytearray(real)
            for _ in range(20):
                code[rng.randrange(len(code))] = rng.randrange(256)
            code = bytes(code)
        else:
            code = rng.choice(prologues) + rng.randbytes(rng.randrange(0, 400))
        t = read_tables(code)
        assert all(isinstance(v, frozenset) for v in t.jump_tables.values())


def test_solidity_readings_misfire_on_vyper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control for the misfire checks: read as Solidity, Vyper's HashMaps come out
    with key and slot swapped (``v3[0x1]``) and no revert reason is recognised."""
    from evmlm.evm import lift_contract, vyper

    monkeypatch.setattr(vyper, "dialect", lambda code: "solidity")
    c = fixture("erc20_v043_gas")
    lc = lift_contract(c["runtime_bytecode"], abi=c["abi"], storage_layout=c["storage_layout"])
    f = lc.function("0xa9059cbb")
    assert lc.dialect == "solidity" and f is not None
    assert re.search(r"SLOAD\(v\d+\[(balanceOf|0x1)\]\)", f.tac) and "ERROR(" not in f.tac


def test_vyper_immutables_named_from_the_code_layout() -> None:
    """Immutables live past the runtime code (appended at deployment) and are CODECOPY'd."""
    from evmlm.evm.vyper import immutables

    assert immutables({}) == {} and immutables(
        {"code_layout": {"m": {"x": {"offset": 0, "length": 32, "type": "uint8"}}}}
    ) == {0: ("x", 32)}
    f = lifted("erc4626_v043_gas").function("0x01e1d114")  # totalAssets(): _ASSET.balanceOf(self)
    assert f is not None and "# immutable _ASSET" in f.tac
    g = lifted("erc20_v0310_codesize").function("0x06fdde03")  # name()
    assert g is not None and "# immutable name" in g.tac
    for n in QUICK:
        for h in lifted(n).functions:
            for m in re.finditer(r"CODECOPY\(\S+, (0x[0-9a-f]+), \S+\)  # immutable", h.tac):
                assert int(m.group(1), 16) >= len(fixture(n)["runtime_bytecode"]) // 2


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "vendor" / "corpora").is_dir(),
    reason="vendor/corpora not fetched (scripts/fetch_corpora.py)",
)
def test_no_npm_corpus_artifact_is_read_as_vyper() -> None:
    """The npm corpora's Solidity (solady's hand-written assembly included) stays Solidity."""
    from evmlm.evm.checks import iter_artifacts
    from evmlm.evm.disasm import load_bytecode, split_metadata
    from evmlm.evm.vyper import dialect

    n, vy = 0, []
    for c in iter_artifacts(
        Path(__file__).resolve().parents[2] / "vendor" / "corpora", max_code_size=None
    ):
        exe, _ = split_metadata(load_bytecode(c.runtime, what=c.name))
        n += 1
        if dialect(exe) != "solidity":
            vy.append(c.name)
    assert n >= 1000 and vy == []


def test_notes_name_only_requested_recognisers() -> None:
    from evmlm.config import LiftConfig
    from evmlm.evm import lift_contract

    c = fixture("erc20_v043_gas")
    lc = lift_contract(
        c["runtime_bytecode"], abi=c["abi"], config=LiftConfig(recognisers=("args", "mapping"))
    )
    assert lc.dialect == "vyper" and lc.notes == ()

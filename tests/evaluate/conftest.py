"""Evaluation test fixtures: Counter.sol, its compile and pair records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "evaluate"


@pytest.fixture(scope="session")
def counter_source() -> str:
    return (FIXTURES / "Counter.sol").read_text()


def function_ranges(source: str) -> dict[str, tuple[int, int]]:
    """Function name → (UTF-8 byte start, length) of each function definition (tree-sitter,
    whose byte ranges equal solc's AST ``src``)."""
    from evmlm.evaluate.structure import _parser

    data = source.encode()
    out = {}
    stack = [_parser().parse(data).root_node]
    while stack:
        n = stack.pop()
        if n.type == "function_definition":
            name = next(c for c in n.children if c.type == "identifier").text.decode()
            out[name] = (n.start_byte, n.end_byte - n.start_byte)
        stack.extend(n.children)
    return out


@pytest.fixture(scope="session")
def counter_compiled(counter_source: str) -> Any:
    """Counter.sol compiled by evmlm.solc (0.8.26, opt200)."""
    from evmlm.solc import compile_sources

    return compile_sources({"Counter.sol": counter_source}, setting="opt200", version="0.8.26")


@pytest.fixture(scope="session")
def counter_records(counter_source: str, counter_compiled: Any) -> list[dict[str, Any]]:
    """Pair records (docs/architecture.md fields) for Counter's functions with bodies."""
    art = counter_compiled.contract("Counter", "Counter.sol")
    ranges = function_ranges(counter_source)
    data = counter_source.encode()
    recs = []
    for sig, sel in sorted(art.method_identifiers.items()):
        name = sig.split("(")[0]
        if name not in ranges:
            continue  # public state-variable getters have no function body
        start, length = ranges[name]
        solidity = data[start : start + length].decode()
        recs.append(
            {
                "id": f"counter-{name}",
                "contract": "Counter.sol:Counter",
                "source_package": "tests",
                "compiler_version": counter_compiled.version,
                "setting": "opt200",
                "compile_key": counter_compiled.key,
                "source_path": "Counter.sol",
                "source_start": start,
                "source_length": length,
                "selector": "0x" + sel,
                "signature": sig,
                "visibility": "external" if "external" in solidity.split("{")[0] else "public",
                "state_mutability": "pure" if " pure " in solidity else "nonpayable",
                "tac": f"function 0x{sel} {sig}\n  block 0x0 prev=[] succ=[]\n    STOP()",
                "solidity": solidity,
                "contract_context": "uint256 public count;\naddress public owner;",
                "n_solidity_tokens": len(solidity.split()),
                "split": "test",
            }
        )
    return recs


@pytest.fixture(scope="session")
def tiny_model(make_tiny_model, counter_source: str) -> Path:
    """A ~1M-parameter Llama (evmlm preset ``tiny``) with a BPE tokenizer trained on a few
    Solidity files, saved as a plain HF model folder (untrained: its output is noise)."""
    return make_tiny_model(counter_source)

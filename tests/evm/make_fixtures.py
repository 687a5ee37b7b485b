"""Regenerate tests/fixtures/evm/*.json from real sources with the real solc-js (node).

Run from the repository root: ``.venv/bin/python tests/evm/make_fixtures.py``. Each fixture
holds, per contract, the runtime bytecode (hex, no 0x), ABI, storage layout and method
identifiers exactly as solc emitted them, plus the compiler version and settings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "evm"
SRC = Path(__file__).resolve().parent / "sources"
OZ496 = ROOT / "vendor/corpora/@openzeppelin/contracts@4.9.6"
OZ251 = ROOT / "vendor/corpora/@openzeppelin/contracts@2.5.1"
UNIV2 = ROOT / "vendor/corpora/@uniswap/v2-core@1.0.1/contracts"

SETTINGS = {
    "noopt": {"optimizer": {"enabled": False, "runs": 200}},
    "opt200": {"optimizer": {"enabled": True, "runs": 200}},
    "ir200": {"optimizer": {"enabled": True, "runs": 200}, "viaIR": True},
}


def compile_one(
    name: str, solc: str, files: dict[str, str], keep: list[str], setting: str, roots: list[str]
) -> None:
    sel = {
        "*": {"*": ["abi", "evm.deployedBytecode.object", "evm.methodIdentifiers", "storageLayout"]}
    }
    settings = dict(SETTINGS[setting], outputSelection=sel)
    if solc.startswith("solc04"):
        sel["*"]["*"].remove("storageLayout")
    inp = {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in files.items()},
        "settings": settings,
    }
    res = subprocess.run(
        ["node", str(ROOT / "tests" / "solcjs.js"), solc, *roots],
        input=json.dumps(inp),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    out = json.loads(res.stdout)
    errs = [e["formattedMessage"] for e in out.get("errors", []) if e["severity"] == "error"]
    if errs:
        raise SystemExit(f"{name}: {errs[0]}")
    contracts = {}
    for path, cs in out["contracts"].items():
        for cname, c in cs.items():
            if cname in keep:
                contracts[cname] = {
                    "source_path": path,
                    "abi": c["abi"],
                    "runtime_bytecode": c["evm"]["deployedBytecode"]["object"],
                    "method_identifiers": c["evm"]["methodIdentifiers"],
                    "storage_layout": c.get("storageLayout"),
                }
    version = subprocess.run(
        ["node", "-e", f"process.stdout.write(require('{solc}').version())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(
        json.dumps(
            {"compiler": version, "setting": setting, "contracts": contracts},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    print(name, version, {k: len(v["runtime_bytecode"]) // 2 for k, v in contracts.items()})


def main() -> None:
    token = 'pragma solidity ^0.8.0;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\ncontract MyToken is ERC20 { constructor() ERC20("MyToken", "MTK") { _mint(msg.sender, 1e24); } }\n'
    for s in ("noopt", "opt200", "ir200"):
        compile_one(
            f"oz496_erc20_0826_{s}",
            "solc0826",
            {"MyToken.sol": token},
            ["MyToken"],
            s,
            [f"@openzeppelin/contracts/={OZ496}"],
        )
    compile_one(
        "oz496_erc20_0819_opt200",
        "solc0819",
        {"MyToken.sol": token},
        ["MyToken"],
        "opt200",
        [f"@openzeppelin/contracts/={OZ496}"],
    )
    univ2 = {
        f"contracts/{p.relative_to(UNIV2)}": p.read_text()
        for p in UNIV2.rglob("*.sol")
        if "test" not in p.parts
    }
    compile_one("univ2_pair_0516_opt200", "solc0516", univ2, ["UniswapV2Pair"], "opt200", [])
    token5 = 'pragma solidity ^0.5.0;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\nimport "@openzeppelin/contracts/token/ERC20/ERC20Detailed.sol";\ncontract Token5 is ERC20, ERC20Detailed { constructor() ERC20Detailed("T", "T", 18) public { _mint(msg.sender, 1e24); } }\n'
    for s in ("noopt", "opt200"):
        compile_one(
            f"oz251_erc20_0517_{s}",
            "solc0517",
            {"Token5.sol": token5},
            ["Token5"],
            s,
            [f"@openzeppelin/contracts/={OZ251}"],
        )
    weth = (SRC / "WETH9.sol").read_text()
    for s in ("noopt", "opt200"):
        compile_one(f"weth9_0426_{s}", "solc0426", {"WETH9.sol": weth}, ["WETH9"], s, [])
    feat = (SRC / "Features.sol").read_text()
    for s in ("noopt", "opt200", "ir200"):
        compile_one(f"features_0826_{s}", "solc0826", {"Features.sol": feat}, ["Features"], s, [])
    feat7 = (SRC / "Features7.sol").read_text()
    compile_one(
        "features7_0612_opt200", "solc0612", {"Features7.sol": feat7}, ["Features7"], "opt200", []
    )


if __name__ == "__main__":
    main()

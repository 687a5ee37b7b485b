"""Regenerate the Vyper test fixtures in tests/fixtures/evm/vyper/ (runtime bytecode, ABI and
method identifiers of snekmate contracts compiled with vyper 0.4.x and 0.3.x).

Different vyper releases cannot share one environment, so each is installed in its own venv
(gitignored):

    python3 -m venv .venv-vyper04 && .venv-vyper04/bin/pip install vyper==0.4.3 snekmate==0.1.2
    python3 -m venv .venv-vyper03 && .venv-vyper03/bin/pip install vyper==0.3.10 snekmate==0.0.5
    python3 -m venv .venv-vyper039 && .venv-vyper039/bin/pip install vyper==0.3.9 snekmate==0.0.4
    python3 -m venv .venv-vyper02 && .venv-vyper02/bin/pip install vyper==0.2.16

then ``python scripts/make_vyper_fixtures.py`` (``--venv04`` / ``--venv03`` / ``--venv039`` /
``--venv02`` to point elsewhere).
snekmate 0.1.x (for vyper 0.4) ships modules, made deployable by the small wrappers in
tests/fixtures/evm/vyper/sources/ (as snekmate's own mocks do; the ERC-1155 one adds a
payable ``__default__``; the TimelockController has its own); snekmate 0.0.5 / 0.0.4 (for vyper 0.3.10 / 0.3.9) ship whole
contracts (0.0.4 installs them at the top of site-packages). 0.4.3 and 0.3.10 compile every
contract with ``--optimize gas`` (sparse selector table), ``codesize`` (dense table) and
``none`` (linear dispatcher); 0.3.9, whose dispatcher is always a linear chain, optimised
(its default) and with ``--no-optimize``; 0.2.16 (no snekmate; the small ``__default__``
contract; no optimisation flags) as it is; 0.4.3 also with the experimental Venom backend
(``--experimental-codegen``, gas and codesize). Each fixture records the vyper and snekmate
versions and the setting; method identifiers are the compiler's, zero-padded to 8 hex digits,
without the constructor (vyper 0.3 lists ``__init__``, which is not in the runtime code).
The CI never runs this: the fixtures are committed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "evm" / "vyper"
SOURCES = OUT / "sources"
SETTINGS = {
    "gas": ["--optimize", "gas"],
    "codesize": ["--optimize", "codesize"],
    "none": ["--optimize", "none"],
}
SETTINGS_039 = {"opt": [], "noopt": ["--no-optimize"]}
# 0.4's experimental Venom backend: its own code for the same selector tables
SETTINGS_04 = {
    **SETTINGS,
    "venom_gas": ["--experimental-codegen", "--optimize", "gas"],
    "venom_codesize": ["--experimental-codegen", "--optimize", "codesize"],
}

# (fixture stem, contract name, source: wrapper file in SOURCES or path inside snekmate)
V04 = [
    ("erc20", "ERC20", "erc20_mock.vy"),
    ("erc721", "ERC721", "erc721_mock.vy"),
    ("erc1155_default", "ERC1155", "erc1155_default_mock.vy"),
    ("erc4626", "ERC4626", "erc4626_mock.vy"),
    ("timelock", "TimelockController", "timelock_controller_mock.vy"),
]
V03 = [
    ("erc20", "ERC20", "snekmate:tokens/ERC20.vy"),
    ("erc721", "ERC721", "snekmate:tokens/ERC721.vy"),
    ("erc1155", "ERC1155", "snekmate:tokens/ERC1155.vy"),
    ("erc4626", "ERC4626", "snekmate:extensions/ERC4626.vy"),
    ("timelock", "TimelockController", "snekmate:governance/TimelockController.vy"),
    ("default", "Default03", "default_03.vy"),
]
V02 = [("default", "Default02", "default_02.vy")]
V039 = [
    ("erc20", "ERC20", "snekmate:tokens/ERC20.vy"),
    ("erc721", "ERC721", "snekmate:tokens/ERC721.vy"),
    ("erc1155", "ERC1155", "snekmate:tokens/ERC1155.vy"),
    ("erc4626", "ERC4626", "snekmate:extensions/ERC4626.vy"),
]


def _run(cmd: list[str], cwd: Path) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed in {cwd}:\n{p.stderr.strip()[-2000:]}")
    return p.stdout


def _versions(venv: Path) -> tuple[str, str]:
    py = str(venv / "bin" / "python")
    code = (
        "import importlib.metadata as m\ntry: s = m.version('snekmate')\nexcept m.PackageNotFoundError: s = '-'\n"
        "print(m.version('vyper'), s)"
    )
    vy, sn = _run([py, "-c", code], ROOT).split()
    return vy, sn


def _snekmate_dir(venv: Path) -> Path:
    py = str(venv / "bin" / "python")
    code = "import importlib.util, sysconfig; s = importlib.util.find_spec('snekmate'); print(next(iter(s.submodule_search_locations)) if s else sysconfig.get_paths()['purelib'])"
    out = _run([py, "-c", code], ROOT).strip()
    return Path(out)


def compile_one(venv: Path, source: str, flags: list[str]) -> dict:
    """runtime bytecode (hex, no 0x), ABI, method identifiers and storage layout (Vyper's
    ``-f layout``: storage slots and immutables) of one source file."""
    vyper = str(venv / "bin" / "vyper")
    if source.startswith("snekmate:"):
        root = _snekmate_dir(venv)
        cwd, args = root, ["-p", ".", source.split(":", 1)[1]]
    else:
        cwd, args = SOURCES, [source]
    out = _run([vyper, *flags, "-f", "bytecode_runtime,abi,method_identifiers,layout", *args], cwd)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    runtime, abi, mids, layout = (
        lines[0].strip(),
        json.loads(lines[1]),
        json.loads(lines[2]),
        json.loads(lines[3]),
    )
    names = {e["name"] for e in abi if e.get("type") == "function"}
    mids = {sig: f"{int(h, 16):08x}" for sig, h in mids.items() if sig.split("(")[0] in names}
    if "storage_layout" not in layout:  # 0.2: one flat map with a location per variable
        layout = {
            "storage_layout": {k: v for k, v in layout.items() if v.get("location") == "storage"}
        }
    layout = _no_paths({k: layout[k] for k in ("storage_layout", "code_layout") if k in layout})
    return {
        "runtime_bytecode": runtime.removeprefix("0x"),
        "abi": abi,
        "method_identifiers": mids,
        "storage_layout": layout,
    }


def _no_paths(obj: object) -> object:
    """The layout with interface types named by their file's stem (vyper 0.4 writes the
    absolute path of the .vyi file, which would leak this machine's paths into the fixture)."""
    if isinstance(obj, dict):
        return {
            k: (Path(v).stem if k == "type" and isinstance(v, str) and "/" in v else _no_paths(v))
            for k, v in obj.items()
        }
    return obj


def _write(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv04", type=Path, default=ROOT / ".venv-vyper04")
    ap.add_argument("--venv03", type=Path, default=ROOT / ".venv-vyper03")
    ap.add_argument("--venv039", type=Path, default=ROOT / ".venv-vyper039")
    ap.add_argument("--venv02", type=Path, default=ROOT / ".venv-vyper02")
    args = ap.parse_args(argv)
    runs = (
        (args.venv04, V04, SETTINGS_04),
        (args.venv03, V03, SETTINGS),
        (args.venv039, V039, SETTINGS_039),
        (args.venv02, V02, {"opt": []}),
    )
    for venv, contracts, settings in runs:
        if not (venv / "bin" / "vyper").is_file():
            print(
                f"error: {venv}/bin/vyper not found; create the venv as this script's docstring says",
                file=sys.stderr,
            )
            return 2
        vy, sn = _versions(venv)
        tag = "v" + vy.replace(".", "")
        for stem, name, source in contracts:
            for setting, flags in settings.items():
                c = compile_one(venv, source, flags)
                fixture = {
                    "compiler": f"vyper-{vy}",
                    "snekmate": sn,
                    "setting": {"name": setting, "flags": flags, "evm_version": "default"},
                    "source": source,
                    "contracts": {name: c},
                }
                path = OUT / f"{stem}_{tag}_{setting}.json"
                _write(path, fixture)
                print(
                    f"{path.relative_to(ROOT)}: {len(c['runtime_bytecode']) // 2} bytes, {len(c['method_identifiers'])} selectors"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

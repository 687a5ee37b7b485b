"""`evmlm decompile` on a contract written here (outside the corpus), compiled with solc-js."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evmlm import decompile as dec
from evmlm.config import DecompileConfig

ROOT = Path(__file__).resolve().parents[2]
PIGGY = ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol"


def _sources_of(names: list[str]) -> dict[str, str]:
    """Piggy's functions' source text by name (tree-sitter byte ranges)."""
    from evmlm.evaluate.structure import _parser

    data = PIGGY.read_bytes()
    out, stack = {}, [_parser().parse(data).root_node]
    while stack:
        n = stack.pop()
        if n.type == "function_definition":
            name = next(c for c in n.children if c.type == "identifier").text.decode()
            out[name] = data[n.start_byte : n.end_byte].decode()
        stack.extend(n.children)
    return {k: out[k] for k in names}


def test_untrained_model_output_still_gives_a_file_solc_parses(piggy, tiny_model_dir: Path, solcjs) -> None:
    res = dec.decompile({"deployedBytecode": piggy["evm"]["deployedBytecode"]["object"], "abi": piggy["abi"], "storageLayout": piggy["storageLayout"]}, tiny_model_dir, config=DecompileConfig(max_new_tokens=16, batch_size=4))
    sels = [f.selector for f in res.functions if f.selector]
    assert sels == sorted(sels) and len(sels) == 8  # 4 functions + 4 public getters
    # every function either parses or states why not, in the result and in the file
    for f in res.functions:
        assert f.error is None or f.error in res.source
        assert f"// selector {f.selector}" in res.source if f.selector else True
    assert "address keeper; // slot 0" in res.source and "bool locked; // slot 3" in res.source
    assert "event Saved(address indexed who, uint256 amount);" in res.source
    assert solcjs({"Decompiled.sol": res.source}, stop_after_parsing=True)["sources"]  # raises on a solc error


def test_good_outputs_are_kept_as_code_and_parse_with_solc(piggy, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, solcjs) -> None:
    bodies = _sources_of(["save", "lock", "smash", "share"])
    by_selector = {"0x" + s: bodies[sig.split("(")[0]] for sig, s in _method_ids(piggy).items() if sig.split("(")[0] in bodies}

    def fake_generate(model, tokenizer, prompts, **kw):  # stands in for a well-trained model
        out = []
        for p in prompts:
            sel = next(s for s in by_selector if s in p) if any(s in p for s in by_selector) else None
            out.append((by_selector[sel] if sel else "function broken( {", 0.01))
        return out

    monkeypatch.setattr(dec, "generate_completions", fake_generate)
    res = dec.decompile(piggy["evm"]["deployedBytecode"]["object"], tiny_model_dir, config=DecompileConfig(contract_name="Piggy2"))
    good = [f for f in res.functions if f.selector in by_selector]
    assert len(good) == 4 and all(f.error is None for f in good)
    bad = [f for f in res.functions if f.selector not in by_selector]
    assert bad and all(f.error and "syntax error" in f.error for f in bad)
    assert "function smash(address payable to)" in res.source and "contract Piggy2 {" in res.source
    # no storage layout given: evmole's inferred one
    assert "var_0_0" in res.source
    assert solcjs({"Piggy2.sol": res.source}, stop_after_parsing=True)["sources"]  # raises on a solc error


def _method_ids(piggy) -> dict[str, str]:
    from eth_utils import keccak

    from evmlm.evm.abi import canonical_type as abi_type

    return {f"{i['name']}({','.join(abi_type(p) for p in i['inputs'])})": keccak(text=f"{i['name']}({','.join(abi_type(p) for p in i['inputs'])})")[:4].hex() for i in piggy["abi"] if i["type"] == "function"}


def test_selector_filter_and_errors(piggy, tiny_model_dir: Path) -> None:
    code = piggy["evm"]["deployedBytecode"]["object"]
    sel = "0x" + _method_ids(piggy)["lock(bool)"]
    res = dec.decompile(code, tiny_model_dir, selector=sel, config=DecompileConfig(max_new_tokens=8))
    assert [f.selector for f in res.functions] == [sel]
    with pytest.raises(dec.DecompileInputError, match="no function with selector 0xdeadbeef"):
        dec.decompile(code, tiny_model_dir, selector="0xdeadbeef")
    with pytest.raises(dec.DecompileInputError, match="neither hex bytecode nor an existing file"):
        dec.read_input("no/such/file.bin")
    from evmlm.evm import BytecodeError

    with pytest.raises(BytecodeError):
        dec.read_input("0x6")


def test_cli_decompile_file_json_and_sol(piggy, tiny_model_dir: Path, tmp_path: Path, solcjs) -> None:
    from typer.testing import CliRunner

    from evmlm.cli import app

    artifact = tmp_path / "Piggy.json"
    artifact.write_text(json.dumps({"contractName": "Piggy", "abi": piggy["abi"], "deployedBytecode": "0x" + piggy["evm"]["deployedBytecode"]["object"]}))
    args = ["decompile", str(artifact), "--model", str(tiny_model_dir), "--max-tokens", "8", "--no-stream"]
    res = CliRunner().invoke(app, args + ["--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["functions"]) == 8 and all("tac" in f and "seconds" in f and "error" in f for f in data["functions"])
    sol = tmp_path / "out.sol"
    res = CliRunner().invoke(app, args + ["--out", str(sol)])
    assert res.exit_code == 0 and sol.read_text().startswith("// SPDX-License-Identifier")
    assert solcjs({"out.sol": sol.read_text()}, stop_after_parsing=True)["sources"]  # raises on a solc error
    # the console entry point: a one-line error and exit status 2 for input that is not bytecode
    bad = subprocess.run([sys.executable, "-m", "evmlm", "decompile", "0xzz", "--model", str(tiny_model_dir)], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1


def test_fit_prompt_cuts_like_finetuning(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from evmlm.train.prompt import SOLIDITY_TOKEN, build_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tac = "function 0x12345678 f(uint256)\n" + "\n".join(f"    v{i} = ADD(v{i - 1}, 0x{i:x})" for i in range(1, 200))
    full = build_prompt(tac, "f(uint256)", "uint256 x;")
    assert dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, 100_000) == full
    cut = dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, 120)
    assert len(tok(cut, add_special_tokens=False)["input_ids"]) <= 120
    assert cut.endswith("...\n" + SOLIDITY_TOKEN) and "<|context|>" not in cut and cut.startswith("<|signature|>f(uint256)")

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    class _Slow:  # the same tokenizer without offsets: fit_prompt's binary-search path
        is_fast = False

        def __call__(self, *args, **kwargs):
            return tok(*args, **kwargs)

    assert dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, ntok(full)) == full  # context kept while it fits
    assert "<|context|>" not in dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, ntok(full) - 1)
    lines = tac.splitlines()
    for budget in (64, 120, 333, 1000):
        fast = dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, budget)
        assert fast == dec.fit_prompt(tac, "f(uint256)", "uint256 x;", _Slow(), budget)
        kept = fast.split("<|tac|>", 1)[1].splitlines().index("...")  # the most lines that fit
        assert ntok(fast) <= budget and ntok(build_prompt("\n".join(lines[: kept + 1] + ["..."]), "f(uint256)")) > budget

    class _M:
        class config:  # noqa: N801 - mimics a transformers config
            max_position_embeddings = 256

    assert dec.generation_budget(_M(), 384) == (128, 128) and dec.generation_budget(_M(), 64) == (192, 64)


def test_streamed_generation_matches_batched(tiny_model_dir: Path) -> None:
    from evmlm.decompile.generation import generate_completions
    from evmlm.train import load_for_inference
    from evmlm.train.prompt import build_prompt

    model, tok = load_for_inference(tiny_model_dir)
    prompts = [build_prompt("function 0x12345678 f()\n  block 0x0\n    STOP()", "f()"), build_prompt("function 0x0dd0a042 lock(bool)\n  block 0x7d\n    v0 = CALLVALUE()", None)]
    pieces: dict[int, str] = {}
    streamed = generate_completions(model, tok, prompts, max_new_tokens=12, on_text=lambda i, p: pieces.__setitem__(i, pieces.get(i, "") + p))
    batched = generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=2)
    assert set(pieces) == {0, 1}
    # greedy: left-padded batched generation gives the same text as one-at-a-time streaming
    assert [t for t, _ in streamed] == [t for t, _ in batched]
    assert all(s >= 0 for _, s in batched)


def test_address_input_fetches_code_from_a_local_json_rpc_node(piggy) -> None:
    import http.server
    import threading

    code = "0x" + piggy["evm"]["deployedBytecode"]["object"]
    seen: list[dict] = []

    class Node(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(req)
            addr = req["params"][0].lower()
            result = code if addr == "0x" + "ab" * 20 else "0x"
            body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        inp = dec.read_input("0x" + "AB" * 20, rpc_url=url)
        assert inp.bytecode.hex() == code[2:] and seen[0]["method"] == "eth_getCode" and seen[0]["params"][1] == "latest"
        with pytest.raises(dec.DecompileInputError, match="no code at this address"):
            dec.read_input("0x" + "cd" * 20, rpc_url=url)
        with pytest.raises(dec.DecompileInputError, match="--rpc-url"):
            dec.read_input("0x" + "ab" * 20)
    finally:
        server.shutdown()
    with pytest.raises(dec.DecompileInputError, match="eth_getCode failed"):
        dec.fetch_code("0x" + "ab" * 20, url, timeout_s=2)

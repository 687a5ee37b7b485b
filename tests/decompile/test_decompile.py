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


def test_draft_alone_compiles_as_one_file_and_is_verified(piggy, solcjs) -> None:
    """No model, no ABI: the structural draft, compiled with the metadata's solc version and
    executed against the original runtime code; every function marked."""
    sigs = {"0x" + s: sig for sig, s in _method_ids(piggy).items()}
    res = dec.decompile(piggy["evm"]["deployedBytecode"]["object"], signatures=sigs)
    assert (
        res.metadata_version == "0.8.26"
        and res.compiler_version == "0.8.26"
        and "pragma solidity 0.8.26;" in res.source
    )
    assert res.compiles is True
    sels = sorted(f.selector for f in res.functions if f.selector)
    assert len(sels) == 8  # 4 functions + 4 public getters
    for f in res.functions:
        assert f.chosen == "draft" and f.verdict.startswith(
            ("// verified: same on", "// compiles, differs:", "// unverified:")
        )
        assert f.verdict in res.source
    assert sum(f.same is True for f in res.functions) >= 6, [f.verdict for f in res.functions]
    solcjs({"Decompiled.sol": res.source})  # compiles as a whole (raises on a solc error)


def test_verified_selection_replaces_a_wrong_draft_by_a_behaving_candidate(
    piggy, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, solcjs
) -> None:
    """Drafts that behave the same are kept without asking the model; a wrong draft (made
    wrong here) is replaced by the candidate that behaves the same (the sample), not by the
    one that only compiles (greedy); the draft's header is forced as the start."""
    from dataclasses import replace

    from evmlm import structural
    from evmlm.decompile.contract import replace_function
    from evmlm.decompile.header import header_of

    real = structural.draft_contract
    sel = "0x" + _method_ids(piggy)["share(address)"]
    good: dict[str, str] = {}

    def wrong_share(*args, **kw):
        d = real(*args, **kw)
        f = d.functions[sel]
        good["text"] = f.text
        bad = f.text.split("{", 1)[0] + "{\n    return 7;\n}\n"
        return structural.DraftContract(
            replace_function(d.source, f.text, bad), {**d.functions, sel: replace(f, text=bad)}
        )

    starts_seen: list[list[str | None]] = []

    def fake_generate(
        model, tokenizer, prompts, *, starts=None, temperature=0.0, **kw
    ):  # stands in for a trained model
        starts_seen.append(list(starts or []))
        out = []
        for head in starts or []:
            body = (
                "{\n    return 1;\n}" if temperature == 0 else "{" + good["text"].split("{", 1)[1]
            )
            out.append((f"{head} {body}", 0.01))
        return out

    monkeypatch.setattr(structural, "draft_contract", wrong_share)
    monkeypatch.setattr(dec, "generate_completions", fake_generate)
    res = dec.decompile(
        {"deployedBytecode": piggy["evm"]["deployedBytecode"]["object"], "abi": piggy["abi"]},
        tiny_model_dir,
        config=DecompileConfig(candidates=3),
    )
    share_head = header_of(good["text"].split("{", 1)[0] + "{ }")
    assert starts_seen and all(share_head in s for s in starts_seen)  # header forced
    asked = {h.split("(")[0] for h in starts_seen[0]}
    for f in res.functions:  # drafts that behave the same never go to the model
        assert (f"function {f.signature.split('(')[0]}" in asked) == (f.draft_same is not True), (
            f.signature
        )
    share = next(f for f in res.functions if f.selector == sel)
    assert (
        share.chosen == "sample1"
        and share.same is True
        and share.verdict.startswith("// verified: same on")
    )
    assert all(f.chosen == "draft" for f in res.functions if f.same is True and f.selector != sel)
    assert res.compiles and share.verdict + "\n" in res.source
    solcjs({"Decompiled.sol": res.source})
    # --no-verify: the greedy text is kept when it parses, marked unverified
    res = dec.decompile(
        {"deployedBytecode": piggy["evm"]["deployedBytecode"]["object"], "abi": piggy["abi"]},
        tiny_model_dir,
        config=DecompileConfig(verify=False),
    )
    share = next(f for f in res.functions if f.selector == sel)
    assert (
        share.chosen == "greedy"
        and "return 1;" in share.output
        and share.verdict == "// unverified: --no-verify"
    )


def test_metadata_compiler_version_read_from_cbor(solcjs) -> None:
    from evmlm.evm.disasm import metadata_compiler_version, metadata_fields

    for module, version in (("solc0826", "0.8.26"), ("solc0426", None), ("solc0517", "0.5.17")):
        pragma = "^0.4.24" if version is None else f"^{version}"
        out = solcjs(
            {
                "A.sol": f"pragma solidity {pragma}; contract A {{ uint x; function f() public {{ x = 1; }} }}"
            },
            module=module,
        )
        code = bytes.fromhex(out["contracts"]["A.sol"]["A"]["evm"]["deployedBytecode"]["object"])
        assert metadata_compiler_version(code) == version  # 0.4.26 records no compiler (bzzr0 only)
        assert set(metadata_fields(code)) & {"ipfs", "bzzr0", "bzzr1"}
    assert metadata_compiler_version(bytes.fromhex("6080604052")) is None


def test_decompile_does_not_import_evaluate() -> None:
    """The layering: evaluate uses decompile (verifier, syntax check, generation), never back."""
    code = "import sys, evmlm.decompile, evmlm.decompile.verify, evmlm.decompile.contract; print([m for m in sys.modules if m.startswith('evmlm.evaluate')])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def _method_ids(piggy) -> dict[str, str]:
    from eth_utils import keccak

    from evmlm.evm.abi import canonical_type as abi_type

    return {
        f"{i['name']}({','.join(abi_type(p) for p in i['inputs'])})": keccak(
            text=f"{i['name']}({','.join(abi_type(p) for p in i['inputs'])})"
        )[:4].hex()
        for i in piggy["abi"]
        if i["type"] == "function"
    }


def test_selector_filter_and_errors(piggy, tiny_model_dir: Path) -> None:
    code = piggy["evm"]["deployedBytecode"]["object"]
    sel = "0x" + _method_ids(piggy)["lock(bool)"]
    res = dec.decompile(
        code, tiny_model_dir, selector=sel, config=DecompileConfig(max_new_tokens=8)
    )
    assert [f.selector for f in res.functions] == [sel]
    with pytest.raises(dec.DecompileInputError, match="no function with selector 0xdeadbeef"):
        dec.decompile(code, tiny_model_dir, selector="0xdeadbeef")
    from evmlm.evm import BytecodeError

    with pytest.raises(BytecodeError, match="neither hex bytecode nor an existing file"):
        dec.read_input("no/such/file.bin")

    with pytest.raises(BytecodeError):
        dec.read_input("0x6")


def test_cli_decompile_file_json_and_sol(
    piggy, tiny_model_dir: Path, tmp_path: Path, solcjs
) -> None:
    from typer.testing import CliRunner

    from evmlm.cli import app

    artifact = tmp_path / "Piggy.json"
    artifact.write_text(
        json.dumps(
            {
                "contractName": "Piggy",
                "abi": piggy["abi"],
                "deployedBytecode": "0x" + piggy["evm"]["deployedBytecode"]["object"],
            }
        )
    )
    args = [
        "decompile",
        str(artifact),
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "8",
        "--no-stream",
    ]
    res = CliRunner().invoke(app, args + ["--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["functions"]) == 8 and all(
        "tac" in f and "seconds" in f and "error" in f for f in data["functions"]
    )
    sol = tmp_path / "out.sol"
    res = CliRunner().invoke(app, args + ["--out", str(sol)])
    assert res.exit_code == 0 and sol.read_text().startswith("// SPDX-License-Identifier")
    assert solcjs({"out.sol": sol.read_text()}, stop_after_parsing=True)[
        "sources"
    ]  # raises on a solc error
    # the console entry point: a one-line error and exit status 2 for input that is not bytecode
    bad = subprocess.run(
        [sys.executable, "-m", "evmlm", "decompile", "0xzz", "--model", str(tiny_model_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=ROOT,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: ")
        and len(bad.stderr.strip().splitlines()) == 1
    )


def test_fit_prompt_cuts_like_finetuning(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from evmlm.train.prompt import SOLIDITY_TOKEN, build_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tac = "function 0x12345678 f(uint256)\n" + "\n".join(
        f"    v{i} = ADD(v{i - 1}, 0x{i:x})" for i in range(1, 200)
    )
    full = build_prompt(tac, "f(uint256)", "uint256 x;")
    assert dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, 100_000) == full
    cut = dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, 120)
    assert len(tok(cut, add_special_tokens=False)["input_ids"]) <= 120
    assert (
        cut.endswith("...\n" + SOLIDITY_TOKEN)
        and "<|context|>" not in cut
        and cut.startswith("<|signature|>f(uint256)")
    )

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    class _Slow:  # the same tokenizer without offsets: fit_prompt's binary-search path
        is_fast = False

        def __call__(self, *args, **kwargs):
            return tok(*args, **kwargs)

    assert (
        dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, ntok(full)) == full
    )  # context kept while it fits
    assert "<|context|>" not in dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, ntok(full) - 1)
    lines = tac.splitlines()
    for budget in (64, 120, 333, 1000):
        fast = dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, budget)
        assert fast == dec.fit_prompt(tac, "f(uint256)", "uint256 x;", _Slow(), budget)
        kept = fast.split("<|tac|>", 1)[1].splitlines().index("...")  # the most lines that fit
        assert (
            ntok(fast) <= budget
            and ntok(build_prompt("\n".join(lines[: kept + 1] + ["..."]), "f(uint256)")) > budget
        )

    class _M:
        class config:  # noqa: N801 - mimics a transformers config
            max_position_embeddings = 256

    assert dec.generation_budget(_M(), 384) == (128, 128) and dec.generation_budget(_M(), 64) == (
        192,
        64,
    )


def test_generation_budget_is_the_fine_tuned_length(tmp_path: Path) -> None:
    """A model fine-tuned on 96-token examples gets 96-token prompt + completion, not its
    base's 256-token context; without training_info.json the context."""
    import json

    from evmlm.decompile.generation import generation_budget, trained_length

    class _M:
        name_or_path = str(tmp_path)

        class config:  # noqa: N801 - mimics a transformers config
            max_position_embeddings = 256

    assert trained_length(_M()) is None and generation_budget(_M(), 64) == (192, 64)
    info = {"finetune": {"max_length": 96}}  # as evmlm.train.finetune writes it
    (tmp_path / "training_info.json").write_text(json.dumps(info))
    assert trained_length(_M()) == 96
    assert generation_budget(_M(), 32) == (64, 32) and generation_budget(_M(), 64) == (48, 48)


def test_fit_prompt_keeps_the_draft_and_cuts_it_last(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from evmlm.train.prompt import DRAFT_TOKEN, build_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tac = "function 0x12345678 f(uint256)\n" + "\n".join(
        f"    v{i} = ADD(v{i - 1}, 0x{i:x})" for i in range(1, 100)
    )
    draft = (
        "function f(uint256 arg0) public {\n"
        + "\n".join(f"    stor_{i} = arg0 + {i};" for i in range(60))
        + "\n}"
    )
    full = build_prompt(tac, "f(uint256)", "uint256 x;", draft)
    assert full.index(DRAFT_TOKEN) < full.index("<|tac|>")
    assert dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, 100_000, draft) == full

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    # the TAC is cut first: the whole draft stays while one TAC line and it fit
    one_line = build_prompt(tac.splitlines()[0] + "\n...", "f(uint256)", None, draft)
    kept = dec.fit_prompt(tac, "f(uint256)", "uint256 x;", tok, ntok(one_line) + 40, draft)
    assert (
        draft in kept and "..." in kept.split("<|tac|>", 1)[1] and ntok(kept) <= ntok(one_line) + 40
    )
    # then the draft keeps its first lines
    small = dec.fit_prompt(tac, "f(uint256)", None, tok, 200, draft)
    assert (
        ntok(small) <= 200
        and DRAFT_TOKEN + "function f(uint256 arg0) public {" in small
        and draft not in small
    )


def test_streamed_generation_matches_batched(tiny_model_dir: Path) -> None:
    from evmlm.decompile.generation import generate_completions
    from evmlm.train import load_for_inference
    from evmlm.train.prompt import build_prompt

    model, tok = load_for_inference(tiny_model_dir)
    prompts = [
        build_prompt("function 0x12345678 f()\n  block 0x0\n    STOP()", "f()"),
        build_prompt("function 0x0dd0a042 lock(bool)\n  block 0x7d\n    v0 = CALLVALUE()", None),
    ]
    pieces: dict[int, str] = {}
    streamed = generate_completions(
        model,
        tok,
        prompts,
        max_new_tokens=12,
        on_text=lambda i, p: pieces.__setitem__(i, pieces.get(i, "") + p),
    )
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
        assert (
            inp.bytecode.hex() == code[2:]
            and seen[0]["method"] == "eth_getCode"
            and seen[0]["params"][1] == "latest"
        )
        with pytest.raises(dec.DecompileInputError, match="no code at this address"):
            dec.read_input("0x" + "cd" * 20, rpc_url=url)
        with pytest.raises(dec.DecompileInputError, match="--rpc-url"):
            dec.read_input("0x" + "ab" * 20)
    finally:
        server.shutdown()
    with pytest.raises(dec.DecompileInputError, match="eth_getCode failed"):
        dec.fetch_code("0x" + "ab" * 20, url, timeout_s=2)


UNNAMED = """pragma solidity 0.8.26;
contract U {
    uint256 public total;
    mapping(address => uint256) internal owed;
    function zq_credit7(address who, uint256 amount) external {
        require(amount < 1000, "too much");
        owed[who] += amount;
        total += amount;
    }
    function zq_owed7(address who) external view returns (uint256) { return owed[who]; }
    function zq_pay7() external payable { total += msg.value; }
    FALLBACK
}
"""


@pytest.mark.parametrize("fallback", ["", "fallback() external { total = 7; }"])
def test_functions_without_a_signature_are_code_reached_through_the_fallback(
    fallback: str, solcjs
) -> None:
    """Bytecode only, selectors no database knows: each such function is drafted as a private
    function that the fallback calls on its ``msg.sig``; the file compiles and every function
    behaves the same as the original (arguments typed by evmole), with and without an
    original fallback (whose own behaviour, a non-payable one, is kept)."""
    src = UNNAMED.replace("FALLBACK", fallback)
    out = solcjs({"U.sol": src})["contracts"]["U.sol"]["U"]
    res = dec.decompile(out["evm"]["deployedBytecode"]["object"])
    assert res.compiles is True
    unnamed = [f for f in res.functions if f.selector and not f.signature]
    assert len(unnamed) == 4  # with the getter total()
    for f in unnamed:
        assert f"function __selector_{f.selector[2:]}() private" in f.draft
        assert f"msg.sig == bytes4({f.selector})" in res.source
    assert all(f.same is True for f in res.functions), [
        (f.selector, f.verdict) for f in res.functions
    ]
    assert any(f.kind == "fallback" for f in res.functions) == bool(fallback)
    solcjs({"Decompiled.sol": res.source})

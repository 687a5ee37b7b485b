"""The command-line hardening items, one test each: run names, cheap checks before expensive
work, one-line errors for corrupt models / ABIs / storage layouts / configs / stage names, the
fallback an empty ABI hid, bytecode with no function, RPC URL redaction, and the one
bytecode-input parser and streaming path behind ``lift`` and ``decompile``.

Real parts throughout: solc-js compiles, a tiny real Llama model, a JSON-RPC node on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evmlm.cli import run_cli
from evmlm.config import ConfigError, RunSection, load_config
from evmlm.evm import BytecodeError, lift_contract

ROOT = Path(__file__).resolve().parents[1]
PIGGY = ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol"

WITH_FALLBACK = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract WithFallback {
    uint256 public x;
    function set(uint256 v) external { x = v; }
    fallback() external { x = 7; }
}
contract NoFallback {
    uint256 public x;
    function set(uint256 v) external { x = v; }
}
"""


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="module")
def model(make_tiny_model) -> Path:  # type: ignore[no-untyped-def]
    return make_tiny_model(PIGGY.read_text())


@pytest.fixture(scope="module")
def piggy(solcjs) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return solcjs({"Piggy.sol": PIGGY.read_text()})["contracts"]["Piggy.sol"]["Piggy"]


@pytest.fixture(scope="module")
def fallback_contracts(solcjs) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return solcjs({"F.sol": WITH_FALLBACK})["contracts"]["F.sol"]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------ run names


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", ".hidden", "-x", "a\\b", "x y"])
def test_run_name_must_be_one_safe_folder_name(name: str) -> None:
    with pytest.raises(ConfigError, match="run.name"):
        RunSection(name=name)


@pytest.mark.parametrize(
    "name", ["default", "quick", "dataset-full", "paper-llama-3.2-3b-lora", "run_1"]
)
def test_run_names_in_use_are_accepted(name: str) -> None:
    assert RunSection(name=name).name == name


@pytest.mark.parametrize("name", ["..", "."])
def test_cli_name_dotdot_writes_nothing_outside_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    line = _one_line_error(*_cli(capsys, "run", "--name", name, "--until", "corpus")[::2])
    assert "run.name" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["work"]  # no config.yaml, no corpus/


# ------------------------------------------------------------------------ stage names, configs


@pytest.mark.parametrize("flag", ["--until", "--force"])
def test_unknown_stage_is_a_usage_error(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(*_cli(capsys, "run", flag, "bogus")[::2])
    assert flag in line and "unknown stage 'bogus'" in line and "corpus, compile" in line
    assert not (tmp_path / "runs").exists()


def test_binary_and_recursive_configs_are_config_errors(tmp_path: Path) -> None:
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(ConfigError, match="b.yaml: not a text file"):
        load_config(binary)
    recursive = tmp_path / "r.yaml"
    recursive.write_text("run: &r\n  name: x\n  self: *r\n")
    with pytest.raises(ConfigError, match="r.yaml: a YAML alias refers to itself"):
        load_config(recursive)
    with pytest.raises(ConfigError, match="--run.name: not valid YAML"):
        load_config(None, ["--run.name=[unclosed"])
    nul = tmp_path / "nul.yaml"
    nul.write_text("run:\n  name: a\x00b\n")
    with pytest.raises(ConfigError, match="nul.yaml: not valid YAML"):
        load_config(nul)


# ------------------------------------------------------------------------ models


def test_corrupt_weights_and_missing_tokenizer_are_model_load_errors(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evmlm.train.inference import ModelLoadError, load_for_inference

    truncated = tmp_path / "truncated"
    shutil.copytree(model, truncated)
    w = truncated / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-1000])
    garbage = tmp_path / "garbage"
    shutil.copytree(model, garbage)
    (garbage / "model.safetensors").write_bytes(b"not a safetensors file at all")
    no_tok = tmp_path / "no_tokenizer"
    no_tok.mkdir()
    for f in model.iterdir():
        if f.name in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copy(f, no_tok / f.name)
    bad_config = tmp_path / "bad_config"
    shutil.copytree(model, bad_config)
    (bad_config / "config.json").write_text('{"model_type": "llama", ')
    cases = [
        (truncated, "model.safetensors: corrupt or truncated"),
        (garbage, "model.safetensors: corrupt or truncated"),
        (no_tok, "no tokenizer"),
        (bad_config, "config.json: not a readable JSON file"),
    ]
    for folder, words in cases:
        with pytest.raises(ModelLoadError, match=words):
            load_for_inference(folder)
        line = _one_line_error(*_cli(capsys, "sample", "-m", folder, "-p", "contract")[::2])
        assert words in line
    assert load_for_inference(model)[0] is not None  # positive control: the intact folder loads


def test_sample_max_tokens_zero(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(
        *_cli(capsys, "sample", "-m", model, "-p", "x", "--max-tokens", "0")[::2]
    )
    assert "--max-tokens must be >= 1" in line


def test_evaluate_checks_the_model_before_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    monkeypatch.setattr("evmlm.pipeline.run_stage", lambda *a, **k: started.append(a))
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(*_cli(capsys, "evaluate", "-m", tmp_path / "nonexistent")[::2])
    assert "nonexistent: model folder not found" in line and started == []


def test_decompile_out_folder_fails_before_generating(
    model: Path,
    piggy: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(
        "evmlm.decompile.generate_completions", lambda *a, **k: calls.append(a) or []
    )
    code = "0x" + piggy["evm"]["deployedBytecode"]["object"]
    line = _one_line_error(*_cli(capsys, "decompile", code, "-m", model, "-o", tmp_path)[::2])
    assert "is a folder" in line and "--out" in line and calls == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_error(
        *_cli(capsys, "decompile", code, "-m", model, "-o", blocker / "out.sol")[::2]
    )
    assert "is a file, not a folder" in line and calls == []


# ------------------------------------------------------------------------ ABI and storage layout


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {"type": "function", "name": "f", "inputs": None},
            "inputs: must be a list of parameters, got null",
        ),
        (
            {"type": "function", "name": "f", "inputs": "uint256"},
            "inputs: must be a list of parameters, got str",
        ),
        (
            {"type": "function", "name": "f", "inputs": [{"name": "a"}]},
            "inputs[0]: a parameter needs a 'type'",
        ),
        (
            {"type": "event", "name": "E", "inputs": [{"type": "tuple"}]},
            "components: must be a list",
        ),
        ({"type": "function", "name": 3, "inputs": []}, "'name' must be a non-empty string"),
        ({"type": ["function"]}, "'type' must be a string"),
        ("function f()", "entry 0 is not an object"),
    ],
)
def test_bad_abi_entries_are_one_line_errors(
    entry: Any,
    words: str,
    piggy: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = piggy["evm"]["deployedBytecode"]["object"]
    with pytest.raises(BytecodeError, match=words.replace("[", r"\[").replace("]", r"\]")):
        lift_contract(code, abi=[entry])
    abi = tmp_path / "abi.json"
    abi.write_text(json.dumps([entry]))
    line = _one_line_error(*_cli(capsys, "lift", "0x" + code, "--abi", abi)[::2])
    assert "abi.json: entry 0" in line and words in line


def test_storage_layout_entry_without_slot(
    piggy: dict[str, Any], model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = json.loads(json.dumps(piggy["storageLayout"]))
    del layout["storage"][0]["slot"]
    label = layout["storage"][0]["label"]
    lf = tmp_path / "layout.json"
    lf.write_text(json.dumps(layout))
    code = "0x" + piggy["evm"]["deployedBytecode"]["object"]
    line = _one_line_error(*_cli(capsys, "lift", code, "--storage-layout", lf)[::2])
    assert f"layout.json: storageLayout entry 0 ({label}): no 'slot'" in line
    art = tmp_path / "Piggy.json"
    art.write_text(
        json.dumps({"deployedBytecode": code, "abi": piggy["abi"], "storageLayout": layout})
    )
    line = _one_line_error(*_cli(capsys, "decompile", art, "-m", model)[::2])
    assert f"storageLayout entry 0 ({label}): no 'slot'" in line
    assert (
        _cli(
            capsys,
            "lift",
            code,
            "--storage-layout",
            _write(tmp_path / "ok.json", piggy["storageLayout"]),
        )[0]
        == 0
    )


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------------ fallback, no functions


def test_empty_abi_does_not_hide_a_real_fallback(
    fallback_contracts: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_fb = fallback_contracts["WithFallback"]
    code = with_fb["evm"]["deployedBytecode"]["object"]
    kinds = {
        abi_name: [f.kind for f in lift_contract(code, abi=abi).functions if f.kind != "internal"]
        for abi_name, abi in (("none", None), ("empty", []), ("full", with_fb["abi"]))
    }
    assert all(k.count("fallback") == 1 for k in kinds.values()), kinds
    empty = _write(tmp_path / "empty.json", [])
    status, _, err = _cli(capsys, "lift", "0x" + code, "--abi", empty, "--no-internal")
    assert status == 0 and "1 fallback" in err, err
    # negative control: no fallback in the source, none in the lift (with or without an ABI)
    no_fb = fallback_contracts["NoFallback"]
    for abi in (None, [], no_fb["abi"]):
        assert "fallback" not in [
            f.kind
            for f in lift_contract(no_fb["evm"]["deployedBytecode"]["object"], abi=abi).functions
        ]


def test_decompile_of_bytecode_without_functions_says_so(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evmlm import decompile as dec

    out = tmp_path / "out.sol"
    revert_only = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT: no dispatcher, fallback or receive
    line = _one_line_error(*_cli(capsys, "decompile", revert_only, "-m", model, "-o", out)[::2])
    assert "no functions found" in line and "runtime (deployed) bytecode" in line
    assert not out.exists()
    with pytest.raises(dec.NoFunctionsError):
        dec.decompile(revert_only, model)


# ------------------------------------------------------------------------ RPC URL redaction


class _Node(http.server.BaseHTTPRequestHandler):
    """A JSON-RPC node that fails: HTTP 401 for /v3/… paths, else a JSON-RPC error quoting the
    request path (as some providers echo the key)."""

    def do_POST(self) -> None:  # http.server's API
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.startswith("/v3/"):
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "error": {"code": -32000, "message": f"bad key in {self.path}"},
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_rpc_url_is_redacted_after_the_host(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evmlm.decompile import redact_url

    assert (
        redact_url("https://mainnet.infura.io/v3/0123456789abcdef")
        == "https://mainnet.infura.io/..."
    )
    assert redact_url("https://u:p@node.example:8545/?apikey=K") == "https://node.example:8545/..."
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    server = http.server.HTTPServer(("127.0.0.1", 0), _Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    secret = "SECRETKEY0123456789"
    try:
        for url in (
            f"{host}/v3/{secret}",
            f"{host}/rpc?apikey={secret}",
            f"http://user:{secret}@127.0.0.1:9/x",
        ):
            line = _one_line_error(
                *_cli(capsys, "decompile", "0x" + "ab" * 20, "-m", model, "--rpc-url", url)[::2]
            )
            assert secret not in line and "eth_getCode" in line, line
            assert "127.0.0.1" in line and "/..." in line
    finally:
        server.shutdown()


# ------------------------------------------------------------------------ one parser, one stream


def test_lift_and_decompile_read_input_alike(
    piggy: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evmlm import decompile as dec
    from evmlm.evm.inputs import read_bytecode_input

    monkeypatch.chdir(tmp_path)
    code = piggy["evm"]["deployedBytecode"]["object"]
    Path("beef").write_text(code)  # a file whose name is hex digits: the file is read
    art = _write(
        tmp_path / "a.json",
        {"deployedBytecode": code, "abi": piggy["abi"], "storage_layout": piggy["storageLayout"]},
    )
    for src in ("beef", str(art), "0x" + code, code):
        a, b = read_bytecode_input(src), dec.read_input(src)
        assert a == b and a.bytecode.hex() == code
        assert _cli(capsys, "lift", src, "--no-internal")[0] == 0
    assert dec.read_input(str(art)).storage_layout == piggy["storageLayout"]  # either key is read
    truncated = tmp_path / "t.json"
    truncated.write_text(art.read_text()[:-10])
    for bad in ("no/such/file.bin", "nosuchfile", str(truncated)):
        with pytest.raises(BytecodeError):
            dec.read_input(bad)
        with pytest.raises(BytecodeError):
            read_bytecode_input(bad)
        _one_line_error(*_cli(capsys, "lift", bad)[::2])


def test_streamed_generation_error_is_raised_not_hung(model: Path) -> None:
    import torch

    from evmlm.train.inference import generate_streamed, load_for_inference

    m, tok = load_for_inference(model)
    ids = torch.tensor([tok("contract A {", add_special_tokens=False)["input_ids"]])
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            generate_streamed(m, tok, lambda s: None, input_ids=ids, max_new_tokens=4, num_beams=0)
        except ValueError as e:  # the error must reach the caller
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "streamed generation hung on a generation error"
    assert isinstance(result.get("error"), ValueError)
    pieces: list[str] = []
    text = generate_streamed(
        m, tok, pieces.append, input_ids=ids, max_new_tokens=4, do_sample=False
    )
    assert text == "".join(pieces) and pieces

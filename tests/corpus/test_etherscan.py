"""The Etherscan client against a real HTTP server on 127.0.0.1 (no mock objects)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from evmlm.corpus.etherscan import (
    NOT_VERIFIED,
    EtherscanClient,
    EtherscanError,
    parse_source_code,
    read_addresses,
    write_contract,
)
from evmlm.corpus.imports import ImportResolver
from evmlm.solc import compile_sources

KEY = "SECRETKEY1234567890ABCDEFGHIJKLMN"
TOKEN = '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\nimport "./Math.sol";\ncontract Token { mapping(address => uint256) public balanceOf;\n function mint(uint256 a) external { balanceOf[msg.sender] = Math.add(balanceOf[msg.sender], a); } }\n'
MATH = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\nlibrary Math { function add(uint256 a, uint256 b) internal pure returns (uint256) { return a + b; } }\n"
SINGLE = "pragma solidity ^0.7.0;\ncontract Single { uint256 public x; function set(uint256 v) external { x = v; } }\n"
ADDR = {
    "single": "0x" + "11" * 20,
    "multi": "0x" + "22" * 20,
    "stdjson": "0x" + "33" * 20,
    "unverified": "0x" + "44" * 20,
    "ratelimited": "0x" + "55" * 20,
    "flaky": "0x" + "66" * 20,
    "down": "0x" + "77" * 20,
}


def _entry(name: str, code: str, **kw) -> dict:
    base = {
        "SourceCode": code,
        "ABI": "[]",
        "ContractName": name,
        "CompilerVersion": "v0.8.19+commit.7dd6d404",
        "OptimizationUsed": "1",
        "Runs": "200",
        "ConstructorArguments": "",
        "EVMVersion": "Default",
        "Library": "",
        "LicenseType": "MIT",
        "Proxy": "0",
        "Implementation": "",
        "SwarmSource": "",
    }
    return base | kw


def _answers() -> dict[str, dict]:
    multi = json.dumps(
        {"contracts/Token.sol": {"content": TOKEN}, "contracts/Math.sol": {"content": MATH}}
    )
    std = (
        "{"
        + json.dumps(
            {
                "language": "Solidity",
                "sources": {
                    "src/Token.sol": {"content": TOKEN.replace('"./Math.sol"', '"lib/Math.sol"')},
                    "lib/Math.sol": {"content": MATH},
                },
                "settings": {"optimizer": {"enabled": True, "runs": 200}, "remappings": []},
            }
        )
        + "}"
    )
    ok = lambda e: {"status": "1", "message": "OK", "result": [e]}  # noqa: E731
    return {
        ADDR["single"]: ok(
            _entry("Single", SINGLE, CompilerVersion="v0.7.6+commit.7338295f", OptimizationUsed="0")
        ),
        ADDR["multi"]: ok(_entry("Token", multi)),
        ADDR["stdjson"]: ok(_entry("Token", std, EVMVersion="paris")),
        ADDR["unverified"]: ok(_entry("", "", ABI="Contract source code not verified")),
    }


class Server:
    """An Etherscan-like API: answers per address, a server-side rate limit, injected failures."""

    def __init__(self, rate_limit_per_s: float | None = None):
        self.answers = _answers()
        self.calls: list[tuple[float, str]] = []
        self.keys_seen: set[str] = set()
        self.fail_plan = {
            ADDR["ratelimited"]: ["ratelimit", "ratelimit"],
            ADDR["flaky"]: ["429", "503"],
            ADDR["down"]: ["500"] * 50,
        }
        self.answers[ADDR["ratelimited"]] = self.answers[ADDR["single"]]
        self.answers[ADDR["flaky"]] = self.answers[ADDR["multi"]]
        # Off by default: on a loaded machine two requests spaced by the client's limiter can
        # still reach the handler less than a millisecond apart (scheduling), which a server-side
        # limit would answer with a retry the test did not plan for.
        self.min_gap = 1.0 / rate_limit_per_s if rate_limit_per_s else 0.0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):
                q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                now = time.monotonic()
                with server.lock:
                    last = server.calls[-1][0] if server.calls else -1e9
                    server.calls.append((now, q.get("address", "")))
                    server.keys_seen.add(q.get("apikey", ""))
                    plan = server.fail_plan.get(q.get("address", ""), [])
                    step = plan.pop(0) if plan else None
                if q.get("apikey") != KEY:
                    return self._json(
                        200,
                        {"status": "0", "message": "NOTOK", "result": "Invalid API Key (#err2)|1"},
                    )
                if now - last < server.min_gap * 0.9 or step == "ratelimit":
                    return self._json(
                        200, {"status": "0", "message": "NOTOK", "result": "Max rate limit reached"}
                    )
                if step in ("429", "503", "500"):
                    return self._json(
                        int(step), {"status": "0", "message": "error", "result": "try later"}
                    )
                ans = server.answers.get(q.get("address", "").lower())
                if ans is None:
                    return self._json(
                        200, {"status": "0", "message": "NOTOK", "result": "Invalid Address format"}
                    )
                return self._json(200, ans)

            def _json(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2/api"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        yield s


def client(server: Server, tmp_path: Path, **kw) -> EtherscanClient:
    opts = {
        "url": server.url,
        "calls_per_s": 50.0,
        "retries": 3,
        "cache_dir": tmp_path / "cache",
        "backoff_s": 0.01,
    } | kw
    return EtherscanClient(KEY, **opts)


def test_three_source_formats(server, tmp_path):
    with client(server, tmp_path) as c:
        single = c.fetch(ADDR["single"])
        multi = c.fetch(ADDR["multi"])
        std = c.fetch(ADDR["stdjson"])
        assert c.fetch(ADDR["unverified"]) is None
    assert (
        single.source_format == "single"
        and single.sources == {"Single.sol": SINGLE}
        and not single.optimizer
    )
    assert multi.source_format == "multi-file" and set(multi.sources) == {
        "contracts/Token.sol",
        "contracts/Math.sol",
    }
    assert (
        std.source_format == "standard-json"
        and std.evm_version == "paris"
        and std.optimizer
        and std.runs == 200
    )
    assert std.license == "MIT" and std.compiler_version.startswith("v0.8.19")


def test_fetched_sources_compile(server, tmp_path):
    with client(server, tmp_path) as c:
        std = c.fetch(ADDR["stdjson"])
    pkg = write_contract(std, tmp_path / "out")
    job = ImportResolver([pkg]).job(pkg, ["src/Token.sol"])
    assert not job.missing and set(job.sources) == {"src/Token.sol", "lib/Math.sol"}
    r = compile_sources(std.sources)
    assert "mint(uint256)" in r.contract("Token").method_identifiers


def test_rate_limit_spaces_calls(tmp_path):
    with Server() as srv, client(srv, tmp_path, calls_per_s=8.0) as c:
        addrs = [
            ADDR["single"],
            ADDR["multi"],
            ADDR["stdjson"],
            ADDR["unverified"],
            ADDR["flaky"],
        ] * 2
        srv.fail_plan.clear()
        t0 = time.monotonic()
        found, failed = c.fetch_many(addrs, workers=4, batch_size=3, progress=False)
        elapsed = time.monotonic() - t0
    assert len(found) == 4 and failed == {ADDR["unverified"]: NOT_VERIFIED}
    assert len(srv.calls) == 5  # duplicates fetched once
    assert (
        elapsed >= 4 / 8.0
    )  # 5 calls on 4 threads still start >= 1/8 s apart (client-side guarantee)
    gaps = sorted(b[0] - a[0] for a, b in zip(srv.calls, srv.calls[1:]))
    assert (
        gaps[len(gaps) // 2] >= 1 / 8.0 * 0.7
    )  # and arrive spaced at the server (median, robust to scheduling jitter)


def test_retries_on_rate_limit_answer_429_and_5xx(server, tmp_path):
    with client(server, tmp_path) as c:
        assert (
            c.fetch(ADDR["ratelimited"]).name == "Single"
        )  # two "Max rate limit reached", then OK
        assert c.fetch(ADDR["flaky"]).name == "Token"  # 429, 503, then OK
        with pytest.raises(EtherscanError, match="gave up after 4 tries"):
            c.fetch(ADDR["down"])
    per_addr = [a for _, a in server.calls]
    assert (
        per_addr.count(ADDR["ratelimited"]) == 3
        and per_addr.count(ADDR["flaky"]) == 3
        and per_addr.count(ADDR["down"]) == 4
    )


def test_cache_means_a_rerun_makes_no_calls(server, tmp_path):
    addrs = [ADDR["single"], ADDR["multi"], ADDR["stdjson"]]
    with client(server, tmp_path) as c:
        first, _ = c.fetch_many(addrs, progress=False)
    n = len(server.calls)
    with client(server, tmp_path) as c2:
        again, _ = c2.fetch_many(addrs, progress=False)
        assert c2.calls == 0
    assert len(server.calls) == n and [x.sources for x in again] == [x.sources for x in first]


def test_key_never_in_logs_errors_or_cache(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI's logging set-up quiets httpx
    with client(server, tmp_path) as c:
        c.fetch_many([ADDR["single"], ADDR["flaky"], ADDR["down"]], progress=False)
        assert KEY not in repr(c)
    with EtherscanClient(
        "WRONGKEY_abcdef123456", url=server.url, cache_dir=None, backoff_s=0.01
    ) as bad:
        with pytest.raises(EtherscanError) as ei:
            bad.fetch(ADDR["single"])
    assert "Invalid API Key" in str(ei.value) and "WRONGKEY" not in str(ei.value)
    assert KEY in server.keys_seen  # the key was sent ...
    text = caplog.text + "".join(
        p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file()
    )
    assert "HTTP Request" in caplog.text  # httpx did log its requests ...
    assert KEY not in text and "WRONGKEY" not in text  # ... but never the key


def test_bad_input_is_a_clear_error(server, tmp_path):
    from evmlm.corpus.packages import CorpusError

    with client(server, tmp_path) as c:
        with pytest.raises(EtherscanError, match="not a 0x-prefixed 20-byte hex address"):
            c.fetch("0x1234")
    with pytest.raises(EtherscanError, match="API key is empty"):
        EtherscanClient("", url=server.url)
    with pytest.raises(EtherscanError, match="does not parse"):
        parse_source_code("{{not json}}", "X")
    f = tmp_path / "addrs.txt"
    f.write_text(f"# list\n{ADDR['single']}  # usdt\n\n{ADDR['multi']}\n")
    assert read_addresses([ADDR["stdjson"]], str(f)) == [
        ADDR["stdjson"],
        ADDR["single"],
        ADDR["multi"],
    ]
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CorpusError, match="not a readable text file"):
        read_addresses([], str(tmp_path / "binary.txt"))


def test_fetch_to_dir_from_config(server, tmp_path, monkeypatch):
    from evmlm.config import load_config
    from evmlm.corpus.etherscan import fetch_to_dir
    from evmlm.corpus.packages import CorpusError

    cfg = load_config(
        None,
        {
            "corpus.etherscan_url": server.url,
            "corpus.etherscan_addresses": [ADDR["multi"], ADDR["unverified"]],
            "corpus.etherscan_calls_per_s": 50.0,
        },
    ).corpus
    monkeypatch.setenv("EVMLM_TEST_KEY", KEY)
    with pytest.raises(CorpusError, match="ETHERSCAN_API_KEY is not set"):
        monkeypatch.delenv("ETHERSCAN_API_KEY", raising=False)
        fetch_to_dir(cfg, tmp_path / "out", progress=False)
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)  # the default cache lives under ./.cache
    summary = fetch_to_dir(
        replace(cfg, etherscan_key_env="EVMLM_TEST_KEY"), tmp_path / "out", progress=False
    )
    assert summary["verified"] == 1 and summary["failed"] == {ADDR["unverified"]: NOT_VERIFIED}
    assert (tmp_path / "out" / ADDR["multi"] / "contracts" / "Token.sol").read_text() == TOKEN
    assert "1/2 verified contracts, 2 files" in summary["line"] and KEY not in summary["line"]


def test_corpus_stage_with_etherscan_source(server, tmp_path, monkeypatch):
    from evmlm.config import load_config
    from evmlm.corpus import iter_sources
    from evmlm.pipeline import run_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ETHERSCAN_API_KEY", KEY)
    cfg = load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "corpus.sources": ["etherscan"],
            "corpus.etherscan_url": server.url,
            "corpus.etherscan_addresses": [ADDR["stdjson"], ADDR["single"]],
            "corpus.etherscan_calls_per_s": 50.0,
        },
    )
    run_pipeline(cfg, until="corpus")
    files = {(s.version, s.path) for s in iter_sources(cfg.run_dir / "corpus")}
    # lib/Math.sol is a vendored dependency (top-level lib/): on disk for imports, not in the manifest
    assert files == {(ADDR["stdjson"], "src/Token.sol"), (ADDR["single"], "Single.sol")}
    assert (
        cfg.run_dir / "corpus" / "sources" / "etherscan" / ADDR["stdjson"] / "lib" / "Math.sol"
    ).is_file()
    text = "".join(p.read_text(errors="replace") for p in (cfg.run_dir).rglob("*") if p.is_file())
    assert KEY not in text  # the key is in no output file


def test_verified_contract_cannot_read_local_files_through_imports(server, tmp_path, monkeypatch):
    """A verified contract importing an absolute path and a ``../`` path: both are recorded
    compile failures ("import outside the corpus"); neither file's text reaches the run folder
    or the compile cache. A clean contract compiles beside them (positive control)."""
    from evmlm.config import load_config
    from evmlm.pipeline import run_pipeline
    from evmlm.solc.stage import read_index

    marker = "SECRET_MARKER_91c2e7"
    secret = f"// {marker}\npragma solidity ^0.8.0;\ncontract Secret {{ uint256 public constant X = 7; }}\n"
    (tmp_path / "secret_abs.sol").write_text(secret)
    (tmp_path / "secret_rel.sol").write_text(secret)
    runs = tmp_path / "runs"
    # the package root is runs/default/corpus/sources/etherscan/<address>/: six levels below tmp_path
    rel_import = "../" * 6 + "secret_rel.sol"
    absolute, relative = "0x" + "a1" * 20, "0x" + "a2" * 20
    for addr, imp in ((absolute, str(tmp_path / "secret_abs.sol")), (relative, rel_import)):
        code = f'pragma solidity ^0.8.0;\nimport "{imp}";\ncontract Leak {{ function x() external pure returns (uint256) {{ return 1; }} }}\n'
        server.answers[addr] = {"status": "1", "message": "OK", "result": [_entry("Leak", code)]}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ETHERSCAN_API_KEY", KEY)
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "compile-cache"))
    cfg = load_config(
        None,
        {
            "run.runs_dir": str(runs),
            "corpus.sources": ["etherscan"],
            "corpus.etherscan_url": server.url,
            "corpus.etherscan_addresses": [absolute, relative, ADDR["single"]],
            "corpus.etherscan_calls_per_s": 50.0,
        },
    )
    run_pipeline(cfg, until="compile")
    rows = {r["version"]: r for r in read_index(cfg.run_dir / "compile")}
    assert rows[ADDR["single"]]["status"] == "ok"  # positive control: a clean contract compiles
    for addr in (absolute, relative):
        assert (
            rows[addr]["status"] == "failed" and rows[addr]["reason"] == "import outside the corpus"
        )
    assert "points outside the corpus" in rows[absolute]["message"]
    stored = [
        p for d in (cfg.run_dir, tmp_path / "compile-cache") for p in d.rglob("*") if p.is_file()
    ]
    assert any(
        p.name.endswith(".json.gz") for p in stored
    )  # the compile results and cache exist ...
    for p in stored:  # ... and hold neither secret (gzip files read decompressed)
        data = p.read_bytes()
        if p.name.endswith(".gz"):
            import gzip

            data = gzip.decompress(data)
        assert marker.encode() not in data, p


def _malformed_answers() -> dict[str, object]:
    """address -> an answer body that breaks the documented shape (the server sends it as is)."""

    def ok(e: object) -> dict[str, object]:
        return {"status": "1", "message": "OK", "result": [e]}

    def multi(files: list[str]) -> str:
        return json.dumps({p: {"content": TOKEN} for p in files})

    return {
        "0x" + "b1" * 20: [{"status": "1"}],  # a list body
        "0x" + "b2" * 20: {
            "status": "1",
            "message": "OK",
            "result": ["not an object"],
        },  # a non-dict result
        "0x" + "b3" * 20: ok(_entry("Single", SINGLE, Runs="abc")),
        "0x" + "b4" * 20: ok(
            _entry("Token", multi(["", "contracts/Math.sol"]))
        ),  # an empty file name
        "0x" + "b5" * 20: ok(_entry("Token", multi(["a\0.sol", "b.sol"]))),  # a NUL in a file name
        "0x" + "b6" * 20: ok(_entry("Token", multi(["/a.sol", "a.sol"]))),  # two names, one file
        "0x" + "b7" * 20: ok(
            _entry("Token", multi(["a", "a/b.sol"]))
        ),  # a file that is another's folder
        "0x" + "b8" * 20: ok(_entry("Token", multi(["../../escape.sol"]))),  # a name climbing out
        "0x" + "b9" * 20: ok(
            _entry("Token", json.dumps({"a.sol": {"content": 7}}))
        ),  # content not text
        "0x" + "ba" * 20: ok(_entry("../../Evil", SINGLE)),  # a ContractName that would be a path
        "0x" + "bb" * 20: ok(
            _entry(
                "Token",
                "{"
                + json.dumps(
                    {"sources": {"a.sol": {"content": SINGLE}}, "settings": {"remappings": "x=y"}}
                )
                + "}",
            )
        ),
    }


def test_malformed_answers_are_recorded_per_address_and_never_cached(server, tmp_path):
    bad = _malformed_answers()
    server.answers.update(bad)
    with client(server, tmp_path) as c:
        found, failed = c.fetch_many([*bad, ADDR["multi"]], workers=2, batch_size=4, progress=False)
    assert [x.address for x in found] == [ADDR["multi"]]  # the batch went on past every bad answer
    assert set(failed) == set(bad) and {f.kind for f in failed.values()} == {"malformed answer"}
    assert all(a in f.message for a, f in failed.items())  # each message names its address
    assert (
        "Runs 'abc'" in failed["0x" + "b3" * 20].message
        and "are one file" in failed["0x" + "b6" * 20].message
    )
    cached = {p.stem for p in (tmp_path / "cache").rglob("*.json")}
    assert cached == {ADDR["multi"]}  # validated before caching: only the good answer is stored
    n = len(server.calls)
    with client(
        server, tmp_path
    ) as c:  # a rerun asks again for the bad ones (and fails the same way)
        _, again = c.fetch_many([*bad, ADDR["multi"]], progress=False)
    assert len(server.calls) - n == len(bad) and again == failed


def test_a_corrupt_or_malformed_cache_entry_is_fetched_again(server, tmp_path):
    cache = tmp_path / "cache" / "1"
    cache.mkdir(parents=True)
    (cache / f"{ADDR['single']}.json").write_text("{truncated")
    (cache / f"{ADDR['multi']}.json").write_text(
        json.dumps({"SourceCode": "x", "Runs": "abc"})
    )  # cached by an old version
    with client(server, tmp_path) as c:
        assert c.fetch(ADDR["single"]).name == "Single" and c.fetch(ADDR["multi"]).name == "Token"
        assert c.calls == 2


def test_fetch_to_dir_overwrites_nothing(server, tmp_path, monkeypatch):
    from dataclasses import replace

    from evmlm.config import load_config
    from evmlm.corpus.etherscan import fetch_to_dir

    meta_named = "0x" + "c1" * 20  # a source named like the old metadata file
    server.answers[meta_named] = {
        "status": "1",
        "message": "OK",
        "result": [
            _entry(
                "Token",
                json.dumps(
                    {
                        "_etherscan.json": {"content": "not metadata"},
                        "Token.sol": {"content": TOKEN},
                        "Math.sol": {"content": MATH},
                    }
                ),
            )
        ],
    }
    bad = _malformed_answers()
    server.answers.update(bad)
    out = tmp_path / "out"
    (out / ADDR["single"]).mkdir(parents=True)
    (out / ADDR["single"] / "Single.sol").write_text(
        "old"
    )  # an earlier fetch of the same address: replaced whole
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVMLM_TEST_KEY", KEY)
    cfg = load_config(
        None, {"corpus.etherscan_url": server.url, "corpus.etherscan_calls_per_s": 50.0}
    ).corpus
    cfg = replace(
        cfg,
        etherscan_key_env="EVMLM_TEST_KEY",
        etherscan_addresses=(meta_named, ADDR["single"], *bad),
    )
    summary = fetch_to_dir(cfg, out, progress=False)
    assert summary["verified"] == 2 and set(summary["failed"]) == set(bad)
    assert (
        out / meta_named / "_etherscan.json"
    ).read_text() == "not metadata"  # the source, intact
    assert (
        json.loads((out / f"{meta_named}.etherscan.json").read_text())["name"] == "Token"
    )  # the metadata, beside
    assert (out / ADDR["single"] / "Single.sol").read_text() == SINGLE
    assert out.is_dir() and sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        [meta_named, ADDR["single"]]
    )
    recorded = json.loads((out / "failures.json").read_text())
    assert set(recorded) == set(bad) and {r["kind"] for r in recorded.values()} == {
        "malformed answer"
    }
    assert "2/13 verified" in summary["line"] and "'malformed answer': 11" in summary["line"]


def test_etherscan_command_exit_status_and_overrides_after_addresses(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from evmlm.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ETHERSCAN_API_KEY", KEY)
    flags = [f"--corpus.etherscan_url={server.url}", "--corpus.etherscan_calls_per_s=50"]
    runner = CliRunner()
    ok = runner.invoke(
        app, ["etherscan", ADDR["single"], ADDR["multi"], *flags, "--out", "out"]
    )  # flags after the addresses
    assert ok.exit_code == 0, ok.output
    assert (
        "2/2 verified contracts" in ok.output
        and (tmp_path / "out" / ADDR["multi"] / "contracts" / "Token.sol").is_file()
    )
    server.answers["0x" + "b3" * 20] = _malformed_answers()["0x" + "b3" * 20]
    none = runner.invoke(
        app, ["etherscan", *flags, ADDR["unverified"], "0x" + "b3" * 20, "--out", "out2"]
    )
    assert none.exit_code == 1  # 0 of 2 verified is a failure
    assert (
        "0/2 verified contracts" in none.output
        and f"{ADDR['unverified']}: not verified" in none.output
    )
    assert "malformed answer: Runs 'abc' is not a whole number" in none.output
    assert set(json.loads((tmp_path / "out2" / "failures.json").read_text())) == {
        ADDR["unverified"],
        "0x" + "b3" * 20,
    }
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(
        "sys.argv", ["evmlm", "etherscan", ADDR["single"], *flags, "--out", "afile"]
    )
    from evmlm.cli import main

    with pytest.raises(SystemExit) as ei:  # through the real entry point: one line, exit 2
        main()
    assert ei.value.code == 2 and (tmp_path / "afile").read_text() == "x"


def test_failure_kinds(server, tmp_path):
    server.answers["0x" + "99" * 20] = {
        "status": "0",
        "message": "NOTOK",
        "result": "Invalid Address format",
    }
    with client(server, tmp_path) as c:
        _, failed = c.fetch_many(
            ["0x1234", ADDR["down"], ADDR["unverified"], "0x" + "99" * 20], progress=False
        )
    assert {a: f.kind for a, f in failed.items()} == {
        "0x1234": "bad address",
        ADDR["down"]: "gave up",
        ADDR["unverified"]: "not verified",
        "0x" + "99" * 20: "refused",
    }

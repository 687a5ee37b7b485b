"""Etherscan ``getsourcecode`` client: verified sources by address, rate-limited, retried, cached.

API: ``GET {url}?chainid=1&module=contract&action=getsourcecode&address=0x..&apikey=KEY``
(Etherscan API v2). The answer's ``result[0].SourceCode`` comes in three formats:

* single file — the Solidity text itself;
* multi-file — a JSON object ``{"path.sol": {"content": ...}, ...}``;
* standard JSON — the same wrapped in one extra pair of braces (``{{ ... }}``), holding a
  standard-JSON input with ``sources`` and ``settings.remappings``.

Calls are spaced to at most ``calls_per_s`` across all worker threads; HTTP 429 / 5xx, transport
errors and the ``"Max rate limit reached"`` answer are retried with exponential backoff
(tenacity). Answers are cached per (chain, address) as JSON under ``.cache/evmlm/etherscan/``
so a rerun makes no calls. The API key comes from an environment variable; it is sent only as a
query parameter, never logged, never stored, and redacted from every error message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from tqdm import tqdm

from evmlm import atomic
from evmlm.corpus.packages import CorpusError, Package, parse_remappings

log = logging.getLogger(__name__)

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_KEY_RE = re.compile(r"(apikey=)[^&\s]+", re.I)


class EtherscanError(CorpusError):
    """Etherscan refused a request for good (bad key, bad address) or kept failing after retries."""


class _Retryable(Exception):
    """A transient failure (429, 5xx, rate-limit answer, transport error)."""


def redact(text: str, key: str | None = None) -> str:
    """Remove an API key from text (both as ``apikey=...`` and verbatim)."""
    text = _KEY_RE.sub(r"\1***", text)
    return text.replace(key, "***") if key else text


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover
            return True
        if "apikey=" in msg.lower():
            record.msg, record.args = redact(msg), ()
        return True


for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_RedactFilter())


@dataclass
class VerifiedContract:
    """One verified contract: ``sources`` path -> text, ``remappings`` (solc syntax), and
    Etherscan's metadata (compiler ``v0.8.19+commit...``, optimizer, runs, EVM version, licence)."""

    address: str
    name: str
    sources: dict[str, str]
    remappings: list[str] = field(default_factory=list)
    compiler_version: str = ""
    optimizer: bool = False
    runs: int = 200
    evm_version: str | None = None
    license: str | None = None
    source_format: str = "single"


def parse_source_code(source_code: str, name: str) -> tuple[dict[str, str], list[str], str]:
    """Etherscan ``SourceCode`` -> (sources, remappings, format) for the three formats above.

    Raises EtherscanError when a JSON-looking answer does not parse.
    """
    s = source_code.strip()
    if s.startswith("{{") and s.endswith("}}"):
        try:
            data = json.loads(s[1:-1])
        except ValueError as e:
            raise EtherscanError(f"{name}: standard-JSON SourceCode does not parse ({e})") from e
        if isinstance(data.get("sources"), dict):
            srcs = {p: v.get("content", "") for p, v in data["sources"].items()}
            remaps = list((data.get("settings") or {}).get("remappings") or [])
            return srcs, remaps, "standard-json"
        s = s[1:-1].strip()  # some exports double-brace a plain multi-file mapping
    if s.startswith("{"):
        try:
            data = json.loads(s)
        except ValueError as e:
            raise EtherscanError(f"{name}: multi-file SourceCode does not parse ({e})") from e
        if "sources" in data and isinstance(data["sources"], dict):
            data = data["sources"]
        return {p: (v.get("content", "") if isinstance(v, dict) else str(v)) for p, v in data.items()}, [], "multi-file"
    return {f"{name or 'Contract'}.sol": source_code}, [], "single"


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (evenly spaced)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            time.sleep(wait)


class EtherscanClient:
    """Fetch verified sources. ``api_key`` is required; ``cache_dir`` None disables the cache.

    ``backoff_s``: first retry wait in seconds (doubling up to 30 s). ``calls``: HTTP requests made.
    """

    def __init__(self, api_key: str, *, url: str = "https://api.etherscan.io/v2/api", chain_id: int = 1,
                 calls_per_s: float = 4.0, retries: int = 5, timeout_s: float = 30.0,
                 cache_dir: Path | None = Path(".cache/evmlm/etherscan"), backoff_s: float = 1.0):
        if not api_key:
            raise EtherscanError("Etherscan API key is empty; set the environment variable named by corpus.etherscan_key_env")
        self._key = api_key
        self.url = url
        self.chain_id = chain_id
        self.retries = retries
        self.backoff_s = backoff_s
        self.cache_dir = cache_dir
        self.limiter = RateLimiter(calls_per_s)
        self.calls = 0
        self._calls_lock = threading.Lock()
        self._http = httpx.Client(timeout=timeout_s, headers={"User-Agent": "evmlm"})

    def __repr__(self) -> str:  # never show the key
        return f"EtherscanClient(url={self.url!r}, chain_id={self.chain_id})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "EtherscanClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cache_file(self, address: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / str(self.chain_id) / f"{address.lower()}.json"

    def _request(self, address: str) -> dict[str, Any]:
        self.limiter.acquire()
        with self._calls_lock:
            self.calls += 1
        params = {"chainid": self.chain_id, "module": "contract", "action": "getsourcecode", "address": address, "apikey": self._key}
        try:
            resp = self._http.get(self.url, params=params)
        except httpx.TransportError as e:
            raise _Retryable(f"{address}: {type(e).__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Retryable(f"{address}: HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise EtherscanError(f"{address}: HTTP {resp.status_code} from {self.url}")
        try:
            body = resp.json()
        except ValueError:
            raise _Retryable(f"{address}: answer is not JSON") from None
        result = body.get("result")
        if str(body.get("status")) != "1":
            text = result if isinstance(result, str) else str(body.get("message", ""))
            if "rate limit" in text.lower():
                raise _Retryable(f"{address}: {text}")
            raise EtherscanError(f"{address}: Etherscan says {redact(text, self._key)!r}")
        if not isinstance(result, list) or not result:
            raise EtherscanError(f"{address}: unexpected answer shape")
        return result[0]

    def fetch_raw(self, address: str) -> dict[str, Any]:
        """The ``result[0]`` object for ``address`` (from the cache when present).

        Raises EtherscanError for a malformed address, a permanent refusal, or when retries run out.
        """
        if not ADDRESS_RE.match(address):
            raise EtherscanError(f"{address}: not a 0x-prefixed 20-byte hex address")
        cf = self._cache_file(address)
        if cf is not None and cf.is_file():
            return json.loads(cf.read_text())
        try:
            for attempt in Retrying(stop=stop_after_attempt(self.retries + 1), wait=wait_exponential(multiplier=self.backoff_s, max=30),
                                    retry=retry_if_exception_type(_Retryable), reraise=False):
                with attempt:
                    raw = self._request(address)
        except RetryError as e:
            last = e.last_attempt.exception()
            raise EtherscanError(f"{redact(str(last), self._key)} (gave up after {self.retries + 1} tries)") from None
        if cf is not None:
            atomic.write_json(cf, raw)
        return raw

    def fetch(self, address: str) -> VerifiedContract | None:
        """The verified contract at ``address``, or None when it is not verified."""
        raw = self.fetch_raw(address)
        code = raw.get("SourceCode") or ""
        if not code.strip():
            return None
        name = raw.get("ContractName") or "Contract"
        srcs, remaps, fmt = parse_source_code(code, name)
        evm = raw.get("EVMVersion") or ""
        lic = raw.get("LicenseType") or None
        return VerifiedContract(
            address=address.lower(), name=name, sources=srcs, remappings=remaps, compiler_version=raw.get("CompilerVersion", ""),
            optimizer=str(raw.get("OptimizationUsed", "0")) == "1", runs=int(raw.get("Runs") or 200),
            evm_version=None if evm.lower() in ("", "default") else evm, license=None if lic in ("None", "") else lic, source_format=fmt,
        )

    def fetch_many(self, addresses: Iterable[str], *, workers: int = 2, batch_size: int = 25, progress: bool = True) -> tuple[list[VerifiedContract], dict[str, str]]:
        """Fetch addresses in batches on ``workers`` threads. Returns (verified contracts, failures
        address -> reason); unverified addresses are failures with reason ``not verified``."""
        addrs = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
        found: list[VerifiedContract] = []
        failed: dict[str, str] = {}

        def one(a: str) -> tuple[str, VerifiedContract | None, str | None]:
            try:
                c = self.fetch(a)
                return a, c, None if c else "not verified"
            except EtherscanError as e:
                return a, None, str(e)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as ex, tqdm(total=len(addrs), desc="etherscan", unit="addr", disable=not progress) as bar:
            for i in range(0, len(addrs), batch_size):
                for a, c, err in ex.map(one, addrs[i : i + batch_size]):
                    if c is not None:
                        found.append(c)
                    else:
                        failed[a] = err or "unknown"
                    bar.update(1)
        return found, failed


def read_addresses(addresses: Iterable[str], address_file: str | None) -> list[str]:
    """Addresses from the config list plus a file (one per line, ``#`` comments)."""
    out = [str(a) for a in addresses]
    if address_file:
        p = Path(address_file)
        if not p.is_file():
            raise CorpusError(f"corpus.etherscan_address_file: {p} does not exist")
        for line in p.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    return out


def write_contract(c: VerifiedContract, root: Path) -> Package:
    """Write a verified contract's files under ``root/<address>/`` (atomically) and describe it as a Package."""
    base = root / c.address
    for path, text in c.sources.items():
        rel = path.lstrip("/").replace("..", "__")
        atomic.write_text(base / rel, text)
    atomic.write_json(base / "_etherscan.json", {k: v for k, v in asdict(c).items() if k != "sources"})
    remaps = tuple((a, b) for a, b in parse_remappings([r.split(":", 1)[-1] for r in c.remappings], where=c.address))
    return Package(name="", version=c.address, root=base, remappings=remaps, license=c.license, source="etherscan")


def etherscan_packages(cfg: Any, out_root: Path, *, cache_dir: Path | None = Path(".cache/evmlm/etherscan"), progress: bool = True) -> list[Package]:
    """Corpus-stage hook: fetch the configured addresses, write their files, return their packages."""
    key = os.environ.get(cfg.etherscan_key_env, "")
    if not key:
        raise CorpusError(f"corpus.sources has 'etherscan' but ${cfg.etherscan_key_env} is not set; export your Etherscan API key in it")
    addrs = read_addresses(cfg.etherscan_addresses, cfg.etherscan_address_file)
    with EtherscanClient(key, url=cfg.etherscan_url, chain_id=cfg.etherscan_chain_id, calls_per_s=cfg.etherscan_calls_per_s,
                         retries=cfg.etherscan_retries, cache_dir=cache_dir) as client:
        found, failed = client.fetch_many(addrs, workers=cfg.etherscan_workers, batch_size=cfg.etherscan_batch_size, progress=progress)
    for a, why in failed.items():
        log.warning("etherscan %s: %s", a, why)
    log.info("etherscan: %d verified, %d failed, %d HTTP calls", len(found), len(failed), client.calls)
    return [write_contract(c, out_root) for c in found]


def fetch_to_dir(cfg: Any, out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Fetch ``cfg``'s addresses (a CorpusConfig) into ``out_dir/<address>/`` (usable as a
    ``dir`` corpus). Returns a summary dict with a one-line ``line``. Raises CorpusError when
    the key variable is unset."""
    key = os.environ.get(cfg.etherscan_key_env, "")
    if not key:
        raise CorpusError(f"${cfg.etherscan_key_env} is not set; export your Etherscan API key in it")
    addrs = read_addresses(cfg.etherscan_addresses, cfg.etherscan_address_file)
    with EtherscanClient(key, url=cfg.etherscan_url, chain_id=cfg.etherscan_chain_id, calls_per_s=cfg.etherscan_calls_per_s,
                         retries=cfg.etherscan_retries) as client:
        found, failed = client.fetch_many(addrs, workers=cfg.etherscan_workers, batch_size=cfg.etherscan_batch_size, progress=progress)
    files = 0
    for c in found:
        write_contract(c, out_dir)
        files += len(c.sources)
    reasons: dict[str, int] = {}
    for why in failed.values():
        k = "not verified" if why == "not verified" else why.split(": ", 1)[-1][:60]
        reasons[k] = reasons.get(k, 0) + 1
    line = f"{len(found)}/{len(addrs)} verified contracts, {files} files -> {out_dir}; {client.calls} HTTP calls; failed: {reasons or 'none'}"
    return {"line": line, "verified": len(found), "failed": failed, "calls": client.calls}

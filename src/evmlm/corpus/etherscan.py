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
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tqdm import tqdm

from evmlm import atomic
from evmlm.corpus.packages import CorpusError, Package, contained_rel, parse_remappings

log = logging.getLogger(__name__)

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_KEY_RE = re.compile(r"(apikey=)[^&\s]+", re.I)


class EtherscanError(CorpusError):
    """Etherscan refused a request for good (bad key, bad address) or kept failing after retries.

    ``kind`` classifies the failure for the per-address record (:class:`Failure`)."""

    kind = "refused"


class MalformedAnswerError(EtherscanError):
    """An answer that is not the documented shape: a body that is not a JSON object, a
    ``result[0]`` that is not one, a field of the wrong type (``Runs: "abc"``), a
    ``SourceCode`` JSON that does not parse or a source named so that it cannot be a file
    (empty, NUL, climbing out with ``..``, two names for one file)."""

    kind = "malformed answer"


class BadAddressError(EtherscanError):
    """The address is not a 0x-prefixed 20-byte hex string (nothing was asked)."""

    kind = "bad address"


class GaveUpError(EtherscanError):
    """Transient failures (429, 5xx, rate-limit answers, transport errors) outlasted the retries."""

    kind = "gave up"


class SourceWriteError(EtherscanError):
    """The disk refused a contract's files (nothing of it is left behind)."""

    kind = "write failed"


@dataclass(frozen=True)
class Failure:
    """Why one address gave no contract: ``kind`` (``not verified``, ``malformed answer``,
    ``refused``, ``bad address``, ``gave up``, ``write failed``) and a one-line ``message``."""

    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


NOT_VERIFIED = Failure("not verified", "not verified")


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


def _content(path: str, v: object, name: str) -> str:
    if isinstance(v, dict):
        v = v.get("content", "")
    if not isinstance(v, str):
        raise MalformedAnswerError(f"{name}: source {path!r} has no text content")
    return v


def parse_source_code(source_code: str, name: str) -> tuple[dict[str, str], list[str], str]:
    """Etherscan ``SourceCode`` -> (sources, remappings, format) for the three formats above.

    Raises MalformedAnswerError when a JSON-looking answer does not parse or is not a mapping
    of path -> ``{"content": text}`` (or text), or remappings are not strings.
    """
    s = source_code.strip()
    if s.startswith("{{") and s.endswith("}}"):
        try:
            data = json.loads(s[1:-1])
        except ValueError as e:
            raise MalformedAnswerError(
                f"{name}: standard-JSON SourceCode does not parse ({e})"
            ) from e
        if isinstance(data, dict) and isinstance(data.get("sources"), dict):
            srcs = {str(p): _content(p, v, name) for p, v in data["sources"].items()}
            settings = data.get("settings") or {}
            remaps = settings.get("remappings") if isinstance(settings, dict) else None
            if remaps is None:
                remaps = []
            if not isinstance(remaps, list) or not all(isinstance(r, str) for r in remaps):
                raise MalformedAnswerError(
                    f"{name}: standard-JSON settings.remappings is not a list of strings"
                )
            return srcs, list(remaps), "standard-json"
        s = s[1:-1].strip()  # some exports double-brace a plain multi-file mapping
    if s.startswith("{"):
        try:
            data = json.loads(s)
        except ValueError as e:
            raise MalformedAnswerError(f"{name}: multi-file SourceCode does not parse ({e})") from e
        if isinstance(data, dict) and isinstance(data.get("sources"), dict):
            data = data["sources"]
        if not isinstance(data, dict):
            raise MalformedAnswerError(
                f"{name}: multi-file SourceCode is not a JSON object of path -> source"
            )
        return {str(p): _content(p, v, name) for p, v in data.items()}, [], "multi-file"
    return {f"{name or 'Contract'}.sol": source_code}, [], "single"


def file_names(sources: Mapping[str, str], what: str) -> dict[str, str]:
    """Source name -> the relative file it is written to: a leading ``/`` dropped, then
    normalised (:func:`evmlm.corpus.packages.contained_rel`).

    Raises MalformedAnswerError naming ``what`` when a name is empty, holds a NUL, climbs out
    of its folder with ``..``, or when two names land on one file (``/a.sol`` and ``a.sol``) or
    one file is the folder of another (``a`` and ``a/b.sol``): nothing is ever overwritten.
    """
    out: dict[str, str] = {}
    by_file: dict[str, str] = {}
    for name in sources:
        rel = contained_rel(name.lstrip("/")) if name.strip() else None
        if rel is None:
            raise MalformedAnswerError(
                f"{what}: source name {name!r} cannot be a file (empty, NUL or outside its folder)"
            )
        if rel in by_file:
            raise MalformedAnswerError(
                f"{what}: sources {by_file[rel]!r} and {name!r} are one file {rel!r}"
            )
        by_file[rel] = name
        out[name] = rel
    for rel, name in by_file.items():
        parts = rel.split("/")
        for k in range(1, len(parts)):
            folder = "/".join(parts[:k])
            if folder in by_file:
                raise MalformedAnswerError(
                    f"{what}: source {by_file[folder]!r} is also the folder of {name!r}"
                )
    return out


def write_sources(sources: Mapping[str, str], base: Path, what: str) -> None:
    """Write ``sources`` (name -> text) as the files :func:`file_names` gives, under ``base``,
    all or nothing: they are written into a temporary folder beside ``base`` that then replaces
    it. Raises MalformedAnswerError for bad names, SourceWriteError when the disk refuses."""
    names = file_names(sources, what)
    base.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.make_temp_dir(base.parent, base.name)
    try:
        for name, text in sources.items():
            atomic.write_text(tmp / names[name], text)
        if base.is_dir() and not base.is_symlink():
            shutil.rmtree(base)
        elif base.exists() or base.is_symlink():
            base.unlink()
        os.replace(tmp, base)
    except OSError as e:
        raise SourceWriteError(
            f"{what}: cannot write its sources under {base} ({e.strerror or e})"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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

    def __init__(
        self,
        api_key: str,
        *,
        url: str = "https://api.etherscan.io/v2/api",
        chain_id: int = 1,
        calls_per_s: float = 4.0,
        retries: int = 5,
        timeout_s: float = 30.0,
        cache_dir: Path | None = Path(".cache/evmlm/etherscan"),
        backoff_s: float = 1.0,
    ):
        if not api_key:
            raise EtherscanError(
                "Etherscan API key is empty; set the environment variable named by corpus.etherscan_key_env"
            )
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
        return (
            None
            if self.cache_dir is None
            else self.cache_dir / str(self.chain_id) / f"{address.lower()}.json"
        )

    def _request(self, address: str) -> dict[str, Any]:
        self.limiter.acquire()
        with self._calls_lock:
            self.calls += 1
        params = {
            "chainid": self.chain_id,
            "module": "contract",
            "action": "getsourcecode",
            "address": address,
            "apikey": self._key,
        }
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
        if not isinstance(body, dict):
            raise MalformedAnswerError(
                f"{address}: answer is a JSON {type(body).__name__}, not an object"
            )
        result = body.get("result")
        if str(body.get("status")) != "1":
            text = result if isinstance(result, str) else str(body.get("message", ""))
            if "rate limit" in text.lower():
                raise _Retryable(f"{address}: {text}")
            raise EtherscanError(f"{address}: Etherscan says {redact(text, self._key)!r}")
        if not isinstance(result, list) or not result:
            raise MalformedAnswerError(f"{address}: result is not a non-empty list")
        if not isinstance(result[0], dict):
            raise MalformedAnswerError(
                f"{address}: result[0] is a {type(result[0]).__name__}, not an object"
            )
        return result[0]

    def _cached(self, address: str) -> tuple[dict[str, Any], VerifiedContract | None] | None:
        """The cached ``result[0]`` of ``address`` and its contract, when cached and still valid."""
        cf = self._cache_file(address)
        if cf is None or not cf.is_file():
            return None
        try:
            raw = json.loads(cf.read_text(encoding="utf-8"))
            return raw, contract_from_answer(address, raw)
        except (OSError, ValueError, EtherscanError) as e:
            log.warning("etherscan cache %s unusable (%s); fetching again", cf, str(e)[:120])
            return None

    def _fetch(self, address: str) -> tuple[dict[str, Any], VerifiedContract | None]:
        if not ADDRESS_RE.match(address):
            raise BadAddressError(f"{address}: not a 0x-prefixed 20-byte hex address")
        hit = self._cached(address)
        if hit is not None:
            return hit
        raw: dict[str, Any] = {}
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_exponential(multiplier=self.backoff_s, max=30),
                retry=retry_if_exception_type(_Retryable),
                reraise=False,
            ):
                with attempt:
                    raw = self._request(address)
        except RetryError as e:
            last = e.last_attempt.exception()
            raise GaveUpError(
                f"{redact(str(last), self._key)} (gave up after {self.retries + 1} tries)"
            ) from None
        contract = contract_from_answer(address, raw)  # raises before anything is cached
        cf = self._cache_file(address)
        if cf is not None:
            atomic.write_json(cf, raw)
        return raw, contract

    def fetch_raw(self, address: str) -> dict[str, Any]:
        """The ``result[0]`` object for ``address``, validated (:func:`contract_from_answer`)
        before it is cached, so a malformed answer fails each time it is asked and never sticks;
        a cached answer is used when present and still valid.

        Raises BadAddressError, EtherscanError (a permanent refusal), GaveUpError (retries ran
        out), MalformedAnswerError (an answer not in the documented shape).
        """
        return self._fetch(address)[0]

    def fetch(self, address: str) -> VerifiedContract | None:
        """The verified contract at ``address``, or None when it is not verified.

        Raises as :meth:`fetch_raw`."""
        return self._fetch(address)[1]

    def fetch_many(
        self,
        addresses: Iterable[str],
        *,
        workers: int = 2,
        batch_size: int = 25,
        progress: bool = True,
    ) -> tuple[list[VerifiedContract], dict[str, Failure]]:
        """Fetch addresses in batches on ``workers`` threads. Returns (verified contracts,
        failures address -> :class:`Failure`); an unverified address is :data:`NOT_VERIFIED`.
        One address's failure never stops the batch."""
        addrs = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
        found: list[VerifiedContract] = []
        failed: dict[str, Failure] = {}

        def one(a: str) -> tuple[str, VerifiedContract | None, Failure | None]:
            try:
                c = self.fetch(a)
                return a, c, None if c else NOT_VERIFIED
            except EtherscanError as e:
                return a, None, Failure(e.kind, str(e))

        with (
            ThreadPoolExecutor(max_workers=max(1, workers)) as ex,
            tqdm(total=len(addrs), desc="etherscan", unit="addr", disable=not progress) as bar,
        ):
            for i in range(0, len(addrs), batch_size):
                for a, c, err in ex.map(one, addrs[i : i + batch_size]):
                    if c is not None:
                        found.append(c)
                    else:
                        failed[a] = err or Failure("unknown", "unknown")
                    bar.update(1)
        return found, failed


_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_TEXT_FIELDS = (
    "SourceCode",
    "ContractName",
    "CompilerVersion",
    "OptimizationUsed",
    "Runs",
    "EVMVersion",
    "LicenseType",
)


def contract_from_answer(address: str, raw: object) -> VerifiedContract | None:
    """Etherscan's ``result[0]`` for ``address`` -> the contract, or None when not verified.

    Checks the shape before anything is used: an object whose ``SourceCode``,
    ``ContractName``, ``CompilerVersion``, ``OptimizationUsed``, ``Runs``, ``EVMVersion`` and
    ``LicenseType`` are strings (or numbers) when present, ``Runs`` a whole number >= 0 (200
    when empty), ``ContractName`` a Solidity identifier, and source names that are files
    (:func:`file_names`). Raises MalformedAnswerError naming the address and the field.
    """
    addr = address.lower()
    if not isinstance(raw, dict):
        raise MalformedAnswerError(f"{addr}: answer is a {type(raw).__name__}, not an object")
    for k in _TEXT_FIELDS:
        v = raw.get(k)
        if v is not None and (not isinstance(v, (str, int, float)) or isinstance(v, bool)):
            raise MalformedAnswerError(f"{addr}: field {k} is a {type(v).__name__}, not text")
    code = str(raw.get("SourceCode") or "")
    if not code.strip():
        return None
    name = str(raw.get("ContractName") or "Contract")
    if not _IDENT.match(name):
        raise MalformedAnswerError(
            f"{addr}: ContractName {name[:60]!r} is not a Solidity identifier"
        )
    runs = raw.get("Runs")
    runs_text = "200" if runs is None or runs == "" else str(runs).strip()
    if not runs_text.isdigit():
        raise MalformedAnswerError(f"{addr}: Runs {runs_text[:20]!r} is not a whole number")
    try:
        srcs, remaps, fmt = parse_source_code(code, name)
    except MalformedAnswerError as e:
        raise MalformedAnswerError(f"{addr}: {e}") from None
    if not srcs:
        raise MalformedAnswerError(f"{addr}: SourceCode holds no sources")
    file_names(srcs, addr)
    try:
        parse_remappings([r.split(":", 1)[-1] for r in remaps], where=addr)
    except CorpusError as e:
        raise MalformedAnswerError(str(e)) from None
    evm = str(raw.get("EVMVersion") or "")
    lic = str(raw.get("LicenseType") or "") or None
    return VerifiedContract(
        address=addr,
        name=name,
        sources=srcs,
        remappings=remaps,
        compiler_version=str(raw.get("CompilerVersion") or ""),
        optimizer=str(raw.get("OptimizationUsed", "0")) == "1",
        runs=int(runs_text),
        evm_version=None if evm.lower() in ("", "default") else evm,
        license=None if lic == "None" else lic,
        source_format=fmt,
    )


def read_addresses(addresses: Iterable[str], address_file: str | None) -> list[str]:
    """Addresses from the config list plus a file (one per line, ``#`` comments).

    Raises CorpusError when the file is missing, unreadable or not UTF-8 text."""
    out = [str(a) for a in addresses]
    if address_file:
        p = Path(address_file)
        if not p.is_file():
            raise CorpusError(f"corpus.etherscan_address_file: {p} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CorpusError(
                f"corpus.etherscan_address_file: {p} is not a readable text file of addresses ({e})"
            ) from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    return out


META_SUFFIX = ".etherscan.json"  # <address>.etherscan.json beside the <address>/ folder of sources
FAILURES = "failures.json"


def write_contract(c: VerifiedContract, root: Path) -> Package:
    """Write a verified contract's files under ``root/<address>/`` (all or nothing, see
    :func:`write_sources`) and its metadata beside them as ``root/<address>.etherscan.json``
    (outside the sources' folder, so no source name can reach it); describe it as a Package.

    Raises MalformedAnswerError for source names that are not files, SourceWriteError when the
    disk refuses."""
    base = root / c.address
    write_sources(c.sources, base, c.address)
    atomic.write_json(
        root / f"{c.address}{META_SUFFIX}", {k: v for k, v in asdict(c).items() if k != "sources"}
    )
    remaps = tuple(
        (a, b)
        for a, b in parse_remappings([r.split(":", 1)[-1] for r in c.remappings], where=c.address)
    )
    return Package(
        name="",
        version=c.address,
        root=base,
        remappings=remaps,
        license=c.license,
        source="etherscan",
    )


def _write_all(
    found: list[VerifiedContract], failed: dict[str, Failure], root: Path
) -> list[Package]:
    """Write every contract (a write failure joins ``failed``), then ``root/failures.json``
    (address -> ``{kind, message}``, every failure of this batch)."""
    packages = []
    for c in found:
        try:
            packages.append(write_contract(c, root))
        except EtherscanError as e:
            failed[c.address] = Failure(e.kind, str(e))
    atomic.write_json(root / FAILURES, {a: f.to_json() for a, f in sorted(failed.items())})
    return packages


def _client(cfg: Any, key: str, cache_dir: Path | None) -> EtherscanClient:
    return EtherscanClient(
        key,
        url=cfg.etherscan_url,
        chain_id=cfg.etherscan_chain_id,
        calls_per_s=cfg.etherscan_calls_per_s,
        retries=cfg.etherscan_retries,
        cache_dir=cache_dir,
    )


def etherscan_packages(
    cfg: Any,
    out_root: Path,
    *,
    cache_dir: Path | None = Path(".cache/evmlm/etherscan"),
    progress: bool = True,
) -> list[Package]:
    """Corpus-stage hook: fetch the configured addresses, write their files, return their
    packages. Failed addresses are logged and recorded in ``out_root/failures.json``."""
    key = os.environ.get(cfg.etherscan_key_env, "")
    if not key:
        raise CorpusError(
            f"corpus.sources has 'etherscan' but ${cfg.etherscan_key_env} is not set; export your Etherscan API key in it"
        )
    addrs = read_addresses(cfg.etherscan_addresses, cfg.etherscan_address_file)
    with _client(cfg, key, cache_dir) as client:
        found, failed = client.fetch_many(
            addrs,
            workers=cfg.etherscan_workers,
            batch_size=cfg.etherscan_batch_size,
            progress=progress,
        )
    packages = _write_all(found, failed, out_root)
    for a, why in failed.items():
        log.warning("etherscan %s: %s: %s", a, why.kind, why.message)
    log.info(
        "etherscan: %d verified, %d failed, %d HTTP calls", len(packages), len(failed), client.calls
    )
    return packages


def fetch_to_dir(cfg: Any, out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Fetch ``cfg``'s addresses (a CorpusConfig) into ``out_dir/<address>/`` (usable as a
    ``dir`` corpus). Returns a summary dict: ``line`` (one line), ``verified``, ``failed``
    (address -> :class:`Failure`, also written to ``out_dir/failures.json``), ``calls``.
    Raises CorpusError when the key variable is unset."""
    key = os.environ.get(cfg.etherscan_key_env, "")
    if not key:
        raise CorpusError(
            f"${cfg.etherscan_key_env} is not set; export your Etherscan API key in it"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(
            f"--out {out_dir}: is a file; give a folder (one subfolder per address goes there)"
        )
    addrs = read_addresses(cfg.etherscan_addresses, cfg.etherscan_address_file)
    with _client(cfg, key, Path(".cache/evmlm/etherscan")) as client:
        found, failed = client.fetch_many(
            addrs,
            workers=cfg.etherscan_workers,
            batch_size=cfg.etherscan_batch_size,
            progress=progress,
        )
    packages = _write_all(found, failed, out_dir)
    files = sum(len(c.sources) for c in found if c.address not in failed)
    reasons = dict(Counter(f.kind for f in failed.values()).most_common())
    n = len(dict.fromkeys(a.strip() for a in addrs if a.strip()))
    line = (
        f"{len(packages)}/{n} verified contracts, {files} files -> {out_dir}; "
        f"{client.calls} HTTP calls; failed: {reasons or 'none'}"
    )
    return {"line": line, "verified": len(packages), "failed": failed, "calls": client.calls}

"""Hugging Face datasets of verified contracts, loaded through ``datasets``.

Each supported dataset has a :class:`HFLoader` with its field mapping:

* ``andstor/smart_contracts`` (config ``flattened``): ``contract_address``, ``contract_name``,
  ``language`` (only ``Solidity`` kept), ``source_code`` (Etherscan formats), ``compiler_version``,
  ``optimization_used``, ``runs``, ``evm_version``, ``license_type``.
* ``seyyedaliayati/solidity-dataset``: one row per file of a GitHub repository: ``repo_name``,
  ``repo_path``, ``content``, ``is_test`` (rows with ``is_test`` true are dropped), ``ext``.
  Rows of one repository form one package.
* ``mwritescode/slither-audited-smart-contracts`` (config ``big-multilabel``): ``address``,
  ``source_code`` (Etherscan formats), ``bytecode``, ``slither`` (labels, not used here).

The hub is not reachable here: ``data_files`` (a local Parquet/JSON file or glob in the same
schema) loads the same rows through ``datasets.load_dataset("parquet", ...)``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from evmlm.corpus.etherscan import EtherscanError, parse_source_code, write_sources
from evmlm.corpus.packages import CorpusError, Package, parse_remappings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContractRecord:
    """One contract (or repository) from a dataset: ``key`` names it (address or repo),
    ``sources`` path -> text, ``remappings`` in solc syntax, ``license`` when known."""

    key: str
    sources: dict[str, str]
    remappings: tuple[str, ...] = ()
    license: str | None = None


def _etherscan_row(key: str, name: str, code: str, license: str | None) -> ContractRecord | None:
    if not (code or "").strip():
        return None
    try:
        srcs, remaps, _ = parse_source_code(code, name)
    except EtherscanError as e:
        log.warning("%s: %s", key, e)
        return None
    return ContractRecord(key=key.lower(), sources=srcs, remappings=tuple(remaps), license=license)


def map_andstor(row: dict[str, Any]) -> ContractRecord | None:
    if str(row.get("language") or "Solidity") != "Solidity":
        return None
    lic = row.get("license_type") or None
    return _etherscan_row(
        str(row["contract_address"]),
        str(row.get("contract_name") or "Contract"),
        row.get("source_code") or "",
        None if lic in ("None", "") else lic,
    )


def map_slither(row: dict[str, Any]) -> ContractRecord | None:
    addr = str(row["address"])
    return _etherscan_row(addr, f"C_{addr[2:10].lower()}", row.get("source_code") or "", None)


def map_seyyed(row: dict[str, Any]) -> ContractRecord | None:
    if row.get("is_test") or str(row.get("ext") or "sol").lstrip(".") != "sol":
        return None
    return ContractRecord(
        key=str(row["repo_name"]), sources={str(row["repo_path"]): row.get("content") or ""}
    )


@dataclass(frozen=True)
class HFLoader:
    """How to load one dataset: hub id, config name, and the row -> ContractRecord mapping."""

    name: str
    config: str | None
    map_row: Callable[[dict[str, Any]], ContractRecord | None]
    groups_rows: bool = False  # rows with the same key are files of one package


LOADERS: dict[str, HFLoader] = {
    "andstor/smart_contracts": HFLoader("andstor/smart_contracts", "flattened", map_andstor),
    "seyyedaliayati/solidity-dataset": HFLoader(
        "seyyedaliayati/solidity-dataset", None, map_seyyed, groups_rows=True
    ),
    "mwritescode/slither-audited-smart-contracts": HFLoader(
        "mwritescode/slither-audited-smart-contracts", "big-multilabel", map_slither
    ),
}


def load_rows(
    name: str, *, split: str = "train", data_files: str | None = None, max_rows: int | None = None
):
    """The dataset's rows as a ``datasets.Dataset`` (from ``data_files`` when given, else the hub).

    Raises CorpusError for an unknown name, a missing local file, or a hub that cannot be reached.
    """
    import datasets

    if name not in LOADERS:
        raise CorpusError(f"corpus.hf_datasets: {name!r} unknown; supported: {', '.join(LOADERS)}")
    loader = LOADERS[name]
    try:
        if data_files:
            files = (
                sorted(str(p) for p in Path().glob(data_files))
                if any(c in data_files for c in "*?[")
                else [data_files]
            )
            if not files or not all(Path(f).is_file() for f in files):
                raise CorpusError(f"corpus.hf_data_files: {data_files} matches no file")
            fmt = "json" if files[0].endswith((".json", ".jsonl")) else "parquet"
            ds = datasets.load_dataset(fmt, data_files={split: files}, split=split)
        else:
            ds = datasets.load_dataset(loader.name, loader.config, split=split)
    except CorpusError:
        raise
    except Exception as e:  # the hub raises many kinds (offline, gated, missing config)
        raise CorpusError(
            f"{name}: cannot load ({type(e).__name__}: {str(e).splitlines()[0][:200]}); pass corpus.hf_data_files for a local copy"
        ) from e
    if max_rows is not None and len(ds) > max_rows:
        ds = ds.select(range(max_rows))
    return ds


def iter_records(
    name: str, *, split: str = "train", data_files: str | None = None, max_rows: int | None = None
) -> Iterator[ContractRecord]:
    """Mapped records of a dataset (rows the mapping drops are skipped; repositories grouped)."""
    loader = LOADERS.get(name)
    if loader is None:
        raise CorpusError(f"corpus.hf_datasets: {name!r} unknown; supported: {', '.join(LOADERS)}")
    ds = load_rows(name, split=split, data_files=data_files, max_rows=max_rows)
    if not loader.groups_rows:
        for row in ds:
            rec = loader.map_row(row)
            if rec is not None and rec.sources:
                yield rec
        return
    grouped: dict[str, dict[str, str]] = {}
    for row in ds:
        rec = loader.map_row(row)
        if rec is not None:
            grouped.setdefault(rec.key, {}).update(rec.sources)
    for key, srcs in grouped.items():
        yield ContractRecord(key=key, sources=srcs)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("_")[:100] or "x"


def write_record(rec: ContractRecord, root: Path, dataset: str) -> Package:
    """Write a record's files under ``root/<dataset>/<key>/`` (all or nothing, see
    :func:`evmlm.corpus.etherscan.write_sources`) and describe it as a Package.

    Raises EtherscanError (MalformedAnswerError for source names that cannot be files) or
    CorpusError for a malformed remapping."""
    base = root / _slug(dataset) / _slug(rec.key)
    write_sources(rec.sources, base, f"{dataset} {rec.key}")
    remaps = parse_remappings([r.split(":", 1)[-1] for r in rec.remappings], where=rec.key)
    return Package(
        name="",
        version=f"{dataset}:{rec.key}",
        root=base,
        remappings=remaps,
        license=rec.license,
        source="hf",
    )


def hf_packages(cfg: Any, out_root: Path) -> list[Package]:
    """Corpus-stage hook: every configured dataset's records as packages."""
    out = []
    for name in cfg.hf_datasets:
        n = 0
        for rec in iter_records(
            name, split=cfg.hf_split, data_files=cfg.hf_data_files, max_rows=cfg.hf_max_rows
        ):
            try:
                out.append(write_record(rec, out_root, name))
            except CorpusError as e:  # one bad record is skipped, the dataset goes on
                log.warning("%s: %s", rec.key, e)
                continue
            n += 1
        log.info("hf %s: %d contracts", name, n)
    return out

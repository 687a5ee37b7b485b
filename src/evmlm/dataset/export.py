"""Export of the final pair records: JSONL, an HF ``DatasetDict`` (``save_to_disk``) and Parquet.

Layout under the dataset folder::

    pairs.jsonl                  one pair record per line (all splits, each with its ``split``)
    hf/                          DatasetDict(train, validation, test) — datasets.load_from_disk
    parquet/<split>.parquet      one Parquet file per split

Records are written in a fixed order (split, then ``id``) with a fixed schema
(:data:`FEATURES`), so a rebuild from the same inputs gives byte-identical files. Every file is
written atomically (a temporary beside the target, then a rename).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evmlm import atomic
from evmlm.dataset.split import SPLITS
from evmlm.errors import EvmlmError

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

PAIRS_FILE = "pairs.jsonl"
HF_DIR = "hf"
PARQUET_DIR = "parquet"

# Pair record schema (docs/architecture.md, "Pair record"), in order.
SCHEMA: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("contract", "string"),  # "path:Name" of the deployed contract
    ("source_package", "string"),
    ("compiler_version", "string"),
    ("optimizer", "bool"),
    ("runs", "int64"),
    ("evm_version", "string"),  # None = the compiler's default
    ("via_ir", "bool"),
    ("setting", "string"),
    ("compile_key", "string"),
    ("source_path", "string"),
    ("source_start", "int64"),  # UTF-8 byte offset of the function in source_path
    ("source_length", "int64"),  # bytes
    ("selector", "string"),
    ("signature", "string"),  # resolved through the signature database; None if unknown
    ("visibility", "string"),
    ("state_mutability", "string"),
    ("kind", "string"),  # function | getter
    ("defining_contract", "string"),  # "path:Name" holding the definition
    ("origin", "string"),  # corpus | wrapper
    ("tac", "string"),
    ("solidity", "string"),
    ("contract_context", "string"),
    ("n_tac_lines", "int64"),
    ("n_solidity_tokens", "int64"),  # whitespace tokens
    ("complexity", "int64"),  # cyclomatic, from the CFG
    ("cluster_id", "string"),
    ("split", "string"),
    ("draft", "string"),  # the structural decompiler's Solidity (evmlm.structural); None: failed
    ("draft_error", "string"),  # why the draft is a placeholder or missing; None: drafted
    ("solidity_classes", "string"),  # semantic class per character (evmlm.dataset.labels)
    ("elements", "string"),  # element types, space-separated (evmlm.dataset.labels)
)
FIELDS: tuple[str, ...] = tuple(name for name, _ in SCHEMA)


class DatasetNotFoundError(EvmlmError):
    """The folder holds no built dataset, or the split is unknown."""


def features() -> "datasets.Features":
    import datasets

    return datasets.Features({name: datasets.Value(dtype) for name, dtype in SCHEMA})


def _row(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in FIELDS}


def ordered(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in export order: split (train, validation, test), then id."""
    rank = {s: i for i, s in enumerate(SPLITS)}
    return sorted((_row(r) for r in records), key=lambda r: (rank[r["split"]], r["id"]))


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def export(records: Sequence[dict[str, Any]], out_dir: str | Path) -> dict[str, int]:
    """Write ``pairs.jsonl``, ``hf/`` and ``parquet/<split>.parquet``; return rows per split.

    Each record needs the fields of :data:`SCHEMA` (missing ones are written as null).
    """
    import datasets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".hf.*"):  # left by an interrupted export
        shutil.rmtree(stale, ignore_errors=True)
    rows = ordered(records)
    write_jsonl(out / PAIRS_FILE, rows)
    feats = features()
    per_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    # column-wise, so that an empty split still gets the full schema
    dd = datasets.DatasetDict(
        {
            s: datasets.Dataset.from_dict(
                {f: [r[f] for r in per_split[s]] for f in FIELDS}, features=feats
            )
            for s in SPLITS
        }
    )
    tmp = atomic.make_temp_dir(out, "hf")  # mode 0777 less the umask (mkdtemp gives 0700)
    try:
        dd.save_to_disk(
            str(tmp), num_shards={s: 1 for s in SPLITS}
        )  # one shard each: deterministic, and an empty split still loads
        _replace_dir(tmp, out / HF_DIR)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for s in SPLITS:
        with atomic.atomic_path(out / PARQUET_DIR / f"{s}.parquet") as p:
            dd[s].to_parquet(str(p))
    return {s: len(v) for s, v in per_split.items()}


def load_split(dataset_dir: str | Path, split: str) -> "datasets.Dataset":
    """One split of a dataset written by :func:`export` (``datasets.load_from_disk``).

    Raises :class:`DatasetNotFoundError` naming the folder or the split.
    """
    import datasets

    if split not in SPLITS:
        raise DatasetNotFoundError(f"{split!r}: unknown split; use one of {', '.join(SPLITS)}")
    hf = Path(dataset_dir) / HF_DIR
    if not (hf / "dataset_dict.json").is_file():
        raise DatasetNotFoundError(
            f"{dataset_dir}: no built dataset (missing {HF_DIR}/dataset_dict.json); run `evmlm dataset build` first"
        )
    return datasets.load_from_disk(str(hf))[split]

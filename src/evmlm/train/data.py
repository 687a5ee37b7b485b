"""Training data: memory-mapped token files for pretraining, prompt/completion sets for fine-tuning.

Token files (nanoGPT's ``train.bin`` / ``val.bin``): every document's tokens followed by EOS,
concatenated, stored as little-endian ``uint16`` (``uint32`` when the vocabulary has more than
65,536 tokens); a ``<name>.json`` beside it records the dtype and the token count.
:class:`PackedBlocks` reads them through ``numpy.memmap`` as non-overlapping blocks of
``context_length`` tokens (packed sequences, no padding).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from evmlm import atomic
from evmlm.errors import EvmlmError
from evmlm.train.prompt import build_completion, build_prompt, fit_prompt

log = logging.getLogger(__name__)


class TrainingDataError(EvmlmError):
    """Training data that is missing, empty or too short for one sequence."""


def is_heldout(key: str, fraction: float) -> bool:
    """Whether a document (by a stable key such as its sha256 or path) belongs to validation.

    Deterministic: the first 8 hex digits of sha256(key) read as a number in [0, 1) < fraction.
    """
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return h < fraction


def write_token_file(
    texts: Iterable[str], tokenizer: Any, path: str | Path, *, batch: int = 64
) -> int:
    """Tokenise ``texts`` (each followed by EOS) into the token file ``path``; returns its token count.

    Written atomically (a temporary file renamed into place). Raises TrainingDataError when
    there is no text.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    dtype = np.uint16 if len(tokenizer) <= 1 << 16 else np.uint32
    eos = tokenizer.eos_token_id
    n = docs = 0
    with (
        atomic.atomic_path(path) as tmp,
        open(tmp, "wb") as f,
        tqdm(desc=f"tokenising {path.name}", unit=" docs") as bar,
    ):
        chunk: list[str] = []

        def flush() -> None:
            nonlocal n, docs
            for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
                arr = np.asarray([*ids, eos], dtype=dtype)
                f.write(arr.tobytes())
                n += len(arr)
            docs += len(chunk)
            bar.update(len(chunk))
            chunk.clear()

        for t in texts:
            if t:
                chunk.append(t)
                if len(chunk) >= batch:
                    flush()
        if chunk:
            flush()
    if n == 0:
        path.unlink(missing_ok=True)
        raise TrainingDataError(
            f"{path}: no text to tokenise; the corpus gave no documents for this split"
        )
    atomic.write_json(
        path.with_suffix(".json"), {"dtype": np.dtype(dtype).name, "tokens": n, "documents": docs}
    )
    log.info("%s: %d tokens from %d documents", path, n, docs)
    return n


class PackedBlocks(Dataset):
    """Non-overlapping blocks of ``context_length`` tokens from a token file, as training examples.

    Item ``i`` is ``{"input_ids": LongTensor (context_length,), "labels": same}`` (the model
    shifts labels itself). The file is opened lazily with ``numpy.memmap`` (so each dataloader
    worker maps it once). ``max_blocks`` caps the length (for a bounded validation set).
    Raises TrainingDataError when the file is missing or shorter than one block.
    """

    def __init__(
        self, path: str | Path, context_length: int, *, max_blocks: int | None = None
    ) -> None:
        self.path = Path(path)
        meta_path = self.path.with_suffix(".json")
        if not self.path.is_file() or not meta_path.is_file():
            raise TrainingDataError(
                f"{self.path}: token file not found; run the pretrain stage's data step (evmlm pretrain) first"
            )
        meta = json.loads(meta_path.read_text())
        self.dtype = np.dtype(meta["dtype"])
        self.n_tokens = int(meta["tokens"])
        self.context_length = context_length
        n = self.n_tokens // context_length
        if n == 0:
            raise TrainingDataError(
                f"{self.path}: {self.n_tokens} tokens is less than one sequence of {context_length}; add text or lower pretrain.context_length"
            )
        self.n_blocks = n if max_blocks is None else min(n, max_blocks)
        self._mm: np.memmap | None = None

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n_tokens,))
        if not 0 <= i < self.n_blocks:
            raise IndexError(i)
        c = self.context_length
        ids = torch.from_numpy(self._mm[i * c : (i + 1) * c].astype(np.int64))
        return {"input_ids": ids, "labels": ids.clone()}

    def __getstate__(self) -> dict[str, Any]:  # picklable for dataloader workers
        return {**self.__dict__, "_mm": None}


# ---------------------------------------------------------------------------------------------
# Fine-tuning: pair records -> prompt/completion examples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SFTExamples:
    """Prompt/completion rows for TRL's SFTTrainer and what was cut to fit ``max_length``."""

    rows: list[dict[str, str]]
    n_records: int
    n_truncated: int  # prompts whose TAC was cut (by whole lines) to fit
    n_dropped: int  # records whose completion alone does not fit


def to_sft_examples(
    records: Iterable[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> SFTExamples:
    """Pair records (``tac``, ``signature``, ``contract_context``, ``solidity``, optional
    ``draft``) -> prompt/completion rows.

    Keeps each example within ``max_length`` tokens (prompt + completion + EOS): the prompt is
    cut by :func:`evmlm.train.prompt.fit_prompt` (contract context dropped, then the TAC cut to
    its first lines, marked ``...``); a record whose completion alone exceeds half of
    ``max_length`` is dropped (counted).
    """

    def ntok(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    rows, n, cut, dropped = [], 0, 0, 0
    for r in records:
        n += 1
        completion = build_completion(r["solidity"])
        budget = max_length - ntok(completion) - 1
        if budget < max_length // 2:
            dropped += 1
            continue
        tac, sig, ctx, draft = (
            r["tac"],
            r.get("signature"),
            r.get("contract_context"),
            r.get("draft"),
        )
        prompt = fit_prompt(tac, sig, ctx, tokenizer, budget, draft)
        if prompt != build_prompt(tac, sig, ctx, draft):
            cut += 1
        rows.append({"prompt": prompt, "completion": completion})
    return SFTExamples(rows, n, cut, dropped)


def read_pairs(dataset_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """The pair records of ``split`` from a dataset stage folder.

    Uses :func:`evmlm.dataset.load_split` when that package provides it, else
    ``<dataset_dir>/pairs.jsonl`` filtered by ``split``. Raises TrainingDataError naming the
    folder when neither exists.
    """
    d = Path(dataset_dir)
    try:
        from evmlm.dataset import load_split  # type: ignore[attr-defined]
    except ImportError:
        load_split = None
    if load_split is not None and (d / "hf").is_dir():
        return [dict(r) for r in load_split(d, split)]
    jsonl = d / "pairs.jsonl"
    if not jsonl.is_file():
        raise TrainingDataError(
            f"{d}: no dataset (pairs.jsonl or hf/); run the dataset stage first (evmlm run --until dataset)"
        )
    return [r for r in _iter_jsonl(jsonl) if r.get("split") == split]


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def dataset_fingerprint(dataset_dir: str | Path) -> str | None:
    """sha256 of the dataset's ``pairs.jsonl`` (what the model was trained on), or None."""
    p = Path(dataset_dir) / "pairs.jsonl"
    return atomic.sha256_file(p) if p.is_file() else None

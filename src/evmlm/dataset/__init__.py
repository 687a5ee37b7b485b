"""The pair dataset: TAC ↔ Solidity function pairs, filtered, deduplicated, split, exported.

Pipeline (``evmlm dataset build`` / the ``dataset`` stage, :mod:`evmlm.dataset.build`):
pair (:mod:`~evmlm.dataset.pairing`) → filter (:mod:`~evmlm.dataset.filters`) → dedup
(:mod:`~evmlm.dataset.dedup`) → split (:mod:`~evmlm.dataset.split`) → export
(:mod:`~evmlm.dataset.export`) + statistics (:mod:`~evmlm.dataset.stats`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evmlm.dataset.signatures import SignatureDB

if TYPE_CHECKING:
    import datasets

__all__ = ["SignatureDB", "load_split"]


def load_split(dataset_dir: Any, split: str) -> "datasets.Dataset":
    """One split (``train`` / ``validation`` / ``test``) of a built dataset as a ``datasets.Dataset``.

    ``dataset_dir`` is the dataset stage folder (``runs/<name>/dataset``). Raises
    :class:`evmlm.dataset.export.DatasetNotFoundError` when it holds no built dataset or the
    split is unknown.
    """
    from evmlm.dataset.export import load_split as _load

    return _load(dataset_dir, split)

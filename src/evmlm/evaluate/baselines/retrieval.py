"""Nearest-neighbour retrieval baseline: answer with the Solidity of the most similar train TAC.

Similarity is the cosine of TF-IDF vectors (scikit-learn) over TAC tokens: opcode and
recogniser names, SSA variables collapsed to ``v`` (their numbers are arbitrary), and hex
constants (selectors, event topics, slot numbers and masks are what identify a function).
Unigrams and bigrams, sublinear TF. A model that does not beat this baseline has learned no
more than lookup.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

log = logging.getLogger(__name__)

_VAR = re.compile(r"\bv\d+\b")
_TOKEN_PATTERN = r"0x[0-9a-fA-F]+|[A-Za-z_][A-Za-z0-9_.]*|[=\[\](),]"


def tac_text_for_retrieval(tac: str) -> str:
    """TAC with SSA variable numbers collapsed (``v12`` → ``v``) and block headers' offsets kept."""
    return _VAR.sub("v", tac)


@dataclass
class RetrievalIndex:
    """A TF-IDF index over train TAC. Build with :meth:`build`; query with :meth:`nearest`."""

    vectorizer: Any
    matrix: Any  # (n_train, vocab) sparse, L2-normalised rows
    solidity: list[str]
    ids: list[str]

    @classmethod
    def build(
        cls, tacs: Sequence[str], solidity: Sequence[str], ids: Sequence[str] | None = None
    ) -> "RetrievalIndex":
        """Index ``tacs`` (train TAC texts) whose answers are ``solidity`` (same length).

        Raises ValueError for an empty or mismatched train set.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not tacs or len(tacs) != len(solidity):
            raise ValueError(
                f"retrieval index needs equal, non-empty TAC and Solidity lists (got {len(tacs)} and {len(solidity)})"
            )
        vec = TfidfVectorizer(
            token_pattern=_TOKEN_PATTERN,
            lowercase=False,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
        )
        matrix = vec.fit_transform([tac_text_for_retrieval(t) for t in tacs])
        return cls(
            vec,
            matrix,
            list(solidity),
            list(ids) if ids is not None else [str(i) for i in range(len(tacs))],
        )

    def nearest(self, tacs: Sequence[str]) -> list[tuple[str, str, float]]:
        """For each query TAC: ``(solidity, train id, cosine similarity in [0, 1])`` of its nearest train function."""
        if not tacs:
            return []
        q = self.vectorizer.transform([tac_text_for_retrieval(t) for t in tacs])
        sims = (q @ self.matrix.T).tocsr()
        out = []
        for i in range(q.shape[0]):
            row = sims.getrow(i)
            if row.nnz == 0:
                out.append((self.solidity[0], self.ids[0], 0.0))
                continue
            j = int(row.indices[row.data.argmax()])
            out.append((self.solidity[j], self.ids[j], float(row.data.max())))
        return out

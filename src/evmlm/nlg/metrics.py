"""Metrics of the NLG benchmarks: BLEU-1..4, ROUGE-1/2/L/Lsum, METEOR, exact match, accuracy.

- BLEU-n (Papineni et al. 2002): ``sacrebleu.metrics.BLEU(max_ngram_order=n)`` corpus BLEU
  (geometric mean of 1..n-gram precisions with the brevity penalty, sacrebleu's default
  ``13a`` tokenisation, no smoothing), 0-100, with every reference of an example (examples may
  have different numbers of references: missing ones are ``None``, which sacrebleu skips).
- ROUGE (Lin 2004): ``rouge_score.rouge_scorer.RougeScorer`` with the Porter stemmer, F-measure,
  best over an example's references (``score_multi``), mean over examples, 0-100. ``rougeLsum``
  needs one sentence per line: sentences are split after ``.``, ``!`` or ``?`` + whitespace.
- METEOR (Banerjee & Lavie 2005): ``nltk.translate.meteor_score.meteor_score`` (alpha 0.9,
  beta 3, gamma 0.5; exact, Porter-stem and WordNet-synonym matches) on lower-cased whitespace
  tokens, mean over examples, 0-1. WordNet 3.0 is read from the Debian ``wordnet-base``
  database (``/usr/share/wordnet``, or the folder in ``EVMLM_WORDNET``); see
  :func:`load_wordnet`. When it is missing METEOR is reported as unavailable (None), never
  guessed.
- Exact match (WikiSQL): after lower-casing and collapsing whitespace, 0-100.
- Accuracy (MultiNLI): share of predictions whose first label word equals the gold label, 0-100.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import statistics
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SENT = re.compile(r"(?<=[.!?])\s+")
_WORDNET_FILES = (
    "cntlist.rev", "index.adj", "index.adv", "index.noun", "index.verb", "data.adj", "data.adv",
    "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)  # fmt: skip
_LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
WORDNET_DIR = Path("/usr/share/wordnet")  # where Debian's wordnet-base installs WordNet 3.0


class MetricUnavailable(RuntimeError):
    """A metric's resource (WordNet for METEOR) is not installed; the message says how to get it."""


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]], n: int = 4) -> float:
    """Corpus BLEU-``n`` (0-100) of ``predictions`` against per-example reference lists.
    Raises ValueError when the lengths differ or an example has no reference."""
    from sacrebleu.metrics import BLEU

    _check(predictions, references)
    width = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(width)]
    return float(BLEU(max_ngram_order=n).corpus_score(list(predictions), streams).score)


def rouge(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measure (0-100), best over each example's references."""
    from rouge_score import rouge_scorer

    _check(predictions, references)
    keys = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=True)

    def split(s: str) -> str:
        return "\n".join(_SENT.split(s.strip()))

    scores = [
        scorer.score_multi([split(r) for r in refs], split(p))
        for p, refs in zip(predictions, references)
    ]
    return {k: 100.0 * statistics.fmean(s[k].fmeasure for s in scores) for k in keys}


def _wordnet_root() -> Path | None:
    for d in (os.environ.get("EVMLM_WORDNET"), WORDNET_DIR):
        if d and all((Path(d) / f).is_file() for f in _WORDNET_FILES):
            return Path(d)
    return None


def _lexnames_from_man(path: Path) -> str:
    """The ``lexnames`` file (number, name, syntactic category) from the table in the
    ``lexnames(5WN)`` manual page that ``wordnet-base`` installs (the package ships the table
    there, not the file NLTK's reader opens). Categories: 1 noun, 2 verb, 3 adjective, 4 adverb."""
    import gzip

    cat = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    rows = []
    with gzip.open(path, "rt") as f:
        text = f.read()
    for line in text.splitlines():
        m = re.fullmatch(r"(\d\d)\t\s*([a-z]+)\.(\w+)\s*\t.*", line)
        if m:
            rows.append(f"{m.group(1)}\t{m.group(2)}.{m.group(3)}\t{cat[m.group(2)]}")
    if [int(r.split("\t")[0]) for r in rows] != list(range(len(rows))) or len(rows) != 45:
        raise MetricUnavailable(
            f"{path}: no 45-row lexicographer-file table; reinstall wordnet-base"
        )
    return "\n".join(rows) + "\n"


@lru_cache(maxsize=1)
def load_wordnet(cache_dir: str | None = None) -> Any:
    """A WordNet 3.0 ``nltk`` reader over the Debian ``wordnet-base`` database.

    NLTK's reader only opens files under its data path (it resolves symbolic links), and needs
    a ``lexnames`` file the Debian package lacks, so the database files are copied once into
    ``cache_dir`` (default ``$XDG_CACHE_HOME``/``~/.cache``/evmlm/wordnet, ~28 MB) with
    ``lexnames`` written from the package's manual page. Raises MetricUnavailable (one line,
    naming the package) when the database is not installed.
    """
    root = _wordnet_root()
    if root is None:
        raise MetricUnavailable(
            f"METEOR unavailable: WordNet 3.0 not found in {WORDNET_DIR} "
            "(apt-get install wordnet-base, or set EVMLM_WORDNET)"
        )
    base = (
        Path(cache_dir)
        if cache_dir
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evmlm" / "wordnet"
    )
    if not (base / "lexnames").is_file():
        lex = (root / "lexnames").read_text() if (root / "lexnames").is_file() else None
        if lex is None:
            if not _LEXNAMES_MAN.is_file():
                raise MetricUnavailable(
                    f"METEOR unavailable: {root} has no lexnames and {_LEXNAMES_MAN} is missing "
                    "(reinstall wordnet-base with its manual pages)"
                )
            lex = _lexnames_from_man(_LEXNAMES_MAN)
        tmp = base.with_name(base.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in _WORDNET_FILES:
            shutil.copyfile(root / f, tmp / f)
        (tmp / "lexnames").write_text(lex)
        shutil.rmtree(base, ignore_errors=True)
        tmp.rename(base)
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class WordNet30(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            # the version map is for Open Multilingual WordNet data, which is not used here;
            # NLTK's default would load its own downloaded "wordnet" corpus to build it
            return None

    if str(base) not in nltk.data.path:
        nltk.data.path.append(str(base))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions are not available"
        wn = WordNet30(str(base), None)
    if wn.get_version() != "3.0":
        raise MetricUnavailable(
            f"METEOR unavailable: {root} is WordNet {wn.get_version()}, expected 3.0"
        )
    return wn


def meteor(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean NLTK METEOR (0-1) over examples. Raises MetricUnavailable without WordNet."""
    from nltk.translate.meteor_score import meteor_score

    _check(predictions, references)
    wn = load_wordnet()

    def tok(s: str) -> list[str]:
        return s.lower().split()

    return statistics.fmean(
        meteor_score([tok(r) for r in refs], tok(p), wordnet=wn)
        for p, refs in zip(predictions, references)
    )


def normalise_sql(s: str) -> str:
    """Lower-case and collapse whitespace (WikiSQL exact match)."""
    return " ".join(s.lower().split())


def exact_match(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Share (0-100) of predictions equal to one of their references after :func:`normalise_sql`."""
    _check(predictions, references)
    hits = [
        normalise_sql(p) in {normalise_sql(r) for r in refs}
        for p, refs in zip(predictions, references)
    ]
    return 100.0 * sum(hits) / len(hits)


def accuracy(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Share (0-100) of predictions whose first word (lower-cased, punctuation stripped) is the
    gold label."""
    _check(predictions, references)

    def first(s: str) -> str:
        return (re.findall(r"[a-z]+", s.lower()) or [""])[0]

    return (
        100.0
        * sum(first(p) == refs[0].lower() for p, refs in zip(predictions, references))
        / len(predictions)
    )


def generation_metrics(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float | None]:
    """BLEU-1..4, ROUGE-1/2/L/Lsum and METEOR (None, logged once, when WordNet is missing)."""
    out: dict[str, float | None] = {
        f"bleu{n}": bleu(predictions, references, n) for n in (1, 2, 3, 4)
    }
    out.update(rouge(predictions, references))
    try:
        out["meteor"] = meteor(predictions, references)
    except MetricUnavailable as e:
        log.warning("%s", e)
        out["meteor"] = None
    return out


def _check(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    if any(not r for r in references):
        raise ValueError("an example has no reference")

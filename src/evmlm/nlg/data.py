"""Loaders and prompt formats of the four NLG benchmarks, from their original release files or
the ``datasets`` hub.

- ``e2e`` (BLEU-1..4, ROUGE, METEOR): the E2E NLG Challenge CSV (``trainset.csv``,
  ``devset.csv``, ``testset_w_refs.csv``: columns ``mr,ref``, one row per reference); hub
  ``e2e_nlg`` (``meaning_representation``, ``human_reference``).
- ``samsum`` (same metrics): the SAMSum JSON (``train.json`` ...: a list of
  ``{id, summary, dialogue}``); hub ``samsum`` (same fields).
- ``wikisql`` (exact match): WikiSQL ``<split>.jsonl`` (``{phase, table_id, question,
  sql: {sel, agg, conds: [[col, op, value]]}}``) with ``<split>.tables.jsonl`` beside it
  (``{id, header, types, rows, ...}``); hub ``wikisql`` (``question``, ``table``, ``sql``).
- ``mnli`` (accuracy): MultiNLI 1.0 JSONL (``multinli_1.0_dev_matched.jsonl`` ...:
  ``gold_label, sentence1, sentence2, pairID, genre``); hub ``multi_nli`` /
  ``nyu-mll/multi_nli`` (``premise``, ``hypothesis``, ``label`` 0/1/2).

E2E rows sharing a meaning representation become one example with all its references.
WikiSQL targets are the query as the WikiSQL release's ``lib/query.py`` prints it, with the
table's column names joined in (as the hub's ``human_readable`` field):
``SELECT <AGG> <column> FROM table [WHERE <column> <op> <value> [AND ...]]``, whitespace
collapsed; aggregations ``'' MAX MIN COUNT SUM AVG``, operators ``= > < OP``. MultiNLI
examples without a gold label (``-``: no annotator majority) are skipped, as in the
benchmark. The hub is unreachable offline: a hub name that is not in the local ``datasets``
cache fails with one line naming the release file to pass instead.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmlm.errors import EvmlmError

WIKISQL_AGG_OPS = ("", "MAX", "MIN", "COUNT", "SUM", "AVG")
WIKISQL_COND_OPS = ("=", ">", "<", "OP")
MNLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's label ids 0, 1, 2


class NLGDataError(EvmlmError):
    """A benchmark file is missing or malformed, or a hub name is unavailable offline."""


@dataclass(frozen=True)
class NLGExample:
    """One benchmark example: its id, the model's prompt and the reference outputs (>= 1)."""

    id: str
    prompt: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's name, metric family (``generation``, ``exact_match``, ``accuracy``), hub
    names, and how its release file is called (for error messages)."""

    name: str
    metric: str
    hub_names: tuple[str, ...]
    release_hint: str


BENCHMARKS: dict[str, Benchmark] = {
    "e2e": Benchmark(
        "e2e", "generation", ("e2e_nlg", "GEM/e2e_nlg"), "the E2E CSV (e.g. testset_w_refs.csv)"
    ),
    "samsum": Benchmark(
        "samsum", "generation", ("samsum", "knkarthick/samsum"), "the SAMSum JSON (e.g. test.json)"
    ),
    "wikisql": Benchmark(
        "wikisql",
        "exact_match",
        ("wikisql", "Salesforce/wikisql"),
        "the WikiSQL <split>.jsonl (with <split>.tables.jsonl beside it)",
    ),
    "mnli": Benchmark(
        "mnli",
        "accuracy",
        ("multi_nli", "nyu-mll/multi_nli", "glue/mnli"),
        "the MultiNLI JSONL (e.g. multinli_1.0_dev_matched.jsonl)",
    ),
}


# ------------------------------------------------------------------------------- prompts


def e2e_prompt(mr: str) -> str:
    return f"Meaning representation: {mr}\nDescription:"


def samsum_prompt(dialogue: str) -> str:
    return f"Dialogue:\n{dialogue.strip()}\nSummary:"


def wikisql_prompt(question: str, header: Sequence[str]) -> str:
    return f"Table columns: {' | '.join(header)}\nQuestion: {question}\nSQL:"


def mnli_prompt(premise: str, hypothesis: str) -> str:
    return (
        f"Premise: {premise}\nHypothesis: {hypothesis}\n"
        "Relation (entailment, neutral or contradiction):"
    )


def wikisql_query(sql: dict[str, Any], header: Sequence[str] | None) -> str:
    """The WikiSQL release's string form of a query dict, with column names from ``header``
    (``col<i>`` without one). Raises NLGDataError for an index outside the header."""

    def col(i: int) -> str:
        if header is None:
            return f"col{i}"
        if not 0 <= i < len(header):
            raise NLGDataError(f"WikiSQL query names column {i} of a {len(header)}-column table")
        return header[i]

    conds = sql.get("conds") or []
    if isinstance(
        conds, dict
    ):  # hub layout: {column_index: [...], operator_index: [...], condition: [...]}
        conds = list(zip(conds["column_index"], conds["operator_index"], conds["condition"]))
    rep = f"SELECT {WIKISQL_AGG_OPS[sql['agg']]} {col(sql['sel'])} FROM table"
    if conds:
        rep += " WHERE " + " AND ".join(f"{col(i)} {WIKISQL_COND_OPS[o]} {v}" for i, o, v in conds)
    return " ".join(rep.split())


# ------------------------------------------------------------------------------- readers


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise NLGDataError(
                        f"{path}:{n}: not JSON ({e.msg}); pass the release's JSONL file"
                    ) from None


def _need(rec: dict[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in rec]
    if missing:
        raise NLGDataError(
            f"{where}: missing field(s) {', '.join(missing)}; is this the right benchmark file?"
        )


def read_e2e(path: Path) -> list[NLGExample]:
    groups: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        _need({k: 1 for k in reader.fieldnames or ()}, ("mr", "ref"), str(path))
        for row in reader:
            groups.setdefault(row["mr"], []).append(row["ref"])
    return _e2e_examples(groups)


def _e2e_examples(groups: dict[str, list[str]]) -> list[NLGExample]:
    return [
        NLGExample(f"e2e-{i}", e2e_prompt(mr), tuple(refs))
        for i, (mr, refs) in enumerate(groups.items())
    ]


def read_samsum(path: Path) -> list[NLGExample]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise NLGDataError(
            f"{path}: not JSON ({e.msg}); pass the SAMSum release's JSON file"
        ) from None
    if not isinstance(data, list):
        raise NLGDataError(f"{path}: expected a JSON list of {{id, summary, dialogue}}")
    out = []
    for i, r in enumerate(data):
        _need(r, ("id", "summary", "dialogue"), f"{path}[{i}]")
        out.append(NLGExample(str(r["id"]), samsum_prompt(r["dialogue"]), (r["summary"].strip(),)))
    return out


def read_wikisql(path: Path) -> list[NLGExample]:
    tables_path = path.with_name(path.name.removesuffix(".jsonl") + ".tables.jsonl")
    if not tables_path.is_file():
        raise NLGDataError(
            f"{tables_path}: not found; WikiSQL needs the tables file beside {path.name}"
        )
    tables = {}
    for t in _jsonl(tables_path):
        _need(t, ("id", "header"), str(tables_path))
        tables[t["id"]] = t
    out = []
    for n, r in enumerate(_jsonl(path)):
        _need(r, ("table_id", "question", "sql"), f"{path}:{n + 1}")
        table = tables.get(r["table_id"])
        if table is None:
            raise NLGDataError(
                f"{path}:{n + 1}: table {r['table_id']} is not in {tables_path.name}"
            )
        out.append(
            NLGExample(
                f"wikisql-{n}",
                wikisql_prompt(r["question"], table["header"]),
                (wikisql_query(r["sql"], table["header"]),),
            )
        )
    return out


def read_mnli(path: Path) -> list[NLGExample]:
    out = []
    for n, r in enumerate(_jsonl(path)):
        _need(r, ("gold_label", "sentence1", "sentence2"), f"{path}:{n + 1}")
        if r["gold_label"] not in MNLI_LABELS:
            continue  # "-": no majority label
        out.append(
            NLGExample(
                str(r.get("pairID", n)),
                mnli_prompt(r["sentence1"], r["sentence2"]),
                (r["gold_label"],),
            )
        )
    return out


_READERS: dict[str, Callable[[Path], list[NLGExample]]] = {
    "e2e": read_e2e, "samsum": read_samsum, "wikisql": read_wikisql, "mnli": read_mnli,
}  # fmt: skip


def _from_hub_rows(name: str, rows: Iterable[dict[str, Any]]) -> list[NLGExample]:
    if name == "e2e":
        groups: dict[str, list[str]] = {}
        for r in rows:
            groups.setdefault(r["meaning_representation"], []).append(r["human_reference"])
        return _e2e_examples(groups)
    if name == "samsum":
        return [
            NLGExample(str(r["id"]), samsum_prompt(r["dialogue"]), (r["summary"].strip(),))
            for r in rows
        ]
    if name == "wikisql":
        return [
            NLGExample(
                f"wikisql-{i}",
                wikisql_prompt(r["question"], r["table"]["header"]),
                (wikisql_query(r["sql"], r["table"]["header"]),),
            )
            for i, r in enumerate(rows)
        ]
    return [
        NLGExample(
            str(r.get("pairID", i)),
            mnli_prompt(r["premise"], r["hypothesis"]),
            (MNLI_LABELS[r["label"]],),
        )
        for i, r in enumerate(rows)
        if 0 <= r["label"] < 3
    ]


def load_benchmark(
    name: str, source: str | Path, split: str = "validation", limit: int | None = None
) -> list[NLGExample]:
    """The examples of benchmark ``name`` from ``source``: an original release file (schemas in
    the module docstring) or a hub name (loaded with ``datasets.load_dataset(source,
    split=split)``; works offline only from the local cache). ``limit``: first N examples.

    Raises NLGDataError: unknown benchmark, malformed file, or a hub name unavailable here.
    """
    if name not in BENCHMARKS:
        raise NLGDataError(f"{name}: unknown benchmark (known: {', '.join(BENCHMARKS)})")
    b = BENCHMARKS[name]
    p = Path(source)
    if p.is_file():
        examples = _READERS[name](p)
    elif (
        str(source) in b.hub_names
        or re.fullmatch(r"[\w.-]+/[\w.-]+", str(source))
        and not p.exists()
    ):
        try:
            from datasets import load_dataset

            rows = load_dataset(str(source), split=split)
        except Exception as e:  # noqa: BLE001 - offline hub / cache miss: any failure = not here
            first = (str(e).splitlines() or [type(e).__name__])[0][:160]
            raise NLGDataError(
                f"{source}: hub dataset not available offline ({first}); "
                f"pass {b.release_hint} instead"
            ) from None
        examples = _from_hub_rows(name, rows)
    else:
        raise NLGDataError(
            f"{source}: no such file and not a hub name of {name} "
            f"({', '.join(b.hub_names)}); pass {b.release_hint}"
        )
    if not examples:
        raise NLGDataError(f"{source}: no {name} examples")
    return examples[:limit] if limit else examples

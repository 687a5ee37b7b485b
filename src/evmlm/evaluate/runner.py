"""Evaluation core: predictions of the model and the baselines on the same functions, scored.

:func:`evaluate_records` takes pair records (DESIGN.md "Pair record": ``id``, ``tac``,
``solidity``, ``signature``, ``selector``, ``contract`` = ``path:Name``, ``source_path``,
``source_start``, ``source_length``, ``compile_key``, ...) and returns one
:class:`FunctionScore` per (system, function). Systems: ``model`` (the fine-tuned decompiler)
and the baselines of :mod:`evmlm.evaluate.baselines`. Every system is scored with the same
metrics; a system that produced nothing for a function (Panoramix timed out, crashed or did
not find the selector) is scored on the empty text and its failure is recorded.

Recompile / behaviour: a hypothesis that tree-sitter cannot parse as a function is marked
"does not recompile" without running solc (solc's parser is stricter than tree-sitter's, so
this never turns a compiling function into a failure); the rest are spliced and compiled
(:func:`evmlm.evaluate.behaviour.recompile`), and those that compile are run differentially
(:func:`evmlm.decompile.verify.compare_deployed`).
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

from evmlm.config import EvalConfig

log = logging.getLogger(__name__)

MODEL = "model"


@dataclass
class FunctionScore:
    """All metrics of one system's output for one function (see :mod:`evmlm.evaluate.metrics`,
    :mod:`evmlm.evaluate.structure`, :mod:`evmlm.evaluate.behaviour` for definitions and ranges).

    ``facts``: per fact kind ``[overlap, n_hypothesis, n_reference]``; ``recompiles`` /
    ``behaves_same``: None when not checked or undetermined; ``note``: why a check failed or
    was skipped, or the system's own failure (timeout, crash).
    """

    id: str
    system: str
    hypothesis: str
    similarity: float = 0.0
    edit_distance: float = 1.0
    bleu: float = 0.0
    rouge_l: float = 0.0
    structural_f1: float = 0.0
    signature_match: bool = False
    parses: bool = False
    facts: dict[str, list[int]] = field(default_factory=dict)
    recompiles: bool | None = None
    behaves_same: bool | None = None
    behaviour_calls: int = 0
    note: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def select_functions(records: Sequence[Mapping[str, Any]], max_functions: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """A deterministic sample of at most ``max_functions`` records (sorted by ``id`` first)."""
    recs = sorted((dict(r) for r in records), key=lambda r: str(r["id"]))
    if max_functions is not None and len(recs) > max_functions:
        recs = sorted(random.Random(seed).sample(recs, max_functions), key=lambda r: str(r["id"]))
    return recs


# ----------------------------------------------------------------------------------- predictions


def predict_model(records: Sequence[Mapping[str, Any]], model: Any, tokenizer: Any, config: EvalConfig, progress: Callable[[int], None] | None = None) -> dict[str, tuple[str, float]]:
    """``id → (solidity, seconds)`` from the model, prompted with TAC, signature and contract context."""
    from evmlm.decompile.generation import generate_completions, generation_budget
    from evmlm.train.prompt import fit_prompt

    budget, _ = generation_budget(model, config.max_new_tokens)
    prompts = [fit_prompt(r["tac"], r.get("signature"), r.get("contract_context"), tokenizer, budget) for r in records]
    gens = generate_completions(model, tokenizer, prompts, max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, seed=config.seed, progress=progress)
    return {str(r["id"]): g for r, g in zip(records, gens)}


def predict_retrieval(records: Sequence[Mapping[str, Any]], train_records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """``id → (solidity of the nearest train function by TAC, seconds)``."""
    from evmlm.evaluate.baselines.retrieval import RetrievalIndex

    if not train_records:
        return {str(r["id"]): ("", 0.0) for r in records}
    t0 = time.perf_counter()
    index = RetrievalIndex.build([r["tac"] for r in train_records], [r["solidity"] for r in train_records], [str(r["id"]) for r in train_records])
    hits = index.nearest([r["tac"] for r in records])
    per = (time.perf_counter() - t0) / max(1, len(records))
    return {str(r["id"]): (h[0], per) for r, h in zip(records, hits)}


def predict_stub(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """``id → (signature-only stub, 0 s)``."""
    from evmlm.evaluate.baselines.stub import signature_stub

    return {str(r["id"]): (signature_stub(r.get("signature"), r.get("selector"), payable=r.get("state_mutability") == "payable", view_like=r.get("state_mutability") in ("view", "pure")), 0.0) for r in records}


def predict_panoramix(
    records: Sequence[Mapping[str, Any]],
    load_compile: Callable[[str], Any] | None,
    timeout_s: float,
    progress: Callable[[int], None] | None = None,
    budget_s: float | None = None,
) -> tuple[dict[str, tuple[str, float]], dict[str, str]]:
    """``(id → (Panoramix text, seconds), id → failure)``; one Panoramix run per contract.

    The runtime bytecode comes from the function's compile result (``load_compile(compile_key)``);
    Panoramix gets the same signature the model's prompt gets. ``timeout_s``: per contract;
    ``budget_s``: for all of them (contracts after it is spent are recorded as skipped).
    """
    from evmlm.errors import EvmlmError
    from evmlm.evaluate.baselines.panoramix import decompile_panoramix
    from evmlm.evaluate.behaviour import deployed_contract

    out: dict[str, tuple[str, float]] = {}
    failures: dict[str, str] = {}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(str(r.get("compile_key")), str(r["contract"]))].append(r)
    started = time.perf_counter()
    for (key, contract), recs in groups.items():
        sigs = {str(r["selector"]): r["signature"] for r in recs if r.get("signature") and r.get("selector")}
        t0 = time.perf_counter()
        try:
            if budget_s is not None and t0 - started >= budget_s:
                raise EvmlmError(f"skipped: the Panoramix budget of {budget_s:.0f} s is spent (evaluate.panoramix_budget_s)")
            if load_compile is None:
                raise EvmlmError("no compile results to take the bytecode from")
            runtime = deployed_contract(load_compile(key), contract, str(recs[0]["selector"])).runtime_bytecode
            texts = decompile_panoramix(runtime, timeout_s=timeout_s, signatures=sigs)
            err = None
        except (EvmlmError, KeyError) as e:
            texts, err = {}, str(e).splitlines()[0] if str(e) else type(e).__name__
        per = (time.perf_counter() - t0) / len(recs)
        for r in recs:
            text = texts.get(str(r["selector"]).lower(), "")
            out[str(r["id"])] = (text, per)
            if err or not text:
                failures[str(r["id"])] = err or f"Panoramix found no function {r['selector']}"
        if progress:
            progress(len(recs))
    return out, failures


# ----------------------------------------------------------------------------------- scoring


def score_system(
    system: str,
    records: Sequence[Mapping[str, Any]],
    predictions: Mapping[str, tuple[str, float]],
    *,
    failures: Mapping[str, str] | None = None,
    load_compile: Callable[[str], Any] | None = None,
    config: EvalConfig,
    progress: Callable[[int], None] | None = None,
) -> list[FunctionScore]:
    """Score one system's predictions on ``records`` with every metric (see the module docstring)."""
    from evmlm.decompile.syntax import check_function_syntax
    from evmlm.evaluate import metrics as m
    from evmlm.evaluate import structure as st

    refs = [r["solidity"] for r in records]
    hyps = [predictions.get(str(r["id"]), ("", 0.0))[0] for r in records]
    sims = m.semantic_similarities(refs, hyps)
    scores = []
    for r, hyp, sim in zip(records, hyps, sims):
        rid = str(r["id"])
        ref_f, hyp_f = st.analyse_function(r["solidity"]), st.analyse_function(hyp)
        s = FunctionScore(
            id=rid,
            system=system,
            hypothesis=hyp,
            similarity=sim,
            edit_distance=m.edit_distance(r["solidity"], hyp),
            bleu=m.bleu(r["solidity"], hyp),
            rouge_l=m.rouge_l(r["solidity"], hyp),
            structural_f1=st.structural_f1(ref_f, hyp_f),
            signature_match=st.signature_match(r.get("signature"), hyp_f, ref_f),
            facts={k: list(v) for k, v in st.fact_counts(ref_f, hyp_f).items()},
            note=(failures or {}).get(rid),
            seconds=round(predictions.get(rid, ("", 0.0))[1], 4),
        )
        syntax = check_function_syntax(hyp)
        s.parses = syntax is None
        if config.behaviour:
            try:
                _check_behaviour(s, r, hyp, syntax, load_compile, config)
            except Exception as e:  # a batch job records the failure and goes on
                log.warning("%s %s: behaviour check failed: %s: %s", system, rid, type(e).__name__, e)
                s.note = s.note or f"check failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        scores.append(s)
        if progress:
            progress(1)
    return scores


def _check_behaviour(s: FunctionScore, r: Mapping[str, Any], hyp: str, syntax: str | None, load_compile: Callable[[str], Any] | None, config: EvalConfig) -> None:
    from evmlm.decompile.syntax import complete_member
    from evmlm.errors import EvmlmError
    from evmlm.decompile.verify import compare_deployed
    from evmlm.evaluate.behaviour import recompile

    if syntax is not None:
        s.recompiles, s.behaves_same = False, False
        s.note = s.note or f"does not recompile: {syntax}"
        return
    if load_compile is None or not r.get("compile_key") or r.get("source_start") is None:
        s.note = s.note or "recompile not checked: no compile result for this function"
        return
    try:
        result = load_compile(str(r["compile_key"]))
        contract = str(r["contract"])
        # a state-variable declaration in place of a function needs its own ';' (a getter's
        # source range excludes the ';', which stays in the file)
        text = complete_member(hyp) if str(r["solidity"]).rstrip().endswith("}") else hyp
        rc = recompile(result, str(r.get("source_path") or contract.rsplit(":", 1)[0]), contract, int(r["source_start"]), int(r["source_length"]), text, selector=str(r["selector"]))
    except EvmlmError as e:
        s.note = s.note or f"recompile not checked: {e}"
        return
    s.recompiles = rc.ok
    if not rc.ok:
        s.behaves_same = False
        s.note = s.note or f"does not recompile: {rc.error}"
        return
    b = compare_deployed(rc.original_creation_bytecode or "", rc.creation_bytecode or "", rc.abi, str(r["selector"]), n_random=config.n_random_calls, seed=config.seed)
    s.behaves_same, s.behaviour_calls = b.same, b.n_calls
    if b.first_difference:
        s.note = s.note or (f"behaves differently: {b.first_difference}" if b.same is False else f"behaviour undetermined: {b.first_difference}")

"""Evaluation core: predictions of the model and the baselines on the same functions, scored.

:func:`evaluate_records` takes pair records (docs/architecture.md "Pair record": ``id``, ``tac``,
``solidity``, ``signature``, ``selector``, ``contract`` = ``path:Name``, ``source_path``,
``source_start``, ``source_length``, ``compile_key``, ...) and returns one
:class:`FunctionScore` per (system, function). Systems: ``model`` (the fine-tuned decompiler)
and the baselines of :mod:`evmlm.evaluate.baselines`, plus:

- ``oracle``: the original source itself, through the same checks; anything below 100% there
  is a defect of the evaluator (or a function it cannot determine), never of a decompiler;
- ``structural``: the structural decompiler's draft (:mod:`evmlm.structural`);
- ``model`` (prompt without a draft) and ``model_draft`` (prompt with the structural draft),
  both with the function header forced (:mod:`evmlm.decompile.header`);
- ``verified``: per function, the first candidate (draft, the ``model_draft`` greedy output,
  ``candidates - 2`` samples) that behaves the same, else the one agreeing on most calls that
  compiles, else the draft (:func:`select_verified`).

Every system is scored with the same metrics; a system that produced nothing for a function
(Panoramix timed out, crashed or did not find the selector) is scored on the empty text and
its failure is recorded.

The funnel per function: parses (tree-sitter) → recompiles (spliced into its own compile job,
:func:`evmlm.evaluate.behaviour.recompile`) → selector present (the recompiled contract still
has the function's selector) → behaves the same (differential execution,
:func:`evmlm.decompile.verify.compare_deployed`). A hypothesis that does not parse is marked
"does not recompile" without running solc (solc's parser is stricter than tree-sitter's, so
this never turns a compiling function into a failure). A check is computed once per
(function, text): systems that propose the same text share it.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

from evmlm.config import EvalConfig, LiftConfig
from evmlm.evm.abi import normalise_selector

log = logging.getLogger(__name__)

MODEL = "model"
MODEL_DRAFT = "model_draft"

#: The lift of the functions' contracts: the run configs' time budget (30 s per contract,
#: configs/*.yaml ``lift.max_seconds``) instead of the library default (1.5 s). A loaded
#: machine runs out of a short budget on large contracts, and a partial lift misses selectors
#: or cuts bodies at unexplored nodes: results would depend on the load, not on the system.
EVAL_LIFT = LiftConfig(max_seconds=30.0)
ORACLE = "oracle"
STRUCTURAL = "structural"
VERIFIED = "verified"
SAMPLE_TEMPERATURE = 0.8  # sampled candidates of verified selection (greedy is the first)


@dataclass
class FunctionScore:
    """All metrics of one system's output for one function (see :mod:`evmlm.evaluate.metrics`,
    :mod:`evmlm.evaluate.structure`, :mod:`evmlm.evaluate.behaviour` for definitions and ranges).

    ``facts``: per fact kind ``[overlap, n_hypothesis, n_reference]``; ``recompiles`` /
    ``selector_present`` / ``behaves_same``: None when not checked or undetermined;
    ``undetermined``: compiled with the selector present but the behaviour check could not
    decide (see :class:`evmlm.decompile.verify.BehaviourResult`); ``candidate``: for
    ``verified``, which candidate was kept; ``note``: why a check failed or was skipped, or
    the system's own failure (timeout, crash).
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
    selector_present: bool | None = None
    behaves_same: bool | None = None
    undetermined: bool = False
    behaviour_calls: int = 0
    candidate: str | None = None
    note: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def select_functions(
    records: Sequence[Mapping[str, Any]], max_functions: int | None, seed: int = 0
) -> list[dict[str, Any]]:
    """A deterministic sample of at most ``max_functions`` records (sorted by ``id`` first)."""
    recs = sorted((dict(r) for r in records), key=lambda r: str(r["id"]))
    if max_functions is not None and len(recs) > max_functions:
        recs = sorted(random.Random(seed).sample(recs, max_functions), key=lambda r: str(r["id"]))
    return recs


# ----------------------------------------------------------------------------------- predictions


def predict_oracle(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """``id → (the original source, 0 s)``: the evaluator's positive control."""
    return {str(r["id"]): (str(r["solidity"]), 0.0) for r in records}


class Contracts:
    """Per function record: its deployed contract's artifact and lifted code, each built once
    per (compile key, contract). ``load_compile``: compile_key → CompileResult (or None)."""

    def __init__(self, load_compile: Callable[[str], Any] | None) -> None:
        self.load_compile = load_compile
        self._art: dict[tuple[str, str], Any] = {}
        self._lifted: dict[tuple[str, str], Any] = {}
        self._runtime: dict[tuple[str, str], str] = {}

    def artifact(self, r: Mapping[str, Any]) -> Any:
        """The artifact that deploys ``r``'s contract. Raises EvmlmError / KeyError when absent."""
        from evmlm.errors import EvmlmError
        from evmlm.evaluate.behaviour import deployed_contract

        key = (str(r.get("compile_key")), str(r["contract"]))
        if key not in self._art:
            if self.load_compile is None or not r.get("compile_key"):
                raise EvmlmError("no compile result for this function")
            self._art[key] = deployed_contract(
                self.load_compile(key[0]), key[1], str(r.get("selector") or "")
            )
        return self._art[key]

    def runtime(self, r: Mapping[str, Any]) -> str:
        """The runtime code (hex) of ``r``'s contract as deployed by the behaviour check
        (immutables filled in: :func:`evmlm.decompile.verify.deployed_runtime`), else the
        artifact's."""
        from evmlm.decompile.verify import deployed_runtime

        key = (str(r.get("compile_key")), str(r["contract"]))
        if key not in self._runtime:
            art = self.artifact(r)
            self._runtime[key] = (
                deployed_runtime(art.creation_bytecode, list(art.abi)) or art.runtime_bytecode
            )
        return self._runtime[key]

    def lifted(self, r: Mapping[str, Any]) -> Any:
        """``lift_contract`` of :meth:`runtime` (with the ABI and storage layout)."""
        from evmlm.evm import lift_contract

        key = (str(r.get("compile_key")), str(r["contract"]))
        if key not in self._lifted:
            art = self.artifact(r)
            self._lifted[key] = lift_contract(
                self.runtime(r),
                abi=list(art.abi),
                storage_layout=art.storage_layout,
                what=key[1],
                config=EVAL_LIFT,
            )
        return self._lifted[key]

    def abi(self, r: Mapping[str, Any]) -> list[Any] | None:
        try:
            return list(self.artifact(r).abi)
        except Exception:  # no compile result: the header falls back to the signature
            return None


def predict_structural(
    records: Sequence[Mapping[str, Any]],
    contracts: Contracts,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, tuple[str, float]], dict[str, str]]:
    """``(id → (structural draft, seconds), id → failure)``: the deterministic structural
    decompiler (:func:`evmlm.structural.draft_function`) on each function's deployed
    contract, lifted once per contract (lift time shared among its functions)."""
    out: dict[str, tuple[str, float]] = {}
    failures: dict[str, str] = {}
    from evmlm.structural import draft_pair

    for r in records:
        rid = str(r["id"])
        t0 = time.perf_counter()
        try:
            lifted = contracts.lifted(r)
            art = contracts.artifact(r)
            fn = lifted.function(str(r["selector"])) if r.get("selector") else None
            if fn is None:
                raise LookupError(f"selector {r.get('selector')} not recovered by the lifter")
            result = (
                contracts.load_compile(str(r["compile_key"])) if contracts.load_compile else None
            )
            draft = draft_pair(
                lifted,
                fn,
                abi=list(art.abi),
                storage_layout=art.storage_layout,
                solc_version=getattr(result, "version", None) or r.get("compiler_version"),
                solidity=str(r["solidity"]),
                asts=result.asts if result is not None else None,
                source_path=str(r.get("source_path") or str(r["contract"]).rsplit(":", 1)[0]),
                source_start=r.get("source_start"),
                runtime_bytecode=contracts.runtime(r),
                kind=r.get("kind"),
                visibility=r.get("visibility"),
            )
            out[rid] = (draft.text, time.perf_counter() - t0)
        except Exception as e:  # a batch job records the failure and goes on
            out[rid] = ("", time.perf_counter() - t0)
            failures[rid] = (
                f"structural failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            )
        if progress:
            progress(1)
    return out, failures


def prompt_drafts(
    records: Sequence[Mapping[str, Any]], drafts: Mapping[str, str]
) -> dict[str, str]:
    """id → the draft for the model's prompt: the record's ``draft`` (drafted by the dataset
    stage from the same TAC as the prompt's, exactly what fine-tuning prompts carry) when the
    record has that field, else the structural system's ``drafts`` (datasets built before
    the field). A record whose ``draft`` is null (drafting failed) gets no draft, as in
    fine-tuning."""
    out = {}
    for r in records:
        rid = str(r["id"])
        text = r["draft"] if "draft" in r else drafts.get(rid)
        if text and str(text).strip():
            out[rid] = str(text)
    return out


def forced_header(r: Mapping[str, Any], contracts: Contracts, draft: str | None) -> str | None:
    """The header forced at the start of the model's completion for ``r`` (None for getters,
    whose reference is a state variable, and when no header can be written)."""
    from evmlm.decompile.header import header_for

    if r.get("kind") == "getter":
        return None
    return header_for(
        r.get("signature"),
        abi=contracts.abi(r),
        selector=r.get("selector"),
        visibility=r.get("visibility"),
        mutability=r.get("state_mutability"),
        draft=draft,
    )


def predict_model(
    records: Sequence[Mapping[str, Any]],
    model: Any,
    tokenizer: Any,
    config: EvalConfig,
    progress: Callable[[int], None] | None = None,
    *,
    drafts: Mapping[str, str] | None = None,
    headers: Mapping[str, str | None] | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
) -> dict[str, tuple[str, float]]:
    """``id → (solidity, seconds)`` from the model, prompted with TAC, signature, contract
    context and (when ``drafts`` is given) the structural draft; ``headers``: id → the header
    forced as the completion's start (:func:`forced_header`)."""
    from evmlm.decompile.generation import generate_completions, generation_budget
    from evmlm.train.prompt import fit_prompt

    budget, _ = generation_budget(model, config.max_new_tokens)
    prompts = [
        fit_prompt(
            r["tac"],
            r.get("signature"),
            r.get("contract_context"),
            tokenizer,
            budget,
            (drafts or {}).get(str(r["id"])),
        )
        for r in records
    ]
    starts = [(headers or {}).get(str(r["id"])) for r in records]
    gens = generate_completions(
        model,
        tokenizer,
        prompts,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        temperature=temperature,
        seed=config.seed if seed is None else seed,
        starts=starts,
        progress=progress,
    )
    return {str(r["id"]): g for r, g in zip(records, gens)}


def predict_retrieval(
    records: Sequence[Mapping[str, Any]], train_records: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[str, float]]:
    """``id → (solidity of the nearest train function by TAC, seconds)``."""
    from evmlm.evaluate.baselines.retrieval import RetrievalIndex

    if not train_records:
        return {str(r["id"]): ("", 0.0) for r in records}
    t0 = time.perf_counter()
    index = RetrievalIndex.build(
        [r["tac"] for r in train_records],
        [r["solidity"] for r in train_records],
        [str(r["id"]) for r in train_records],
    )
    hits = index.nearest([r["tac"] for r in records])
    per = (time.perf_counter() - t0) / max(1, len(records))
    return {str(r["id"]): (h[0], per) for r, h in zip(records, hits)}


def predict_stub(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """``id → (signature-only stub, 0 s)``."""
    from evmlm.evaluate.baselines.stub import signature_stub

    return {
        str(r["id"]): (
            signature_stub(
                r.get("signature"),
                r.get("selector"),
                payable=r.get("state_mutability") == "payable",
                view_like=r.get("state_mutability") in ("view", "pure"),
            ),
            0.0,
        )
        for r in records
    }


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
        sigs = {
            str(r["selector"]): r["signature"]
            for r in recs
            if r.get("signature") and r.get("selector")
        }
        t0 = time.perf_counter()
        try:
            if budget_s is not None and t0 - started >= budget_s:
                raise EvmlmError(
                    f"skipped: the Panoramix budget of {budget_s:.0f} s is spent (evaluate.panoramix_budget_s)"
                )
            if load_compile is None:
                raise EvmlmError("no compile results to take the bytecode from")
            runtime = deployed_contract(
                load_compile(key), contract, str(recs[0]["selector"])
            ).runtime_bytecode
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


# ----------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """The funnel of one text for one function: ``parses`` → ``recompiles`` →
    ``selector_present`` → ``behaves_same`` (None: not checked / undetermined);
    ``n_calls`` / ``n_agree``: calls compared and calls that agreed; ``note``: the first
    reason the text fell out of the funnel, or why the check could not decide."""

    parses: bool
    recompiles: bool | None = None
    selector_present: bool | None = None
    behaves_same: bool | None = None
    undetermined: bool = False
    n_calls: int = 0
    n_agree: int = 0
    note: str | None = None


class Checker:
    """Runs and caches :class:`Check` per (function id, text); ``load_compile``: compile_key →
    CompileResult; ``behaviour``: False checks parsing only."""

    def __init__(self, load_compile: Callable[[str], Any] | None, config: EvalConfig) -> None:
        self.load_compile = load_compile
        self.config = config
        self._cache: dict[tuple[str, str], Check] = {}

    def __call__(self, r: Mapping[str, Any], text: str) -> Check:
        key = (str(r["id"]), text)
        if key not in self._cache:
            try:
                self._cache[key] = self._check(r, text)
            except Exception as e:  # a batch job records the failure and goes on
                log.warning("%s: behaviour check failed: %s: %s", r["id"], type(e).__name__, e)
                from evmlm.decompile.syntax import check_function_syntax

                self._cache[key] = Check(
                    check_function_syntax(text) is None,
                    note=f"check failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                )
        return self._cache[key]

    def _check(self, r: Mapping[str, Any], text: str) -> Check:
        from evmlm.decompile.syntax import check_function_syntax, complete_member
        from evmlm.decompile.verify import compare_deployed
        from evmlm.errors import EvmlmError
        from evmlm.evaluate.behaviour import recompile

        syntax = check_function_syntax(text)
        if syntax is not None:
            return Check(False, False, None, False, note=f"does not recompile: {syntax}")
        if not self.config.behaviour:
            return Check(True)
        if self.load_compile is None or not r.get("compile_key") or r.get("source_start") is None:
            return Check(True, note="recompile not checked: no compile result for this function")
        getter = not str(r["solidity"]).rstrip().endswith("}")
        if getter and text.rstrip().endswith("}"):
            # a function cannot stand in for a public state variable in place: the variable's
            # name would be declared twice, or the functions that read it would lose it
            return Check(
                True,
                note="recompile not checked: a function in place of a public state variable (a getter)",
            )
        try:
            result = self.load_compile(str(r["compile_key"]))
            contract = str(r["contract"])
            # a state-variable declaration in place of a function needs its own ';' (a getter's
            # source range excludes the ';', which stays in the file)
            spliced = text if getter else complete_member(text)
            rc = recompile(
                result,
                str(r.get("source_path") or contract.rsplit(":", 1)[0]),
                contract,
                int(r["source_start"]),
                int(r["source_length"]),
                spliced,
                selector=str(r["selector"]),
            )
        except EvmlmError as e:
            return Check(True, note=f"recompile not checked: {e}")
        if not rc.ok:
            return Check(True, False, None, False, note=f"does not recompile: {rc.error}")
        sel = normalise_selector(str(r["selector"]))[2:]
        if rc.selectors is not None and sel not in rc.selectors:
            return Check(
                True,
                True,
                False,
                False,
                note=f"selector 0x{sel} missing from the recompiled contract",
            )
        b = compare_deployed(
            rc.original_creation_bytecode or "",
            rc.creation_bytecode or "",
            rc.abi,
            sel,
            n_random=self.config.n_random_calls,
            seed=self.config.seed,
            method_identifiers=rc.method_identifiers,
        )
        note = None
        if b.first_difference:
            note = (
                f"behaves differently: {b.first_difference}"
                if b.same is False
                else f"behaviour undetermined: {b.first_difference}"
            )
        return Check(
            True, True, True, b.same, b.same is None, b.n_calls, b.n_calls - b.n_different, note
        )


def select_verified(
    records: Sequence[Mapping[str, Any]],
    candidates: Mapping[str, Sequence[tuple[str, str, float]]],
    check: Callable[[Mapping[str, Any], str], Check],
) -> tuple[dict[str, tuple[str, float]], dict[str, str]]:
    """Verified selection per function: ``candidates[id]`` = ``[(name, text, seconds), ...]``
    in preference order (the draft first). Keeps the first candidate that behaves the same,
    else the compiling one that agreed on most calls (ties: the earlier), else the first
    (the draft). Returns ``(id → (text, seconds of all candidates)), id → kept candidate's
    name)``; only as many candidates are checked as needed."""
    out: dict[str, tuple[str, float]] = {}
    kept: dict[str, str] = {}
    for r in records:
        rid = str(r["id"])
        cands = [c for c in candidates.get(rid, ()) if c[1].strip()]
        secs = sum(c[2] for c in candidates.get(rid, ()))
        if not cands:
            out[rid], kept[rid] = ("", secs), "none"
            continue
        best: tuple[int, str, str] | None = None
        chosen = None
        for name, text, _ in cands:
            c = check(r, text)
            if c.behaves_same is True:
                chosen = (name, text)
                break
            if c.recompiles and c.selector_present and (best is None or c.n_agree > best[0]):
                best = (c.n_agree, name, text)
        if chosen is None:
            chosen = (best[1], best[2]) if best is not None else (cands[0][0], cands[0][1])
        out[rid], kept[rid] = (chosen[1], secs), chosen[0]
    return out, kept


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
    checker: Checker | None = None,
    kept: Mapping[str, str] | None = None,
) -> list[FunctionScore]:
    """Score one system's predictions on ``records`` with every metric (see the module
    docstring). ``checker``: a shared :class:`Checker` (one is made from ``load_compile``
    otherwise); ``kept``: for ``verified``, id → the kept candidate's name."""
    from evmlm.evaluate import metrics as m
    from evmlm.evaluate import structure as st

    check = checker or Checker(load_compile, config)
    refs = [r["solidity"] for r in records]
    hyps = [predictions.get(str(r["id"]), ("", 0.0))[0] for r in records]
    sims = m.semantic_similarities(refs, hyps)
    scores = []
    for r, hyp, sim in zip(records, hyps, sims):
        rid = str(r["id"])
        ref_f, hyp_f = st.analyse_function(r["solidity"]), st.analyse_function(hyp)
        c = check(r, hyp)
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
            parses=c.parses,
            recompiles=c.recompiles,
            selector_present=c.selector_present,
            behaves_same=c.behaves_same,
            undetermined=c.undetermined,
            behaviour_calls=c.n_calls,
            candidate=(kept or {}).get(rid),
            note=(failures or {}).get(rid) or c.note,
            seconds=round(predictions.get(rid, ("", 0.0))[1], 4),
        )
        scores.append(s)
        if progress:
            progress(1)
    return scores

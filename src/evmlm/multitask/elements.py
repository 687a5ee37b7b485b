"""The element classifier beside generated code: what it predicts from the TAC, what the code
contains (:func:`evmlm.dataset.labels.label_function` on the code), and where they disagree.

``evmlm decompile --model DIR`` with a multi-task model writes :func:`element_comment` above
each function and the :func:`element_report` in ``--format json`` (docs/multitask.md).
"""

from __future__ import annotations

from typing import Any

from evmlm.dataset.labels import ELEMENT_TYPES, label_function


def is_multitask(model: Any) -> bool:
    """True for a :class:`evmlm.multitask.modeling.MultitaskForCausalLM` (by model type, so a
    plain model never loads the multi-task code)."""
    from evmlm.multitask.modeling import MODEL_TYPE

    return getattr(getattr(model, "config", None), "model_type", None) == MODEL_TYPE


def element_report(
    model: Any, tokenizer: Any, tac: str, signature: str | None, code: str, draft: str | None
) -> dict[str, list[str]]:
    """``predicted`` (the classifier on the prompt the model generated from: TAC + structural
    ``draft``, as in training; P above the model's threshold for the type,
    ``MultitaskConfig.thresholds``), ``in_code`` (element types of
    ``code``), ``predicted_not_in_code`` and ``in_code_not_predicted`` (the disagreements)."""
    from evmlm.multitask.training import predict_elements
    from evmlm.train.prompt import fit_prompt

    budget = int(model.config.max_position_embeddings)
    prompt = fit_prompt(tac, signature, None, tokenizer, budget, draft)
    probs = predict_elements(model, tokenizer, prompt)
    th = dict(zip(ELEMENT_TYPES, model.config.thresholds()))
    predicted = sorted(e for e, p in probs.items() if p > th[e])
    in_code = sorted(label_function(code).elements) if code.strip() else []
    return {
        "predicted": predicted,
        "in_code": in_code,
        "predicted_not_in_code": sorted(set(predicted) - set(in_code)),
        "in_code_not_predicted": sorted(set(in_code) - set(predicted)),
    }


def element_comment(report: dict[str, list[str]]) -> str:
    """One comment line: the predicted element types and the disagreements, flagged with
    ``DISAGREES``."""
    line = "// elements (classifier): " + (", ".join(report["predicted"]) or "none")
    missing, extra = report["predicted_not_in_code"], report["in_code_not_predicted"]
    if missing or extra:
        parts = [f"predicted, not in code: {', '.join(missing)}"] if missing else []
        parts += [f"in code, not predicted: {', '.join(extra)}"] if extra else []
        line += " -- DISAGREES: " + "; ".join(parts)
    return line

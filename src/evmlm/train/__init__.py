"""Training: the prompt format, tokenizer, pretraining, fine-tuning (full / LoRA / QLoRA), sampling.

Heavy imports (torch, transformers) happen inside the functions, so ``import evmlm.train`` and
``evmlm.train.prompt`` stay cheap for the decompile and evaluate paths.
"""

from __future__ import annotations

from typing import Any

from evmlm.train.prompt import build_completion, build_prompt, extract_solidity

__all__ = ["build_prompt", "build_completion", "extract_solidity", "load_for_inference"]


def load_for_inference(path: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a merged model dir, a LoRA adapter dir or any local HF model dir.

    See :func:`evmlm.train.inference.load_for_inference`.
    """
    from evmlm.train.inference import load_for_inference as _load

    return _load(path, **kwargs)

"""Batched, left-padded generation of Solidity from prompts, shared by decompile and evaluate.

The prompt format is :mod:`evmlm.train.prompt`'s; prompts are fitted to the model's context
by :func:`evmlm.train.prompt.fit_prompt`, the function fine-tuning fits them with, so
inference sees the distribution training saw.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence


def context_length(model: Any) -> int:
    """The model's context in tokens (``max_position_embeddings``; 2048 when unknown)."""
    return int(getattr(getattr(model, "config", None), "max_position_embeddings", 2048) or 2048)


def trained_length(model: Any) -> int | None:
    """``finetune.max_length`` (tokens, prompt + completion) the model was fine-tuned with, from
    the ``training_info.json`` that fine-tuning writes beside the merged weights; None when the
    model folder has none (a base model, a GGUF file) or it names no length."""
    where = getattr(model, "name_or_path", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    if not where:
        return None
    info = Path(str(where)) / "training_info.json"
    try:
        length = json.loads(info.read_text())["finetune"]["max_length"]  # evmlm.train.finetune
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(length) if isinstance(length, int) and length > 0 else None


def generation_budget(model: Any, max_new_tokens: int) -> tuple[int, int]:
    """``(prompt tokens, new tokens)`` that fit the model's context — or, for a fine-tuned model,
    the ``max_length`` it was fine-tuned with (:func:`trained_length`): a model fine-tuned on
    768-token examples sees prompts of that size at inference too, not the base's 8,192 (longer
    prompts are out of its training distribution and cost quadratic attention time). The
    prompt keeps at least half of that length (new tokens are reduced to fit, as fine-tuning
    kept examples whose completion fits in half of ``max_length``)."""
    ctx = context_length(model)
    trained = trained_length(model)
    if trained is not None:
        ctx = min(ctx, trained)
    new = min(max_new_tokens, ctx - ctx // 2)
    return ctx - new, new


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 256,
    batch_size: int = 4,
    temperature: float = 0.0,
    seed: int = 0,
    starts: Sequence[str | None] | None = None,
    on_text: Callable[[int, str], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, float]]:
    """Generate a completion per prompt: ``[(solidity text, seconds), ...]`` in prompt order.

    Prompts are tokenised without added special tokens, sorted by length, left-padded and
    generated ``batch_size`` at a time (input ids ``(batch, seq)``). New tokens and prompt share
    the context (:func:`generation_budget`); a prompt still too long keeps its head and its
    final ``<|solidity|>`` token (fit prompts first with :func:`fit_prompt`). ``on_text(i, text)``: stream prompt ``i``'s text as it is generated (then prompts
    run one at a time); ``progress(n)``: called with the number of prompts just finished.
    ``starts[i]``: text forced as the start of prompt ``i``'s completion (the function header,
    :mod:`evmlm.decompile.header`): it is appended to the prompt after the completion's leading
    newline and returned at the start of the text. ``temperature > 0`` samples (seeded by
    ``seed``). The returned seconds are the batch's time divided among its prompts. Text is cut
    at EOS (:func:`evmlm.train.prompt.extract_solidity`).
    """
    import torch
    from transformers import set_seed

    from evmlm.train.prompt import extract_solidity

    set_seed(seed)
    limit, max_new_tokens = generation_budget(model, max_new_tokens)
    heads = [
        (starts[i] if starts is not None and i < len(starts) else None) or ""
        for i in range(len(prompts))
    ]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    head_ids = [
        tokenizer("\n" + h, add_special_tokens=False)["input_ids"] if h else [] for h in heads
    ]
    for i, ids in enumerate(encoded):
        room = max(2, limit - len(head_ids[i]))
        if len(ids) > room:
            ids = ids[: room - 1] + ids[-1:]
        encoded[i] = ids + head_ids[i]
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    eos_id = tokenizer.eos_token_id
    gen_kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        do_sample=temperature > 0,
    )
    if temperature > 0:
        gen_kwargs["temperature"] = temperature
    out: list[tuple[str, float] | None] = [None] * len(prompts)
    model.eval()
    if on_text is not None:
        from evmlm.train.inference import generate_streamed

        for i, ids in enumerate(encoded):
            t0 = time.perf_counter()
            inp = torch.tensor([ids])
            text = generate_streamed(
                model,
                tokenizer,
                lambda piece, i=i: on_text(i, piece),
                input_ids=inp,
                attention_mask=torch.ones_like(inp),
                **gen_kwargs,
            )
            out[i] = (_joined(heads[i], extract_solidity(text)), time.perf_counter() - t0)
            if progress:
                progress(1)
        return [o for o in out if o is not None]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: the prompts end where generation starts
            ids = encoded[i]
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        t0 = time.perf_counter()
        gen = _generate(model, input_ids, attention, **gen_kwargs)
        seconds = (time.perf_counter() - t0) / len(idx)
        for row, i in enumerate(idx):
            text = tokenizer.decode(gen[row, width:], skip_special_tokens=False)
            out[i] = (_joined(heads[i], extract_solidity(text)), seconds)
        if progress:
            progress(len(idx))
    return [o for o in out if o is not None]


def _joined(head: str, continuation: str) -> str:
    if not head:
        return continuation
    sep = "" if not continuation or continuation[0] in "(;" else " "
    return head + sep + continuation


def _generate(model: Any, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
    import torch

    with torch.no_grad():
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

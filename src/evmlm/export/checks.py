"""Round-trip checks of exported GGUF files against the Hugging Face model they came from.

Run by :func:`evmlm.export.gguf.export_gguf` after writing the files (docs/gguf.md):

- **loads**: llama.cpp loads each file (:class:`evmlm.train.llamacpp.LlamaCppModel`).
- **tokenisation**: llama.cpp's tokenizer (inside the GGUF) against the HF tokenizer on real
  texts: prompt + reference completion of dataset records, in the prompt format of
  :mod:`evmlm.train.prompt`, each library tokenising as it does by default (special tokens
  parsed; BOS only when the tokenizer adds one). Counts mismatching texts; the first mismatch
  is shown (the first differing position and both tokens).
- **greedy**: for the first ``n_greedy`` prompts (fitted to the context), the greedy
  continuation of HF ``generate`` (float32) and of llama.cpp on the GGUF, ``max_new_tokens``
  each, stopped at EOS; identical token ids or not, and for each divergence its position and
  the logit gaps: HF's logit of its own token minus its logit of llama.cpp's (and the same
  for llama.cpp), teacher-forced on the common prefix -- a gap near 0 is a near tie.
- **logits**: teacher-forced next-token logits on ``n_logit_texts`` texts (prompt + reference
  completion, at most ``logit_tokens`` tokens): top-1 agreement (fraction of positions whose
  argmax is the same) and the maximum and mean absolute logit difference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckConfig:
    """How much to check: ``n_texts`` tokenised texts, ``n_greedy`` greedy continuations of
    ``max_new_tokens`` tokens (the f16 file, or the first exported), ``n_logit_texts`` texts of
    at most ``logit_tokens`` tokens for logit agreement (every file). Raises ValueError for a
    count below 1."""

    n_texts: int = 200
    n_greedy: int = 50
    max_new_tokens: int = 64
    n_logit_texts: int = 20
    logit_tokens: int = 256

    def __post_init__(self) -> None:
        for name in ("n_texts", "n_greedy", "max_new_tokens", "n_logit_texts", "logit_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"export.{name} must be >= 1, got {getattr(self, name)}")


def record_texts(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``[(prompt, completion), ...]`` of dataset records in evmlm's prompt format (no
    draft: the dataset stores none), the completion ending in EOS as trained."""
    from evmlm.train.prompt import EOS_TOKEN, build_completion, build_prompt

    out = []
    for r in records:
        prompt = build_prompt(r["tac"], r.get("signature"), r.get("contract_context"))
        out.append((prompt, build_completion(r["solidity"]) + EOS_TOKEN))
    return out


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_tokenisation(gguf: Any, tokenizer: Any, texts: Sequence[str]) -> dict[str, Any]:
    """llama.cpp's tokenisation (``gguf.tokenize``) against ``tokenizer(text)["input_ids"]``
    on each text: ``{"texts", "mismatches", "first_mismatch"}`` (``None`` when identical)."""
    bad, first = 0, None
    for n, text in enumerate(texts):
        want = list(tokenizer(text)["input_ids"])
        got = gguf.tokenize(text)
        if want != got:
            bad += 1
            if first is None:
                i = _first_difference(want, got)
                first = {
                    "text": n,
                    "position": i,
                    "hf": tokenizer.convert_ids_to_tokens(want[i : i + 3]),
                    "llama_cpp": tokenizer.convert_ids_to_tokens(
                        [t for t in got[i : i + 3] if t < len(tokenizer)]
                    ),
                    "hf_tokens": len(want),
                    "llama_cpp_tokens": len(got),
                }
    return {"texts": len(texts), "mismatches": bad, "first_mismatch": first}


def _hf_logits(model: Any, ids: Sequence[int]) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor([list(ids)])).logits[0].float().numpy()


def check_logits(hf_model: Any, gguf: Any, sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Teacher-forced logits of ``hf_model`` and ``gguf`` (which must keep all logits) on token
    ``sequences``: ``{"positions", "top1_agreement", "max_abs_diff", "mean_abs_diff"}``."""
    import numpy as np

    agree = positions = 0
    max_diff, sum_diff = 0.0, 0.0
    for ids in sequences:
        a = _hf_logits(hf_model, ids)
        b = gguf.logits(list(ids))[:, : a.shape[1]]
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        positions += a.shape[0]
        d = np.abs(a - b)
        max_diff = max(max_diff, float(d.max()))
        sum_diff += float(d.mean()) * a.shape[0]
    return {
        "positions": positions,
        "top1_agreement": agree / positions if positions else None,
        "max_abs_diff": max_diff,
        "mean_abs_diff": sum_diff / positions if positions else None,
    }


def check_greedy(
    hf_model: Any,
    gguf: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Greedy continuations of ``hf_model`` and ``gguf`` (both through their ``generate``) on
    each prompt (token ids): ``{"prompts", "identical", "divergences": [...]}``, each
    divergence ``{"prompt", "position", "hf", "llama_cpp", "hf_gap", "llama_cpp_gap"}``."""
    import torch

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    same, divergences = 0, []
    for n, ids in enumerate(prompts):
        inp = torch.tensor([list(ids)])
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos)
        with torch.no_grad():
            a = hf_model.generate(
                input_ids=inp, attention_mask=torch.ones_like(inp), pad_token_id=pad, **kwargs
            )[0, len(ids) :].tolist()
        b = gguf.generate(inp, torch.ones_like(inp), pad_token_id=pad, **kwargs)[
            0, len(ids) :
        ].tolist()
        a, b = _until_eos(a, eos), _until_eos(b, eos)
        if a == b:
            same += 1
        else:
            i = _first_difference(a, b)
            div: dict[str, Any] = {"prompt": n, "position": i}
            if i < len(a) and i < len(b):
                prefix = list(ids) + a[:i]
                ha = _hf_logits(hf_model, prefix)[-1]
                gb = gguf.logits(prefix)[-1]
                div.update(
                    hf=tokenizer.convert_ids_to_tokens(a[i]),
                    llama_cpp=tokenizer.convert_ids_to_tokens(b[i]),
                    hf_gap=float(ha[a[i]] - ha[b[i]]),
                    llama_cpp_gap=float(gb[b[i]] - gb[a[i]]),
                )
            else:
                div.update(hf_tokens=len(a), llama_cpp_tokens=len(b))
            divergences.append(div)
        if progress:
            progress(1)
    return {"prompts": len(prompts), "identical": same, "divergences": divergences}


def _until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids

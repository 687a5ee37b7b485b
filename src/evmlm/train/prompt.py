"""THE prompt format of evmlm: TAC (+ resolved signature, contract context) -> Solidity.

One format, used by fine-tuning (:mod:`evmlm.train.finetune`), decompilation
(:mod:`evmlm.decompile`) and evaluation (:mod:`evmlm.evaluate`)::

    <|signature|>transfer(address,uint256)          (only when the signature is known)
    <|context|>mapping(address => uint256) _balances; (only when there is contract context)
    <|draft|>function transfer(address arg0, uint256 arg1) external returns (bool) {
        ...                                           (only when a structural draft is given:
    }                                                  evmlm.structural)
    <|tac|>function 0xa9059cbb transfer(address,uint256)
      block 0x1a4 prev=[0x0] succ=[0x1c2,0x1be]
        ...
    <|solidity|>

The draft is the structural decompiler's Solidity for the same function, which the model
refines; with it, the model sees both the TAC and a compiling rendering of it.

The prompt ends on the special token ``<|solidity|>`` and the completion starts with a newline:
a byte-level BPE never merges across a special token, so the tokenised prompt is always a
prefix of the tokenised prompt + completion and the supervised span starts exactly at the
completion (docs/architecture.md, "Prompt": trailing ``{\\n`` merges with the completion's
indentation otherwise). The completion ends with ``<|endoftext|>`` (EOS),
which generation stops at.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

SIGNATURE_TOKEN = "<|signature|>"
CONTEXT_TOKEN = "<|context|>"
TAC_TOKEN = "<|tac|>"
DRAFT_TOKEN = "<|draft|>"
SOLIDITY_TOKEN = "<|solidity|>"
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

#: Every special token of the format, in vocabulary order (ids 0..6 of a trained tokenizer;
#: ``<|draft|>`` came last, so tokenizers trained before it keep ids 0..5).
SPECIAL_TOKENS: tuple[str, ...] = (
    EOS_TOKEN,
    PAD_TOKEN,
    SIGNATURE_TOKEN,
    CONTEXT_TOKEN,
    TAC_TOKEN,
    SOLIDITY_TOKEN,
    DRAFT_TOKEN,
)


def _clean(text: str | None) -> str:
    return (text or "").strip()


def build_prompt(
    tac: str,
    signature: str | None = None,
    contract_context: str | None = None,
    draft: str | None = None,
) -> str:
    """The prompt for one function: optional signature, contract-context and draft fields,
    then the TAC.

    ``tac``: the printed TAC of one function (:mod:`evmlm.evm.tac`); ``signature``: the resolved
    text signature such as ``transfer(address,uint256)`` or None; ``contract_context``: the
    state-variable / event / modifier declarations the function uses, or None; ``draft``: the
    structural decompiler's Solidity of the function, or None. Empty fields are left out.
    Returns text ending in ``<|solidity|>``. Raises ValueError for empty ``tac``.
    """
    tac = _clean(tac)
    if not tac:
        raise ValueError("build_prompt: tac is empty; pass the printed TAC of one function")
    parts = []
    if _clean(signature):
        parts.append(f"{SIGNATURE_TOKEN}{_clean(signature)}\n")
    if _clean(contract_context):
        parts.append(f"{CONTEXT_TOKEN}{_clean(contract_context)}\n")
    if _clean(draft):
        parts.append(f"{DRAFT_TOKEN}{_clean(draft)}\n")
    parts.append(f"{TAC_TOKEN}{tac}\n")
    parts.append(SOLIDITY_TOKEN)
    return "".join(parts)


def fit_prompt(
    tac: str,
    signature: str | None,
    contract_context: str | None,
    tokenizer: Any,
    budget: int,
    draft: str | None = None,
) -> str:
    """:func:`build_prompt` cut to at most ``budget`` tokens (of ``tokenizer``, no special tokens
    added): first the contract context is dropped, then the TAC keeps as many of its first lines
    as fit (at least one) followed by ``...``, then (when even that is too long) the draft
    keeps as many of its first lines as fit, followed by ``...``. The one fitting rule of
    fine-tuning (:func:`evmlm.train.data.to_sft_examples`), decompilation and evaluation.

    The line count is estimated from the token offsets of one tokenisation of the whole prompt
    (fast tokenizers) and then corrected a line at a time, so a 20,000-token TAC costs one long
    tokenisation and a few short ones; slow tokenizers get a binary search over the line count.
    """

    def ntok(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    if _clean(draft):
        first_tac_line = build_prompt(
            "\n".join(_clean(tac).splitlines()[:1] + ["..."]), signature, None, draft
        )
        if ntok(first_tac_line) > budget:  # the TAC is down to one line: cut the draft too
            dlines = _clean(draft).splitlines()
            lo, hi = 0, len(dlines)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if (
                    ntok(
                        build_prompt(
                            "\n".join(_clean(tac).splitlines()[:1] + ["..."]),
                            signature,
                            None,
                            "\n".join(dlines[:mid] + ["..."]),
                        )
                    )
                    <= budget
                ):
                    lo = mid
                else:
                    hi = mid - 1
            draft = "\n".join(dlines[:lo] + ["..."]) if lo else None
    prompt = build_prompt(tac, signature, None, draft)
    lines = _clean(tac).splitlines()

    def cut(k: int) -> str:
        return build_prompt("\n".join(lines[:k] + ["..."]), signature, None, draft)

    def fits(k: int) -> bool:
        return ntok(cut(k)) <= budget

    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        # the fields are split at their special tokens before BPE, so their counts add up
        if (
            _clean(contract_context)
            and len(offsets) + ntok(f"{CONTEXT_TOKEN}{_clean(contract_context)}\n") <= budget
        ):
            return build_prompt(tac, signature, contract_context, draft)
        if len(offsets) <= budget:
            return prompt
        limit = (
            offsets[budget][0] - prompt.index(TAC_TOKEN) - len(TAC_TOKEN)
        )  # TAC characters before token `budget`
        ends = list(
            itertools.accumulate(len(line) + 1 for line in lines)
        )  # end of line i (+ its newline) in the TAC
        k = min(max(bisect.bisect_right(ends, limit), 1), len(lines))
        while k > 1 and not fits(k):
            k -= 1
        while k < len(lines) and fits(k + 1):
            k += 1
        return cut(k)
    if ntok(full := build_prompt(tac, signature, contract_context, draft)) <= budget:
        return full
    if ntok(prompt) <= budget:
        return prompt
    lo, hi = 1, len(lines)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return cut(lo)


def build_completion(solidity: str) -> str:
    """The completion (training target) for a function's Solidity source: ``"\\n" + source``.

    The EOS token is not included: the trainer appends the tokenizer's EOS
    (``<|endoftext|>``). Raises ValueError for empty ``solidity``.
    """
    body = _clean(solidity)
    if not body:
        raise ValueError("build_completion: solidity is empty")
    return "\n" + body


def extract_solidity(generated: str) -> str:
    """The Solidity part of a model's output: text after ``<|solidity|>`` (when echoed), up to EOS."""
    if SOLIDITY_TOKEN in generated:
        generated = generated.split(SOLIDITY_TOKEN, 1)[1]
    return generated.split(EOS_TOKEN, 1)[0].strip()

"""Pair records -> multi-task training examples, and their collator.

One example per record, in the prompt format of :mod:`evmlm.train.prompt` (TAC + the record's
structural ``draft``, fitted by :func:`evmlm.train.prompt.fit_prompt` exactly as fine-tuning
does): ``input_ids`` = prompt + completion + EOS; ``labels`` = -100 on the prompt, the token
ids on the completion and EOS; ``semantic_labels`` = the semantic class of each completion
token (from the record's ``solidity_classes``, aligned by character offsets: a token takes the
class of its first non-whitespace character), -100 on the prompt and EOS; ``prompt_mask`` = 1
on the prompt tokens (what the element classifier pools); ``element_labels`` = the multi-hot
element types.

Records built before the dataset stage wrote the labels are labelled here with the same
function (:func:`evmlm.dataset.labels.label_fields`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from evmlm.dataset.labels import (
    CLASS_INDEX,
    ELEMENT_INDEX,
    ELEMENT_TYPES,
    decode_classes,
    label_fields,
)
from evmlm.train.prompt import build_completion, fit_prompt


@dataclass(frozen=True)
class ExampleStats:
    """What :func:`to_examples` kept: records seen, examples made, records dropped because
    their completion alone takes more than half of ``max_length``."""

    n_records: int
    n_examples: int
    n_dropped: int


def record_labels(record: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    """(class id per character of ``solidity``, element types) of a pair record: its
    ``solidity_classes`` / ``elements`` fields, computed when absent."""
    classes, elements = record.get("solidity_classes"), record.get("elements")
    if classes is None or elements is None or len(classes) != len(record["solidity"]):
        f = label_fields(record)
        classes, elements = f["solidity_classes"], f["elements"]
    return decode_classes(classes), [e for e in elements.split() if e]


def element_vector(elements: Iterable[str]) -> list[float]:
    """Multi-hot vector over :data:`evmlm.dataset.labels.ELEMENT_TYPES`."""
    v = [0.0] * len(ELEMENT_TYPES)
    for e in elements:
        v[ELEMENT_INDEX[e]] = 1.0
    return v


def completion_classes(solidity: str, char_classes: list[int], tokenizer: Any) -> list[int]:
    """Token ids and classes of the completion: returns the class per token of
    ``tokenizer(build_completion(solidity))`` (the completion is ``"\\n" + solidity.strip()``)."""
    completion = build_completion(solidity)
    lead = len(solidity) - len(solidity.lstrip())  # characters strip() removed in front
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    ws = CLASS_INDEX["whitespace"]
    out = []
    for a, b in enc["offset_mapping"]:
        cls = ws
        for i in range(a, b):
            if i == 0:  # the completion's leading newline
                continue
            j = i - 1 + lead
            if j < len(solidity) and not solidity[j].isspace():
                cls = char_classes[j]
                break
        out.append(cls)
    return out


def to_examples(
    records: Iterable[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list]], ExampleStats]:
    """Examples (dicts of lists, module doc) within ``max_length`` tokens each, and counts.
    A record whose completion + EOS exceeds half of ``max_length`` is dropped (fine-tuning's
    rule, :func:`evmlm.train.data.to_sft_examples`)."""
    from tqdm import tqdm

    eos = tokenizer.eos_token_id
    rows, n, dropped = [], 0, 0
    for r in tqdm(records, desc="multitask examples", unit="pair", leave=False):
        n += 1
        char_classes, elements = record_labels(r)
        completion = build_completion(r["solidity"])
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        budget = max_length - len(c_ids) - 1
        if budget < max_length // 2:
            dropped += 1
            continue
        prompt = fit_prompt(
            r["tac"],
            r.get("signature"),
            r.get("contract_context"),
            tokenizer,
            budget,
            r.get("draft"),
        )
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][:budget]
        c_cls = completion_classes(r["solidity"], char_classes, tokenizer)
        ids = p_ids + c_ids + [eos]
        rows.append(
            {
                "input_ids": ids,
                "labels": [-100] * len(p_ids) + c_ids + [eos],
                "semantic_labels": [-100] * len(p_ids) + c_cls + [-100],
                "prompt_mask": [1] * len(p_ids) + [0] * (len(c_ids) + 1),
                "element_labels": element_vector(elements),
            }
        )
    return rows, ExampleStats(n, len(rows), dropped)


class MultitaskCollator:
    """Right-pads a list of examples into tensors (batch, seq): ``input_ids`` (pad id),
    ``attention_mask``, ``labels`` / ``semantic_labels`` (-100), ``prompt_mask`` (0), and
    ``element_labels`` (batch, elements)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id

    def __call__(self, rows: list[dict[str, list]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)

        def padded(key: str, fill: int) -> torch.Tensor:
            return torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows])

        return {
            "input_ids": padded("input_ids", self.pad),
            "attention_mask": torch.tensor(
                [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
            ),
            "labels": padded("labels", -100),
            "semantic_labels": padded("semantic_labels", -100),
            "prompt_mask": padded("prompt_mask", 0),
            "element_labels": torch.tensor([r["element_labels"] for r in rows]),
        }

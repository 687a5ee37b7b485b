"""The multi-task loss: detail (next token), semantic (next token's class), element (multi-label)
and consistency, combined with fixed weights or with uncertainty weighting.

Definitions (docs/multitask.md, "Loss"):

- ``detail``: next-token cross-entropy over the completion (nats/token), as any causal LM.
- ``semantic``: cross-entropy of the semantic head at position t against the class of token
  t + 1 (the semantic head is a generation head: it predicts the class of the token the
  detail head is about to emit), over the completion tokens.
- ``element``: binary cross-entropy with logits, mean over the element types and the batch.
- ``consistency``: for each element type e that a set of semantic classes C_e implies
  (:data:`IMPLIED_BY`: an ``emit`` token implies ``event_emit``, ...), the semantic head's
  probability that the function contains e, ``q_e = max_t P(class_t in C_e)`` over the
  completion tokens, against the classifier's ``sigmoid(z_e)``: mean squared difference.
- Fixed weighting: ``0.4 detail + 0.3 semantic + 0.2 element + 0.1 consistency`` (issue 14).
- Adaptive weighting: homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018,
  arXiv 1705.07115): ``sum_i exp(-s_i) L_i + s_i`` over the three task losses with learned
  ``s_i = log sigma_i^2`` (the model's ``task_log_vars``), plus the fixed-weight consistency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from evmlm.dataset.labels import CLASS_INDEX, ELEMENT_INDEX

#: element type -> semantic classes any one of which in the function implies it
IMPLIED_BY: dict[str, tuple[str, ...]] = {
    "event_emit": ("kw_emit", "event_name"),
    "custom_error": ("error_name",),
    "loop": ("kw_loop",),
    "conditional": ("kw_branch", "op_ternary"),
    "inline_assembly": ("kw_assembly", "assembly_builtin"),
    "unchecked_block": ("kw_unchecked",),
    "try_catch": ("kw_try",),
    "modifier": ("modifier_name",),
    "internal_call": ("internal_call",),
    "external_call": ("external_call",),
    "returns_value": ("kw_returns",),
    "revert": ("kw_revert",),
    "contract_creation": ("kw_new",),
}

WEIGHTINGS = ("fixed", "uncertainty")
TASKS = ("detail", "semantic", "element")


@dataclass(frozen=True)
class LossWeights:
    """Fixed weights λ (issue 14's values by default). Raises ValueError for a negative one."""

    detail: float = 0.4
    semantic: float = 0.3
    element: float = 0.2
    consistency: float = 0.1

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 0:
            raise ValueError(f"loss weights must be >= 0, got {asdict(self)}")


def implication_matrix(num_classes: int, num_elements: int) -> torch.Tensor:
    """(elements, classes) 0/1 float matrix of :data:`IMPLIED_BY`."""
    m = torch.zeros(num_elements, num_classes)
    for e, classes in IMPLIED_BY.items():
        for c in classes:
            m[ELEMENT_INDEX[e], CLASS_INDEX[c]] = 1.0
    return m


def semantic_loss(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``logits`` (batch, seq, classes) at position t against ``classes[:, t + 1]`` (batch,
    seq; -100 = not supervised): mean cross-entropy (nats)."""
    return nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        classes[:, 1:].reshape(-1),
        ignore_index=-100,
    )


def element_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``logits`` and 0/1 ``targets`` (batch, elements): mean binary cross-entropy (nats)."""
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float())


def consistency_loss(
    semantic_logits: torch.Tensor,
    classes: torch.Tensor,
    element_logits: torch.Tensor,
    implication: torch.Tensor,
) -> torch.Tensor:
    """Mean over the batch and the implied element types of
    ``(sigmoid(z_e) - max_t P(class_{t+1} in C_e))^2``; the max runs over positions whose next
    token is supervised (``classes[:, t + 1] != -100``). ``implication`` (elements, classes)
    from :func:`implication_matrix`. 0 for a batch with no supervised token."""
    probs = torch.softmax(semantic_logits[:, :-1].float(), dim=-1)  # (b, s-1, C)
    valid = (classes[:, 1:] != -100).unsqueeze(-1)  # (b, s-1, 1)
    p_e = probs @ implication.to(probs.device).T  # (b, s-1, E): P(class in C_e)
    q = (p_e * valid).amax(dim=1)  # (b, E)
    rows = implication.sum(1) > 0
    if not bool(valid.any()) or not bool(rows.any()):
        return semantic_logits.sum() * 0.0
    diff = torch.sigmoid(element_logits.float())[:, rows] - q[:, rows.to(q.device)]
    return (diff**2).mean()


class MultitaskLoss(nn.Module):
    """Computes the four losses and their weighted total from a model output and a batch.

    ``weighting``: ``fixed`` or ``uncertainty``; ``weights``: the fixed λ (the consistency
    weight is used by both). ``forward(output, batch, log_vars)`` returns ``(total, parts)``:
    parts maps ``detail``, ``semantic``, ``element``, ``consistency`` (and, adaptive, the
    effective weights ``w_detail`` ...) to floats. Raises ValueError for an unknown weighting.
    """

    def __init__(
        self,
        num_classes: int,
        num_elements: int,
        weighting: str = "fixed",
        weights: LossWeights = LossWeights(),
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")
        self.weighting = weighting
        self.weights = weights
        self.register_buffer(
            "implication", implication_matrix(num_classes, num_elements), persistent=False
        )

    def forward(
        self, output: Any, batch: dict[str, torch.Tensor], log_vars: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        from evmlm.multitask.modeling import detail_loss

        losses = {
            "detail": detail_loss(output.logits, batch["labels"]),
            "semantic": semantic_loss(output.semantic_logits, batch["semantic_labels"]),
            "element": element_loss(output.element_logits, batch["element_labels"]),
            "consistency": consistency_loss(
                output.semantic_logits,
                batch["semantic_labels"],
                output.element_logits,
                self.implication,
            ),
        }
        parts = {k: float(v.detach()) for k, v in losses.items()}
        w = self.weights
        if self.weighting == "fixed":
            total = (
                w.detail * losses["detail"]
                + w.semantic * losses["semantic"]
                + w.element * losses["element"]
                + w.consistency * losses["consistency"]
            )
            return total, parts
        if log_vars is None or log_vars.shape != (len(TASKS),):
            raise ValueError("uncertainty weighting needs the model's task_log_vars (3,)")
        total = w.consistency * losses["consistency"]
        for i, task in enumerate(TASKS):
            total = total + torch.exp(-log_vars[i]) * losses[task] + log_vars[i]
            parts[f"w_{task}"] = float(torch.exp(-log_vars[i]).detach())
        return total, parts

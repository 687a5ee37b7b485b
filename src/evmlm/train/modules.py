"""Parameter groups of a (PEFT-wrapped) Llama by module name, shared by the gradient-norm
analysis (:mod:`evmlm.train.grad_norms`) and phased LoRA (:mod:`evmlm.train.phases`).
No torch import."""

from __future__ import annotations

import re
from dataclasses import dataclass

GROUPS = ("attention", "mlp", "embed", "lm_head", "other")
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class ParamKey:
    """Where one parameter counts: its group, its layer (None outside the decoder stack) and its
    LoRA part (``lora_A``, ``lora_B`` or None)."""

    group: str
    layer: int | None
    lora: str | None


def param_group(name: str) -> ParamKey:
    """Classify a parameter name of a (PEFT-wrapped) Llama, e.g.
    ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight`` ->
    ``ParamKey("attention", 3, "lora_A")``."""
    parts = name.split(".")
    if any(p in _ATTN for p in parts):
        group = "attention"
    elif any(p in _MLP for p in parts):
        group = "mlp"
    elif "embed_tokens" in parts:
        group = "embed"
    elif "lm_head" in parts:
        group = "lm_head"
    else:
        group = "other"
    m = _LAYER.search(name)
    lora = "lora_A" if "lora_A" in parts else "lora_B" if "lora_B" in parts else None
    return ParamKey(group, int(m.group(1)) if m else None, lora)

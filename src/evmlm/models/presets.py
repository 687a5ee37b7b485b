"""Named Llama-architecture size presets, from ~1M (tests) to ~100M parameters.

A preset fixes the shape (hidden size, layers, heads, FFN size, context length); the vocabulary
size comes from the tokenizer. Parameter counts below are for an 8,192-token vocabulary with
tied input/output embeddings (as Llama 3.2 1B/3B do). Every linear layer's input size is a
multiple of 64, the NF4 block size bitsandbytes' CPU 4-bit kernels need (QLoRA). ``small`` is the best 10-minute CPU
pretraining shape measured on the 2-core reference machine (d=192, 6 layers, 6 heads, FFN 512,
context 256; docs/architecture.md, "Training on the CPU").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)


class UnknownPresetError(EvmlmError):
    """A model preset name that is not in :data:`PRESETS`."""


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a Llama decoder. ``context_length`` in tokens; sizes in units of hidden features."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    context_length: int
    num_kv_heads: int | None = None  # None = num_heads (no grouped-query attention)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"preset {self.name}: hidden_size {self.hidden_size} not divisible by num_heads {self.num_heads}"
            )


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset("tiny", 128, 2, 4, 256, 256),  # ~1.4M params: tests
        ModelPreset("small", 192, 6, 6, 512, 256),  # ~4.2M: CPU default
        ModelPreset("medium", 256, 8, 8, 704, 512),  # ~8.5M
        ModelPreset("base", 512, 8, 8, 1408, 1024),  # ~29M
        ModelPreset("large", 768, 12, 12, 2048, 1024, 4),  # ~85M (GQA, 4 KV heads)
    )
}


def get_preset(name: str) -> ModelPreset:
    """The preset called ``name``. Raises UnknownPresetError listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPresetError(
            f"model preset {name!r} is unknown; use one of {', '.join(PRESETS)}"
        ) from None


def llama_config(
    preset: ModelPreset | str,
    vocab_size: int,
    *,
    bos_token_id: int | None = None,
    eos_token_id: int = 0,
    pad_token_id: int = 1,
):  # -> LlamaConfig
    """A ``transformers.LlamaConfig`` for ``preset`` with ``vocab_size`` tokens (RoPE θ = 10,000)."""
    from transformers import LlamaConfig

    p = get_preset(preset) if isinstance(preset, str) else preset
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_layers,
        num_attention_heads=p.num_heads,
        num_key_value_heads=p.num_kv_heads or p.num_heads,
        max_position_embeddings=p.context_length,
        tie_word_embeddings=True,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


def build_model(
    preset: ModelPreset | str, vocab_size: int, *, seed: int = 0, **token_ids: int
):  # -> LlamaForCausalLM
    """A randomly initialised ``LlamaForCausalLM`` (float32) for ``preset``; nothing is downloaded.

    ``token_ids``: ``eos_token_id`` / ``pad_token_id`` / ``bos_token_id`` of the tokenizer.
    """
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(preset, vocab_size, **token_ids))
    log.info(
        "built %s Llama: %.2fM parameters",
        preset if isinstance(preset, str) else preset.name,
        model.num_parameters() / 1e6,
    )
    return model

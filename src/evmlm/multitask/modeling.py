"""The multi-task decoder: Llama blocks with cross-layer weight sharing and three heads.

- **Backbone**: ``num_hidden_layers`` logical layers run ``transformers``' ``LlamaDecoderLayer``
  blocks; ``layer_groups[i]`` names the block logical layer ``i`` runs, so layers in one group
  share one set of weights (one tensor each: ``model.blocks[g]``; ALBERT-style sharing, Lan
  et al. 2020, arXiv 1909.11942). ``[0, 0, 1, 1, 2, 2]`` halves the block parameters of a
  6-layer model. Each logical layer keeps its own KV-cache slot.
- **Detail head** (``lm_head``): next-token logits over the vocabulary (the Solidity tokens);
  tied to the input embeddings like evmlm's Llama presets. ``generate`` uses it, so the model
  decompiles like any evmlm causal LM.
- **Semantic head** (``semantic_head``): per-token logits over the semantic classes
  (:data:`evmlm.dataset.labels.SEMANTIC_CLASSES`) of the token at the same position.
- **Element classifier** (``element_head``, :class:`ElementHead`): multi-label logits over the
  element types (:data:`evmlm.dataset.labels.ELEMENT_TYPES`) from the final hidden states of
  the prompt (TAC + draft) tokens (``prompt_mask``), pooled once per element type by label-wise
  attention (CAML, Mullenbach et al. 2018, arXiv 1802.05695): an element type is a presence
  question ("does the function emit an event?") that one or two tokens of a long prompt answer,
  which a mean over hundreds of tokens dilutes.

``attention: sparse`` selects :mod:`evmlm.multitask.attention` (windowed + top-k) as the
attention implementation; the default is dense SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, LlamaConfig, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import ModelOutput
from transformers.models.llama.modeling_llama import (
    LlamaDecoderLayer,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
)

from evmlm.dataset.labels import ELEMENT_TYPES, SEMANTIC_CLASSES
from evmlm.multitask import attention as sparse

MODEL_TYPE = "evmlm_multitask"


class MultitaskConfig(LlamaConfig):
    """A ``LlamaConfig`` plus the multi-task fields (saved in ``config.json``).

    ``layer_groups``: block index per logical layer (None = no sharing); block indices must be
    ``0..n_blocks-1``, each used. ``attention``: ``sdpa`` (dense, default) or ``sparse``;
    ``sparse_window`` / ``sparse_top_k``: the sparse rule's block size in tokens and number of
    far blocks. ``loss_weighting``: ``fixed`` or ``uncertainty`` (then the model holds the
    learned log-variances ``task_log_vars``, :mod:`evmlm.multitask.loss`).
    ``num_semantic_classes`` / ``num_element_types``: head sizes (the label lists' lengths).
    ``element_thresholds``: per element type, the probability above which the classifier
    predicts it (None = 0.5 for every type; ``evmlm multitask calibrate`` sets them from the
    validation split, :func:`evmlm.multitask.training.choose_threshold_rule`). Raises ValueError
    for inconsistent values.
    """

    model_type = MODEL_TYPE
    num_semantic_classes: int = len(SEMANTIC_CLASSES)
    num_element_types: int = len(ELEMENT_TYPES)
    layer_groups: list | None = None
    attention: str = "sdpa"
    sparse_window: int = 64
    sparse_top_k: int = 4
    loss_weighting: str = "fixed"
    element_thresholds: list | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        th = self.element_thresholds
        if th is not None and (
            len(th) != self.num_element_types or not all(0.0 < float(t) < 1.0 for t in th)
        ):
            raise ValueError(
                f"element_thresholds: {len(th)} values; need {self.num_element_types}, each"
                " strictly between 0 and 1"
            )
        if self.attention not in ("sdpa", "sparse"):
            raise ValueError(f"attention: {self.attention!r}; use sdpa or sparse")
        if self.loss_weighting not in ("fixed", "uncertainty"):
            raise ValueError(f"loss_weighting: {self.loss_weighting!r}; use fixed or uncertainty")
        if self.sparse_window < 1 or self.sparse_top_k < 0:
            raise ValueError("sparse_window must be >= 1 and sparse_top_k >= 0")
        groups = self.groups()
        if len(groups) != self.num_hidden_layers:
            raise ValueError(
                f"layer_groups has {len(groups)} entries for {self.num_hidden_layers} layers"
            )
        if sorted(set(groups)) != list(range(len(set(groups)))):
            raise ValueError(f"layer_groups {groups}: block indices must be 0..n-1, each used")

    def thresholds(self) -> list[float]:
        """Per element type, P(present) above which the classifier predicts it."""
        if self.element_thresholds is None:
            return [0.5] * self.num_element_types
        return [float(t) for t in self.element_thresholds]

    def groups(self) -> list[int]:
        """Block index per logical layer."""
        if self.layer_groups is None:
            return list(range(self.num_hidden_layers))
        return [int(g) for g in self.layer_groups]


def share_groups(num_layers: int, share: int) -> list[int] | None:
    """``layer_groups`` where each run of ``share`` consecutive layers shares one block
    (``share_groups(6, 2) == [0, 0, 1, 1, 2, 2]``); None for ``share <= 1``."""
    if share <= 1:
        return None
    return [i // share for i in range(num_layers)]


@dataclass
class MultitaskOutput(ModelOutput):
    """Outputs: ``logits`` (batch, seq, vocab), ``semantic_logits`` (batch, seq, classes),
    ``element_logits`` (batch, elements), ``past_key_values``, ``hidden_states`` (the final
    normalised states, batch, seq, hidden) and ``loss`` (the detail loss when ``labels``)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    semantic_logits: torch.Tensor | None = None
    element_logits: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: torch.Tensor | None = None


class ElementHead(nn.Module):
    """Label-wise attention pooling + one logit per element type (CAML, Mullenbach et al. 2018,
    arXiv 1802.05695): per type ``e``, ``α_e = softmax_t(u_e · h_t)`` over the pooled tokens,
    ``z_e = w_e · Σ_t α_{e,t} h_t + b_e``. ``forward(hidden (batch, seq, hidden), mask (batch,
    seq) 1 = pooled token)`` returns (batch, elements) logits; a row with no pooled token pools
    every position."""

    def __init__(self, hidden_size: int, num_elements: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_size, num_elements, bias=False)
        self.weight = nn.Parameter(torch.empty(num_elements, hidden_size))
        self.bias = nn.Parameter(torch.zeros(num_elements))
        nn.init.normal_(self.weight, std=hidden_size**-0.5)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = mask.bool()
        mask = mask | ~mask.any(1, keepdim=True)  # nothing to pool: pool everything
        scores = self.query(hidden).float()  # (batch, seq, elements)
        scores = scores.masked_fill(~mask.unsqueeze(-1), torch.finfo(scores.dtype).min)
        alpha = scores.softmax(1).to(hidden.dtype)
        pooled = torch.einsum("bte,bth->beh", alpha, hidden)  # (batch, elements, hidden)
        return (pooled * self.weight).sum(-1) + self.bias


class MultitaskPreTrainedModel(PreTrainedModel):
    config_class = MultitaskConfig
    config: MultitaskConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = False
    _no_split_modules = ["LlamaDecoderLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True


class MultitaskForCausalLM(MultitaskPreTrainedModel, GenerationMixin):
    """The multi-task decoder (module doc). ``forward(input_ids (batch, seq), attention_mask,
    labels, prompt_mask, ...)`` returns :class:`MultitaskOutput`."""

    _tied_weights_keys = {"lm_head.weight": "embed_tokens.weight"}

    def __init__(self, config: MultitaskConfig) -> None:
        if config.attention == "sparse":
            sparse.register()
            config._attn_implementation = sparse.IMPLEMENTATION
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        n_blocks = max(config.groups()) + 1
        self.blocks = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(n_blocks)])
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.semantic_head = nn.Linear(config.hidden_size, config.num_semantic_classes)
        self.element_head = ElementHead(config.hidden_size, config.num_element_types)
        self.post_init()
        if config.loss_weighting == "uncertainty":  # s_i = log sigma_i^2, Kendall et al. 2018
            self.task_log_vars = nn.Parameter(torch.zeros(3))

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def layer_blocks(self) -> list[LlamaDecoderLayer]:
        """The block each logical layer runs (the same object for layers of one group)."""
        return [self.blocks[g] for g in self.config.groups()]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> MultitaskOutput:
        """``input_ids`` (batch, seq); ``attention_mask`` (batch, seq) 1 = token; ``labels``
        (batch, seq) token ids with -100 where not supervised (the detail loss, shifted inside
        as for any causal LM); ``prompt_mask`` (batch, seq) 1 on the prompt tokens the element
        classifier pools (default: ``attention_mask``). During generation (a KV cache) only the
        detail logits of the last ``logits_to_keep`` positions are computed."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        if position_ids is None:
            seen = past_key_values.get_seq_length() if past_key_values is not None else 0
            position_ids = torch.arange(
                seen, seen + inputs_embeds.shape[1], device=inputs_embeds.device
            ).unsqueeze(0)
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            position_ids=position_ids,
        )
        hidden = inputs_embeds
        pos_emb = self.rotary_emb(hidden, position_ids=position_ids)
        for i, block in enumerate(self.layer_blocks()):
            block.self_attn.layer_idx = i  # this logical layer's KV-cache slot
            hidden = block(
                hidden,
                attention_mask=mask,
                position_embeddings=pos_emb,
                position_ids=position_ids,
                past_key_values=past_key_values,
                use_cache=use_cache,
                **kwargs,
            )
        hidden = self.norm(hidden)
        generating = past_key_values is not None and labels is None and prompt_mask is None
        keep = hidden[:, -logits_to_keep:] if logits_to_keep else hidden
        logits = self.lm_head(keep)
        semantic = element = None
        if not generating:
            semantic = self.semantic_head(hidden)
            pool = prompt_mask if prompt_mask is not None else attention_mask
            if pool is None:
                pool = torch.ones(hidden.shape[:2], device=hidden.device)
            element = self.element_head(hidden, pool)
        loss = None
        if labels is not None:
            loss = detail_loss(logits, labels)
        return MultitaskOutput(
            loss=loss,
            logits=logits,
            semantic_logits=semantic,
            element_logits=element,
            past_key_values=past_key_values,
            hidden_states=hidden,
        )


def detail_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: ``logits`` (batch, seq, vocab) at position t predict
    ``labels[:, t + 1]``; -100 is ignored. Mean over supervised tokens (nats)."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    return nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)


def register_auto_classes() -> None:
    """Register :class:`MultitaskConfig` / :class:`MultitaskForCausalLM` with ``AutoConfig``,
    ``AutoModel`` and ``AutoModelForCausalLM`` (idempotent), so ``from_pretrained`` on a saved
    folder works through the Auto classes (:func:`evmlm.train.load_for_inference`)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    sparse.register()
    try:
        AutoConfig.register(MODEL_TYPE, MultitaskConfig)
    except ValueError:
        pass  # already registered
    for auto in (AutoModel, AutoModelForCausalLM):
        try:
            auto.register(MultitaskConfig, MultitaskForCausalLM)
        except ValueError:
            pass

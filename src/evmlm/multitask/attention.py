"""Block-sparse causal attention (windowed + top-k) as a transformers attention implementation.

Registered as ``"evmlm_sparse"`` in ``transformers.AttentionInterface`` (and its mask as the
SDPA boolean mask), so any Llama-block model selects it with
``config._attn_implementation = "evmlm_sparse"``; :class:`evmlm.multitask.MultitaskConfig`
does so for ``attention: sparse``. Dense SDPA stays the default.

The rule (docs/multitask.md, "Sparse attention"). Keys are cut into blocks of ``window``
tokens (block ``b`` = positions ``[b*window, (b+1)*window)``). A query at position ``p`` in
block ``j = p // window`` attends, causally, to

- the *window*: every key of its own block ``j`` and of the previous block ``j - 1``
  (between ``window`` and ``2*window`` keys), and
- the *top-k*: the ``top_k`` earlier blocks ``m < j - 1`` whose mean key is most similar
  (dot product, per head) to the mean key of block ``j - 1``.

Block ``j - 1`` lies wholly before every query of block ``j``, so the selection uses no future
token, and it is the same at training time (all queries at once) and when decoding one token
with a KV cache. Per query the cost is ``O((2 + top_k) * window)`` keys instead of ``O(p)``
(the selection itself is ``O((n / window)^2)`` block scores), after Longformer's local window
(Beltagy et al. 2020, arXiv 2004.05150) and the block selection of Quest (Tang et al. 2024,
arXiv 2406.10774). With ``window >= sequence length`` every key is in the window: exact dense
causal attention.
"""

from __future__ import annotations

from typing import Any

import torch

IMPLEMENTATION = "evmlm_sparse"


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, dim) -> (batch, kv_heads * n_rep, seq, dim)."""
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def _block_means(k: torch.Tensor, window: int) -> torch.Tensor:
    """Mean key of each block: (batch, heads, seq, dim) -> (batch, heads, n_blocks, dim);
    a partial last block is averaged over the keys it has."""
    b, h, s, d = k.shape
    nb = (s + window - 1) // window
    pad = nb * window - s
    kp = torch.nn.functional.pad(k, (0, 0, 0, pad))
    sums = kp.view(b, h, nb, window, d).sum(3)
    counts = torch.full((nb,), float(window), device=k.device, dtype=k.dtype)
    counts[-1] = window - pad
    return sums / counts[:, None]


def top_blocks(k: torch.Tensor, window: int, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query block j, its far blocks: ``(indices, ok)``, both (batch, heads, n_blocks,
    min(top_k, n_blocks)); ``indices[.., j, i]`` is one of the ``top_k`` blocks ``m < j - 1``
    whose mean key has the largest dot product with the mean key of block ``j - 1``, and
    ``ok`` is False for slots with no eligible block (fewer than ``top_k`` earlier blocks).

    ``k``: keys (batch, heads, seq, dim).
    """
    means = _block_means(k.float(), window)
    nb = means.shape[2]
    kk = min(top_k, nb)
    prev = torch.cat([means[:, :, :1], means[:, :, :-1]], dim=2)  # block j-1's mean, per j
    scores = prev @ means.transpose(-1, -2)  # (b, h, nb, nb)
    j = torch.arange(nb, device=k.device)
    eligible = j[None, :] < (j[:, None] - 1)  # m < j - 1
    scores = scores.masked_fill(~eligible, float("-inf"))
    top = scores.topk(kk, dim=-1)
    return top.indices, torch.isfinite(top.values)


def selected_blocks(k: torch.Tensor, window: int, top_k: int) -> torch.Tensor:
    """:func:`top_blocks` as a bool tensor (batch, heads, n_blocks, n_blocks): ``[.., j, m]``
    is True when key block ``m`` is one of query block ``j``'s far blocks."""
    nb = (k.shape[2] + window - 1) // window
    sel = torch.zeros(k.shape[0], k.shape[1], nb, nb, dtype=torch.bool, device=k.device)
    if top_k <= 0:
        return sel
    idx, ok = top_blocks(k, window, top_k)
    return sel.scatter_(-1, idx, ok)


def sparse_mask(
    k_len: int, q_positions: torch.Tensor, k: torch.Tensor, window: int, top_k: int
) -> torch.Tensor:
    """The allowed (query, key) pairs as a bool tensor (batch, heads, q_len, k_len).

    ``q_positions``: (q_len,) absolute positions of the queries (keys are at 0..k_len-1);
    ``k``: keys (batch, heads, k_len, dim), used for the top-k block selection.
    """
    sel = selected_blocks(k, window, top_k)  # (b, h, nb, nb)
    kpos = torch.arange(k_len, device=k.device)
    qblock = q_positions // window
    kblock = kpos // window
    causal = kpos[None, :] <= q_positions[:, None]
    local = kblock[None, :] >= (qblock[:, None] - 1)
    far = sel[:, :, qblock][:, :, :, kblock]  # (b, h, q, k)
    return causal[None, None] & (local[None, None] | far)


def _masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, scaling: float
) -> torch.Tensor:
    scores = (q @ k.transpose(-1, -2)) * scaling
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).nan_to_num(0.0).to(v.dtype)
    return probs @ v


def _blocked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, top_k: int, scaling: float
) -> torch.Tensor:
    """The fast path (q_len == k_len, no padding): per query block, gather the window's two
    blocks and the selected far blocks; memory O(seq * (2 + top_k) * window)."""
    b, h, s, d = q.shape
    nb = (s + window - 1) // window
    pad = nb * window - s
    qp = torch.nn.functional.pad(q, (0, 0, 0, pad)).view(b, h, nb, window, d)
    kp = torch.nn.functional.pad(k, (0, 0, 0, pad)).view(b, h, nb, window, d)
    vp = torch.nn.functional.pad(v, (0, 0, 0, pad)).view(b, h, nb, window, d)
    zeros = torch.zeros_like(kp[:, :, :1])
    k_prev = torch.cat([zeros, kp[:, :, :-1]], dim=2)
    v_prev = torch.cat([torch.zeros_like(vp[:, :, :1]), vp[:, :, :-1]], dim=2)
    keys = [k_prev, kp]
    vals = [v_prev, vp]
    n_far = min(top_k, max(nb - 2, 0))
    if n_far > 0:
        idx, ok = top_blocks(k, window, n_far)  # (b, h, nb, n_far)
        # advanced indexing (backward: an index_put into a key-sized gradient, O(seq * dim))
        bh = torch.arange(b * h, device=q.device)[:, None, None]
        flat = idx.reshape(b * h, nb, n_far)
        kf = kp.reshape(b * h, nb, window, d)[bh, flat].view(b, h, nb, n_far, window, d)
        vf = vp.reshape(b * h, nb, window, d)[bh, flat].view(b, h, nb, n_far, window, d)
        keys.append(kf.reshape(b, h, nb, n_far * window, d))
        vals.append(vf.reshape(b, h, nb, n_far * window, d))
    kc = torch.cat(keys, dim=3)  # (b, h, nb, (2 + n_far) * w, d)
    vc = torch.cat(vals, dim=3)
    qpos = torch.arange(nb * window, device=q.device).view(nb, window)
    local_pos = torch.cat([qpos - window, qpos], dim=1)  # (nb, 2w): block j-1, then block j
    mask_local = (local_pos[:, None, :] <= qpos[:, :, None]) & (local_pos >= 0)[:, None, :]
    mask = mask_local[None, None].expand(b, h, nb, window, 2 * window)
    if n_far > 0:
        far_ok = ok[..., None].expand(b, h, nb, n_far, window).reshape(b, h, nb, 1, -1)
        mask = torch.cat([mask, far_ok.expand(b, h, nb, window, n_far * window)], dim=-1)
    # every row has a key (the query itself), so no row is all -inf; SDPA over the
    # (batch, heads x blocks) rows keeps the (w x L) scores out of autograd's saved tensors
    n_keys = kc.shape[3]
    out = torch.nn.functional.scaled_dot_product_attention(
        qp.reshape(b, h * nb, window, d),
        kc.reshape(b, h * nb, n_keys, d),
        vc.reshape(b, h * nb, n_keys, d),
        attn_mask=mask.reshape(b, h * nb, window, n_keys),
        scale=scaling,
    )
    return out.view(b, h, nb * window, d)[:, :, :s]


def sparse_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The ``AttentionInterface`` function: query (batch, heads, q_len, dim), key / value
    (batch, kv_heads, k_len, dim), ``attention_mask`` the SDPA boolean mask (batch, 1, q_len,
    k_len) or None (causal, no padding). Returns (batch, q_len, heads, dim) and no weights.

    ``window`` and ``top_k`` come from ``module.config.sparse_window`` / ``sparse_top_k``.
    Queries are the last ``q_len`` positions of the ``k_len`` keys (a KV cache). With no
    padding and ``q_len == k_len`` the blocked path runs; otherwise the same rule as an
    explicit mask over all keys. ``dropout`` is not supported (training uses 0).
    """
    cfg = module.config
    window = int(getattr(cfg, "sparse_window", 64))
    top_k = int(getattr(cfg, "sparse_top_k", 4))
    n_rep = query.shape[1] // key.shape[1]
    key = _repeat_kv(key, n_rep)
    value = _repeat_kv(value, n_rep)
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    q_len, k_len = query.shape[2], key.shape[2]
    if attention_mask is None and q_len == k_len:
        out = _blocked_attention(query, key, value, window, top_k, scaling)
    else:
        qpos = torch.arange(k_len - q_len, k_len, device=query.device)
        allowed = sparse_mask(k_len, qpos, key, window, top_k)
        if attention_mask is not None:
            m = attention_mask[:, :, :, -k_len:]
            allowed = allowed & (m if m.dtype == torch.bool else m == 0)
        out = _masked_attention(query, key, value, allowed, scaling)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Register :data:`IMPLEMENTATION` with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, sparse_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)

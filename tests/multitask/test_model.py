"""The multi-task decoder: head losses on hand-built batches, weight sharing, save/load, sparse
attention against dense attention."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from evmlm.dataset.labels import CLASS_INDEX, ELEMENT_INDEX, ELEMENT_TYPES, SEMANTIC_CLASSES
from evmlm.multitask.loss import (
    IMPLIED_BY,
    LossWeights,
    MultitaskLoss,
    consistency_loss,
    element_loss,
    implication_matrix,
    semantic_loss,
)
from evmlm.multitask.modeling import MultitaskForCausalLM, detail_loss, share_groups

from .conftest import tiny_config

V, C, E = 7, len(SEMANTIC_CLASSES), len(ELEMENT_TYPES)


def test_detail_loss_known_values() -> None:
    # uniform logits: ln V per supervised token, whatever the label; -100 is not counted
    logits = torch.zeros(2, 4, V)
    labels = torch.tensor([[-100, 3, 4, -100], [-100, -100, 1, 2]])
    assert detail_loss(logits, labels).item() == pytest.approx(math.log(V), abs=1e-6)
    # position t predicts labels[t + 1]: logit ln 3 on the right token -> -ln(3 / (3 + V - 1))
    logits = torch.zeros(1, 2, V)
    logits[0, 0, 5] = math.log(3)
    got = detail_loss(logits, torch.tensor([[-100, 5]])).item()
    assert got == pytest.approx(-math.log(3 / (3 + V - 1)), abs=1e-6)


def test_semantic_loss_known_values() -> None:
    logits = torch.zeros(1, 3, C)
    classes = torch.tensor([[-100, CLASS_INDEX["kw_emit"], CLASS_INDEX["event_name"]]])
    assert semantic_loss(logits, classes).item() == pytest.approx(math.log(C), abs=1e-6)
    logits[0, 0, CLASS_INDEX["kw_emit"]] = 50.0  # certain and right at t=0; t=1 uniform
    assert semantic_loss(logits, classes).item() == pytest.approx(math.log(C) / 2, abs=1e-5)


def test_element_loss_known_values() -> None:
    targets = torch.zeros(2, E)
    targets[0, 3] = 1
    assert element_loss(torch.zeros(2, E), targets).item() == pytest.approx(math.log(2))
    logits = torch.zeros(1, E)
    logits[0, 0] = math.log(3)  # sigmoid = 3/4 on a present element: -ln(3/4); others ln 2
    t = torch.zeros(1, E)
    t[0, 0] = 1
    expect = (-math.log(0.75) + (E - 1) * math.log(2)) / E
    assert element_loss(logits, t).item() == pytest.approx(expect, abs=1e-6)


def test_consistency_loss_known_value() -> None:
    imp = implication_matrix(C, E)
    n_implied = len(IMPLIED_BY)
    sem = torch.full((1, 3, C), -50.0)
    sem[0, :, CLASS_INDEX["punctuation"]] = 50.0  # implies nothing...
    sem[0, 1, :] = -50.0
    sem[0, 1, CLASS_INDEX["kw_emit"]] = 50.0  # ...but position 1 is surely `emit`
    classes = torch.tensor([[-100, 1, 1]])  # positions 0 and 1 predict supervised tokens
    el = torch.zeros(1, E)  # sigmoid 0.5 everywhere
    # q = 1 for event_emit, 0 for the other implied elements: every diff is 0.5
    assert consistency_loss(sem, classes, el, imp).item() == pytest.approx(0.25, abs=1e-6)
    el[0, ELEMENT_INDEX["event_emit"]] = 50.0  # the classifier agrees on event_emit
    for e in IMPLIED_BY:
        if e != "event_emit":
            el[0, ELEMENT_INDEX[e]] = -50.0  # ...and on the absent ones
    assert consistency_loss(sem, classes, el, imp).item() == pytest.approx(0.0, abs=1e-6)
    el[0, ELEMENT_INDEX["event_emit"]] = -50.0  # it disagrees on one element of n_implied
    got = consistency_loss(sem, classes, el, imp).item()
    assert got == pytest.approx(1.0 / n_implied, abs=1e-6)


def _hand_batch() -> tuple[SimpleNamespace, dict[str, torch.Tensor]]:
    out = SimpleNamespace(
        logits=torch.zeros(1, 3, V),
        semantic_logits=torch.zeros(1, 3, C),
        element_logits=torch.zeros(1, E),
    )
    batch = {
        "labels": torch.tensor([[-100, 2, 3]]),
        "semantic_labels": torch.tensor([[-100, 4, 5]]),
        "element_labels": torch.zeros(1, E),
    }
    return out, batch


def test_total_fixed_and_uncertainty_weighting() -> None:
    out, batch = _hand_batch()
    # uniform semantic probabilities: q_e = P(class in C_e) = |C_e| / C; sigmoid(0) = 0.5
    q = torch.tensor([len(c) / C for c in IMPLIED_BY.values()])
    cons = float(((0.5 - q) ** 2).mean())
    fixed, parts = MultitaskLoss(C, E)(out, batch)
    expect = 0.4 * math.log(V) + 0.3 * math.log(C) + 0.2 * math.log(2) + 0.1 * cons
    assert parts["consistency"] == pytest.approx(cons, abs=1e-6)
    assert fixed.item() == pytest.approx(expect, abs=1e-5)
    unc = MultitaskLoss(C, E, "uncertainty", LossWeights())
    s = torch.tensor([0.0, math.log(2), 0.0])  # sigma_semantic^2 = 2 halves its weight
    total, parts = unc(out, batch, s)
    expect = math.log(V) + math.log(C) / 2 + math.log(2) + math.log(2) + 0.1 * cons
    assert total.item() == pytest.approx(expect, abs=1e-5)
    assert parts["w_semantic"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="task_log_vars"):
        unc(out, batch, None)
    with pytest.raises(ValueError):
        MultitaskLoss(C, E, "gradnorm")


def _forward_loss(model: MultitaskForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=ids, prompt_mask=torch.ones_like(ids))
    return out.logits.square().mean() + out.element_logits.square().mean()


def test_weight_sharing_is_one_tensor_and_gradients_accumulate() -> None:
    torch.manual_seed(0)
    shared = MultitaskForCausalLM(tiny_config(layer_groups=share_groups(4, 2)))
    plain = MultitaskForCausalLM(tiny_config())
    blocks = shared.layer_blocks()
    assert blocks[0] is blocks[1] and blocks[2] is blocks[3] and blocks[1] is not blocks[2]
    w = shared.blocks[0].self_attn.q_proj.weight
    assert blocks[1].self_attn.q_proj.weight.data_ptr() == w.data_ptr()
    assert len(shared.blocks) == 2
    per_block = sum(p.numel() for p in shared.blocks[0].parameters())
    n = lambda m: sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())  # noqa: E731
    assert n(plain) - n(shared) == 2 * per_block  # half of the four blocks
    assert "blocks.0.self_attn.q_proj.weight" in shared.state_dict()
    assert not any(k.startswith("blocks.2.") for k in shared.state_dict())
    # the unshared model with each pair of layers set to the shared block's weights computes
    # the same function; the shared tensor's gradient is the sum of the two layers' gradients
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith("blocks.")}
    for i, g in enumerate(shared.config.groups()):
        for k, v in shared.blocks[g].state_dict().items():
            state[f"blocks.{i}.{k}"] = v.clone()
    plain.load_state_dict(state)
    ids = torch.randint(2, 1024, (2, 12))
    _forward_loss(shared, ids).backward()
    _forward_loss(plain, ids).backward()
    g_shared = shared.blocks[0].mlp.down_proj.weight.grad
    g0 = plain.blocks[0].mlp.down_proj.weight.grad
    g1 = plain.blocks[1].mlp.down_proj.weight.grad
    assert g0.abs().sum() > 0 and g1.abs().sum() > 0
    torch.testing.assert_close(g_shared, g0 + g1, rtol=1e-4, atol=1e-6)


def test_save_load_identical_logits(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from evmlm.multitask import register_auto_classes

    register_auto_classes()
    torch.manual_seed(1)
    model = MultitaskForCausalLM(
        tiny_config(layer_groups=[0, 0, 1, 1], loss_weighting="uncertainty")
    ).eval()
    with torch.no_grad():
        model.task_log_vars.copy_(torch.tensor([0.1, 0.2, 0.3]))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "evmlm_multitask"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MultitaskForCausalLM)
    assert loaded.lm_head.weight is loaded.embed_tokens.weight  # still tied
    assert loaded.config.groups() == [0, 0, 1, 1]
    ids = torch.randint(2, 1024, (2, 16))
    pm = torch.ones_like(ids)
    with torch.no_grad():
        a = model(input_ids=ids, prompt_mask=pm)
        b = loaded(input_ids=ids, prompt_mask=pm)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.semantic_logits, b.semantic_logits)
    assert torch.equal(a.element_logits, b.element_logits)
    assert torch.equal(loaded.task_log_vars, model.task_log_vars)


def _pair(window: int, top_k: int) -> tuple[MultitaskForCausalLM, MultitaskForCausalLM]:
    torch.manual_seed(2)
    dense = MultitaskForCausalLM(tiny_config()).eval()
    sparse = MultitaskForCausalLM(
        tiny_config(attention="sparse", sparse_window=window, sparse_top_k=top_k)
    ).eval()
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def test_window_covering_the_sequence_equals_dense_attention() -> None:
    """Tolerance: 1e-5 absolute on float32 logits (the two paths sum in different orders)."""
    ids = torch.randint(2, 1024, (2, 40))
    dense, sparse = _pair(window=64, top_k=0)
    with torch.no_grad():
        d = dense(input_ids=ids).logits
        s = sparse(input_ids=ids).logits
    torch.testing.assert_close(s, d, rtol=0, atol=1e-5)
    # negative control: a window of 8 tokens and no far block is not dense attention
    _, narrow = _pair(window=8, top_k=0)
    with torch.no_grad():
        n = narrow(input_ids=ids).logits
    assert (n - d).abs().max() > 1e-3
    assert torch.allclose(n[:, :16], d[:, :16], atol=1e-5)  # blocks 0-1 see every earlier key


def test_sparse_blocked_path_equals_the_masked_rule_and_decoding() -> None:
    from evmlm.multitask.attention import _blocked_attention, _masked_attention, sparse_mask

    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 50, 8) for _ in range(3))
    for window, top_k in ((8, 2), (4, 3), (7, 0)):
        fast = _blocked_attention(q, k, v, window, top_k, 8**-0.5)
        mask = sparse_mask(50, torch.arange(50), k, window, top_k)
        ref = _masked_attention(q, k, v, mask, 8**-0.5)
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)
    # greedy generation with the KV cache equals recomputing the whole prefix each step
    _, sparse = _pair(window=4, top_k=1)
    ids = torch.randint(2, 1024, (1, 14))
    gen = sparse.generate(input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=1)
    cur = ids
    for _ in range(5):
        with torch.no_grad():
            nxt = sparse(input_ids=cur).logits[:, -1].argmax(-1, keepdim=True)
        cur = torch.cat([cur, nxt], 1)
    assert torch.equal(gen, cur)


def test_config_rejects_bad_groups_and_attention() -> None:
    with pytest.raises(ValueError, match="layer_groups"):
        tiny_config(layer_groups=[0, 0, 2, 2])
    with pytest.raises(ValueError, match="layer_groups"):
        tiny_config(layer_groups=[0, 1])
    with pytest.raises(ValueError, match="attention"):
        tiny_config(attention="flash")
    with pytest.raises(ValueError, match="element_thresholds"):
        tiny_config(element_thresholds=[0.5] * (E - 1))
    with pytest.raises(ValueError, match="element_thresholds"):
        tiny_config(element_thresholds=[0.5] * (E - 1) + [1.0])
    assert tiny_config().thresholds() == [0.5] * E
    assert tiny_config(element_thresholds=[0.3] * E).thresholds() == [0.3] * E


def test_element_head_pools_per_type_over_the_mask_only() -> None:
    """Label-wise attention: a type's logit is w_e · (softmax-weighted mean of the pooled
    tokens) + b_e; tokens outside the mask do not count; an empty mask pools everything."""
    from evmlm.multitask.modeling import ElementHead

    torch.manual_seed(0)
    head = ElementHead(8, 3)
    h = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    z = head(h, mask)
    assert z.shape == (2, 3)
    for e in range(3):  # by hand, row 0: softmax over tokens 0 and 1
        a = torch.softmax(h[0, :2] @ head.query.weight[e], 0)
        want = (a[:, None] * h[0, :2]).sum(0) @ head.weight[e] + head.bias[e]
        assert torch.allclose(z[0, e], want, atol=1e-5)
    h2 = h.clone()
    h2[0, 2:] = 100.0  # outside the mask: no effect
    assert torch.allclose(head(h2, mask)[0], z[0], atol=1e-6)
    assert torch.allclose(z[1], head(h[1:], torch.ones(1, 5))[0], atol=1e-6)


def test_head_optimizer_gives_the_new_heads_their_rate() -> None:
    from evmlm.multitask.modeling import MultitaskForCausalLM
    from evmlm.multitask.training import head_optimizer

    model = MultitaskForCausalLM(tiny_config())
    opt = head_optimizer(model, 1e-4, 2e-3)
    rates = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert rates[id(model.element_head.weight)] == rates[id(model.semantic_head.weight)] == 2e-3
    assert rates[id(model.blocks[0].mlp.up_proj.weight)] == rates[id(model.norm.weight)] == 1e-4
    assert len(rates) == len({id(p) for p in model.parameters()})  # each once (lm_head tied)

"""Training dynamics on a tiny Llama and real OpenZeppelin pairs: pre-clip gradient norms
(checked against the Trainer's own pre-clip total norm) and phased LoRA (each phase moves
exactly its adapters; frozen ones stay bit-identical, weight decay and Adam moments included)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from evmlm.config import ConfigError, FinetuneConfig, load_config
from evmlm.train.callbacks import PhasedLoRACallback
from evmlm.train.finetune import finetune
from evmlm.train.modules import ParamKey, param_group
from evmlm.train.phases import (
    PRESETS,
    PhaseSpecError,
    adapter_in_phase,
    parse_phases,
    resolve_phases,
)

from .conftest import split

CFG = FinetuneConfig(
    method="lora",
    max_length=160,
    batch_size=4,
    max_steps=6,
    epochs=10,
    eval_steps=100,
    save_steps=100,
    logging_steps=1,
    warmup_steps=0,
    time_budget_s=None,
    early_stopping_patience=None,
    bf16=False,
    learning_rate=5e-3,
    weight_decay=0.1,
    max_eval_examples=2,
    lr_scheduler="constant_with_warmup",
)


def _run(cfg: FinetuneConfig, base: Path, pairs: list[dict[str, Any]], out: Path, **kw: Any):
    return finetune(
        cfg,
        base_model=base,
        train_records=split(pairs, "train"),
        eval_records=split(pairs, "validation"),
        out_dir=out,
        threads=None,
        **kw,
    )


def test_param_group_names() -> None:
    assert param_group(
        "base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight"
    ) == ParamKey("attention", 3, "lora_A")
    assert param_group("model.layers.0.mlp.down_proj.weight") == ParamKey("mlp", 0, None)
    assert param_group("model.embed_tokens.weight") == ParamKey("embed", None, None)
    assert param_group("lm_head.weight") == ParamKey("lm_head", None, None)
    assert param_group("model.layers.1.input_layernorm.weight") == ParamKey("other", 1, None)


def test_phase_schedules_parse_and_resolve() -> None:
    ph = resolve_phases("both->mlp->attn", 9, 4)
    assert [(p.start, p.end, p.group) for p in ph] == [
        (0, 3, "both"),
        (3, 6, "mlp"),
        (6, 9, "attn"),
    ]
    ph = resolve_phases("early->late", 10, 6)
    assert [(p.start, p.end, p.layers) for p in ph] == [(0, 5, (0, 1, 2)), (5, 10, (3, 4, 5))]
    ph = resolve_phases("attn->mlp@2-3->both:0.2,7", 10, 4)
    assert [(p.start, p.end, p.layers) for p in ph] == [
        (0, 2, (0, 1, 2, 3)),
        (2, 7, (2, 3)),
        (7, 10, (0, 1, 2, 3)),
    ]
    assert set(PRESETS) == {"both->mlp->attn", "attn->mlp->both", "both->mlp->both", "early->late"}
    for bad in ("attn", "attn->foo", "attn->mlp:0.5,0.7", "attn->mlp:1.5", "mlp@3-1->attn"):
        with pytest.raises(PhaseSpecError):
            parse_phases(bad)
    with pytest.raises(PhaseSpecError, match="phase 2"):
        resolve_phases("attn->mlp:12", 10, 2)  # the second phase would start after the end
    with pytest.raises(PhaseSpecError, match="layers"):
        resolve_phases("attn->mlp@0-5", 10, 2)
    p = resolve_phases("early->late", 4, 2)[1]
    assert adapter_in_phase("base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight", p)
    assert not adapter_in_phase(
        "base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight", p
    )
    assert not adapter_in_phase("base_model.model.model.layers.1.mlp.up_proj.base_layer.weight", p)


def test_config_validates_phases_and_grad_norm_steps() -> None:
    assert (
        load_config(None, ["--finetune.lora_phases=early->late"]).finetune.lora_phases
        == "early->late"
    )
    for flags, key in (
        (["--finetune.lora_phases=attn->bogus"], "finetune.lora_phases"),
        (
            ["--finetune.lora_phases=both->mlp->attn", "--finetune.lora_targets=mlp"],
            "finetune.lora_phases",
        ),
        (["--finetune.lora_phases=early->late", "--finetune.method=full"], "finetune.lora_phases"),
        (["--finetune.grad_norm_steps=0"], "finetune.grad_norm_steps"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(None, flags)


class PhaseSnapshots(TrainerCallback):
    """Copies of every parameter at the start of each given step and at the end."""

    def __init__(self, at: list[int]) -> None:
        self.at = set(at)
        self.snaps: dict[int, dict[str, torch.Tensor]] = {}
        self.grads: list[dict[str, bool]] = []

    def _snap(self, step: int, model: Any) -> None:
        self.snaps[step] = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_step_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        if state.global_step in self.at and state.global_step not in self.snaps:
            self._snap(state.global_step, model)

    def on_pre_optimizer_step(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self.grads.append({n: p.grad is not None for n, p in model.named_parameters()})

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self._snap(state.global_step, model)


@pytest.mark.parametrize("strategy", list(PRESETS))
def test_each_phase_moves_exactly_its_adapters(
    strategy: str, tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    steps = 6
    phases = resolve_phases(strategy, steps, 2)  # the tiny preset has 2 layers
    snap = PhaseSnapshots([p.start for p in phases])
    cfg = replace(CFG, max_steps=steps, lora_phases=strategy, grad_norm_steps=1)
    r = _run(cfg, tiny_base, pairs, tmp_path / "ft", callbacks=[snap])
    assert r.steps == steps
    bounds = [p.start for p in phases] + [steps]
    lora = [n for n in snap.snaps[0] if ".lora_A." in n or ".lora_B." in n]
    assert lora
    for p, a, b in zip(phases, bounds, bounds[1:]):
        before, after = snap.snaps[a], snap.snaps[b]
        changed = {n for n in before if not torch.equal(before[n], after[n])}
        expected = {n for n in lora if adapter_in_phase(n, p)}
        assert changed == expected, f"{strategy} phase {p.index + 1}"
        for g in snap.grads[a:b]:  # frozen adapters had no gradient at any optimizer step
            assert {n for n in lora if g[n]} == expected
    rec = json.loads((tmp_path / "ft" / "lora_phases.json").read_text())
    assert [c["phase"] for c in rec["changes"]] == [p.index + 1 for p in phases]
    assert [c["step"] for c in rec["changes"]] == [p.start for p in phases]
    if strategy == "early->late":
        # the reference system's bug: the late layers must train (and have gradients) in phase 2
        assert all(".layers.1." in n for n in expected) and any(".lora_A." in n for n in expected)
        with (tmp_path / "ft" / "gradient_norms.layers.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r["group"] == "total"]
        late = {
            int(r["step"]): (int(r["layer"]), float(r["norm"]))
            for r in rows
            if int(r["step"]) > phases[1].start
        }
        assert late and all(layer == 1 and norm > 0 for layer, norm in late.values())


def test_gradient_norms_are_pre_clip_and_written(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    # max_grad_norm far below the real norm: every step is clipped, so a post-clip reading
    # would give ~1e-3; the callback must report the Trainer's own pre-clip total norm
    # two micro-batches per step: the hooks must report the accumulated gradient
    cfg = replace(
        CFG, max_steps=4, max_grad_norm=1e-3, grad_norm_steps=2, batch_size=2, grad_accum=2
    )
    out = tmp_path / "ft"
    _run(cfg, tiny_base, pairs, out)
    with (out / "gradient_norms.groups.csv").open() as f:
        groups = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in groups})
    assert steps == [1, 2, 4]  # step 1, then every 2nd
    names = {r["group"] for r in groups}
    assert names == {"attention", "mlp", "lora_A", "lora_B", "total"}
    state = json.loads(
        max((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        .joinpath("trainer_state.json")
        .read_text()
    )
    trainer_norm = {r["step"]: r["grad_norm"] for r in state["log_history"] if "grad_norm" in r}
    for r in groups:
        if r["group"] == "total":
            assert float(r["norm"]) == pytest.approx(trainer_norm[int(r["step"])], rel=1e-4)
            assert float(r["norm"]) > 100 * cfg.max_grad_norm
    by = {(int(r["step"]), r["group"]): float(r["norm"]) for r in groups}
    for s in steps:  # groups partition the total; A and B partition it too
        assert by[s, "attention"] ** 2 + by[s, "mlp"] ** 2 == pytest.approx(
            by[s, "total"] ** 2, rel=1e-5
        )
        assert by[s, "lora_A"] ** 2 + by[s, "lora_B"] ** 2 == pytest.approx(
            by[s, "total"] ** 2, rel=1e-5
        )
    with (out / "gradient_norms.layers.csv").open() as f:
        layers = list(csv.DictReader(f))
    assert {(r["layer"], r["group"]) for r in layers} == {
        (str(i), g) for i in (0, 1) for g in ("attention", "mlp", "total")
    }
    for s in steps:
        tot = sum(
            float(r["norm"]) ** 2 for r in layers if int(r["step"]) == s and r["group"] == "total"
        )
        assert tot == pytest.approx(by[s, "total"] ** 2, rel=1e-4)
        for r in layers:
            if int(r["step"]) == s:
                assert float(r["lora_A"]) ** 2 + float(r["lora_B"]) ** 2 == pytest.approx(
                    float(r["norm"]) ** 2, rel=1e-4
                )
    summary = json.loads((out / "gradient_norms.summary.json").read_text())
    assert summary["groups"]["total"]["n"] == 3 and summary["groups"]["total"][
        "first"
    ] == pytest.approx(by[1, "total"], rel=1e-5)
    assert set(summary["layers"]) == {
        f"{i}/{g}" for i in (0, 1) for g in ("attention", "mlp", "total")
    }
    for png in ("gradient_norms.png", "gradient_norms.heatmap.png", "gradient_norms.layers.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(out / "tb"))
    ev.Reload()
    assert [e.step for e in ev.Scalars("grad_norm/total")] == steps


class ZeroGradFreeze(PhasedLoRACallback):
    """The wrong way to freeze (negative control): adapters keep ``requires_grad`` and get zero
    gradients before the optimizer step, so AdamW still applies weight decay and momentum."""

    def _apply(self, model: Any, phase: Any, step: int) -> None:
        super()._apply(model, phase, step)
        for n, p in model.named_parameters():
            if ".lora_A." in n or ".lora_B." in n:
                p.requires_grad_(True)

    def on_pre_optimizer_step(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        for n, p in model.named_parameters():
            if (".lora_A." in n or ".lora_B." in n) and not adapter_in_phase(n, self.current):
                p.grad = torch.zeros_like(p)


def test_zero_gradient_freezing_drifts(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    """Negative control of the bit-identity check: zeroed (not None) gradients move the
    'frozen' adapters of phase 2 (weight decay on lora_A, Adam momentum on lora_B)."""
    phases = resolve_phases("both->mlp->attn", 6, 2)
    snap = PhaseSnapshots([p.start for p in phases])
    cfg = replace(CFG, max_steps=6)  # no lora_phases: the control callback does the freezing
    _run(
        cfg, tiny_base, pairs, tmp_path / "ft", callbacks=[ZeroGradFreeze("both->mlp->attn"), snap]
    )
    before, after = snap.snaps[2], snap.snaps[4]
    frozen = [n for n in before if ".self_attn." in n and (".lora_A." in n or ".lora_B." in n)]
    assert frozen and all(not torch.equal(before[n], after[n]) for n in frozen)

"""Gradient-norm analysis of a Trainer run: L2 norms per parameter group and per layer x group.

Groups (by Llama module name, :func:`param_group`): ``attention`` (q/k/v/o_proj), ``mlp``
(gate/up/down_proj), ``embed`` (embed_tokens), ``lm_head``, ``other`` (RMSNorm weights and
anything else), and ``total`` (every trainable parameter). When a PEFT model trains, the LoRA
matrices also count separately as ``lora_A`` and ``lora_B`` (each across all adapted modules),
and every per-layer row carries its LoRA A and B norms. A group's norm is
``sqrt(sum of squared L2 norms of its parameters' gradients)``, i.e. the L2 norm of the group's
gradient vector, the quantity ``torch.nn.utils.clip_grad_norm_`` computes for ``total``.

Where the norms are read (transformers 5.23, ``Trainer._run_epoch``): after the last micro-batch's
backward the Trainer calls ``_clip_grad_norm`` (which scales ``.grad`` in place when the norm
exceeds ``max_grad_norm``), *then* ``on_pre_optimizer_step``, then ``optimizer.step()``. A
callback therefore never sees the pre-clip gradient. :class:`GradNormCallback` instead arms, in
``on_step_begin`` of every N-th optimizer step, a ``register_post_accumulate_grad_hook`` on
each trainable parameter: the hook runs inside backward, right after autograd has accumulated
that parameter's ``.grad``, and records its norm (a 0-d tensor, no host sync); with gradient
accumulation the last micro-batch's call wins, so the recorded value is the norm of the full
accumulated gradient, before clipping. ``on_pre_optimizer_step`` removes the hooks and reads
all norms in one host transfer. Unarmed steps run no hook at all.

Limits: under DDP the hooks see the rank-local gradient before the all-reduce (rank 0 writes
the files); under fp16 loss scaling the norms are of the scaled gradient (evmlm trains in
float32 or bf16, where there is no scaler).

Outputs (in ``out_dir``): ``gradient_norms.groups.csv`` (``step,group,norm``),
``gradient_norms.layers.csv`` (``step,layer,group,norm,lora_A,lora_B``),
``gradient_norms.summary.json`` (per group and per layer x group: n, mean, std, min, max,
first, last), TensorBoard scalars ``grad_norm/<group>`` and ``grad_norm_layer/<layer>/<group>``,
and plots ``gradient_norms.png`` (group norms over steps above the train/eval loss),
``gradient_norms.heatmap.png`` (layer x step, total per layer) and
``gradient_norms.layers.png`` (per-layer mean norm, attention and mlp bars).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evmlm import atomic
from evmlm.train.modules import GROUPS, ParamKey, param_group

log = logging.getLogger(__name__)


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "first": values[0],
        "last": values[-1],
    }


class GradNormCallback(TrainerCallback):
    """Records pre-clip gradient L2 norms every ``every`` optimizer steps (and at step 1).

    ``out_dir``: where the CSV/JSON/PNG files go (written at every save and at the end);
    ``tb_dir``: TensorBoard log folder (None: no TensorBoard). Rows are keyed by the optimizer
    step they belong to (``state.global_step`` after the step, 1-based). On resume, rows of
    earlier steps are read back from ``gradient_norms.groups.csv`` / ``.layers.csv``.
    Raises ValueError for ``every < 1``.
    """

    def __init__(
        self, out_dir: str | Path, every: int = 10, tb_dir: str | Path | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"gradient-norm interval must be >= 1 step, got {every}")
        self.out_dir = Path(out_dir)
        self.every = every
        self.tb_dir = Path(tb_dir) if tb_dir is not None else None
        self.group_rows: list[tuple[int, str, float]] = []
        self.layer_rows: list[tuple[int, int, str, float, float | None, float | None]] = []
        self._handles: list[Any] = []
        self._norms: dict[str, Any] = {}
        self._keys: dict[str, ParamKey] = {}
        self._writer: Any = None
        self._step = 0

    # -- arming -------------------------------------------------------------------------------

    def armed(self, step: int) -> bool:
        """Whether optimizer step ``step`` (1-based) is measured."""
        return step == 1 or step % self.every == 0

    def _hook(self, name: str):
        import torch

        norms = self._norms

        def hook(p: Any) -> None:
            if p.grad is not None:
                norms[name] = torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float32)

        return hook

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self._keys = {n: param_group(n) for n, p in model.named_parameters() if p.requires_grad}
        self._load_previous(state.global_step)
        if self.tb_dir is not None and state.is_world_process_zero:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.tb_dir))

    def on_step_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self._step = state.global_step + 1
        if not self.armed(self._step):
            return
        self._norms.clear()
        # parameters may have changed requires_grad since train begin (phased LoRA): hook the
        # ones that train now, classify any new one
        for n, p in model.named_parameters():
            if p.requires_grad:
                if n not in self._keys:
                    self._keys[n] = param_group(n)
                self._handles.append(p.register_post_accumulate_grad_hook(self._hook(n)))

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not self._handles:
            return
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if not self._norms:
            return
        import torch

        names = list(self._norms)
        values = torch.stack([self._norms[n] for n in names]).double().cpu().tolist()
        self._norms.clear()
        self._record(self._step, dict(zip(names, values)))

    # -- aggregation ----------------------------------------------------------------------------

    def _record(self, step: int, norms: dict[str, float]) -> None:
        sq: dict[str, float] = {}
        layer_sq: dict[tuple[int, str], list[float]] = {}  # (layer, group) -> [all, A, B] squares
        for n, v in norms.items():
            k = self._keys[n]
            s = v * v
            for g in (k.group, "total") + ((k.lora,) if k.lora else ()):
                sq[g] = sq.get(g, 0.0) + s
            if k.layer is not None:
                for g in (k.group, "total"):
                    acc = layer_sq.setdefault((k.layer, g), [0.0, 0.0, 0.0])
                    acc[0] += s
                    if k.lora == "lora_A":
                        acc[1] += s
                    elif k.lora == "lora_B":
                        acc[2] += s
        lora = any(k.lora for k in self._keys.values())
        order = [g for g in (*GROUPS, "lora_A", "lora_B", "total") if g in sq]
        for g in order:
            self.group_rows.append((step, g, math.sqrt(sq[g])))
        for (layer, g), (a, la, lb) in sorted(layer_sq.items()):
            self.layer_rows.append(
                (
                    step,
                    layer,
                    g,
                    math.sqrt(a),
                    math.sqrt(la) if lora else None,
                    math.sqrt(lb) if lora else None,
                )
            )
        if self._writer is not None:
            for g in order:
                self._writer.add_scalar(f"grad_norm/{g}", math.sqrt(sq[g]), step)
            for (layer, g), (a, _, _) in layer_sq.items():
                self._writer.add_scalar(f"grad_norm_layer/{layer}/{g}", math.sqrt(a), step)

    def summary(self) -> dict[str, Any]:
        """Per group and per ``layer/group``: n, mean, std, min, max, first, last of the norms."""
        groups: dict[str, list[float]] = {}
        for _, g, v in self.group_rows:
            groups.setdefault(g, []).append(v)
        layers: dict[str, list[float]] = {}
        for _, layer, g, v, _, _ in self.layer_rows:
            layers.setdefault(f"{layer}/{g}", []).append(v)
        return {
            "every": self.every,
            "steps": sorted({s for s, _, _ in self.group_rows}),
            "groups": {g: _stats(v) for g, v in groups.items()},
            "layers": {
                k: _stats(v)
                for k, v in sorted(layers.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0]))
            },
        }

    # -- files --------------------------------------------------------------------------------

    def _load_previous(self, step: int) -> None:
        self.group_rows = [r for r in self.group_rows if r[0] <= step]
        self.layer_rows = [r for r in self.layer_rows if r[0] <= step]
        gp, lp = (
            self.out_dir / "gradient_norms.groups.csv",
            self.out_dir / "gradient_norms.layers.csv",
        )
        if step == 0 or self.group_rows or not gp.is_file():
            return
        with gp.open() as f:
            self.group_rows = [
                (int(r["step"]), r["group"], float(r["norm"]))
                for r in csv.DictReader(f)
                if int(r["step"]) <= step
            ]
        if lp.is_file():
            with lp.open() as f:

                def opt(x: str) -> float | None:
                    return float(x) if x else None

                self.layer_rows = [
                    (
                        int(r["step"]),
                        int(r["layer"]),
                        r["group"],
                        float(r["norm"]),
                        opt(r["lora_A"]),
                        opt(r["lora_B"]),
                    )
                    for r in csv.DictReader(f)
                    if int(r["step"]) <= step
                ]

    def write(self, log_history: list[dict[str, Any]] | None = None) -> None:
        """Write the CSVs, the summary JSON and the plots (atomically) into ``out_dir``."""
        if not self.group_rows:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", "group", "norm"])
        w.writerows((s, g, f"{v:.6g}") for s, g, v in self.group_rows)
        atomic.write_text(self.out_dir / "gradient_norms.groups.csv", buf.getvalue())
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", "layer", "group", "norm", "lora_A", "lora_B"])

        def fmt(x: float | None) -> str:
            return "" if x is None else f"{x:.6g}"

        w.writerows(
            (s, layer, g, f"{v:.6g}", fmt(a), fmt(b)) for s, layer, g, v, a, b in self.layer_rows
        )
        atomic.write_text(self.out_dir / "gradient_norms.layers.csv", buf.getvalue())
        atomic.write_json(self.out_dir / "gradient_norms.summary.json", self.summary())
        plot_gradient_norms(self.group_rows, self.layer_rows, self.out_dir, log_history or [])

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.is_world_process_zero:
            self.write(state.log_history)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if state.is_world_process_zero:
            self.write(state.log_history)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def plot_gradient_norms(
    group_rows: list[tuple[int, str, float]],
    layer_rows: list[tuple[int, int, str, float, float | None, float | None]],
    out_dir: Path,
    log_history: list[dict[str, Any]],
) -> None:
    """The three PNGs described in the module docstring."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        with atomic.atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)

    fig, (ax, lx) = plt.subplots(2, 1, figsize=(8, 6), dpi=100, sharex=True)
    by_group: dict[str, list[tuple[int, float]]] = {}
    for s, g, v in group_rows:
        by_group.setdefault(g, []).append((s, v))
    steps = sorted({s for s, _, _ in group_rows})
    for g, pts in by_group.items():  # NaN where a group had no gradient (frozen phase): a gap
        got = dict(pts)
        ys = [got.get(s, float("nan")) for s in steps]
        ax.plot(steps, ys, ".-", label=g, lw=1.5 if g == "total" else 1)
    ax.set_yscale("log")
    ax.set_ylabel("gradient L2 norm (pre-clip)")
    ax.set_title("gradient norms by group")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    train = [(r["step"], r["loss"]) for r in log_history if "loss" in r and "step" in r]
    evals = [(r["step"], r["eval_loss"]) for r in log_history if "eval_loss" in r and "step" in r]
    if train:
        lx.plot(*zip(*train), "-", label="train loss", lw=1)
    if evals:
        lx.plot(*zip(*evals), "o-", label="eval loss", lw=1.5)
    lx.set_xlabel("optimizer step")
    lx.set_ylabel("loss (nats/token)")
    lx.grid(alpha=0.3)
    if train or evals:
        lx.legend(fontsize=8)
    save(fig, "gradient_norms.png")

    totals = [(s, layer, v) for s, layer, g, v, _, _ in layer_rows if g == "total"]
    if not totals:
        return
    steps = sorted({s for s, _, _ in totals})
    layers = sorted({layer for _, layer, _ in totals})
    grid = np.full((len(layers), len(steps)), np.nan)
    si, li = {s: i for i, s in enumerate(steps)}, {layer: i for i, layer in enumerate(layers)}
    for s, layer, v in totals:
        grid[li[layer], si[s]] = v
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(layers)), dpi=100)
    im = ax.imshow(np.log10(np.maximum(grid, 1e-12)), aspect="auto", origin="lower", cmap="viridis")
    ax.set_yticks(range(len(layers)), [str(x) for x in layers])
    ticks = list(range(0, len(steps), max(1, len(steps) // 10)))
    ax.set_xticks(ticks, [str(steps[i]) for i in ticks])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("layer")
    ax.set_title("log10 gradient L2 norm per layer")
    fig.colorbar(im, ax=ax)
    save(fig, "gradient_norms.heatmap.png")

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    groups = [g for g in ("attention", "mlp", "other") if any(r[2] == g for r in layer_rows)]
    width = 0.8 / max(1, len(groups))
    for i, g in enumerate(groups):
        means = [
            statistics.fmean(
                [v for _, layer, gg, v, _, _ in layer_rows if gg == g and layer == x] or [0.0]
            )
            for x in layers
        ]
        ax.bar(np.arange(len(layers)) + i * width, means, width, label=g)
    ax.set_xticks(np.arange(len(layers)) + width * (len(groups) - 1) / 2, [str(x) for x in layers])
    ax.set_xlabel("layer")
    ax.set_ylabel("mean gradient L2 norm")
    ax.set_title("per-layer gradient norm (mean over measured steps)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    save(fig, "gradient_norms.layers.png")

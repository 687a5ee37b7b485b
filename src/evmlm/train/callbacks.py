"""``transformers.TrainerCallback``s shared by pretraining and fine-tuning.

- :class:`ThroughputCallback` adds ``tokens_per_second`` (training tokens / wall seconds since
  the previous log) to every log record, before TensorBoard writes it.
- :class:`TimeBudgetCallback` stops training once a wall-clock budget (seconds) is spent.
- :class:`PhasedLoRACallback` switches which LoRA adapters train at phase boundaries
  (``finetune.lora_phases``, :mod:`evmlm.train.phases`).
- :class:`LossCurveCallback` redraws a loss-curve PNG (train loss and eval loss vs step) after
  every evaluation, checkpoint and at the end.

:func:`standard_callbacks` returns them in the order the Trainer must call them, with
``transformers``' own ``TensorBoardCallback`` and ``EarlyStoppingCallback``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evmlm import atomic
from evmlm.train.phases import Phase, PhaseSpecError, adapter_in_phase, parse_phases, resolve_phases

log = logging.getLogger(__name__)


class ThroughputCallback(TrainerCallback):
    """Logs ``tokens_per_second``: tokens trained since the last log / wall seconds since then.

    Tokens come from ``state.num_input_tokens_seen`` when the Trainer counts them
    (``include_num_input_tokens_seen``), else from ``tokens_per_step`` × steps.
    """

    def __init__(self, tokens_per_step: int | None = None) -> None:
        self.tokens_per_step = tokens_per_step
        self._t = 0.0
        self._step = 0
        self._tokens = 0

    def _tokens_now(self, state: Any) -> int:
        seen = getattr(state, "num_input_tokens_seen", 0) or 0
        if seen:
            return int(seen)
        return state.global_step * (self.tokens_per_step or 0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._t, self._step, self._tokens = (
            time.perf_counter(),
            state.global_step,
            self._tokens_now(state),
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
    ) -> None:
        if logs is None or "loss" not in logs or state.global_step <= self._step:
            return
        now, tokens = time.perf_counter(), self._tokens_now(state)
        if now > self._t and tokens > self._tokens:
            logs["tokens_per_second"] = round((tokens - self._tokens) / (now - self._t), 1)
        self._t, self._step, self._tokens = now, state.global_step, tokens

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # evaluation time is not training time: restart the clock after it
        self._t = time.perf_counter()


class TimeBudgetCallback(TrainerCallback):
    """Stops training (after saving a checkpoint) once ``seconds`` of wall time have passed."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._t0 = 0.0
        self.stopped_at: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if (
            self.seconds is not None
            and time.perf_counter() - self._t0 > self.seconds
            and self.stopped_at is None
        ):
            self.stopped_at = state.global_step
            log.info(
                "time budget of %.0f s spent at step %d: stopping", self.seconds, state.global_step
            )
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = args.eval_strategy != "no"


def plot_loss_curve(
    log_history: list[dict[str, Any]], path: str | Path, title: str = "loss"
) -> None:
    """Write a PNG of train loss and eval loss (natural-log cross-entropy, nats/token) vs step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in log_history if "loss" in r and "step" in r]
    evals = [(r["step"], r["eval_loss"]) for r in log_history if "eval_loss" in r and "step" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), ".-" if len(train) < 30 else "-", label="train loss", lw=1)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss", lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


class LossCurveCallback(TrainerCallback):
    """Redraws ``path`` (PNG) from ``state.log_history`` after each evaluation, save and at the end."""

    def __init__(self, path: str | Path, title: str = "loss") -> None:
        self.path = Path(path)
        self.title = title

    def _draw(self, state: Any) -> None:
        if state.is_world_process_zero:
            plot_loss_curve(state.log_history, self.path, self.title)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._draw(state)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._draw(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._draw(state)


class PhasedLoRACallback(TrainerCallback):
    """Switches which LoRA adapters train at phase boundaries (``on_step_begin``).

    All adapters of all phases exist from step 0 and are in the optimizer: the Trainer builds
    its optimizer from the parameters with ``requires_grad`` before ``on_train_begin``, where
    this callback first freezes. A frozen adapter gets ``requires_grad=False``; the Trainer's
    ``model.zero_grad()`` (``set_to_none=True``) after every step leaves its ``.grad`` None,
    and ``torch.optim.AdamW`` (fused or not) skips parameters whose ``.grad`` is None entirely
    (``_init_group``): no decoupled weight decay, no moment update, no step count. Frozen
    adapters are therefore bit-identical across their frozen phases (tested). Parameters that
    are not LoRA A/B matrices (e.g. PEFT trainable token rows) train throughout.

    ``out_dir``: ``lora_phases.json`` records the resolved phases and each change (step,
    phase, trainable adapter count). Single process only: DDP needs a fixed set of
    parameters that receive gradients.
    """

    def __init__(self, schedule: str, out_dir: str | Path | None = None) -> None:
        parse_phases(schedule)
        self.schedule = schedule
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.phases: list[Phase] = []
        self.changes: list[dict[str, Any]] = []
        self.current: Phase | None = None

    def phase_at(self, step: int) -> Phase:
        """The phase that trains optimizer step ``step + 1`` (``step`` steps already taken)."""
        for p in self.phases:
            if p.start <= step < p.end:
                return p
        return self.phases[-1]

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        n_layers = model.config.num_hidden_layers if hasattr(model, "config") else None
        if n_layers is None:  # pragma: no cover - every Llama has it
            raise PhaseSpecError("lora_phases: the model has no num_hidden_layers")
        self.phases = resolve_phases(self.schedule, state.max_steps, n_layers)
        names = [n for n, _ in model.named_parameters() if ".lora_A." in n or ".lora_B." in n]
        if not names:
            raise PhaseSpecError("lora_phases needs a LoRA model (finetune.method lora or qlora)")
        for p in self.phases:
            if not any(adapter_in_phase(n, p) for n in names):
                raise PhaseSpecError(
                    f"lora_phases: phase {p.index + 1} ({p.label()}) has no LoRA adapter; "
                    "check finetune.lora_targets"
                )
        self._apply(model, self.phase_at(state.global_step), state.global_step)

    def on_step_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        phase = self.phase_at(state.global_step)
        if phase is not self.current:
            self._apply(model, phase, state.global_step)

    def _apply(self, model: Any, phase: Phase, step: int) -> None:
        n_on = 0
        for n, p in model.named_parameters():
            if ".lora_A." in n or ".lora_B." in n:
                on = adapter_in_phase(n, phase)
                p.requires_grad_(on)
                if not on:
                    p.grad = None
                n_on += on
        self.current = phase
        self.changes.append(
            {
                "step": step,
                "phase": phase.index + 1,
                "label": phase.label(),
                "trainable_lora_tensors": n_on,
            }
        )
        log.info(
            "lora phase %d/%d (%s) from step %d to %d: %d LoRA tensors train",
            phase.index + 1,
            len(self.phases),
            phase.label(),
            phase.start,
            phase.end,
            n_on,
        )
        self._write()

    def _write(self) -> None:
        if self.out_dir is None:
            return
        from evmlm import atomic

        atomic.write_json(
            self.out_dir / "lora_phases.json",
            {
                "schedule": self.schedule,
                "phases": [
                    {
                        "phase": p.index + 1,
                        "label": p.label(),
                        "start": p.start,
                        "end": p.end,
                        "modules": list(p.modules),
                        "layers": list(p.layers),
                    }
                    for p in self.phases
                ],
                "changes": self.changes,
            },
        )


def standard_callbacks(
    *,
    tb_dir: str | Path,
    curve_path: str | Path,
    title: str,
    tokens_per_step: int | None = None,
    time_budget_s: float | None = None,
    early_stopping_patience: int | None = None,
) -> list[TrainerCallback]:
    """Callbacks in call order: throughput first (it adds to the logs TensorBoard then writes)."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers import EarlyStoppingCallback
    from transformers.integrations import TensorBoardCallback

    cbs: list[TrainerCallback] = [
        ThroughputCallback(tokens_per_step),
        TensorBoardCallback(SummaryWriter(log_dir=str(tb_dir))),
        LossCurveCallback(curve_path, title),
        TimeBudgetCallback(time_budget_s),
    ]
    if early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    return cbs

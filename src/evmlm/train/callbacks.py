"""``transformers.TrainerCallback``s shared by pretraining and fine-tuning.

- :class:`ThroughputCallback` adds ``tokens_per_second`` (training tokens / wall seconds since
  the previous log) to every log record, before TensorBoard writes it.
- :class:`TimeBudgetCallback` stops training once a wall-clock budget (seconds) is spent.
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
        self._t, self._step, self._tokens = time.perf_counter(), state.global_step, self._tokens_now(state)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
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
        if self.seconds is not None and time.perf_counter() - self._t0 > self.seconds and self.stopped_at is None:
            self.stopped_at = state.global_step
            log.info("time budget of %.0f s spent at step %d: stopping", self.seconds, state.global_step)
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = args.eval_strategy != "no"


def plot_loss_curve(log_history: list[dict[str, Any]], path: str | Path, title: str = "loss") -> None:
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

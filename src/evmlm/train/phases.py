"""Phased ("dynamic") LoRA: which LoRA adapters train in which part of a fine-tuning run.

A schedule is written as one string, the value of ``finetune.lora_phases``::

    PHASE -> PHASE [-> PHASE ...] [: B1, B2, ...]

Each PHASE is ``GROUP`` or ``GROUP@LAYERS``: GROUP is ``attn`` (q/k/v/o_proj), ``mlp``
(gate/up/down_proj) or ``both``; LAYERS is ``early`` (the first half of the decoder layers,
``floor(n/2)`` of them), ``late`` (the rest) or an inclusive range ``A-B`` (``3-5``). A bare
``early`` / ``late`` means ``both@early`` / ``both@late``. The optional boundaries after ``:``
are where phases 2..k start: each is a step count (an integer >= 1) or a fraction of the run's
optimizer steps (a number strictly between 0 and 1); without them the run is cut into equal
parts. The last phase always runs to the end of training.

Named presets (:data:`PRESETS`): ``both->mlp->attn``, ``attn->mlp->both``,
``both->mlp->both`` (module phases, thirds of the run) and ``early->late`` (layer-wise, halves).

:func:`parse_phases` checks the syntax only (used by ``FinetuneConfig`` validation; no torch);
:func:`resolve_phases` turns a schedule into step ranges once the run's step count is known.
:class:`evmlm.train.callbacks.PhasedLoRACallback` applies it; see its docstring for how frozen
adapters are kept bit-identical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from evmlm.lora_schedule import (  # noqa: F401 - the schedule's syntax, re-exported here
    GROUP_MODULES,
    GROUP_TARGETS,
    PRESETS,
    PhaseSpec,
    PhaseSpecError,
    parse_phases,
)
from evmlm.train.modules import param_group

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """One phase resolved for a run: optimizer steps ``[start, end)`` (0-based counts of steps
    already taken, ``end`` = the run's max steps for the last phase), the LoRA module names it
    trains and the decoder layers (sorted) it trains them in."""

    index: int
    start: int
    end: int
    group: str
    modules: tuple[str, ...]
    layers: tuple[int, ...]

    def label(self) -> str:
        layers = f"@{self.layers[0]}-{self.layers[-1]}" if self.layers else ""
        return f"{self.group}{layers}"


def _layers(sel: str | None, n_layers: int) -> tuple[int, ...]:
    half = n_layers // 2
    if sel is None:
        return tuple(range(n_layers))
    if sel == "early":
        return tuple(range(half))
    if sel == "late":
        return tuple(range(half, n_layers))
    a, b = map(int, sel.split("-"))
    if b >= n_layers:
        raise PhaseSpecError(f"layers {a}-{b}: the model has {n_layers} layers (0-{n_layers - 1})")
    return tuple(range(a, b + 1))


def resolve_phases(text: str, max_steps: int, n_layers: int) -> list[Phase]:
    """Step ranges and layers of a schedule for a run of ``max_steps`` optimizer steps on a model
    with ``n_layers`` decoder layers. Fractions round to the nearest step. Raises
    PhaseSpecError when phases would be empty (boundaries not strictly increasing inside
    ``(0, max_steps)``) or a layer selector is empty or out of range."""
    specs = parse_phases(text)
    k = len(specs)
    starts = [0]
    for i, s in enumerate(specs[1:], start=1):
        if s.start is None:
            starts.append(round(i * max_steps / k))
        elif isinstance(s.start, float):
            starts.append(round(s.start * max_steps))
        else:
            starts.append(s.start)
    ends = starts[1:] + [max_steps]
    phases = []
    for i, (s, a, b) in enumerate(zip(specs, starts, ends)):
        if not a < b:
            raise PhaseSpecError(
                f"{text!r}: phase {i + 1} ({s.group}) would cover steps [{a}, {b}) of "
                f"{max_steps}; give increasing boundaries inside the run"
            )
        layers = _layers(s.layers, n_layers)
        if not layers:
            raise PhaseSpecError(
                f"{text!r}: phase {i + 1} selects no layer of a {n_layers}-layer model"
            )
        phases.append(Phase(i, a, b, s.group, GROUP_MODULES[s.group], layers))
    return phases


def adapter_in_phase(name: str, phase: Phase) -> bool:
    """Whether LoRA parameter ``name`` (``...layers.<i>.<attn|mlp>.<module>.lora_{A,B}...``)
    trains in ``phase``."""
    key = param_group(name)
    module = next((p for p in name.split(".") if p in GROUP_MODULES["both"]), None)
    return key.lora is not None and module in phase.modules and key.layer in phase.layers

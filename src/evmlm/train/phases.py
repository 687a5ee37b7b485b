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
import re
from dataclasses import dataclass

from evmlm.train.modules import param_group

log = logging.getLogger(__name__)

#: Named strategies (the reference system's four); values are schedule strings.
PRESETS: dict[str, str] = {
    "both->mlp->attn": "both->mlp->attn",
    "attn->mlp->both": "attn->mlp->both",
    "both->mlp->both": "both->mlp->both",
    "early->late": "both@early->both@late",
}

GROUP_MODULES: dict[str, tuple[str, ...]] = {
    "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
}
GROUP_MODULES["both"] = GROUP_MODULES["attn"] + GROUP_MODULES["mlp"]
#: the ``finetune.lora_targets`` name of each phase group
GROUP_TARGETS = {"attn": "attention", "mlp": "mlp", "both": "all"}

_PHASE = re.compile(r"(attn|mlp|both)(?:@(early|late|\d+-\d+))?|(early|late)")


class PhaseSpecError(ValueError):
    """A ``finetune.lora_phases`` string does not parse, or does not fit the model/run."""


@dataclass(frozen=True)
class PhaseSpec:
    """One phase as written: module group, layer selector (None = all layers), start boundary
    (None = first phase or equal split; int = step; float in (0, 1) = fraction of the run)."""

    group: str
    layers: str | None
    start: int | float | None


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


def parse_phases(text: str) -> list[PhaseSpec]:
    """Parse a schedule string or preset name (see the module docstring).

    Raises PhaseSpecError naming the bad part.
    """
    text = PRESETS.get(text.strip(), text.strip())
    body, _, bounds = text.partition(":")
    names = [p.strip() for p in body.split("->")]
    if len(names) < 2:
        raise PhaseSpecError(
            f"{text!r}: needs at least two phases separated by '->' (presets: {', '.join(PRESETS)})"
        )
    specs: list[tuple[str, str | None]] = []
    for n in names:
        m = _PHASE.fullmatch(n)
        if not m:
            raise PhaseSpecError(
                f"{n!r}: not a phase; write attn, mlp or both, optionally @early, @late or "
                f"@A-B (presets: {', '.join(PRESETS)})"
            )
        if m.group(3):
            specs.append(("both", m.group(3)))
        else:
            layers = m.group(2)
            if layers and "-" in layers:
                a, b = map(int, layers.split("-"))
                if a > b:
                    raise PhaseSpecError(f"{n!r}: layer range {a}-{b} is empty")
            specs.append((m.group(1), layers))
    starts: list[int | float | None] = [None] * len(specs)
    if bounds.strip():
        parts = [b.strip() for b in bounds.split(",")]
        if len(parts) != len(specs) - 1:
            raise PhaseSpecError(
                f"{text!r}: {len(specs)} phases need {len(specs) - 1} boundaries after ':', "
                f"got {len(parts)}"
            )
        for i, b in enumerate(parts, start=1):
            try:
                v = float(b)
            except ValueError:
                raise PhaseSpecError(
                    f"{b!r}: a boundary must be a step (integer >= 1) or a fraction in (0, 1)"
                ) from None
            if 0 < v < 1:
                starts[i] = v
            elif v >= 1 and v == int(v) and "." not in b:
                starts[i] = int(v)
            else:
                raise PhaseSpecError(
                    f"{b!r}: a boundary must be a step (integer >= 1) or a fraction in (0, 1)"
                )
    return [PhaseSpec(g, layers, s) for (g, layers), s in zip(specs, starts)]


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

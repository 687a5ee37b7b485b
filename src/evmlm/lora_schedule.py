"""The syntax of a phased-LoRA schedule (``finetune.lora_phases``): presets, module groups and
:func:`parse_phases`. Pure Python, no torch, so that :mod:`evmlm.config` can validate a
schedule on construction; :mod:`evmlm.train.phases` resolves a schedule for a run and
documents the notation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

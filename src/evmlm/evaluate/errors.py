"""User-facing errors of evaluation and decompilation (one line each, naming the input)."""

from __future__ import annotations

from evmlm.errors import EvmlmError


class MetricsError(EvmlmError):
    """A metric cannot be computed (a missing model package, unusable input)."""


class SpliceError(EvmlmError):
    """A decompiled function cannot be spliced into its contract source (bad offsets, no source)."""


class BaselineError(EvmlmError):
    """A baseline decompiler is unavailable (e.g. .venv-panoramix missing: run scripts/setup_panoramix.sh)."""


class EvaluationError(EvmlmError):
    """Evaluation inputs are missing or unusable (no dataset split, no model directory)."""

"""``finetune.backend: unsloth``: the check that it can run here (docs/base-models.md, "unsloth").

unsloth (``FastLanguageModel`` + ``UnslothTrainer`` with ``embedding_learning_rate``) needs an
NVIDIA GPU to import and pins its own versions of transformers / TRL, so it is not a dependency
of evmlm: it lives in its own environment. This module only decides, before any work, whether
that backend can run; on a CPU machine (or without the package) it raises a one-line
:class:`UnslothUnavailableError` (exit status 2 from the CLI). The backend is untested in this
repository (no GPU on the reference machine).
"""

from __future__ import annotations

import importlib.util

from evmlm.errors import EvmlmError

INSTALL_HINT = (
    "use finetune.backend=trl here, or run on a CUDA GPU from unsloth's own environment"
    " (docs/base-models.md, 'unsloth')"
)


class UnslothUnavailableError(EvmlmError):
    """``finetune.backend=unsloth`` on a machine where unsloth cannot run."""


def check_unsloth() -> None:
    """Raise UnslothUnavailableError unless a CUDA GPU is visible and ``unsloth`` is installed.

    Cheap: no model, data or unsloth import (importing unsloth without a GPU raises inside it).
    """
    import torch

    if not torch.cuda.is_available():
        raise UnslothUnavailableError(
            f"finetune.backend=unsloth needs an NVIDIA GPU (none here); {INSTALL_HINT}"
        )
    if importlib.util.find_spec("unsloth") is None:
        raise UnslothUnavailableError(
            f"finetune.backend=unsloth: the unsloth package is not installed; {INSTALL_HINT}"
        )
    raise UnslothUnavailableError(
        "finetune.backend=unsloth: a GPU and unsloth are present, but evmlm's unsloth trainer is"
        f" not part of this release (untested without a GPU); {INSTALL_HINT}"
    )

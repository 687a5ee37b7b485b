"""Model export: GGUF files for llama.cpp / Ollama / LM Studio (docs/gguf.md).

:func:`evmlm.export.gguf.export_gguf` writes f16 / q8_0 / q4_k_m (any of
:data:`evmlm.config.GGUF_TYPES`) with llama.cpp's converter and quantizer and runs the
round-trip checks of :mod:`evmlm.export.checks`; ``evmlm export gguf`` and the ``export`` stage
call it. The converter wrapper (:mod:`evmlm.export.converter`) runs in a subprocess. Nothing
here is imported by the package's other layers; llama.cpp inference is
:mod:`evmlm.train.llamacpp`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_gguf"]


def export_gguf(model: Any, out_dir: Any, **kwargs: Any) -> dict[str, Any]:
    """See :func:`evmlm.export.gguf.export_gguf` (imported lazily: it loads torch)."""
    from evmlm.export.gguf import export_gguf as _export

    return _export(model, out_dir, **kwargs)

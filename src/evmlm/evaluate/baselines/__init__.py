"""Baselines scored with the same metrics as the model, on the same test functions.

- :mod:`~evmlm.evaluate.baselines.panoramix`: the Panoramix decompiler (own venv, subprocess);
- :mod:`~evmlm.evaluate.baselines.retrieval`: the train-split function whose TAC is nearest
  (TF-IDF cosine over TAC tokens) — what memorisation alone achieves;
- :mod:`~evmlm.evaluate.baselines.stub`: the signature only, with an empty body.
"""

from __future__ import annotations

BASELINES = ("panoramix", "retrieval", "signature_stub")

__all__ = ["BASELINES"]

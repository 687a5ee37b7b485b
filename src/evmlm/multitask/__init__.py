"""The multi-task decoder (issue 14): a Llama-block backbone with cross-layer weight sharing,
a detail head (the Solidity tokens), a semantic head (a class per target token), an
element-type classifier (multi-label, from the pooled TAC) and sparse attention; its
multi-task loss, training through the HF Trainer and evaluation. docs/multitask.md.

Importing this package loads nothing heavy; :func:`register_auto_classes` (called by
:mod:`evmlm.multitask.modeling` users and by the model loaders of decompile and evaluate)
makes saved models loadable through ``AutoModelForCausalLM``.
"""

from __future__ import annotations


def register_auto_classes() -> None:
    """Register the multi-task config and model with the transformers Auto classes
    (idempotent; loads torch and transformers)."""
    from evmlm.multitask.modeling import register_auto_classes as _register

    _register()


__all__ = ["register_auto_classes"]

"""Model configurations: named Llama-architecture size presets built locally (no hub download)."""

from __future__ import annotations

from evmlm.models.presets import PRESETS, ModelPreset, build_model, get_preset

__all__ = ["PRESETS", "ModelPreset", "build_model", "get_preset"]

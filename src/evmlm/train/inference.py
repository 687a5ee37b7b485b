"""Loading trained models for inference, and sampling text from them.

:func:`load_for_inference` accepts the three kinds of model folder evmlm writes or reads:
a merged plain model (``finetune/model/``), a LoRA adapter (``finetune/adapter/``, loaded on
its base and merged), or any local Hugging Face causal-LM folder. Hub names are resolved from
the user's cache only when ``HF_HUB_OFFLINE`` allows it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)


class ModelLoadError(EvmlmError):
    """A model path that does not exist or holds no model/adapter."""


_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name, as the Hugging Face Hub spells ids


def resolve_model_path(path: str | Path) -> str:
    """A local folder with ``config.json`` or ``adapter_config.json``, or a hub name (``org/name``).

    Raises ModelLoadError naming ``path`` for a local path that is missing or holds no model.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / "config.json").is_file() or (p / "adapter_config.json").is_file():
            return str(p)
        raise ModelLoadError(f"{p}: not a model folder (no config.json or adapter_config.json); pass a merged model, an adapter or a Hugging Face model folder")
    if p.exists():
        raise ModelLoadError(f"{p}: is a file, not a model folder")
    s = str(path)
    if not _HUB_NAME.match(s):
        raise ModelLoadError(f"{s}: model folder not found; pass an existing folder (e.g. runs/<name>/finetune/model) or a cached hub name org/model")
    return s  # a hub name: loaded from the user's cache


def load_for_inference(path: str | Path, *, dtype: Any = None, device: str | None = None, merge: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` ready for ``generate`` (eval mode).

    ``path``: a merged model folder, a LoRA adapter folder (its ``base_model_name_or_path`` is
    loaded, then the adapter; merged into plain weights when ``merge``), or a local HF model
    folder / cached hub name. The tokenizer comes from ``path`` when it has one, else from the
    adapter's base. ``dtype``: torch dtype (default float32). Raises ModelLoadError naming the
    path when it does not exist or is not a model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve_model_path(path)
    dtype = dtype or torch.float32
    local = Path(src)
    try:
        if local.is_dir() and (local / "adapter_config.json").is_file():
            from peft import PeftModel

            base_name = json.loads((local / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if not base_name:
                raise ModelLoadError(f"{local}: adapter records no base model; load it with PeftModel.from_pretrained(base, path)")
            base = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_name), dtype=dtype)
            tok_src = str(local) if (local / "tokenizer_config.json").is_file() else base_name
            tokenizer = AutoTokenizer.from_pretrained(tok_src)
            if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
                base.resize_token_embeddings(len(tokenizer))
            model = PeftModel.from_pretrained(base, str(local))
            if merge:
                model = model.merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(src)
    except ModelLoadError:
        raise
    except OSError as e:
        raise ModelLoadError(f"{src}: cannot load model ({str(e).splitlines()[0]}); check the path, or set HF_HUB_OFFLINE=0 to download a hub model") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. ``temperature`` 0 = greedy; ``top_k`` 0 = off; ``top_p`` 1.0 = off."""

    max_new_tokens: int = 256
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("--max-tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("--temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("--top-p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("--top-k must be >= 0")


def sample(model: Any, tokenizer: Any, prompt: str, cfg: SamplingConfig, *, on_text: Callable[[str], None] | None = None) -> str:
    """Generate a continuation of ``prompt``; returns the new text (special tokens kept).

    ``on_text`` receives the text as it is generated (``transformers.TextIteratorStreamer``
    in a generation thread) so a CLI can stream it to the terminal.
    """
    import threading

    import torch
    from transformers import TextIteratorStreamer, set_seed

    set_seed(cfg.seed)
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    greedy = cfg.temperature == 0
    kwargs: dict[str, Any] = dict(
        **enc,
        max_new_tokens=cfg.max_new_tokens,
        do_sample=not greedy,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if not greedy:
        kwargs.update(temperature=cfg.temperature, top_k=cfg.top_k or None, top_p=cfg.top_p)
    if on_text is None:
        with torch.no_grad():
            out = model.generate(**kwargs)
        return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=False)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False)
    thread = threading.Thread(target=lambda: _generate(model, {**kwargs, "streamer": streamer}))
    thread.start()
    parts: list[str] = []
    for piece in _iter(streamer):
        parts.append(piece)
        on_text(piece)
    thread.join()
    return "".join(parts)


def _generate(model: Any, kwargs: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        model.generate(**kwargs)


def _iter(streamer: Any) -> Iterator[str]:
    yield from streamer

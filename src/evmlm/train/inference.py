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
from typing import Any, Callable

from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)


class ModelLoadError(EvmlmError):
    """A model path that does not exist or holds no model/adapter."""


class SamplingError(EvmlmError, ValueError):
    """A decoding setting out of range (the message names the CLI flag)."""


_HUB_NAME = re.compile(
    r"^[A-Za-z0-9][\w.-]*/[\w.-]+$"
)  # org/name, as the Hugging Face Hub spells ids


def resolve_model_path(path: str | Path) -> str:
    """A local folder with ``config.json`` or ``adapter_config.json``, or a hub name (``org/name``).

    Raises ModelLoadError naming ``path`` for a local path that is missing or holds no model.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / "config.json").is_file() or (p / "adapter_config.json").is_file():
            return str(p)
        raise ModelLoadError(
            f"{p}: not a model folder (no config.json or adapter_config.json); pass a merged model, an adapter or a Hugging Face model folder"
        )
    if p.exists():
        raise ModelLoadError(f"{p}: is a file, not a model folder")
    s = str(path)
    if not _HUB_NAME.match(s):
        raise ModelLoadError(
            f"{s}: model folder not found; pass an existing folder (e.g. runs/<name>/finetune/model) or a cached hub name org/model"
        )
    return s  # a hub name: loaded from the user's cache


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin")


def _check_weights(folder: Path) -> None:
    """Read each ``*.safetensors`` header (cheap: no tensor is loaded); a truncated or corrupt
    file fails here. Raises ModelLoadError naming the file."""
    from safetensors import SafetensorError, safe_open

    if not any(folder.glob(g) for g in _WEIGHT_FILES):
        raise ModelLoadError(
            f"{folder}: no weights (no *.safetensors or pytorch_model.bin);"
            " pass a complete model folder"
        )
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt") as st:
                st.keys()
        except (SafetensorError, OSError) as e:
            raise ModelLoadError(
                f"{f}: corrupt or truncated weights ({' '.join(str(e).split())});"
                " re-save or re-download the model"
            ) from e


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: not a readable JSON file ({e}); re-save the model") from e
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object; re-save the model")
    return data


def check_model(path: str | Path) -> str:
    """Cheap checks of a model folder (or GGUF file) before expensive work (~ms):
    :func:`resolve_model_path`, readable ``config.json`` / ``adapter_config.json``, each
    safetensors file's header, and a tokenizer in the folder (or, for an adapter, in its base).
    Returns the resolved path or hub name. Raises ModelLoadError naming the file at fault.
    """
    if str(path).lower().endswith(".gguf"):  # llama.cpp (evmlm.train.llamacpp)
        from evmlm.train.llamacpp import check_gguf

        return check_gguf(path)
    src = resolve_model_path(path)
    local = Path(src)
    if not local.is_dir():
        return src  # a hub name from the cache: checked when loaded
    has_tokenizer = any((local / f).is_file() for f in _TOKENIZER_FILES)
    if (local / "adapter_config.json").is_file():
        base = _read_json(local / "adapter_config.json").get("base_model_name_or_path")
        if not isinstance(base, str) or not base:
            raise ModelLoadError(
                f"{local}: adapter records no base model;"
                " load it with PeftModel.from_pretrained(base, path)"
            )
        _check_weights(local)
        base_src = resolve_model_path(base)
        if Path(base_src).is_dir():
            _read_json(Path(base_src) / "config.json")
            _check_weights(Path(base_src))
            in_base = any((Path(base_src) / f).is_file() for f in _TOKENIZER_FILES)
            has_tokenizer = has_tokenizer or in_base
        else:
            has_tokenizer = True  # the base is a hub name: its tokenizer comes from the cache
    else:
        _read_json(local / "config.json")
        _check_weights(local)
    if not has_tokenizer:
        raise ModelLoadError(
            f"{local}: no tokenizer (tokenizer.json / tokenizer_config.json);"
            " save it beside the model with tokenizer.save_pretrained"
        )
    return src


def load_for_inference(
    path: str | Path, *, dtype: Any = None, device: str | None = None, merge: bool = True
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` ready for ``generate`` (eval mode).

    ``path``: a GGUF file (``*.gguf``: :func:`evmlm.train.llamacpp.load_gguf`, llama.cpp
    behind the same ``generate``; ``dtype``/``device``/``merge`` do not apply), a merged model
    folder, a LoRA adapter folder (its ``base_model_name_or_path`` is
    loaded, then the adapter; merged into plain weights when ``merge``), or a local HF model
    folder / cached hub name. The tokenizer comes from ``path`` when it has one, else from the
    adapter's base. ``dtype``: torch dtype (default float32). Raises ModelLoadError (one line,
    naming the path) when it does not exist, is not a model, has corrupt or truncated weights,
    has no tokenizer, or fails to load for any other reason (:func:`check_model` first).
    """
    if str(path).lower().endswith(".gguf"):  # a GGUF file: llama.cpp behind the same interface
        from evmlm.train.llamacpp import load_gguf

        return load_gguf(path)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = check_model(path)
    dtype = dtype or torch.float32
    local = Path(src)
    try:
        if local.is_dir() and (local / "adapter_config.json").is_file():
            from peft import PeftModel

            base_name = json.loads((local / "adapter_config.json").read_text()).get(
                "base_model_name_or_path"
            )
            base = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_name), dtype=dtype)
            tok_src = str(local) if (local / "tokenizer_config.json").is_file() else base_name
            tokenizer = AutoTokenizer.from_pretrained(tok_src)
            if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
                base.resize_token_embeddings(len(tokenizer))
            model = PeftModel.from_pretrained(base, str(local))
            if merge:
                model = model.merge_and_unload()
            # the adapter folder (its training_info.json: the fine-tuned prompt budget,
            # evmlm.decompile.generation.trained_length), not the base's
            model.name_or_path = str(local)
        else:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(src)
    except ModelLoadError:
        raise
    except OSError as e:
        raise ModelLoadError(
            f"{src}: cannot load model ({_first_line(e)}); check the path,"
            " or set HF_HUB_OFFLINE=0 to download a hub model"
        ) from e
    except Exception as e:  # transformers/peft/safetensors: ValueError, KeyError, RuntimeError...
        raise ModelLoadError(
            f"{src}: cannot load model ({type(e).__name__}: {_first_line(e)});"
            " re-save it or pass another model folder"
        ) from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. ``temperature`` 0 = greedy; ``top_k`` 0 = off; ``top_p`` 1.0 = off.

    Raises :class:`SamplingError` (a ValueError) for a value out of range."""

    max_new_tokens: int = 256
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise SamplingError("--max-tokens must be >= 1, got " + repr(self.max_new_tokens))
        if self.temperature < 0:
            raise SamplingError("--temperature must be >= 0, got " + repr(self.temperature))
        if not 0 < self.top_p <= 1:
            raise SamplingError("--top-p must be in (0, 1], got " + repr(self.top_p))
        if self.top_k < 0:
            raise SamplingError("--top-k must be >= 0, got " + repr(self.top_k))


def sample(
    model: Any,
    tokenizer: Any,
    prompt: str,
    cfg: SamplingConfig,
    *,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """Generate a continuation of ``prompt``; returns the new text (special tokens kept).

    ``on_text`` receives the text as it is generated (``transformers.TextIteratorStreamer``
    in a generation thread, :func:`generate_streamed`) so a CLI can stream it to the terminal.
    """
    import torch
    from transformers import set_seed

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
    return generate_streamed(model, tokenizer, on_text, **kwargs)


def generate_streamed(
    model: Any, tokenizer: Any, on_text: Callable[[str], None], **generate_kwargs: Any
) -> str:
    """``model.generate(**generate_kwargs)`` (one sequence) with its new text streamed:
    ``on_text(piece)`` per decoded piece as it is generated; returns the whole new text
    (special tokens kept, the prompt skipped).

    The one streaming path of evmlm (``evmlm sample`` and streamed decompilation): generation
    runs in a daemon thread feeding a ``transformers.TextIteratorStreamer``; an exception in
    generation is re-raised here (the stream is ended, so nothing hangs).
    """
    import threading

    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            _generate(model, {**generate_kwargs, "streamer": streamer})
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
            failed.append(e)
            streamer.end()

    thread = threading.Thread(target=run, name="evmlm-generate", daemon=True)
    thread.start()
    parts: list[str] = []
    for piece in streamer:
        parts.append(piece)
        on_text(piece)
    thread.join()
    if failed:
        raise failed[0]
    return "".join(parts)


def _generate(model: Any, kwargs: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        model.generate(**kwargs)

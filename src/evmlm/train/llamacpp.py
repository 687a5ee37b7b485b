"""llama.cpp as an inference backend: a GGUF file behind the interface of a transformers model.

:func:`load_gguf` returns ``(model, tokenizer)`` like :func:`evmlm.train.load_for_inference`:
``model`` is a :class:`LlamaCppModel` whose ``generate`` takes and returns what
``transformers``' ``generate`` does for the arguments evmlm uses (left-padded ``input_ids``
``(batch, seq)``, ``attention_mask``, ``max_new_tokens``, ``eos_token_id``, ``pad_token_id``,
``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``streamer``), so decompilation,
evaluation and sampling run on llama.cpp unchanged: the same prompts (:mod:`evmlm.train.prompt`
through the HF tokenizer), generation stopped at EOS, streamed through the same
``TextIteratorStreamer``. Rows of a batch are generated one after another (llama.cpp's Python
sampler is per sequence).

The tokenizer is the Hugging Face tokenizer saved beside the GGUF file by
``evmlm export gguf`` (prompt fitting needs a fast tokenizer's offsets); without one,
transformers builds one from the GGUF's own vocabulary (``gguf_file=``). Token ids go to
llama.cpp as ids, and the export checks that llama.cpp's own tokenizer agrees
(:mod:`evmlm.export.checks`). Needs ``llama-cpp-python`` (``scripts/setup.sh`` builds it);
without it :class:`LlamaCppMissing` says so in one line. docs/gguf.md.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"  # the first 4 bytes of every GGUF file (ggml docs/gguf.md)


class GgufLoadError(EvmlmError):
    """A GGUF file that is missing, not GGUF, unloadable, or without a matching tokenizer."""


class LlamaCppMissing(GgufLoadError):
    """``llama-cpp-python`` is not installed (the GGUF export and backend need it)."""


def llama_cpp_module() -> Any:
    """The ``llama_cpp`` module. Raises :class:`LlamaCppMissing` (one line) without it."""
    try:
        import llama_cpp
    except ImportError as e:
        raise LlamaCppMissing(
            f"llama-cpp-python is not installed ({e}); run scripts/setup.sh, which builds it"
            " once into a cached wheel (docs/gguf.md)"
        ) from None
    return llama_cpp


def is_gguf(path: str | Path) -> bool:
    """True for a path named ``*.gguf`` (checked by name; :func:`check_gguf` reads it)."""
    return str(path).lower().endswith(".gguf")


def check_gguf(path: str | Path) -> str:
    """Cheap checks of a GGUF model file (~ms, nothing loaded): it exists, is a file and starts
    with the GGUF magic. Returns the path as a string. Raises GgufLoadError naming it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise GgufLoadError(f"{p}: no such GGUF file; export one with 'evmlm export gguf'")
    if not p.is_file():
        raise GgufLoadError(f"{p}: is a folder, not a GGUF file")
    with p.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise GgufLoadError(f"{p}: not a GGUF file (no GGUF magic); re-export it")
    return str(p)


@dataclass(frozen=True)
class GgufConfig:
    """The few config fields evmlm reads from a model (``model.config``)."""

    max_position_embeddings: int
    vocab_size: int


class LlamaCppModel:
    """A GGUF model in llama.cpp with the parts of a transformers causal LM that evmlm uses.

    ``logits_all``: keep every position's logits (needed by :meth:`logits`; costs
    ``n_ctx * n_vocab`` floats). ``n_threads``: llama.cpp's threads (default: torch's).
    ``n_ctx``: the context in tokens (0: the model's training context).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        logits_all: bool = False,
        n_threads: int | None = None,
        n_ctx: int = 0,
    ) -> None:
        import torch

        llama_cpp = llama_cpp_module()
        self.path = Path(check_gguf(path))
        threads = n_threads or torch.get_num_threads()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,  # 0: the model's training context
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=logits_all,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise GgufLoadError(f"{self.path}: llama.cpp cannot load it ({e}); re-export it")
        # free the model while llama_cpp is still importable (not in __del__ at interpreter
        # shutdown, where llama-cpp-python 0.3.36 prints a TypeError)
        weakref.finalize(self, self.llm.close)
        self.config = GgufConfig(
            # llama.cpp may pad the context it allocates (to a multiple of 256) beyond the
            # token buffer llama-cpp-python allocated for the context asked for: the smaller
            max_position_embeddings=min(int(self.llm.n_ctx()), len(self.llm.input_ids)),
            vocab_size=int(self.llm.n_vocab()),
        )
        # the folder of the file, as transformers' name_or_path is a model's folder: the export
        # saves the tokenizer and fine-tuning's training_info.json there, whose max_length is
        # the prompt budget (evmlm.decompile.generation.trained_length), as for the HF model
        self.name_or_path = str(self.path.parent)
        self.device = torch.device("cpu")
        self.eos_token_id = int(self.llm.token_eos())

    def eval(self) -> "LlamaCppModel":
        """No-op (inference only), for the transformers interface."""
        return self

    def to(self, *_: Any, **__: Any) -> "LlamaCppModel":
        """No-op: llama.cpp runs where it was built to (CPU here)."""
        return self

    def tokenize(self, text: str) -> list[int]:
        """llama.cpp's own tokenisation of ``text``: special tokens parsed, BOS added only when
        the GGUF says its tokenizer adds one (``tokenizer.ggml.add_bos_token``)."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def logits(self, ids: list[int]) -> Any:
        """Next-token logits at every position of ``ids``: float32 array ``(len(ids), vocab)``.
        Needs ``logits_all=True``. Raises ValueError for more ids than the context."""
        if len(ids) > self.config.max_position_embeddings:
            raise ValueError(f"{len(ids)} tokens exceed the context of {self.path.name}")
        self.llm.reset()
        self.llm.eval(ids)
        return self.llm.scores[: len(ids)].copy()

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        *,
        max_new_tokens: int = 20,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = 50,
        top_p: float = 1.0,
        streamer: Any = None,
    ) -> Any:
        """transformers-style ``generate``: ``input_ids`` ``(batch, seq)`` (left padding marked
        by ``attention_mask``) → ``(batch, seq + new)`` ids, each row the prompt followed by its
        new tokens and ``pad_token_id`` after EOS. Greedy unless ``do_sample``; sampling uses
        ``temperature``, ``top_k`` (0/None = off) and ``top_p`` as transformers does, seeded
        from torch's generator (so ``transformers.set_seed`` makes it repeatable). ``streamer``
        gets the prompt, then each new token (``put``), then ``end()`` (batch of 1 only).
        """
        import torch

        eos = self.eos_token_id if eos_token_id is None else int(eos_token_id)
        pad = eos if pad_token_id is None else int(pad_token_id)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if streamer is not None and input_ids.shape[0] != 1:
            raise ValueError("streamed generation takes one prompt at a time")
        rows: list[list[int]] = []
        for row in range(input_ids.shape[0]):
            ids = input_ids[row][attention_mask[row].bool()].tolist()
            if streamer is not None:
                streamer.put(torch.tensor([ids]))
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
            new = self._continue(
                ids, max_new_tokens, eos, do_sample, temperature, top_k or 0, top_p, seed, streamer
            )
            rows.append(new)
        if streamer is not None:
            streamer.end()
        width = max(len(r) for r in rows)
        out = torch.full((input_ids.shape[0], input_ids.shape[1] + width), pad, dtype=torch.long)
        out[:, : input_ids.shape[1]] = input_ids
        for i, new in enumerate(rows):
            if new:
                out[i, input_ids.shape[1] : input_ids.shape[1] + len(new)] = torch.tensor(new)
        return out

    def _continue(
        self,
        ids: list[int],
        max_new_tokens: int,
        eos: int,
        do_sample: bool,
        temperature: float,
        top_k: int,
        top_p: float,
        seed: int,
        streamer: Any,
    ) -> list[int]:
        import torch

        room = self.config.max_position_embeddings - len(ids)
        if room < 1:
            raise ValueError(
                f"a prompt of {len(ids)} tokens leaves no room in the context of"
                f" {self.config.max_position_embeddings} ({self.path.name})"
            )
        self.llm.set_seed(seed)
        new: list[int] = []
        tokens = self.llm.generate(
            ids,
            temp=temperature if do_sample else 0.0,  # 0: llama.cpp's greedy sampler
            top_k=top_k if do_sample else 0,
            top_p=top_p,
            min_p=0.0,  # off (transformers has no min-p by default)
            typical_p=1.0,
            repeat_penalty=1.0,
            reset=True,
        )
        for tok in tokens:
            new.append(int(tok))
            if streamer is not None:
                streamer.put(torch.tensor([int(tok)]))
            if tok == eos or len(new) >= min(max_new_tokens, room):
                break
        return new


def load_gguf(path: str | Path, *, n_threads: int | None = None) -> tuple[Any, Any]:
    """``(LlamaCppModel, tokenizer)`` for a GGUF file (module docstring: which tokenizer).

    Raises :class:`LlamaCppMissing` without llama-cpp-python, GgufLoadError for a missing or
    corrupt file, or a tokenizer whose EOS id or vocabulary does not fit the GGUF's.
    """
    from transformers import AutoTokenizer

    p = Path(check_gguf(path))
    model = LlamaCppModel(p, n_threads=n_threads)
    beside = (p.parent / "tokenizer.json").is_file() or (
        p.parent / "tokenizer_config.json"
    ).is_file()
    try:
        if beside:
            tokenizer = AutoTokenizer.from_pretrained(str(p.parent))
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    except Exception as e:  # transformers: OSError, ValueError, KeyError for an odd vocabulary
        raise GgufLoadError(
            f"{p}: no usable tokenizer ({type(e).__name__}: {' '.join(str(e).split())[:200]});"
            " keep the tokenizer files 'evmlm export gguf' writes beside the GGUF file"
        ) from e
    if tokenizer.eos_token_id != model.eos_token_id or len(tokenizer) > model.config.vocab_size:
        raise GgufLoadError(
            f"{p}: the tokenizer beside it does not match the GGUF (EOS {tokenizer.eos_token_id}"
            f" vs {model.eos_token_id}, {len(tokenizer)} vs {model.config.vocab_size} tokens);"
            " keep each GGUF file with the tokenizer it was exported with"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer

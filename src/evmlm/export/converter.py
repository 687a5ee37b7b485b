"""llama.cpp's HF → GGUF converter, run with evmlm's two adaptations (a subprocess entry point).

``python -m evmlm.export.converter LLAMA_CPP_DIR MODEL_DIR --outfile F --outtype f16`` imports
``convert_hf_to_gguf.py`` from ``LLAMA_CPP_DIR`` (the ``vendor/llama.cpp`` tree of the
llama-cpp-python source package, unpacked by ``scripts/setup_llama_cpp.sh``; its own
``gguf-py`` comes first on ``sys.path``), patches two methods of its ``TextModel`` class in
this process only (the vendored files are not edited), and runs its ``main()``:

1. ``_set_vocab_sentencepiece`` raises ``FileNotFoundError`` when the model folder has no
   ``tokenizer.model``: the Llama converter tries SentencePiece first and only catches
   ``FileNotFoundError`` before falling back to the Hugging Face BPE vocabulary, so without the
   ``sentencepiece`` package (evmlm does not need it) a byte-level BPE model failed with
   ``ModuleNotFoundError`` instead of falling back.
2. ``get_vocab_base_pre`` answers ``gpt-2`` when the tokenizer's pre-tokenizer *is* GPT-2's
   (no normalizer, a ``ByteLevel`` pre-tokenizer with ``use_regex``, the GPT-2 split pattern
   that llama.cpp's ``gpt-2`` pre-tokenizer implements, and no prefix space), and otherwise
   asks llama.cpp's table, which identifies a pre-tokenizer by the hash of the token ids of
   a fixed text. evmlm's tokenizers (:mod:`evmlm.train.tokenizer`) are GPT-2's, and their
   hash is never in the table (it lists published models); the table also answers wrongly
   when two pre-tokenizers give the same ids on its text: SmolLM2's vocabulary (single
   digits only) behind a plain GPT-2 pre-tokenizer hashes as ``smollm`` (digits split one by
   one), and llama.cpp then tokenised 3 of 200 real texts differently ("\\n    0x...").
   Any other pre-tokenizer the table does not know still fails as upstream does. The export's
   round-trip check (:mod:`evmlm.export.checks`) proves the choice each time: llama.cpp must
   tokenise real prompts exactly as the HF tokenizer does.

See docs/gguf.md.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def gpt2_byte_level(tokenizer: Any) -> bool:
    """True when ``tokenizer`` (a fast HF tokenizer) pre-tokenises exactly as GPT-2: no
    normalizer, and a ``ByteLevel`` pre-tokenizer with the GPT-2 regex and no prefix space."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    spec = json.loads(backend.to_str())
    pre = spec.get("pre_tokenizer") or {}
    return (
        spec.get("normalizer") is None
        and (spec.get("model") or {}).get("type") == "BPE"
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True) is True
        and pre.get("add_prefix_space", False) is False
    )


def patch(text_model: type) -> None:
    """Install the two adaptations (module docstring) on llama.cpp's ``TextModel`` class."""
    set_sp = text_model._set_vocab_sentencepiece
    vocab_pre = text_model.get_vocab_base_pre

    def _set_vocab_sentencepiece(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not (Path(self.dir_model) / "tokenizer.model").is_file():
            raise FileNotFoundError(f"{self.dir_model}: no tokenizer.model (not SentencePiece)")
        return set_sp(self, *args, **kwargs)

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        if gpt2_byte_level(tokenizer):  # before the hash table, which can collide (docstring)
            log.info("the tokenizer's pre-tokenizer is GPT-2's: 'gpt-2'")
            return "gpt-2"
        return vocab_pre(self, tokenizer)

    text_model._set_vocab_sentencepiece = _set_vocab_sentencepiece
    text_model.get_vocab_base_pre = get_vocab_base_pre


def main(argv: list[str]) -> None:
    """``argv``: ``[LLAMA_CPP_DIR, converter arguments...]``."""
    root = Path(argv[0]).resolve()
    sys.path[:0] = [str(root / "gguf-py"), str(root)]
    sys.argv = [str(root / "convert_hf_to_gguf.py"), *argv[1:]]
    import convert_hf_to_gguf  # type: ignore[import-not-found]  # llama.cpp's, from root
    from conversion.base import TextModel  # type: ignore[import-not-found]

    patch(TextModel)
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])

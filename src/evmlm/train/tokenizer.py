"""Byte-level BPE tokenizer trained on Solidity and TAC, saved as a ``PreTrainedTokenizerFast`` dir.

Byte-level BPE (GPT-2's scheme: bytes mapped to printable symbols, pre-split by GPT-2's regex,
then merges learned by frequency; Radford et al. 2019, "Language Models are Unsupervised
Multitask Learners", §2.2) cannot produce an unknown token and decodes back to the exact input
bytes. The special tokens of the prompt format (:data:`evmlm.train.prompt.SPECIAL_TOKENS`) get
ids 0..5; ``<|endoftext|>`` is EOS and ``<|pad|>`` is padding. No BOS is added on encode, so the
tokenised prompt is a prefix of the tokenised prompt + completion.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from evmlm.errors import EvmlmError
from evmlm.train.prompt import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS

log = logging.getLogger(__name__)


class TokenizerError(EvmlmError):
    """No text to train on, or a tokenizer directory that cannot be loaded."""


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    model_max_length: int = 1 << 20,
):  # -> PreTrainedTokenizerFast
    """Train a byte-level BPE of ``vocab_size`` tokens (special tokens included) on ``texts``.

    Raises TokenizerError when ``texts`` is empty.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    n = 0

    def counted() -> Iterable[str]:
        nonlocal n
        for t in texts:
            if t:
                n += 1
                yield t

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=log.isEnabledFor(logging.INFO),
    )
    tok.train_from_iterator(counted(), trainer=trainer)
    if n == 0:
        raise TokenizerError(
            "tokenizer: no text to train on; check that the corpus and dataset stages produced sources and TAC"
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in (EOS_TOKEN, PAD_TOKEN)],
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    log.info("tokenizer: %d tokens learned from %d texts", len(fast), n)
    return fast


def load_tokenizer(path: str | Path):  # -> PreTrainedTokenizerFast
    """Load a tokenizer directory. Raises TokenizerError naming ``path`` when it is not one."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not (p / "tokenizer.json").is_file() and not (p / "tokenizer_config.json").is_file():
        raise TokenizerError(
            f"{p}: not a tokenizer directory (no tokenizer.json); run `evmlm tokenizer train` first"
        )
    tok = AutoTokenizer.from_pretrained(str(p))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok

"""One rank of the 2-process CPU (gloo) DDP check; launched by test_distributed.py via torchrun.

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/train/ddp_worker.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"


def main(out: Path) -> None:
    import torch

    from evmlm.config import FinetuneConfig, PretrainConfig
    from evmlm.train.data import write_token_file
    from evmlm.train.finetune import finetune
    from evmlm.train.pretrain import pretrain
    from evmlm.train.tokenizer import train_tokenizer

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    pairs = [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()]
    texts = [p.read_text() for p in sorted((FIXTURES / "sources").glob("*.sol"))]
    tok = train_tokenizer(
        texts + [r["tac"] for r in pairs], 1024
    )  # deterministic: same on both ranks
    data = out / f"data{rank}"
    write_token_file(texts[:-3], tok, data / "train.bin")
    write_token_file(texts[-3:], tok, data / "val.bin")
    pcfg = PretrainConfig(
        preset="tiny",
        context_length=64,
        batch_size=2,
        max_steps=4,
        warmup_steps=1,
        logging_steps=1,
        eval_steps=2,
        save_steps=4,
        eval_batches=1,
        time_budget_s=None,
    )
    pr = pretrain(pcfg, tokenizer=tok, data_dir=data, out_dir=out / "pretrain", threads=1)
    fcfg = FinetuneConfig(
        method="lora",
        max_length=160,
        batch_size=2,
        max_steps=3,
        eval_steps=3,
        save_steps=3,
        logging_steps=1,
        warmup_steps=1,
        time_budget_s=None,
        early_stopping_patience=None,
        max_eval_examples=4,
    )
    torch.distributed.barrier()
    fr = finetune(
        fcfg,
        base_model=out / "pretrain" / "model",
        train_records=[r for r in pairs if r["split"] == "train"],
        eval_records=[r for r in pairs if r["split"] == "validation"],
        out_dir=out / "finetune",
        threads=1,
    )
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "world_size": torch.distributed.get_world_size(),
                "backend": torch.distributed.get_backend(),
                "pretrain_steps": pr.steps,
                "finetune_steps": fr.steps,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

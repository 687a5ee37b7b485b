"""The ``evmlm`` command line: thin typed functions over the library.

Every command that reads the run config accepts ``--config FILE``, ``--name NAME`` and any
``--section.field=value`` override (see :mod:`evmlm.config`). Stage commands (``corpus``,
``compile``, ...) run the chain up to and including that stage, so their inputs are made or
reused exactly as ``evmlm run`` would.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from evmlm.errors import EvmlmError

app = typer.Typer(
    help="Language models of EVM smart contracts: bytecode -> TAC -> model -> Solidity.",
    no_args_is_help=True,
    add_completion=False,
)

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config (default: configs/default.yaml if present)."),
]
NameOpt = Annotated[
    Optional[str], typer.Option("--name", help="Run name: outputs go to runs/<name>/.")
]


def _setup_logging(verbose: bool = False) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=Console(stderr=True))],
        force=True,
    )
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _setup_logging(verbose)


def load_run_config(config: Path | None, name: str | None, extra: list[str]) -> Any:
    """Resolve the run config from a file (or configs/default.yaml), ``--name`` and overrides."""
    from evmlm.config import load_config

    if config is None and Path("configs/default.yaml").is_file():
        config = Path("configs/default.yaml")
    overrides = list(extra)
    if name is not None:
        overrides.append(f"--run.name={name}")
    return load_config(config, overrides)


def _print_stage(rec: dict[str, Any]) -> None:
    state = "skipped (current)" if rec.get("skipped") else f"done in {rec.get('seconds', 0):.1f} s"
    summary = rec.get("summary") or {}
    line = summary.get("line") if isinstance(summary, dict) else None
    typer.echo(f"[{rec['stage']}] {state}" + (f": {line}" if line else ""))


def _check_stages(until: str | None, force: list[str] | None) -> None:
    """Raise a usage error for an unknown ``--until`` / ``--force`` stage (before any work)."""
    from evmlm.pipeline import stage_names

    names = stage_names()
    for flag, value in [("--until", until)] + [("--force", f) for f in force or ()]:
        if value is not None and value not in names:
            raise typer.BadParameter(
                f"unknown stage {value!r} (stages: {', '.join(names)})", param_hint=f"'{flag}'"
            )


def _check_out(path: Path, *, folder: bool) -> None:
    """Fail before any work when an output path cannot be written: ``folder`` (a report folder)
    must not be a file; a file must not be a folder, and an existing parent must be a folder."""
    if folder and path.exists() and not path.is_dir():
        raise typer.BadParameter(
            f"{path}: is a file; pass a folder for the report", param_hint="'--out'"
        )
    if not folder and path.is_dir():
        raise typer.BadParameter(
            f"{path}: is a folder; pass a file name to write", param_hint="'--out'"
        )
    parent = next((q for q in path.absolute().parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise typer.BadParameter(f"{path}: {parent} is a file, not a folder", param_hint="'--out'")


_DATA_STAGES = ("corpus", "compile", "lift", "dataset")


def run_chain(
    config: Path | None,
    name: str | None,
    extra: list[str],
    until: str | None,
    force: list[str] | None = None,
) -> None:
    from evmlm.pipeline import run_pipeline

    _check_stages(until, force)
    cfg = load_run_config(config, name, extra)
    if cfg.finetune.backend == "unsloth" and until not in _DATA_STAGES:
        from evmlm.train.unsloth_backend import check_unsloth

        check_unsloth()  # before any work: a CPU machine stops here
    run_pipeline(cfg, until=until, force=tuple(force or ()), on_stage=_print_stage)
    typer.echo(f"run directory: {cfg.run_dir}")


@app.command(context_settings=_EXTRA)
def run(
    ctx: typer.Context,
    config: ConfigOpt = None,
    name: NameOpt = None,
    until: Annotated[Optional[str], typer.Option(help="Stop after this stage.")] = None,
    force: Annotated[
        Optional[list[str]], typer.Option(help="Re-run this stage even if current (repeatable).")
    ] = None,
) -> None:
    """Run the whole chain (corpus -> compile -> ... -> evaluate) into runs/<name>/."""
    run_chain(config, name, ctx.args, until, force)


@app.command(context_settings=_EXTRA)
def corpus(ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None) -> None:
    """Collect Solidity sources into the run's corpus manifest."""
    run_chain(config, name, ctx.args, "corpus")


@app.command("compile", context_settings=_EXTRA)
def compile_(ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None) -> None:
    """Compile the corpus with solc-js (cached; a rerun compiles nothing)."""
    run_chain(config, name, ctx.args, "compile")


@app.command("lift")
def lift(
    bytecode: Annotated[
        str,
        typer.Argument(
            help="Runtime bytecode (hex) or a file: hex, raw bytes, or a compiler/Hardhat artifact JSON."
        ),
    ],
    selector: Annotated[
        Optional[str], typer.Option(help="Only this function (0x + 8 hex).")
    ] = None,
    signature: Annotated[
        Optional[str],
        typer.Option(help="Only this function, by signature, e.g. 'transfer(address,uint256)'."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="tac or json.")] = "tac",
    storage_layout: Annotated[
        Optional[Path],
        typer.Option("--storage-layout", help="solc storageLayout JSON: names state variables."),
    ] = None,
    abi: Annotated[
        Optional[Path], typer.Option("--abi", help="ABI JSON: signatures, event and error names.")
    ] = None,
    internal: Annotated[bool, typer.Option(help="Also print internal functions.")] = True,
) -> None:
    """Lift runtime bytecode to per-function TAC (CFG, functions, SSA, recognisers)."""
    import time

    from evmlm.evm import lift_contract
    from evmlm.evm.inputs import read_bytecode_input
    from evmlm.evm.lifter import render

    if fmt not in ("tac", "json"):
        raise typer.BadParameter(f"{fmt!r}: expected tac or json", param_hint="'--format'")
    inp = read_bytecode_input(bytecode, abi_file=abi, storage_layout_file=storage_layout)
    t0 = time.perf_counter()
    lc = lift_contract(inp.bytecode, abi=inp.abi, storage_layout=inp.storage_layout, what=inp.name)
    ms = (time.perf_counter() - t0) * 1000
    typer.echo(
        render(lc, selector=selector, signature=signature, fmt=fmt, internal=internal),
        nl=fmt == "json",
    )
    kinds = ", ".join(
        f"{sum(f.kind == k for f in lc.functions)} {k}"
        for k in ("public", "fallback", "receive", "internal")
        if any(f.kind == k for f in lc.functions)
    )
    typer.echo(
        f"lifted {lc.code_size} bytes in {ms:.0f} ms: {kinds or 'no functions'}; {lc.unresolved_jumps} unresolved jumps, {lc.context_fallbacks} context fallbacks",
        err=True,
    )
    if lc.dialect != "solidity":
        typer.echo(
            f"{lc.dialect} code: " + "; ".join(lc.notes or ("every recogniser applies",)), err=True
        )


@app.command("etherscan", context_settings=_EXTRA)
def etherscan(
    ctx: typer.Context,
    addresses: Annotated[
        Optional[list[str]], typer.Argument(help="Contract addresses (0x...).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the sources (one subfolder per address).")
    ] = Path("vendor/etherscan"),
    address_file: Annotated[
        Optional[Path], typer.Option(help="File with one address per line.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Fetch verified sources from Etherscan (key from $ETHERSCAN_API_KEY; cached, rate-limited).

    Exit status 0 when every address gave a verified contract, 1 when any failed (each failure
    is printed and recorded in OUT/failures.json)."""
    from dataclasses import replace

    from evmlm.corpus.etherscan import fetch_to_dir

    # the variadic ADDRESSES swallows unknown options (--section.field=value overrides)
    # wherever they stand: they are overrides, never addresses
    given = list(addresses or ())
    overrides = [a for a in given if a.startswith("-")] + list(ctx.args)
    cfg = load_run_config(config, None, overrides).corpus
    cfg = replace(
        cfg,
        etherscan_addresses=tuple(a for a in given if not a.startswith("-"))
        + cfg.etherscan_addresses,
        etherscan_address_file=str(address_file) if address_file else cfg.etherscan_address_file,
    )
    summary = fetch_to_dir(cfg, out)
    for addr, why in summary["failed"].items():
        msg = (
            why.message[len(addr) + 2 :]
            if why.message.lower().startswith(f"{addr.lower()}: ")
            else why.message
        )
        typer.echo(f"{addr}: {why.kind}" + (f": {msg}" if msg != why.kind else ""), err=True)
    typer.echo(summary["line"])
    if summary["failed"]:
        sys.exit(1)


@app.command("show-config", context_settings=_EXTRA)
def show_config(ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None) -> None:
    """Print the resolved config as YAML."""
    from evmlm.config import dump_yaml

    typer.echo(dump_yaml(load_run_config(config, name, ctx.args)), nl=False)


# ---------------------------------------------------------------- dataset (issue 4)
dataset_app = typer.Typer(
    help="The TAC -> Solidity pair dataset: build, statistics, signature database.",
    no_args_is_help=True,
)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build", context_settings=_EXTRA)
def dataset_build(ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None) -> None:
    """Build runs/<name>/dataset/ (runs corpus, compile and lift first when needed; resumes)."""
    run_chain(config, name, ctx.args, "dataset")


@dataset_app.command("stats", context_settings=_EXTRA)
def dataset_stats(
    ctx: typer.Context,
    config: ConfigOpt = None,
    name: NameOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print stats.json as is.")] = False,
) -> None:
    """Print the statistics of a built dataset (runs/<name>/dataset/stats.json)."""
    from evmlm.dataset.cli import format_stats, read_stats

    stats = read_stats(load_run_config(config, name, ctx.args).run_dir / "dataset")
    typer.echo(json.dumps(stats, indent=2, ensure_ascii=False) if as_json else format_stats(stats))


@dataset_app.command("signatures")
def dataset_signatures(
    selectors: Annotated[
        Optional[list[str]], typer.Argument(help="Selectors to look up (0x + 8 hex).")
    ] = None,
    db: Annotated[
        Optional[Path],
        typer.Option("--db", help="Signature TSV (default: runs/default/dataset/signatures.tsv)."),
    ] = None,
    add: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--import", help="Also import this 4byte-style file (TSV or 4byte JSON; repeatable)."
        ),
    ] = None,
    artifacts: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--artifacts",
            help="Also read the ABIs of JSON artifacts under this folder (repeatable).",
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the merged database to this TSV.")
    ] = None,
    collisions: Annotated[
        bool, typer.Option("--collisions", help="List selectors with more than one signature.")
    ] = False,
) -> None:
    """Look up selectors in the signature database; merge 4byte files and artifact ABIs into it."""
    from evmlm.dataset.cli import signatures_command

    for line in signatures_command(
        selectors or [],
        db=db,
        imports=add or [],
        artifacts=artifacts or [],
        out=out,
        collisions=collisions,
    ):
        typer.echo(line)


# ---------------------------------------------------------------- training (issue 6)
tokenizer_app = typer.Typer(help="The run's byte-level BPE tokenizer.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")


@tokenizer_app.command("train", context_settings=_EXTRA)
def tokenizer_train(ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None) -> None:
    """Train runs/<name>/tokenizer/ on the corpus's Solidity and the dataset's TAC."""
    run_chain(config, name, ctx.args, "tokenizer")


ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume",
        help="Continue from the newest checkpoint (--no-resume: start afresh).",
    ),
]


@app.command(context_settings=_EXTRA)
def pretrain(
    ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None, resume: ResumeOpt = True
) -> None:
    """Pretrain a Llama size preset (--pretrain.preset=tiny|small|...) into runs/<name>/pretrain/model."""
    _train_chain(config, name, ctx.args, "pretrain", resume)


@app.command(context_settings=_EXTRA)
def cpt(
    ctx: typer.Context, config: ConfigOpt = None, name: NameOpt = None, resume: ResumeOpt = True
) -> None:
    """Continue pretraining model.base on the corpus (LoRA on all linear layers + embeddings,
    PatchGen recipe; --cpt.method=full for all weights) into runs/<name>/cpt/model."""
    extra = list(ctx.args)
    if not any(a.startswith("--cpt.enabled") for a in extra):
        extra.append("--cpt.enabled=true")
    _train_chain(config, name, extra, "cpt", resume)


@app.command(context_settings=_EXTRA)
def finetune(
    ctx: typer.Context,
    config: ConfigOpt = None,
    name: NameOpt = None,
    method: Annotated[
        Optional[str], typer.Option("--method", help="full | lora | qlora (= --finetune.method).")
    ] = None,
    base_model: Annotated[
        Optional[str],
        typer.Option(
            "--base-model",
            help="Local HF model folder or cached hub name (default: this run's pretrained model).",
        ),
    ] = None,
    resume: ResumeOpt = True,
) -> None:
    """Fine-tune TAC -> Solidity into runs/<name>/finetune/{model,adapter}."""
    extra = (
        list(ctx.args)
        + ([f"--finetune.method={method}"] if method else [])
        + ([f"--finetune.base_model={base_model}"] if base_model else [])
    )
    _train_chain(config, name, extra, "finetune", resume)


def _train_chain(
    config: Path | None, name: str | None, extra: list[str], stage: str, resume: bool
) -> None:
    if not resume:
        from evmlm.train.stage import clear_checkpoints

        clear_checkpoints(load_run_config(config, name, extra).run_dir, stage)
    run_chain(config, name, extra, stage, force=None if resume else [stage])


@app.command()
def sample(
    model: Annotated[
        Path,
        typer.Option(
            "--model", "-m", help="Model folder (merged model, adapter, HF model) or FILE.gguf."
        ),
    ],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Prompt text.")] = None,
    file: Annotated[
        Optional[Path], typer.Option("--file", "-f", help="Read the prompt from this file.")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="New tokens to generate.")] = 256,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.8,
    top_k: Annotated[int, typer.Option("--top-k", help="0 = off.")] = 50,
    top_p: Annotated[float, typer.Option("--top-p", help="1.0 = off.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Sample a continuation from a model, streamed to the terminal."""
    from evmlm.train.inference import SamplingConfig, load_for_inference
    from evmlm.train.inference import sample as run_sample

    if (prompt is None) == (file is None):
        raise typer.BadParameter("give exactly one of --prompt or --file")
    if file is not None and not file.is_file():
        raise typer.BadParameter(f"{file}: no such file")
    text = prompt if prompt is not None else file.read_text(encoding="utf-8")
    cfg = SamplingConfig(
        max_new_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
    )
    from evmlm.multitask import register_auto_classes

    register_auto_classes()  # multi-task models sample like any other
    m, tok = load_for_inference(model)
    typer.echo(text, nl=False)
    run_sample(m, tok, text, cfg, on_text=lambda s: typer.echo(s, nl=False))
    typer.echo()


# ---------------------------------------------------------------- evaluate + decompile (issue 5)
@app.command("evaluate", context_settings=_EXTRA)
def evaluate_(
    ctx: typer.Context,
    config: ConfigOpt = None,
    name: NameOpt = None,
    model: Annotated[
        Optional[Path],
        typer.Option(
            "--model",
            "-m",
            help="Model folder (merged, adapter or HF model) or FILE.gguf (llama.cpp). Default: the run's fine-tuned model (runs the whole chain).",
        ),
    ] = None,
    split: Annotated[
        Optional[str],
        typer.Option("--split", help="train | validation | test (= --evaluate.split)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Report folder for --model (default: runs/<name>/evaluate-<model folder name>).",
        ),
    ] = None,
    verify: Annotated[
        Optional[bool],
        typer.Option(
            "--verify/--no-verify",
            help="Evaluate the verified system (draft + model candidates executed against the original; = --evaluate.verify, default on).",
        ),
    ] = None,
) -> None:
    """Score a model, the structural draft, the verified system, the oracle and the baselines (Panoramix, retrieval, signature stub) on a split; write report.json, report.md and plots."""
    extra = (
        list(ctx.args)
        + ([f"--evaluate.split={split}"] if split else [])
        + ([f"--evaluate.verify={str(verify).lower()}"] if verify is not None else [])
    )
    if model is None:
        run_chain(config, name, extra, "evaluate")
        return
    from evmlm.evaluate.stage import evaluate as run_evaluate
    from evmlm.pipeline import run_pipeline
    from evmlm.train.inference import check_model

    cfg = load_run_config(config, name, extra)
    check_model(model)  # cheap (no weights loaded): before the chain up to the dataset runs
    target = out or cfg.run_dir / f"evaluate-{model.resolve().name}"
    _check_out(target, folder=True)
    run_pipeline(cfg, until="dataset", on_stage=_print_stage)
    summary = run_evaluate(
        model,
        cfg.run_dir / "dataset",
        target,
        config=cfg.evaluate,
        compile_dir=cfg.run_dir / "compile",
        run_name=cfg.run.name,
        threads=cfg.run.threads,
    )
    typer.echo(f"[evaluate] {summary['line']}")
    typer.echo(f"report: {target / 'report.md'}")


@app.command()
def decompile(
    source: Annotated[
        str,
        typer.Argument(
            help="Runtime bytecode as hex, a file (hex or binary), or a compiler artifact JSON."
        ),
    ],
    model: Annotated[
        Optional[Path],
        typer.Option(
            "--model",
            "-m",
            help="Model folder: a run's finetune/model or finetune/adapter, any local HF model, or FILE.gguf (llama.cpp) (default: the structural draft alone).",
        ),
    ] = None,
    selector: Annotated[
        Optional[str],
        typer.Option("--selector", "-s", help="Decompile only this function (0x + 8 hex)."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="sol (one Solidity file) or json (per-function TAC, output, timings, errors).",
        ),
    ] = "sol",
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    signatures: Annotated[
        Optional[Path],
        typer.Option(
            "--signatures",
            help="Selector -> signature TSV (default: the model's run dataset/signatures.tsv when present).",
        ),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="New tokens per function.")] = 384,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Functions per generate call.")
    ] = 4,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.0,
    stream: Annotated[
        Optional[bool],
        typer.Option(
            "--stream/--no-stream",
            help="Stream generation to stderr (default: when stderr is a terminal).",
        ),
    ] = None,
    rpc_url: Annotated[
        Optional[str],
        typer.Option(
            "--rpc-url",
            envvar="EVMLM_RPC_URL",
            help="JSON-RPC node to fetch the code of an address input.",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Verified selection: compile each candidate (draft, greedy, samples) and execute it against the original bytecode.",
        ),
    ] = True,
    candidates: Annotated[
        int,
        typer.Option(
            "--candidates",
            help="Candidates per function with --verify: the draft, the greedy output and N-2 samples.",
        ),
    ] = 4,
) -> None:
    """Decompile runtime bytecode (hex, file, artifact JSON or an address with --rpc-url)
    into one Solidity file (or JSON).

    Exit status 0 when the file is written; 2 for bad input, with one line on stderr and
    nothing written -- also for bytecode with no function at all (no dispatcher, fallback or
    receive: often creation bytecode instead of runtime bytecode).
    """
    from evmlm import atomic
    from evmlm.config import DecompileConfig
    from evmlm.decompile import decompile as run_decompile
    from evmlm.decompile import load_signature_db
    from evmlm.train.inference import check_model

    if fmt not in ("sol", "json"):
        raise typer.BadParameter(f"{fmt!r}: expected sol or json", param_hint="'--format'")
    cfg = DecompileConfig(
        max_new_tokens=max_tokens,
        batch_size=batch_size,
        temperature=temperature,
        verify=verify,
        candidates=candidates,
    )
    if out is not None:
        _check_out(out, folder=False)
    if model is not None:
        check_model(model)  # cheap checks before lifting, fetching or generating
    live = sys.stderr.isatty() if stream is None else stream
    current = [-1]

    def on_text(i: int, piece: str) -> None:
        if current[0] != i:
            current[0] = i
            typer.echo(f"\n--- function {i + 1} ---", err=True)
        typer.echo(piece, nl=False, err=True)

    result = run_decompile(
        source,
        model,
        selector=selector,
        signatures=load_signature_db(signatures, model),
        config=cfg,
        on_text=on_text if live else None,
        rpc_url=rpc_url,
    )
    text = json.dumps(result.to_json(), indent=2) + "\n" if fmt == "json" else result.source
    if live:
        typer.echo("", err=True)
    if out is not None:
        atomic.write_text(out, text)
        bad = sum(1 for f in result.functions if f.error)
        same = sum(1 for f in result.functions if f.same is True)
        checked = f", {same} verified the same" if verify else ""
        typer.echo(
            f"wrote {out}: {len(result.functions)} functions ({bad} not as drafted or generated{checked}), solc {result.compiler_version}, lift {result.lift_seconds:.2f} s, generate {result.generate_seconds:.1f} s, verify {result.verify_seconds:.1f} s",
            err=True,
        )
    else:
        typer.echo(text, nl=False)


# ---------------------------------------------------------------- experiment (issue 13)
@app.command("experiment", context_settings=_EXTRA)
def experiment(
    ctx: typer.Context,
    config: ConfigOpt = None,
    name: NameOpt = None,
    preset: Annotated[
        Optional[str], typer.Option("--preset", help="modules | phases | strategies | all.")
    ] = None,
    grid: Annotated[
        Optional[Path], typer.Option("--grid", help="Experiment YAML (configs/experiments/).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Default: runs/<name>/experiments/<exp>.")
    ] = None,
) -> None:
    """Fine-tune several LoRA variants (targets, rank, phases) at one step budget; compare them."""
    from evmlm.config import ConfigError, load_experiment_config
    from evmlm.experiment import PRESETS, experiment_base, run_experiment
    from evmlm.pipeline import run_pipeline
    from evmlm.train.threads import effective_threads

    if (preset is None) == (grid is None):
        raise ConfigError("give exactly one of --preset NAME or --grid FILE")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"--preset {preset}: unknown (known: {', '.join(PRESETS)})")
    exp = PRESETS[preset] if preset is not None else load_experiment_config(grid)
    cfg = load_run_config(config, name, list(ctx.args))
    until, base = experiment_base(cfg)
    run_pipeline(cfg, until=until, on_stage=_print_stage)
    tok = cfg.run_dir / "tokenizer"
    summary = run_experiment(
        cfg,
        exp,
        base_model=base,
        dataset_dir=cfg.run_dir / "dataset",
        out_dir=out or cfg.run_dir / "experiments" / exp.name,
        tokenizer_dir=tok if (tok / "tokenizer.json").is_file() else None,
        compile_dir=cfg.run_dir / "compile",
        threads=effective_threads(cfg.run.threads),
    )
    typer.echo(f"[experiment] {summary['line']}")
    typer.echo(f"report: {Path(summary['files'][1])}")


# ---------------------------------------------------------------- multitask (issue 14)
multitask_app = typer.Typer(
    help="The multi-task decoder: train and evaluate (docs/multitask.md).", no_args_is_help=True
)
app.add_typer(multitask_app, name="multitask")


def _multitask_overrides(args: list[str]) -> dict[str, Any]:
    """``--key=value`` flags -> {key: YAML value}; a flag of another form is a usage error."""
    import yaml

    out: dict[str, Any] = {}
    for a in args:
        if not a.startswith("--") or "=" not in a:
            raise typer.BadParameter(f"{a!r}: expected --key=value (a multitask config key)")
        k, v = a[2:].split("=", 1)
        out[k.replace("-", "_")] = yaml.safe_load(v)
    return out


@multitask_app.command("train", context_settings=_EXTRA)
def multitask_train(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="configs/multitask/full.yaml or configs/multitask/small.yaml."
        ),
    ] = Path("configs/multitask/full.yaml"),
) -> None:
    """Train the multi-task decoder; any config key as --key=value (e.g. --max_steps=50)."""
    from evmlm.multitask.training import load_run_config, train

    cfg = load_run_config(config, _multitask_overrides(list(ctx.args)))
    summary = train(cfg)
    typer.echo(f"[multitask] {summary['line']}")
    typer.echo(f"experiment folder: {summary['out_dir']}")


@multitask_app.command("evaluate")
def multitask_evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="A multitask model folder.")],
    dataset: Annotated[Path, typer.Option("--dataset", help="Dataset stage folder.")] = Path(
        "runs/default/dataset"
    ),
    split: Annotated[str, typer.Option(help="train | validation | test.")] = "test",
    limit: Annotated[
        Optional[int], typer.Option(help="First N records of the split (id order).")
    ] = None,
    generate: Annotated[
        int,
        typer.Option(help="Functions decompiled with evmlm's evaluation (BLEU, recompiles)."),
    ] = 0,
    compile_dir: Annotated[
        Optional[Path], typer.Option("--compile", help="Compile stage folder (recompiles).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Folder for evaluation_results.json.")
    ] = None,
) -> None:
    """Teacher-forced head metrics (element micro-F1, semantic accuracy, detail loss) and,
    with --generate N, the detail head through evmlm's evaluation on N functions."""
    from evmlm import atomic
    from evmlm.multitask.training import evaluate_model_dir

    if split not in ("train", "validation", "test"):
        raise typer.BadParameter(
            f"{split!r}: use train, validation or test", param_hint="'--split'"
        )
    res = evaluate_model_dir(model, dataset, split=split, limit=limit)
    if generate > 0:
        from evmlm.config import EvalConfig
        from evmlm.evaluate.stage import evaluate as run_evaluate

        rep = run_evaluate(
            model,
            dataset,
            (out or model.parent) / "generation",
            config=EvalConfig(
                split=split, max_functions=generate, baselines=(), verify=False, n_examples=3
            ),
            compile_dir=compile_dir,
        )
        res["generation"] = {"line": rep["line"], "overall": rep["overall"]}
    target = (out or model.parent) / "evaluation_results.json"
    atomic.write_json(target, res)
    typer.echo(
        f"[multitask] {split}: {res['n_examples']} functions, element micro-F1 "
        f"{res['element_micro_f1']:.3f} (thresholds {res['element_thresholds']}; P > 0.5: "
        f"{res['element_micro_f1_p50']:.3f}), semantic accuracy {res['semantic_accuracy']:.3f}, "
        f"detail {res['detail_loss']:.3f} nats -> {target}"
    )
    if "generation" in res:
        typer.echo(f"[multitask] generation: {res['generation']['line']}")


@multitask_app.command("calibrate")
def multitask_calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="A multitask model folder.")],
    dataset: Annotated[Path, typer.Option("--dataset", help="Dataset stage folder.")] = Path(
        "runs/default/dataset"
    ),
    split: Annotated[str, typer.Option(help="The split the thresholds are chosen on.")] = (
        "validation"
    ),
    limit: Annotated[
        Optional[int], typer.Option(help="First N records of the split (id order).")
    ] = None,
) -> None:
    """Choose the element classifier's thresholds on a split (validation) — 0.5, one shared or
    one per type, whichever cross-validates best — and save them in the model's config.json;
    evaluate and decompile then use them."""
    from evmlm.multitask.training import calibrate_model_dir

    if split not in ("train", "validation"):
        raise typer.BadParameter(
            f"{split!r}: choose thresholds on train or validation, never on the split you report",
            param_hint="'--split'",
        )
    res = calibrate_model_dir(model, dataset, split=split, limit=limit)
    moved = {e: t for e, t in res["thresholds"].items() if t != 0.5}
    cv = ", ".join(f"{r} {f:.3f}" for r, f in res["cv_micro_f1"].items())
    typer.echo(
        f"[multitask] calibrated on {res['n_examples']} {split} functions: rule {res['rule']} "
        f"(held-out micro-F1, 2-fold: {cv}); element micro-F1 {res['micro_f1_p50']:.3f} "
        f"(P > 0.5) -> {res['micro_f1']:.3f}; {len(moved)} of {len(res['thresholds'])} "
        f"thresholds moved -> {model / 'config.json'}"
    )
    if moved:
        typer.echo("  " + ", ".join(f"{e} {t:.2f}" for e, t in sorted(moved.items())))


@app.command(context_settings=_EXTRA)
def ladder(
    ctx: typer.Context,
    config: ConfigOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the rungs and ladder.{md,json,png}.")
    ] = Path("runs/ladder"),
    data_run: Annotated[
        Optional[Path],
        typer.Option("--data-run", help="A run whose data stages (corpus..dataset) are finished."),
    ] = None,
    budget_min: Annotated[
        float, typer.Option("--budget-min", help="Training minutes per rung.")
    ] = 10.0,
    rung: Annotated[
        Optional[list[str]], typer.Option("--rung", help="Only this rung (repeatable).")
    ] = None,
) -> None:
    """The quality ladder: scratch small vs SmolLM2 fine-tuned vs SmolLM2 CPT + fine-tuned, at
    one training budget, on the same test functions (docs/base-models.md)."""
    from evmlm.ladder import ladder_line, run_ladder

    _check_out(out, folder=True)
    if config is None and Path("configs/default.yaml").is_file():
        config = Path("configs/default.yaml")
    data = data_run or load_run_config(config, None, list(ctx.args)).run_dir
    res = run_ladder(
        config, ctx.args, out_dir=out, data_run=data, budget_s=budget_min * 60, rungs=rung
    )
    typer.echo(f"ladder: {ladder_line(res)}")


# ---------------------------------------------------------------- export (issue 12)
export_app = typer.Typer(help="Export a model for other runtimes (GGUF).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("gguf", context_settings=_EXTRA)
def export_gguf(
    ctx: typer.Context,
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model folder: merged model, LoRA adapter or HF model."),
    ],
    quant: Annotated[
        Optional[str],
        typer.Option("--quant", "-q", help="GGUF types, comma-separated (= --export.quants)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Output folder (default: <run>/export for a run's model, else <model>-gguf).",
        ),
    ] = None,
    dataset: Annotated[
        Optional[Path],
        typer.Option(
            "--dataset",
            help="Dataset folder for the round-trip checks (default: the model's run dataset).",
        ),
    ] = None,
    config: ConfigOpt = None,
    name: NameOpt = None,
) -> None:
    """Write GGUF files (f16, q8_0, q4_k_m) of a model with llama.cpp's converter and quantizer,
    then check them against the HF model (tokenisation, greedy output, logits; report.json)."""
    from evmlm.export.checks import CheckConfig
    from evmlm.export.gguf import ExportError, default_dataset, parse_types
    from evmlm.export.gguf import export_gguf as run_export
    from evmlm.export.stage import check_records
    from evmlm.train.inference import check_model
    from evmlm.train.llamacpp import llama_cpp_module
    from evmlm.train.threads import effective_threads

    cfg = load_run_config(config, name, list(ctx.args))
    types = parse_types(quant) if quant is not None else parse_types(cfg.export.quants)
    check_model(model)
    llama_cpp_module()  # one line when llama-cpp-python is missing, before any work
    ds = dataset or default_dataset(model)
    if ds is None and (cfg.run_dir / "dataset" / "hf").is_dir():
        ds = cfg.run_dir / "dataset"
    if dataset is not None and not (dataset / "hf" / "dataset_dict.json").is_file():
        raise ExportError(f"--dataset {dataset}: no built dataset (no hf/dataset_dict.json)")
    target = out or (
        model.resolve().parent.parent / "export"
        if default_dataset(model)
        else Path(f"{model.resolve()}-gguf")
    )
    _check_out(target, folder=True)
    e = cfg.export
    report = run_export(
        model,
        target,
        types=types,
        records=check_records(ds, e.split, e.n_texts) if ds is not None else None,
        checks=CheckConfig(
            n_texts=e.n_texts,
            n_greedy=e.n_greedy,
            max_new_tokens=e.max_new_tokens,
            n_logit_texts=e.n_logit_texts,
            logit_tokens=e.logit_tokens,
            prompt_tokens=e.prompt_tokens,
        ),
        threads=effective_threads(cfg.run.threads),
    )
    typer.echo(f"[export] {report['line']}")
    typer.echo(f"report: {target / 'report.json'}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_error(e: Exception) -> str:
    """One line for a click/typer usage error: the command, what is wrong, where help is."""
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "evmlm"
    fmt = getattr(e, "format_message", None)
    return f"error: {where}: {_one_line(fmt() if fmt else e)} (see '{where} --help')"


def _interrupted(signum: int, frame: Any) -> None:
    """SIGINT: stop the solc workers first (compile threads then fail fast instead of restarting
    them), then interrupt the main thread as Python's default handler does."""
    driver = sys.modules.get("evmlm.solc.driver")  # loaded only when something compiles
    if driver is not None:
        driver.stop_all_workers()
    raise KeyboardInterrupt


def run_cli(args: list[str] | None = None) -> int:
    """Run the command line on ``args`` (default ``sys.argv[1:]``); returns the exit status.

    0 success; 2 a usage error or a user error (:class:`EvmlmError`: bad input, missing path,
    bad config), printed as one line on stderr; 130 interrupted (Ctrl-C); 1 a bug (traceback).
    """
    # typer 0.29 (pinned) raises its vendored click's exceptions, not click's own
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupted) if main_thread else None
    try:
        rv = app(args=args, prog_name="evmlm", standalone_mode=False)
    except EvmlmError as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        return 2
    except NoArgsIsHelpError as e:
        typer.echo(e.format_message(), err=True)
        return 2
    except ClickException as e:  # typer's vendored click: usage errors, bad parameters
        typer.echo(_usage_error(e), err=True)
        return 2 if e.exit_code == 1 else e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        rv = 130
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if rv == 130:  # typer turns KeyboardInterrupt into Exit(130) and returns its code
        typer.echo("interrupted", err=True)
    return rv if isinstance(rv, int) else 0


def main() -> None:
    """Console entry point (``evmlm``, ``python -m evmlm``): exits with :func:`run_cli`'s status."""
    sys.exit(run_cli())

"""Export a model evmlm trains (or fine-tunes from) to GGUF files for llama.cpp and Ollama.

:func:`export_gguf`: the model (a merged folder, a LoRA adapter -- merged first -- or any
local HF Llama folder with its own tokenizer) is saved once as a plain HF folder in a staging
folder; llama.cpp's converter (:mod:`evmlm.export.converter`, run in a subprocess) writes it
as one float32 GGUF; llama.cpp's quantizer (``llama_model_quantize`` of its C API, through
``llama_cpp``) writes each requested type from that file (f16, q8_0, q4_k_m, ...; never a
hand-written quantizer). Every file is written under a temporary name and renamed
(:mod:`evmlm.atomic`). The HF tokenizer is saved beside the files (the backend reads it,
:mod:`evmlm.train.llamacpp`), then the round-trip checks (:mod:`evmlm.export.checks`) run and
``report.json`` is written. docs/gguf.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from evmlm import atomic
from evmlm.config import GGUF_TYPES
from evmlm.errors import EvmlmError
from evmlm.export.checks import (
    CheckConfig,
    check_greedy,
    check_logits,
    check_tokenisation,
    record_texts,
)

log = logging.getLogger(__name__)

REPORT = "report.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: Copied from the model folder beside the GGUF files: fine-tuning's record, whose
#: ``finetune.max_length`` is the prompt budget at inference
#: (:func:`evmlm.decompile.generation.trained_length`), for llama.cpp as for the HF model.
INFO_FILE = "training_info.json"


class ExportError(EvmlmError):
    """Bad export input (model, type, missing converter) or a conversion that failed."""


def parse_types(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"f16,q8_0,q4_k_m"`` (or a sequence) → a tuple of known GGUF types, in order, without
    duplicates. Raises ExportError naming an unknown type and listing the known ones."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        t = raw.strip().lower()
        if t not in GGUF_TYPES:
            raise ExportError(
                f"--quant {raw.strip()!r}: unknown type (known: {', '.join(GGUF_TYPES)})"
            )
        if t not in out:
            out.append(t)
    if not out:
        raise ExportError("--quant: no type given (e.g. f16,q8_0,q4_k_m)")
    return tuple(out)


def converter_dir() -> Path:
    """The unpacked ``vendor/llama.cpp`` tree of the installed llama-cpp-python's source package
    (holding ``convert_hf_to_gguf.py``, ``conversion/`` and ``gguf-py/``):
    ``$EVMLM_LLAMA_CPP_SRC``, else ``<cache>/llama-cpp/<version>`` where ``<cache>`` is
    ``$EVMLM_CACHE_DIR`` or ``.cache/evmlm`` of the project (the working folder, as for the
    compile cache; never the install location). ``scripts/setup_llama_cpp.sh`` unpacks it.
    Raises ExportError."""
    from evmlm.train.llamacpp import llama_cpp_module

    env = os.environ.get("EVMLM_LLAMA_CPP_SRC")
    if env:
        candidates = [Path(env)]
    else:
        version = llama_cpp_module().__version__
        cache = Path(os.environ.get("EVMLM_CACHE_DIR") or Path(".cache") / "evmlm")
        candidates = [cache / "llama-cpp" / version]
    for c in candidates:
        if (c / "convert_hf_to_gguf.py").is_file() and (c / "gguf-py").is_dir():
            return c
    raise ExportError(
        f"llama.cpp's HF->GGUF converter not found (looked in {candidates[0]}); run"
        " scripts/setup.sh, which unpacks it from the llama-cpp-python source package"
    )


def default_dataset(model: Path) -> Path | None:
    """``<run>/dataset`` for a model inside a run (``<run>/finetune/model``), else None."""
    guess = model.resolve().parent.parent / "dataset"
    return guess if (guess / "hf" / "dataset_dict.json").is_file() else None


def _stage_model(model: Path, staging: Path) -> tuple[Any, Any]:
    """Load ``model`` (LoRA adapters merged), save it as a plain HF folder in ``staging`` with
    its tokenizer; return ``(hf_model, tokenizer)`` for the checks."""
    from evmlm.train.inference import load_for_inference

    hf_model, tokenizer = load_for_inference(model, merge=True)
    if getattr(hf_model.config, "model_type", None) != "llama":
        raise ExportError(
            f"{model}: model type {hf_model.config.model_type!r}; the GGUF export supports the"
            " Llama architecture evmlm trains (scratch presets, SmolLM2)"
        )
    hf_model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    # tell llama.cpp whether this tokenizer adds a BOS token (a GGUF without the flag gets
    # llama.cpp's default for its vocabulary type, which may add one evmlm never trained with)
    cfg_path = staging / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    probe = "a"
    adds_bos = tokenizer.bos_token_id is not None and tokenizer(probe)["input_ids"][:1] == [
        tokenizer.bos_token_id
    ]
    cfg["add_bos_token"] = bool(adds_bos)
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return hf_model, tokenizer


def gguf_model_name(model: Path) -> str:
    """``general.name`` of the GGUF: the model folder's name, with the run and stage folders
    in front for the generic names a run writes (``runs/x/finetune/model`` → ``x-finetune``)."""
    p = model.resolve()
    if p.name in ("model", "adapter") and len(p.parts) >= 3:
        return f"{p.parent.parent.name}-{p.parent.name}"
    return p.name


def _convert(staging: Path, target: Path, src: Path, model_name: str) -> None:
    """llama.cpp's converter on the staged folder → float32 GGUF at ``target`` (atomic)."""
    import evmlm

    pkg_root = str(Path(evmlm.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "HF_HUB_OFFLINE": "1",
        "NO_LOCAL_GGUF": "1",  # gguf-py is put first on sys.path by the wrapper
    }
    with atomic.atomic_path(target) as tmp:
        cmd = [sys.executable, "-m", "evmlm.export.converter", str(src), str(staging)]
        cmd += ["--outfile", str(tmp), "--outtype", "f32", "--model-name", model_name]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise ExportError(
                f"llama.cpp's converter failed on {staging.name} ({lines[-1] if lines else proc.returncode})"
            )


def _quantize(source: Path, target: Path, gguf_type: str, threads: int) -> str | None:
    """llama.cpp's quantizer: ``source`` (float32 GGUF) → ``gguf_type`` at ``target`` (atomic).
    Tensors whose rows do not fit a k-quant's 256-value blocks get llama.cpp's own fallback
    type (llama.cpp's choice); returns ``"N/M"``, N of the M tensors so stored, or None.
    llama.cpp's log goes to this module's logger at DEBUG level."""
    import ctypes

    from evmlm.train.llamacpp import llama_cpp_module

    if gguf_type == "f32":  # the converter's own output
        with atomic.atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        return None
    ll = llama_cpp_module()
    name = f"LLAMA_FTYPE_MOSTLY_{gguf_type.upper()}"
    ftype = getattr(ll, name, None)
    if ftype is None:
        raise ExportError(f"--quant {gguf_type}: this llama.cpp build has no {name}")
    params = ll.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    lines: list[str] = []

    @ll.llama_log_callback
    def collect(level: int, text: bytes, user_data: Any) -> None:
        lines.append(text.decode("utf-8", "replace"))

    from llama_cpp import _logger  # llama-cpp-python's own callback, put back afterwards

    ll.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        with atomic.atomic_path(target) as tmp:
            rc = ll.llama_model_quantize(
                str(source).encode(), str(tmp).encode(), ctypes.byref(params)
            )
            if rc != 0:
                raise ExportError(f"llama.cpp's quantizer failed for {gguf_type} (status {rc})")
    finally:
        ll.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    text = "".join(lines)
    log.debug("llama.cpp quantizer (%s):\n%s", gguf_type, text)
    m = re.search(r"(\d+) of (\d+) tensor\(s\) required fallback", text)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def export_gguf(
    model: str | Path,
    out_dir: str | Path,
    *,
    types: Sequence[str] = ("f16", "q8_0", "q4_k_m"),
    records: Sequence[Mapping[str, Any]] | None = None,
    checks: CheckConfig | None = None,
    threads: int | None = None,
    name: str = "model",
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir/<name>-<type>.gguf`` per type, with the HF tokenizer and
    ``report.json`` (the round-trip checks on ``records``: dataset records with ``tac``,
    ``signature``, ``contract_context``, ``solidity``; without records only the load check
    runs). Returns a JSON-able summary with a one-line ``line``.

    Raises LlamaCppMissing without llama-cpp-python, ModelLoadError for a bad model folder,
    ExportError for an unknown type, a missing converter or a failed conversion.
    """
    import torch
    from tqdm.auto import tqdm

    from evmlm.train.llamacpp import LlamaCppModel, llama_cpp_module

    types = parse_types(types)
    llama_cpp_module()  # fail in one line before loading anything
    src = converter_dir()
    checks = checks or CheckConfig()
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)  # the HF side of the checks too
    model, out = Path(model), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".staging.*.tmp"), *out.glob(f".{name}-*.gguf.*.tmp")]:
        # left by an export that was killed (its finally blocks did not run)
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    t0 = time.perf_counter()
    staging = atomic.make_temp_dir(out, "staging")
    report: dict[str, Any] = {"model": str(model), "types": list(types), "files": {}}
    try:
        hf_model, tokenizer = _stage_model(model, staging)
        f32 = staging / "model-f32.gguf"
        _convert(staging, f32, src, gguf_model_name(model))
        files, fallback = {}, {}
        for t in tqdm(types, desc="quantize", unit="file"):
            files[t] = out / f"{name}-{t}.gguf"
            fallback[t] = _quantize(f32, files[t], t, threads)
        for f in TOKENIZER_FILES:
            if (staging / f).is_file():
                with atomic.atomic_path(out / f) as tmp:
                    shutil.copyfile(staging / f, tmp)
        if (model / INFO_FILE).is_file():
            with atomic.atomic_path(out / INFO_FILE) as tmp:
                shutil.copyfile(model / INFO_FILE, tmp)
        report["convert_seconds"] = round(time.perf_counter() - t0, 2)
        texts = record_texts(records or [])[: checks.n_texts]
        report["texts"] = len(texts)
        context = int(hf_model.config.max_position_embeddings)
        limit = min(checks.logit_tokens, context)
        n_ctx = min(context, max(checks.prompt_tokens + checks.max_new_tokens, limit))
        logit_seqs = [
            tokenizer(p + c)["input_ids"][:limit] for p, c in texts[: checks.n_logit_texts]
        ]
        greedy_type = "f16" if "f16" in types else types[0]
        for t in tqdm(types, desc="round-trip checks", unit="file"):
            entry: dict[str, Any] = {"file": files[t].name, "bytes": files[t].stat().st_size}
            if fallback[t]:  # tensors whose rows do not fit the type's blocks
                entry["fallback_tensors"] = fallback[t]
            gg = LlamaCppModel(files[t], logits_all=True, n_threads=threads, n_ctx=n_ctx)
            entry["loads"] = True
            if texts:
                entry["tokenisation"] = check_tokenisation(gg, tokenizer, [p + c for p, c in texts])
                entry["logits"] = check_logits(hf_model, gg, logit_seqs)
            if texts and t == greedy_type:
                prompts = fitted_prompts(records or [], tokenizer, gg, checks, hf_model)
                with tqdm(total=len(prompts), desc=f"greedy HF vs {t}", unit="prompt") as bar:
                    entry["greedy"] = check_greedy(
                        hf_model, gg, tokenizer, prompts, checks.max_new_tokens, bar.update
                    )
            report["files"][t] = entry
            del gg
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["line"] = summary_line(report)
    atomic.write_json(out / REPORT, report)
    return report


def fitted_prompts(
    records: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    model: Any,
    checks: CheckConfig,
    hf_model: Any = None,
) -> list[list[int]]:
    """Token ids of the first ``checks.n_greedy`` records' prompts, fitted to the model's
    context less ``checks.max_new_tokens`` -- and, given the HF model, to its prompt budget
    (:func:`evmlm.decompile.generation.generation_budget`: a fine-tuned model's
    ``max_length``) -- as decompilation fits them (:func:`evmlm.train.prompt.fit_prompt`; a
    prompt still too long keeps its head and its final ``<|solidity|>`` token, as
    :func:`evmlm.decompile.generation.generate_completions` cuts it), so every continuation
    has room in the context."""
    from evmlm.decompile.generation import generation_budget
    from evmlm.train.prompt import fit_prompt

    budget = model.config.max_position_embeddings - checks.max_new_tokens
    if hf_model is not None:
        budget = min(budget, generation_budget(hf_model, checks.max_new_tokens)[0])
    out = []
    for r in records[: checks.n_greedy]:
        text = fit_prompt(
            r["tac"], r.get("signature"), r.get("contract_context"), tokenizer, budget
        )
        ids = list(tokenizer(text)["input_ids"])
        out.append(ids if len(ids) <= budget else ids[: budget - 1] + ids[-1:])
    return out


def summary_line(report: Mapping[str, Any]) -> str:
    """One line: files and sizes, tokenisation, greedy agreement, top-1 agreement per type."""
    files = report["files"]
    sizes = ", ".join(
        f"{t} {e['bytes'] / 1e6:.1f} MB"
        + (
            f" ({e['fallback_tensors']} tensors in a fallback type)"
            if "fallback_tensors" in e
            else ""
        )
        for t, e in files.items()
    )
    parts = [f"{len(files)} GGUF files ({sizes}), all load in llama.cpp"]
    tok = [e["tokenisation"] for e in files.values() if "tokenisation" in e]
    if tok:
        bad = max(x["mismatches"] for x in tok)
        n = tok[0]["texts"]
        parts.append(
            f"tokenisation identical on {n - bad}/{n} texts"
            + (" (MISMATCH: see report.json)" if bad else "")
        )
    for t, e in files.items():
        if "greedy" in e:
            g = e["greedy"]
            parts.append(f"{t} greedy identical to HF on {g['identical']}/{g['prompts']} prompts")
    top1 = [
        f"{t} {e['logits']['top1_agreement']:.3f}/{e['logits']['max_abs_diff']:.3g}"
        for t, e in files.items()
        if "logits" in e and e["logits"]["positions"]
    ]
    if top1:
        parts.append("top-1 agreement/max logit diff " + ", ".join(top1))
    else:
        parts.append("no dataset records: tokenisation, greedy and logit checks not run")
    return "; ".join(parts)

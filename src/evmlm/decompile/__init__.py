"""Bytecode → Solidity with a trained model: the user-facing inference path (``evmlm decompile``).

Steps: load runtime bytecode (hex text, a file, or a compiler artifact JSON that may also carry
``abi`` and ``storageLayout``), lift it to TAC per function (:func:`evmlm.evm.lift_contract`),
resolve each selector to a text signature (the artifact's ABI first, then a
:class:`evmlm.dataset.SignatureDB`), build one prompt per function
(:func:`evmlm.train.prompt.build_prompt`), generate (batched, left-padded; streamed per
function when ``on_text`` is given), and assemble one ``.sol`` file: pragma, contract, state
variables from the storage layout (solc's ``storageLayout`` when known, else evmole's
inferred one), events whose topic0 occurs in LOG statements, then the functions in selector
order, each preceded by a comment naming its selector.

Every generated function is checked with tree-sitter-solidity; one that does not parse is
kept in the file as a comment that says why, so the assembled file always parses and the
reason is stated per function (also in :attr:`FunctionOutput.error`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evmlm.config import DecompileConfig
from evmlm.decompile.generation import generate_completions, generation_budget
from evmlm.decompile.syntax import check_function_syntax, complete_member
from evmlm.errors import EvmlmError
from evmlm.evm.inputs import BytecodeInput, read_bytecode_input
from evmlm.train.prompt import fit_prompt

log = logging.getLogger(__name__)

_TOPIC = re.compile(r"0x[0-9a-fA-F]{64}\b")
_EMIT = re.compile(r"\bEMIT\(([A-Za-z_$][\w$]*)")


class DecompileInputError(EvmlmError):
    """An address without an RPC URL or code, an unreachable node, or a selector the contract
    does not have. (Bytecode input itself fails with the lifter's ``BytecodeError``.)"""


class NoFunctionsError(DecompileInputError):
    """The bytecode has no function to decompile: no dispatcher, fallback or receive (often
    creation bytecode passed instead of runtime bytecode). ``evmlm decompile`` exits 2."""


_ADDRESS = re.compile(r"\s*0[xX][0-9a-fA-F]{40}\s*")


def redact_url(url: str) -> str:
    """``url`` cut after the host (``scheme://host[:port]/...``): an RPC URL usually carries a
    provider key in its path, query or credentials, so messages never show more."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(url.strip())
        host = u.hostname or ""
        port = f":{u.port}" if u.port is not None else ""
    except ValueError:  # e.g. a port that is not a number
        return "<the RPC URL>"
    if not u.scheme or not host:
        return "<the RPC URL>"
    hidden = u.path not in ("", "/") or u.query or u.fragment or u.username or u.password
    rest = "/..." if hidden else ""
    host = f"[{host}]" if ":" in host else host
    return f"{u.scheme}://{host}{port}{rest}"


def _scrub(text: str, url: str, redacted: str) -> str:
    """``text`` without ``url`` (nor its parts after the host): library messages quote it."""
    from urllib.parse import urlsplit

    text = text.replace(url, redacted).replace(url.rstrip("/"), redacted)
    try:
        u = urlsplit(url)
    except ValueError:
        return text
    secrets = [u.path.strip("/"), *u.path.split("/"), u.query, *re.split(r"[&=]", u.query)]
    secrets = [x for x in (*secrets, u.username, u.password) if x and len(x) >= 4]
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "...")
    return text


def fetch_code(address: str, rpc_url: str, *, timeout_s: float = 20.0) -> str:
    """Runtime bytecode (hex) of ``address`` from a JSON-RPC node (``eth_getCode`` at ``latest``).

    Retries transport errors 3 times (tenacity, exponential back-off). Raises
    :class:`DecompileInputError` for an unreachable node, an RPC error or an address without
    code; its message shows the URL only up to the host (:func:`redact_url`).
    """
    import httpx
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    @retry(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=4),
        retry=retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    def call() -> Any:
        r = httpx.post(
            rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_getCode",
                "params": [address.strip(), "latest"],
            },
            timeout=timeout_s,
        )
        r.raise_for_status()
        return r.json()

    where = redact_url(rpc_url)
    try:
        reply = call()
    except httpx.HTTPStatusError as e:
        status = f"HTTP {e.response.status_code} {e.response.reason_phrase}"
        raise DecompileInputError(
            f"{where}: eth_getCode failed ({status}); check the RPC URL"
        ) from e
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:
        detail = _scrub(f"{type(e).__name__}: {e}", rpc_url, where)
        raise DecompileInputError(
            f"{where}: eth_getCode failed ({detail}); check the RPC URL"
        ) from e
    if (
        not isinstance(reply, Mapping)
        or "error" in reply
        or not isinstance(reply.get("result"), str)
    ):
        detail = str(reply.get("error") if isinstance(reply, Mapping) else reply)[:120]
        raise DecompileInputError(f"{where}: eth_getCode returned {_scrub(detail, rpc_url, where)}")
    code = reply["result"]
    if code in ("0x", ""):
        raise DecompileInputError(
            f"{address.strip()}: no code at this address (an EOA or a destroyed contract)"
        )
    return code


def read_input(
    source: str | bytes | Mapping[str, Any], *, rpc_url: str | None = None
) -> BytecodeInput:
    """Parse a decompile input: a contract address (``0x`` + 40 hex digits) fetched from
    ``rpc_url``, else anything :func:`evmlm.evm.inputs.read_bytecode_input` reads (hex, a hex /
    binary / artifact JSON file, raw bytes, an artifact mapping; ``abi`` and ``storageLayout``
    are kept).

    Raises :class:`DecompileInputError` for an address without an RPC URL or code, and the
    lifter's ``BytecodeError`` for input that is not bytecode or a readable file.
    """
    from evmlm.evm.disasm import load_bytecode

    if isinstance(source, str) and _ADDRESS.fullmatch(source):
        if not rpc_url:
            raise DecompileInputError(
                f"{source.strip()}: looks like an address; pass --rpc-url (or set EVMLM_RPC_URL) to fetch its code, or pass the bytecode"
            )
        code = load_bytecode(fetch_code(source, rpc_url), what=source.strip())
        return BytecodeInput(code, name=source.strip())
    return read_bytecode_input(source)


# ----------------------------------------------------------------------------------- assembly


@dataclass
class FunctionOutput:
    """One decompiled function. ``selector``: ``"0xa9059cbb"`` (None for fallback/receive);
    ``output``: the Solidity kept in the file; ``seconds``: generation time; ``error``: why
    the output is not in the file as code (does not parse, generation failed), else None;
    ``draft``: the structural draft; ``chosen``: which candidate was kept (``draft``,
    ``greedy``, ``sampleN``, ``model``); ``verdict``: the marker comment above it in the file
    (:func:`evmlm.decompile.contract.verdict`); ``same``: True / False / None (undetermined or
    not checked) against the original bytecode; ``draft_same``: the same for the draft alone."""

    selector: str | None
    kind: str
    signature: str | None
    tac: str
    output: str = ""
    seconds: float = 0.0
    error: str | None = None
    draft: str = ""
    chosen: str = ""
    verdict: str = ""
    same: bool | None = None
    draft_same: bool | None = None
    elements: dict[str, Any] = field(default_factory=dict)  # multi-task models: docs/multitask.md


@dataclass
class DecompileResult:
    """The assembled ``source`` (one .sol file), per-function outputs, and timings (seconds)."""

    source: str
    functions: list[FunctionOutput]
    state_variables: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    lift_seconds: float = 0.0
    generate_seconds: float = 0.0
    draft_seconds: float = 0.0
    verify_seconds: float = 0.0
    compiler_version: str | None = None
    metadata_version: str | None = None
    compiles: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_variable_declarations(
    storage_layout: Mapping[str, Any] | None, bytecode: bytes | None = None
) -> list[str]:
    """Declarations of state variables in slot order.

    From solc's ``storageLayout`` (labels and types; struct-typed variables become comments,
    contract types ``address``, enum types ``uint8``); without it, from evmole's inferred
    layout (``var_<slot>_<offset>``). Returns declaration lines without indentation.
    """
    lines: list[str] = []
    if storage_layout and storage_layout.get("storage") is not None:
        types = storage_layout.get("types") or {}
        for v in sorted(
            storage_layout["storage"], key=lambda v: (int(v["slot"]), int(v.get("offset", 0)))
        ):
            label = (types.get(v["type"]) or {}).get("label", v["type"])
            label = re.sub(r"\bcontract [A-Za-z_$][\w$]*", "address", label)
            label = re.sub(r"\benum [A-Za-z_$][\w.$]*", "uint8", label)
            decl = f"{label} {v['label']}; // slot {v['slot']}" + (
                f", offset {v['offset']}" if int(v.get("offset", 0)) else ""
            )
            lines.append(f"// {decl} (struct type)" if "struct " in label else decl)
        return lines
    if bytecode:
        try:
            import evmole

            info = evmole.contract_info(bytecode, storage=True)
        except Exception as e:  # evmole raises plain exceptions on odd code; the layout is optional
            log.debug("evmole storage layout failed: %s", e)
            return lines
        for rec in sorted(info.storage or [], key=lambda r: (int(r.slot, 16), r.offset)):
            slot = int(rec.slot, 16)
            if slot > 2**32:  # hashed slots (ERC-7201 namespaces) are not declarable by position
                lines.append(f"// {rec.type} at slot {hex(slot)}, offset {rec.offset}")
                continue
            lines.append(
                f"{rec.type} var_{slot}_{rec.offset}; // slot {slot}"
                + (f", offset {rec.offset}" if rec.offset else "")
            )
    return lines


def event_declarations(tacs: Sequence[str], abi: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Events emitted in the TAC, declared from the ABI when it has them, in order of appearance.

    The lifter prints ``LOGn(..., topic0, ...)`` for an unknown event and ``EMIT(Name, ...)``
    when the ABI names it. Topic0 = keccak-256 of the event's canonical signature (Solidity ABI
    spec, "Events"). Events the ABI does not describe become comments (``// event 0x...``).
    """
    from evmlm.evm.abi import signature_of, topic_of

    by_topic: dict[str, Mapping[str, Any]] = {}
    by_name: dict[str, Mapping[str, Any]] = {}
    for item in abi or []:
        if item.get("type") == "event":
            by_topic[f"{topic_of(signature_of(item)):#066x}"] = item
            by_name.setdefault(str(item["name"]), item)
    seen: list[str] = []
    for tac in tacs:
        for line in tac.splitlines():
            for name in _EMIT.findall(line):
                if name not in seen:
                    seen.append(name)
            if "LOG" in line:
                for t in _TOPIC.findall(line):
                    if t.lower() not in seen:
                        seen.append(t.lower())
    out: list[str] = []
    declared: set[str] = set()
    for key in seen:
        ev = by_topic.get(key) or by_name.get(key)
        if ev is None:
            out.append(
                f"// event {key} (not in the ABI)"
                if not key.startswith("0x")
                else f"// event with topic0 {key}"
            )
            continue
        if ev["name"] in declared:
            continue
        declared.add(ev["name"])
        params = ", ".join(
            f"{p['type']}{' indexed' if p.get('indexed') else ''}{' ' + p['name'] if p.get('name') else ''}"
            for p in ev.get("inputs", [])
        )
        out.append(f"event {ev['name']}({params});")
    return out


def resolve_signature(
    selector: str | None,
    abi: Sequence[Mapping[str, Any]] | None,
    signatures: Any | None,
    lifted_signature: str | None = None,
) -> str | None:
    """Text signature of ``selector``: the lifter's, then the ABI's, then the database's first entry."""
    if lifted_signature:
        return lifted_signature
    if selector is None:
        return None
    from evmlm.evm.abi import normalise_selector, selector_of, signature_of

    sel = normalise_selector(selector)
    for item in abi or []:
        if item.get("type") == "function":
            sig = signature_of(item)
            if normalise_selector(selector_of(sig)) == sel:
                return sig
    if signatures is not None:
        if isinstance(signatures, Mapping):
            found = signatures.get("0x" + sel) or signatures.get(sel)
            return found if isinstance(found, str) else (found[0] if found else None)
        hits = signatures.lookup("0x" + sel)
        return hits[0] if hits else None
    return None


def decompile(
    bytecode: str | bytes | Mapping[str, Any] | BytecodeInput,
    model_dir: str | Path | None = None,
    *,
    model: Any = None,
    tokenizer: Any = None,
    selector: str | None = None,
    signatures: Any | None = None,
    config: DecompileConfig | None = None,
    on_text: Callable[[int, str], None] | None = None,
    on_function: Callable[[FunctionOutput], None] | None = None,
    rpc_url: str | None = None,
) -> DecompileResult:
    """Decompile runtime bytecode to one Solidity file: the structural draft
    (:mod:`evmlm.structural`), refined by the model in ``model_dir`` when one is
    given, each function chosen by verified selection (``config.verify``).

    ``bytecode``: see :func:`read_input`; ``model_dir``: a run's ``finetune/model`` (merged),
    ``finetune/adapter`` or any local HF causal-LM folder (or pass ``model`` and
    ``tokenizer``; neither: the draft alone); ``selector``: decompile only this function
    (``"0xa9059cbb"``); ``signatures``: a :class:`evmlm.dataset.SignatureDB` or mapping
    selector → signature; ``on_text(i, piece)``: stream generated text of the i-th generated
    function; ``on_function``: called with each finished function; ``rpc_url``: JSON-RPC node
    for an address input.

    With verification the file is compiled (solc version from the bytecode's CBOR metadata,
    :func:`evmlm.decompile.contract.compiler_for`) and every function is executed against the
    original runtime code (:func:`evmlm.decompile.verify.compare_runtime`); each function is
    marked ``// verified: …``, ``// compiles, differs: …`` or ``// unverified: …``.

    Raises the lifter's ``BytecodeError`` for bad bytecode, :class:`DecompileInputError` for
    an unreadable input or a selector the contract does not have, :class:`NoFunctionsError`
    when the bytecode has no function at all, and the model loader's error for a bad model
    folder (the model is loaded last, after these cheap checks; with no model the structural
    draft alone is written).
    """
    from evmlm.evm import lift_contract

    cfg = config or DecompileConfig()
    inp = bytecode if isinstance(bytecode, BytecodeInput) else read_input(bytecode, rpc_url=rpc_url)
    has_model = (model is not None and tokenizer is not None) or model_dir is not None
    t0 = time.perf_counter()
    lifted = lift_contract(inp.bytecode, abi=inp.abi, storage_layout=inp.storage_layout)
    first_lift = lifted
    lift_seconds = time.perf_counter() - t0
    funcs = [f for f in lifted.functions if f.kind != "internal"]
    if not funcs:
        raise NoFunctionsError(
            f"{inp.name}: no functions found (no selector dispatcher, and no fallback or receive"
            " that does more than revert): nothing to decompile; if this is creation bytecode,"
            " pass the runtime (deployed) bytecode"
        )
    if selector is not None:
        from evmlm.evm.abi import normalise_selector

        try:
            want = normalise_selector(selector)
        except ValueError as e:
            raise DecompileInputError(f"--selector: {e}") from None
        funcs = [f for f in funcs if (f.selector or "").lower() == want]
        if not funcs:
            have = ", ".join(sorted(f.selector for f in lifted.functions if f.selector)) or "none"
            raise DecompileInputError(
                f"{inp.name}: no function with selector {want} (selectors: {have})"
            )
    if has_model and (model is None or tokenizer is None):  # after the cheap checks above
        from evmlm.multitask import register_auto_classes
        from evmlm.train import load_for_inference

        register_auto_classes()  # multi-task models load like any other

        model, tokenizer = load_for_inference(model_dir)
    resolved = {
        f.selector: resolve_signature(f.selector, inp.abi, signatures, f.signature) for f in funcs
    }
    if any(resolved[f.selector] and not f.signature for f in funcs):
        # signatures only the database knows: lift again with them, so the TAC names and
        # types the arguments and the draft can give the function its selector
        t0 = time.perf_counter()
        # (every resolved signature: with an ABI the lifter names nothing from its own list)
        lifted = lift_contract(
            inp.bytecode,
            abi=signature_abi(
                inp.abi,
                {f.selector: resolved[f.selector] for f in funcs if resolved[f.selector]},
                funcs,
            ),
            storage_layout=inp.storage_layout,
        )
        lift_seconds += time.perf_counter() - t0
        keep = {f.selector for f in funcs}
        funcs = [f for f in lifted.functions if f.kind != "internal" and f.selector in keep]
    outputs = [
        FunctionOutput(f.selector, f.kind, resolved.get(f.selector) or f.signature, f.tac)
        for f in funcs
    ]
    from evmlm.decompile.contract import compiler_for
    from evmlm.structural import draft_contract

    compiler = compiler_for(inp.bytecode, cfg.pragma)
    unnamed = [fo.selector for fo in outputs if fo.selector and not fo.signature]
    guessed = argument_types(inp.bytecode, unnamed, len(lifted.selectors)) if unnamed else {}
    t1 = time.perf_counter()
    draft = draft_contract(
        lifted,
        abi=inp.abi,
        storage_layout=inp.storage_layout,
        name=cfg.contract_name,
        solc_version=compiler.version,
        # the lifter named arguments by evmole's types only when it had no ABI at all
        argument_types=guessed if inp.abi is None and lifted is first_lift else None,
    )
    draft_seconds = time.perf_counter() - t1
    for fo in outputs:
        d = draft.functions.get(fo.selector or fo.kind)
        fo.draft = d.text if d is not None else ""
        fo.output, fo.chosen = fo.draft, "draft"
    payable = {f.selector: f.payable for f in funcs}  # None: fallback or receive (either payable)
    payable[None] = any(f.payable for f in funcs if f.selector is None)
    verifier = (
        _Verifier(inp.bytecode, draft.source, compiler.version, cfg, payable, guessed)
        if cfg.verify
        else None
    )
    t_verify = 0.0
    if verifier is not None:
        t2 = time.perf_counter()
        verifier.check_draft(outputs)
        t_verify += time.perf_counter() - t2
    todo = (
        [fo for fo in outputs if fo.draft and (verifier is None or fo.same is not True)]
        if has_model
        else []
    )
    generate_seconds = 0.0
    if todo:
        t3 = time.perf_counter()
        cands = _model_candidates(todo, model, tokenizer, inp.abi, cfg, on_text)
        generate_seconds = time.perf_counter() - t3
        t4 = time.perf_counter()
        for fo, cs in zip(todo, cands):
            fo.seconds = round(sum(c[2] for c in cs), 3)
            if verifier is not None:
                verifier.select(fo, cs)
            else:
                name, text, _ = cs[0]
                if check_function_syntax(text) is None:
                    fo.output, fo.chosen = text, name
        t_verify += time.perf_counter() - t4
    if has_model:
        from evmlm.multitask.elements import element_report, is_multitask

        for fo in outputs if is_multitask(model) else ():
            fo.elements = element_report(
                model, tokenizer, fo.tac, fo.signature, fo.output, fo.draft
            )
    t5 = time.perf_counter()
    source, compiles = _assemble(
        verifier.draft_source if verifier is not None else draft.source, outputs, verifier, cfg
    )
    t_verify += time.perf_counter() - t5
    for fo in outputs:
        if on_function is not None:
            on_function(fo)
    state_vars = state_variable_declarations(inp.storage_layout, inp.bytecode)
    events = event_declarations([f.tac for f in funcs], inp.abi)
    return DecompileResult(
        source,
        outputs,
        state_vars,
        events,
        round(lift_seconds, 3),
        round(generate_seconds, 3),
        round(draft_seconds, 3),
        round(t_verify, 3),
        compiler.version,
        compiler.from_metadata,
        compiles,
    )


def argument_types(
    code: bytes, selectors: Sequence[str], n_selectors: int
) -> dict[str, list[str] | None]:
    """selector → argument types (ABI type strings) that evmole (the ``evmole`` package,
    static analysis of the dispatcher and argument reads) infers for the ``selectors`` of
    runtime ``code``, None where it gives none. Used for functions without a known signature:
    the lifter names their arguments by these types when it has no ABI, and the verifier
    calls them with arguments of these types. {} past
    :data:`evmlm.evm.lifter.EVMOLE_MAX_SELECTORS` selectors (its cost grows quadratically)
    or when evmole fails."""
    from evmlm.evm.abi import signature_types
    from evmlm.evm.lifter import EVMOLE_MAX_SELECTORS

    if n_selectors > EVMOLE_MAX_SELECTORS:
        return {}
    try:
        import evmole

        info = evmole.contract_info(code, selectors=True, arguments=True)
    except Exception as e:  # noqa: BLE001 -- evmole is advisory only
        log.debug("evmole failed: %s", e)
        return {}
    found = {
        "0x" + f.selector.lower().removeprefix("0x"): f.arguments for f in info.functions or []
    }
    return {
        sel: (signature_types(f"f({found[sel]})") if found.get(sel) is not None else None)
        for sel in selectors
    }


def signature_abi(
    abi: Sequence[Mapping[str, Any]] | None, extra: Mapping[str | None, str], funcs: Sequence[Any]
) -> list[Any]:
    """``abi`` plus a function entry (name, input types, mutability from the lifter; no
    outputs key) for each selector → signature in ``extra`` the ABI lacks."""
    from evmlm.evm.abi import signature_types

    out = list(abi or [])
    by_sel = {f.selector: f for f in funcs}
    have = {resolve_signature(sel, abi, None) for sel in extra} if abi else set()
    for sel, sig in extra.items():
        types = signature_types(sig)
        if types is None or sel not in by_sel or sig in have:
            continue
        f = by_sel[sel]
        mut = "payable" if f.payable else "view" if f.view_like else "nonpayable"
        out.append(
            {
                "type": "function",
                "name": sig.split("(", 1)[0],
                "inputs": [{"name": "", "type": t} for t in types],
                "stateMutability": mut,
            }
        )
    return out


def _model_candidates(
    todo: Sequence[FunctionOutput],
    model: Any,
    tokenizer: Any,
    abi: Sequence[Mapping[str, Any]] | None,
    cfg: DecompileConfig,
    on_text: Callable[[int, str], None] | None,
) -> list[list[tuple[str, str, float]]]:
    """Per function: ``[("greedy", text, s), ("sample1", text, s), ...]`` (samples only with
    verification): prompts with the draft, the header forced (:mod:`evmlm.decompile.header`)."""
    from evmlm.decompile.header import header_for

    budget, _ = generation_budget(model, cfg.max_new_tokens)
    prompts = [fit_prompt(fo.tac, fo.signature, None, tokenizer, budget, fo.draft) for fo in todo]
    # the draft's header (typed from the same ABI / signature) keeps the names its body uses
    starts = [
        header_for(fo.signature, draft=fo.draft)
        if fo.draft
        else header_for(fo.signature, abi=abi, selector=fo.selector)
        for fo in todo
    ]
    runs = [("greedy", cfg.temperature, 0)] + (
        [(f"sample{k + 1}", SAMPLE_TEMPERATURE, k + 1) for k in range(cfg.candidates - 2)]
        if cfg.verify
        else []
    )
    out: list[list[tuple[str, str, float]]] = [[] for _ in todo]
    for name, temp, seed in runs:
        gens = generate_completions(
            model,
            tokenizer,
            prompts,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
            temperature=temp,
            seed=seed,
            starts=starts,
            on_text=on_text if name == "greedy" else None,
        )
        for i, (text, secs) in enumerate(gens):
            out[i].append((name, text, secs))
    return out


SAMPLE_TEMPERATURE = 0.8  # sampled candidates of verified selection (greedy is the first)


class _Verifier:
    """Compiles candidate files and compares functions against the original runtime code."""

    def __init__(
        self,
        original: bytes,
        draft_source: str,
        version: str,
        cfg: DecompileConfig,
        payable: Mapping[str | None, bool],
        guessed: Mapping[str, Sequence[str] | None] | None = None,
    ) -> None:
        self.original, self.draft_source, self.version, self.cfg, self.payable = (
            original,
            draft_source,
            version,
            cfg,
            payable,
        )
        self.guessed = dict(guessed or {})  # selector -> evmole's argument types (no signature)
        self.draft_agree: dict[str | None, int] = {}  # selector -> calls on which the draft agreed

    def compare(self, fo: FunctionOutput, runtime: bytes) -> Any:
        from evmlm.decompile.verify import Machine, compare_runtime, run_calls
        from evmlm.evm.abi import signature_types

        if fo.selector is None:  # fallback / receive: no calldata, an unknown selector, junk
            datas = [
                b"",
                bytes.fromhex("deadbeef"),
                bytes.fromhex("deadbeef") + bytes(range(40)),
                b"\x01\x02",
            ]
            return run_calls(
                Machine.install(self.original),
                Machine.install(runtime),
                datas,
                1 if self.payable.get(None) else 0,
            )
        types = signature_types(fo.signature)
        if types is None and self.guessed.get(fo.selector or "") is not None:
            types = list(self.guessed[fo.selector or ""] or [])
        return compare_runtime(
            self.original,
            runtime,
            fo.selector or "",
            types,
            payable=bool(self.payable.get(fo.selector)),
            n_random=self.cfg.n_random_calls,
        )

    def runtime(self, source: str) -> tuple[bytes | None, str | None]:
        from evmlm.decompile.contract import compile_runtime
        from evmlm.solc import CompileError

        try:
            return compile_runtime(source, self.version, self.cfg.contract_name), None
        except CompileError as e:
            return None, (str(e).splitlines() or ["solc error"])[0][:160]

    def check_draft(self, outputs: Sequence[FunctionOutput]) -> None:
        """Compile the draft file (repairing it first: :meth:`repair`) and compare every
        function on it."""
        from evmlm.decompile.contract import verdict

        runtime, err = self.repair(outputs)
        for fo in outputs:
            if not fo.draft:
                fo.verdict = verdict(None, "no draft")
                continue
            if runtime is None:
                fo.verdict = verdict(None, f"the draft file does not compile: {err}")
                continue
            b = self.compare(fo, runtime)
            fo.same, fo.draft_same, fo.verdict = b.same, b.same, verdict(b)
            self.draft_agree[fo.selector] = b.n_calls - b.n_different if b.same is not None else -1

    def repair(self, outputs: Sequence[FunctionOutput]) -> tuple[bytes | None, str | None]:
        """Compile the draft file; while solc reports an error inside a function, that
        function's draft becomes its header with a ``revert()`` body (then, if even that fails,
        a comment), so the rest of the file compiles. Returns (runtime code, last error)."""
        from evmlm.decompile.contract import find_function, replace_function
        from evmlm.decompile.header import header_of

        for _ in range(2 * len(outputs) + 1):
            runtime, err = self.runtime(self.draft_source)
            if runtime is not None or err is None:
                return runtime, err
            m = re.search(r"Decompiled\.sol:(\d+):", err)
            culprit = None
            if m:
                line = int(m.group(1))
                for fo in outputs:
                    if not fo.draft:
                        continue
                    try:
                        i, j, _ = find_function(self.draft_source, fo.draft)
                    except ValueError:
                        continue
                    if (
                        self.draft_source.count("\n", 0, i)
                        < line
                        <= self.draft_source.count("\n", 0, j) + 1
                    ):
                        culprit = fo
                        break
            if culprit is None:
                return None, err
            head = header_of(culprit.draft)
            reason = err.split(": ", 2)[-1][:100].replace("*/", "* /")
            if head and "revert();" not in culprit.draft.split("{", 1)[-1][:40]:
                stub = f"// {culprit.selector}: the draft did not compile ({reason})\n{head} {{\n    revert();\n}}"
            else:
                stub = f"// {culprit.selector}: not compiled ({reason})"
            self.draft_source = replace_function(self.draft_source, culprit.draft, stub)
            culprit.draft = culprit.output = stub
            culprit.error = f"the draft did not compile: {reason}"
            log.info("%s: draft replaced by a stub: %s", culprit.selector, reason)
        return self.runtime(self.draft_source)

    def select(self, fo: FunctionOutput, cands: Sequence[tuple[str, str, float]]) -> None:
        """Verified selection after the draft: the first candidate that behaves the same,
        else the one agreeing on most calls that compiles (the draft's count included), else
        the draft."""
        from evmlm.decompile.contract import replace_function, verdict

        best = None  # (agreeing calls, name, text, result)
        for name, text, _ in cands:
            if check_function_syntax(text) is not None:
                continue
            try:
                source = replace_function(
                    self.draft_source, fo.draft, complete_member(text.strip())
                )
            except ValueError:
                break
            runtime, _ = self.runtime(source)
            if runtime is None:
                continue
            b = self.compare(fo, runtime)
            if b.same is True:
                fo.output, fo.chosen, fo.same, fo.verdict = text.strip(), name, True, verdict(b)
                return
            if b.same is False and (best is None or b.n_calls - b.n_different > best[0]):
                best = (b.n_calls - b.n_different, name, text.strip(), b)
        if best is not None and best[0] > self.draft_agree.get(fo.selector, -1):
            fo.output, fo.chosen, fo.same, fo.verdict = best[2], best[1], False, verdict(best[3])


def _assemble(
    draft_source: str,
    outputs: Sequence[FunctionOutput],
    verifier: _Verifier | None,
    cfg: DecompileConfig,
) -> tuple[str, bool | None]:
    """The final file: the draft with each kept candidate swapped in and a marker above every
    function. With a verifier the file is compiled once more and every function compared on
    it (candidates that only compiled alone fall back to their drafts); returns (source,
    compiles) (compiles None without a verifier)."""
    from evmlm.decompile.contract import replace_function, verdict

    def build(keep: Sequence[FunctionOutput]) -> str:
        src = draft_source
        for fo in keep:
            if fo.chosen != "draft" and fo.draft:
                src = replace_function(src, fo.draft, complete_member(fo.output))
        return src

    source = build(outputs)
    compiles = None
    if verifier is not None:
        runtime, err = verifier.runtime(source)
        if runtime is None and any(fo.chosen != "draft" for fo in outputs):
            log.warning("the assembled file does not compile (%s); keeping the drafts", err)
            for fo in outputs:
                fo.output, fo.chosen = fo.draft, "draft"
            source = draft_source
            runtime, err = verifier.runtime(source)
        compiles = runtime is not None
        for fo in outputs:
            if not fo.draft:
                continue
            if runtime is None:
                fo.same, fo.verdict = None, verdict(None, f"the file does not compile: {err}")
            else:
                b = verifier.compare(fo, runtime)
                fo.same, fo.verdict = b.same, verdict(b)
    else:
        for fo in outputs:
            fo.verdict = verdict(None, "--no-verify")
    from evmlm.decompile.contract import find_function

    for fo in outputs:
        text = complete_member(fo.output) if fo.chosen != "draft" else fo.draft
        if not text or not fo.verdict:
            continue
        try:
            i, _, indent = find_function(source, text)
        except ValueError:
            continue
        marker = fo.verdict
        if fo.elements:  # a multi-task model's element classifier (docs/multitask.md)
            from evmlm.multitask.elements import element_comment

            marker += "\n" + indent + element_comment(fo.elements)
        source = source[:i] + indent + marker + "\n" + source[i:]
    return source, compiles


def load_signature_db(path: str | Path | None, model_dir: str | Path | None = None) -> Any | None:
    """The selector → signature database: ``path`` (a TSV), else ``<run>/dataset/signatures.tsv``
    beside a model at ``<run>/finetune/model``, else None. Raises DecompileInputError for a
    ``path`` that does not exist."""
    from evmlm.dataset import SignatureDB

    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DecompileInputError(
                f"{p}: signature file not found; pass a selector<TAB>signature TSV (e.g. runs/<name>/dataset/signatures.tsv)"
            )
        return SignatureDB.load(p)
    if model_dir is not None:
        guess = Path(model_dir).resolve().parent.parent / "dataset" / "signatures.tsv"
        if guess.is_file():
            log.info("signatures: %s", guess)
            return SignatureDB.load(guess)
    return None

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
from evmlm.errors import EvmlmError
from evmlm.evaluate.generation import generate_completions, generation_budget
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


#: The decompile input: :class:`evmlm.evm.inputs.BytecodeInput` (bytecode, ABI, storage layout).
DecompileInput = BytecodeInput


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

    @retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.5, max=4), retry=retry_if_exception_type(httpx.TransportError), reraise=True)
    def call() -> Any:
        r = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [address.strip(), "latest"]}, timeout=timeout_s)
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
    if not isinstance(reply, Mapping) or "error" in reply or not isinstance(reply.get("result"), str):
        detail = str(reply.get("error") if isinstance(reply, Mapping) else reply)[:120]
        raise DecompileInputError(f"{where}: eth_getCode returned {_scrub(detail, rpc_url, where)}")
    code = reply["result"]
    if code in ("0x", ""):
        raise DecompileInputError(f"{address.strip()}: no code at this address (an EOA or a destroyed contract)")
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
            raise DecompileInputError(f"{source.strip()}: looks like an address; pass --rpc-url (or set EVMLM_RPC_URL) to fetch its code, or pass the bytecode")
        code = load_bytecode(fetch_code(source, rpc_url), what=source.strip())
        return BytecodeInput(code, name=source.strip())
    return read_bytecode_input(source)


# ----------------------------------------------------------------------------------- assembly


@dataclass
class FunctionOutput:
    """One decompiled function. ``selector``: ``"0xa9059cbb"`` (None for fallback/receive);
    ``output``: the model's Solidity; ``seconds``: generation time; ``error``: why the output
    is not in the file as code (does not parse, generation failed), else None."""

    selector: str | None
    kind: str
    signature: str | None
    tac: str
    output: str = ""
    seconds: float = 0.0
    error: str | None = None


@dataclass
class DecompileResult:
    """The assembled ``source`` (one .sol file), per-function outputs, and timings (seconds)."""

    source: str
    functions: list[FunctionOutput]
    state_variables: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    lift_seconds: float = 0.0
    generate_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_variable_declarations(storage_layout: Mapping[str, Any] | None, bytecode: bytes | None = None) -> list[str]:
    """Declarations of state variables in slot order.

    From solc's ``storageLayout`` (labels and types; struct-typed variables become comments,
    contract types ``address``, enum types ``uint8``); without it, from evmole's inferred
    layout (``var_<slot>_<offset>``). Returns declaration lines without indentation.
    """
    lines: list[str] = []
    if storage_layout and storage_layout.get("storage") is not None:
        types = storage_layout.get("types") or {}
        for v in sorted(storage_layout["storage"], key=lambda v: (int(v["slot"]), int(v.get("offset", 0)))):
            label = (types.get(v["type"]) or {}).get("label", v["type"])
            label = re.sub(r"\bcontract [A-Za-z_$][\w$]*", "address", label)
            label = re.sub(r"\benum [A-Za-z_$][\w.$]*", "uint8", label)
            decl = f"{label} {v['label']}; // slot {v['slot']}" + (f", offset {v['offset']}" if int(v.get("offset", 0)) else "")
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
            lines.append(f"{rec.type} var_{slot}_{rec.offset}; // slot {slot}" + (f", offset {rec.offset}" if rec.offset else ""))
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
            out.append(f"// event {key} (not in the ABI)" if not key.startswith("0x") else f"// event with topic0 {key}")
            continue
        if ev["name"] in declared:
            continue
        declared.add(ev["name"])
        params = ", ".join(f"{p['type']}{' indexed' if p.get('indexed') else ''}{' ' + p['name'] if p.get('name') else ''}" for p in ev.get("inputs", []))
        out.append(f"event {ev['name']}({params});")
    return out


_MEMBERS = ("function_definition", "fallback_receive_definition", "state_variable_declaration")


def _member_syntax(text: str) -> str | None:
    from evmlm.evaluate.structure import _parser

    tree = _parser().parse(f"contract __C {{\n{text}\n}}".encode("utf-8"))
    root = tree.root_node
    body = root.children[0].children[-1] if root.children and root.children[0].children else None
    members = [n for n in body.children if n.type in _MEMBERS] if body is not None else []
    if root.has_error:
        err = _first_error(root)
        where = f" at line {err.start_point[0]}, column {err.start_point[1] + 1}" if err is not None else ""
        return f"not valid Solidity (syntax error{where})"
    if not members:
        return "no function definition in the output"
    return None


def _completed_member(text: str) -> tuple[str, str | None]:
    """(``text``, with the final ``;`` a state-variable declaration needs in a file when only
    that is missing; the syntax problem of the result, or None). solc's ``src`` of a state
    variable excludes its ``;``, which is how the dataset stores getters."""
    reason = _member_syntax(text)
    t = text.rstrip()
    if reason is not None and not t.endswith((";", "}")) and _member_syntax(t + ";") is None:
        return t + ";", None
    return text, reason


def check_function_syntax(text: str) -> str | None:
    """None when ``text`` parses (tree-sitter) as a contract member — a function, or a public
    state variable (whose getter a selector can belong to; a missing final ``;`` is accepted)
    — else the reason (one line)."""
    if not text.strip():
        return "the model produced no text"
    return _completed_member(text)[1]


def complete_member(text: str) -> str:
    """``text`` with the final ``;`` a state-variable declaration needs in a file, when missing."""
    return _completed_member(text)[0]


def _first_error(node: Any) -> Any | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for c in node.children:
        if c.has_error or c.is_missing:
            found = _first_error(c)
            if found is not None:
                return found
    return None


def assemble_source(functions: Sequence[FunctionOutput], state_variables: Sequence[str], events: Sequence[str], config: DecompileConfig) -> str:
    """One .sol file: license, pragma, contract with state variables, events and functions.

    Functions come in selector order (fallback/receive last), each after ``// selector 0x...``;
    a function with an ``error`` is kept as a comment that states the error.
    """
    lines = ["// SPDX-License-Identifier: UNLICENSED", "// Decompiled by evmlm; review before use.", f"pragma solidity {config.pragma.strip()};", "", f"contract {config.contract_name} {{"]
    for decl in state_variables:
        lines.append(f"    {decl}")
    if state_variables:
        lines.append("")
    for ev in events:
        lines.append(f"    {ev}")
    if events:
        lines.append("")
    for fn in sorted(functions, key=lambda f: (f.selector is None, f.selector or f.kind)):
        head = f"    // selector {fn.selector}" if fn.selector else f"    // {fn.kind} function"
        if fn.signature:
            head += f": {fn.signature}"
        lines.append(head)
        if fn.error:
            lines.append(f"    // not included as code: {fn.error}")
            body = fn.output.replace("*/", "* /")
            if body.strip():
                lines.append("    /*")
                lines.extend(f"    {ln}" for ln in body.splitlines())
                lines.append("    */")
        else:
            lines.extend(f"    {ln}" if ln.strip() else "" for ln in complete_member(fn.output.strip()).splitlines())
        lines.append("")
    if lines[-1] == "":
        lines.pop()
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- the API


def resolve_signature(selector: str | None, abi: Sequence[Mapping[str, Any]] | None, signatures: Any | None, lifted_signature: str | None = None) -> str | None:
    """Text signature of ``selector``: the lifter's, then the ABI's, then the database's first entry."""
    if lifted_signature:
        return lifted_signature
    if selector is None:
        return None
    from evmlm.evm.abi import selector_of, signature_of

    sel = selector.lower().removeprefix("0x")
    for item in abi or []:
        if item.get("type") == "function":
            sig = signature_of(item)
            if f"{selector_of(sig):08x}" == sel:
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
    """Decompile runtime bytecode to one Solidity file with the model in ``model_dir``.

    ``bytecode``: see :func:`read_input`; ``model_dir``: a run's ``finetune/model`` (merged),
    ``finetune/adapter`` or any local HF causal-LM folder (or pass ``model`` and
    ``tokenizer``); ``selector``: decompile only this function (``"0xa9059cbb"``);
    ``signatures``: a :class:`evmlm.dataset.SignatureDB` or mapping selector → signature;
    ``on_text(i, piece)``: stream generated text of the i-th function; ``on_function``: called
    with each finished function; ``rpc_url``: JSON-RPC node for an address input.

    Raises the lifter's ``BytecodeError`` for bad bytecode, :class:`DecompileInputError` for
    an unreadable input or a selector the contract does not have, :class:`NoFunctionsError`
    when the bytecode has no function at all, and the model loader's error for a bad model
    folder (the model is loaded last, after these cheap checks).
    """
    from evmlm.evm import lift_contract

    cfg = config or DecompileConfig()
    inp = bytecode if isinstance(bytecode, BytecodeInput) else read_input(bytecode, rpc_url=rpc_url)
    if (model is None or tokenizer is None) and model_dir is None:
        raise DecompileInputError("no model: pass a model folder (e.g. runs/<name>/finetune/model)")
    t0 = time.perf_counter()
    lifted = lift_contract(inp.bytecode, abi=inp.abi, storage_layout=inp.storage_layout)
    lift_seconds = time.perf_counter() - t0
    funcs = [f for f in lifted.functions if f.kind != "internal"]
    if not funcs:
        raise NoFunctionsError(
            f"{inp.name}: no functions found (no selector dispatcher, and no fallback or receive"
            " that does more than revert): nothing to decompile; if this is creation bytecode,"
            " pass the runtime (deployed) bytecode"
        )
    if selector is not None:
        want = "0x" + selector.lower().removeprefix("0x").rjust(8, "0")
        funcs = [f for f in funcs if (f.selector or "").lower() == want]
        if not funcs:
            have = ", ".join(sorted(f.selector for f in lifted.functions if f.selector)) or "none"
            raise DecompileInputError(f"{inp.name}: no function with selector {want} (selectors: {have})")
    if model is None or tokenizer is None:  # after the cheap checks above
        from evmlm.train import load_for_inference

        model, tokenizer = load_for_inference(model_dir)
    outputs = [FunctionOutput(f.selector, f.kind, resolve_signature(f.selector, inp.abi, signatures, f.signature), f.tac) for f in funcs]
    budget, _ = generation_budget(model, cfg.max_new_tokens)
    prompts = [fit_prompt(fo.tac, fo.signature, None, tokenizer, budget) for fo in outputs]
    t1 = time.perf_counter()
    if prompts:
        gens = generate_completions(model, tokenizer, prompts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, temperature=cfg.temperature, on_text=on_text)
        for fo, (text, secs) in zip(outputs, gens):
            fo.output, fo.seconds = text, round(secs, 3)
            fo.error = check_function_syntax(text)
            if on_function is not None:
                on_function(fo)
    generate_seconds = time.perf_counter() - t1
    state_vars = state_variable_declarations(inp.storage_layout, inp.bytecode)
    events = event_declarations([f.tac for f in funcs], inp.abi)
    source = assemble_source(outputs, state_vars, events, cfg)
    return DecompileResult(source, outputs, state_vars, events, round(lift_seconds, 3), round(generate_seconds, 3))


def load_signature_db(path: str | Path | None, model_dir: str | Path | None = None) -> Any | None:
    """The selector → signature database: ``path`` (a TSV), else ``<run>/dataset/signatures.tsv``
    beside a model at ``<run>/finetune/model``, else None. Raises DecompileInputError for a
    ``path`` that does not exist."""
    from evmlm.dataset import SignatureDB

    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DecompileInputError(f"{p}: signature file not found; pass a selector<TAB>signature TSV (e.g. runs/<name>/dataset/signatures.tsv)")
        return SignatureDB.load(p)
    if model_dir is not None:
        guess = Path(model_dir).resolve().parent.parent / "dataset" / "signatures.tsv"
        if guess.is_file():
            log.info("signatures: %s", guess)
            return SignatureDB.load(guess)
    return None

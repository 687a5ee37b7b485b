"""The one reader of user-supplied bytecode input (``evmlm lift`` and ``evmlm decompile``).

An input is, in this order of precedence:

1. a mapping (an artifact already parsed) or raw ``bytes``;
2. text starting with ``0x``: hex bytecode (never a path);
3. the path of an existing file: hex text, raw binary bytecode, or an artifact JSON (Hardhat /
   Foundry / Truffle ``deployedBytecode``, solc standard-JSON ``evm.deployedBytecode.object``);
4. text of hex digits (``0x`` optional, whitespace ignored): bytecode;
5. text starting with ``{``: an artifact JSON.

Anything else is "neither hex bytecode nor an existing file". An artifact may carry ``abi``
(a list of ABI entries), ``storageLayout`` (or ``storage_layout``; solc's storage layout
object) and ``contractName``; ``abi_file`` / ``storage_layout_file`` override them. ABI and
storage layout are validated here (:func:`evmlm.evm.abi.check_abi`,
:func:`check_storage_layout`), so a malformed one is a one-line error naming the entry, not a
traceback later. Every error is a :class:`~evmlm.evm.disasm.BytecodeError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmlm.evm.abi import check_abi
from evmlm.evm.disasm import BytecodeError, load_bytecode

_HEXISH = re.compile(r"\s*(0[xX])?[0-9a-fA-F\s]*")
_MAX_PATH = 4096  # longer text is never taken for a path


@dataclass(frozen=True)
class BytecodeInput:
    """Runtime bytecode and what an artifact or side file adds.

    ``name``: where it came from, for messages (a file name, "bytecode argument").
    """

    bytecode: bytes
    abi: list[dict[str, Any]] | None = None
    storage_layout: dict[str, Any] | None = None
    name: str = "bytecode"
    contract_name: str | None = None


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (False for text no file name can be: too long
    for the OS, or holding a NUL)."""
    if len(text) >= _MAX_PATH:
        return False
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _json_file(path: Path, kind: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise BytecodeError(f"{path}: no such file; pass a {kind} JSON file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise BytecodeError(
            f"{path}: cannot read the {kind} file ({e}); pass a {kind} JSON file"
        ) from e
    except json.JSONDecodeError as e:
        raise BytecodeError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}); pass a {kind} JSON file"
        ) from e


def check_storage_layout(layout: Any, what: str) -> dict[str, Any]:
    """``layout`` as solc's ``storageLayout`` object (``{"storage": [...], "types": {...}}``)
    with every entry holding ``slot`` (an integer or decimal string), ``label`` and ``type``
    (strings) and an optional integer ``offset``. Returns it as a dict.

    Vyper's ``-f layout`` object (``{"storage_layout": {...}, "code_layout": {...}}``, read by
    :func:`evmlm.evm.vyper.storage_layout`) is accepted as it is when those parts are objects.

    Raises :class:`BytecodeError` naming ``what`` and the first bad entry.
    """
    if (
        isinstance(layout, Mapping)
        and "storage" not in layout
        and ("storage_layout" in layout or "code_layout" in layout)
    ):
        for key in ("storage_layout", "code_layout"):
            if key in layout and not isinstance(layout[key], Mapping):
                raise BytecodeError(f"{what}: Vyper layout '{key}' must be an object")
        return dict(layout)
    if not isinstance(layout, Mapping) or not isinstance(layout.get("storage"), list):
        raise BytecodeError(
            f"{what}: not a solc storageLayout object"
            ' (expected {"storage": [...], "types": {...}})'
        )
    types = layout.get("types")
    if types is not None and not isinstance(types, Mapping):
        raise BytecodeError(
            f"{what}: storageLayout 'types' must be an object, got {type(types).__name__}"
        )
    for i, e in enumerate(layout["storage"]):
        where = f"{what}: storageLayout entry {i}"
        if not isinstance(e, Mapping):
            raise BytecodeError(f"{where}: expected an object, got {type(e).__name__}")
        for key in ("label", "type"):
            if not isinstance(e.get(key), str):
                raise BytecodeError(f"{where}: '{key}' must be a string, got {e.get(key)!r}")
        where = f"{where} ({e['label']})"
        if "slot" not in e:
            raise BytecodeError(f"{where}: no 'slot'; pass solc's storageLayout output")
        slot, offset = e["slot"], e.get("offset", 0)
        if isinstance(slot, bool) or not (
            isinstance(slot, int) or (isinstance(slot, str) and slot.isdigit())
        ):
            raise BytecodeError(f"{where}: 'slot' must be a non-negative integer, got {slot!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise BytecodeError(f"{where}: 'offset' must be a non-negative integer, got {offset!r}")
    return dict(layout)


def _from_artifact(obj: Mapping[str, Any], name: str) -> tuple[Any, Any, Any]:
    """(abi, storage layout, contract name) of an artifact, each None when absent."""
    abi = obj.get("abi")
    layout = obj.get("storageLayout", obj.get("storage_layout"))
    cname = obj.get("contractName")
    return abi, layout, cname if isinstance(cname, str) else None


def read_bytecode_input(
    source: str | bytes | bytearray | Mapping[str, Any],
    *,
    abi_file: str | Path | None = None,
    storage_layout_file: str | Path | None = None,
    what: str = "bytecode argument",
) -> BytecodeInput:
    """Parse a bytecode input (see the module docstring for what is a path, hex or JSON).

    ``abi_file``: a JSON ABI (a list, or an object with ``abi``); ``storage_layout_file``: solc's
    ``storageLayout`` (or an object holding it under ``storageLayout``); they override what an
    artifact carries. ``what`` names a non-file input in messages. Raises
    :class:`BytecodeError` (one line, naming the input) for a missing or unreadable file, text
    that is neither, invalid JSON, no bytecode, and a malformed ABI or storage layout.
    """
    name = what
    obj: Any = source
    if isinstance(source, str):
        text = source.strip()
        if not text.lower().startswith("0x") and _is_file(text):
            path = Path(text).expanduser()
            name = str(path)
            try:
                raw = path.read_bytes()
            except OSError as e:
                raise BytecodeError(
                    f"{path}: cannot read ({e.strerror}); pass a readable file"
                ) from e
            try:
                obj = raw.decode("utf-8")
            except UnicodeDecodeError:
                obj = raw  # raw binary bytecode
        elif (
            not text.lower().startswith("0x")  # 0x-text is hex: load_bytecode names a bad digit
            and not _HEXISH.fullmatch(text)
            and not text.startswith("{")
        ):
            raise BytecodeError(
                f"{text[:200]}: neither hex bytecode nor an existing file;"
                " pass runtime bytecode as hex, a file or an artifact JSON"
            )
    if isinstance(obj, str) and obj.lstrip().startswith("{"):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as e:
            raise BytecodeError(
                f"{name}: looks like JSON but does not parse ({e.msg} at line {e.lineno});"
                " pass a valid artifact"
            ) from e
        if not isinstance(obj, Mapping):
            raise BytecodeError(f"{name}: JSON is not an artifact object")
    abi: Any = None
    layout: Any = None
    cname = None
    if isinstance(obj, Mapping):
        abi, layout, cname = _from_artifact(obj, name)
    code = load_bytecode(obj, what=name)
    abi_what, layout_what = f"{name} abi", f"{name} storageLayout"
    if abi_file is not None:
        loaded = _json_file(Path(abi_file), "ABI")
        abi = loaded.get("abi") if isinstance(loaded, Mapping) else loaded
        abi_what = str(abi_file)
    if storage_layout_file is not None:
        loaded = _json_file(Path(storage_layout_file), "storage layout")
        layout = loaded.get("storageLayout", loaded) if isinstance(loaded, Mapping) else loaded
        layout_what = str(storage_layout_file)
    return BytecodeInput(
        code,
        check_abi(abi, abi_what) if abi is not None else None,
        check_storage_layout(layout, layout_what) if layout is not None else None,
        name,
        cname,
    )

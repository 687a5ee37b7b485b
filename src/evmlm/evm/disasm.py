"""Bytecode input, CBOR metadata stripping, disassembly and basic blocks.

Accepted inputs (:func:`load_bytecode`): hex text with or without ``0x`` (whitespace ignored),
raw ``bytes``, or a compiler / Hardhat / Truffle artifact (a mapping or its JSON text) holding
``deployedBytecode`` (a string or ``{"object": ...}``), ``evm.deployedBytecode.object`` or
``runtime_bytecode``. Unlinked library placeholders (``__$…$__``, 40 hex characters wide) are
linked to the zero address. Anything else raises :class:`BytecodeError`.

Solidity appends a CBOR-encoded metadata map to the runtime code, followed by its length as a
2-byte big-endian integer (Solidity docs, "Encoding of the Metadata Hash in the Bytecode").
:func:`split_metadata` recognises that trailer (a CBOR map header 0xa1..0xbf whose payload
names ``ipfs``, ``bzzr0``, ``bzzr1``, ``solc`` or ``experimental``) and strips it before
disassembly, so its bytes never become instructions.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

from evmlm.errors import EvmlmError
from evmlm.evm.opcodes import TERMINATORS, OpInfo, op_info

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-fA-F]*")
_PLACEHOLDER = re.compile(r"__[$A-Za-z0-9_./:]{36}__")
_META_KEYS = (b"ipfs", b"bzzr0", b"bzzr1", b"solc", b"experimental")


class BytecodeError(EvmlmError, ValueError):
    """The bytecode input is empty, not hex, or not an artifact with runtime bytecode."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction at byte offset ``pc``; ``arg`` is the PUSH immediate (None otherwise).

    A PUSH whose immediate runs past the end of the code is zero-padded on the right, as the
    EVM does (yellow paper §9.4.1, the code is zero-extended).
    """

    pc: int
    op: OpInfo
    arg: int | None = None
    name: str = ""  # the mnemonic (op.name), stored for speed

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.op.name)

    @property
    def size(self) -> int:
        return 1 + self.op.push_bytes

    def __str__(self) -> str:
        if self.arg is not None:
            return f"{self.pc:#x}: {self.name} {self.arg:#x}"
        return f"{self.pc:#x}: {self.name}"


@dataclass(frozen=True, slots=True)
class BasicBlock:
    """A maximal straight-line run of instructions; ``start`` is the offset of the first one."""

    start: int
    instructions: tuple[Instruction, ...]

    @property
    def last(self) -> Instruction:
        return self.instructions[-1]

    @property
    def end(self) -> int:
        """Offset just past the block (the start of the fall-through block)."""
        return self.last.pc + self.last.size


def _artifact_code(obj: Mapping[str, Any], what: str) -> str:
    for key in ("deployedBytecode", "runtime_bytecode", "deployed_bytecode", "bytecode_runtime"):
        v = obj.get(key)
        if isinstance(v, Mapping):
            v = v.get("object")
        if isinstance(v, str):
            return v
    evm = obj.get("evm")
    if isinstance(evm, Mapping) and isinstance(evm.get("deployedBytecode"), Mapping):
        v = evm["deployedBytecode"].get("object")
        if isinstance(v, str):
            return v
    raise BytecodeError(
        f"{what}: artifact has no deployedBytecode / evm.deployedBytecode.object / runtime_bytecode; pass runtime bytecode"
    )


def load_bytecode(
    source: str | bytes | bytearray | Mapping[str, Any], *, what: str = "bytecode"
) -> bytes:
    """Runtime bytecode from hex text, raw bytes or an artifact (see the module docstring).

    ``what`` names the input in error messages (a file name, a contract). Raises
    :class:`BytecodeError` for empty, non-hex or odd-length input and artifacts without code.
    """
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
        if raw[:2] in (b"0x", b"0X") or (
            raw and all(c in b"0123456789abcdefABCDEF \n\r\t" for c in raw[:64])
        ):
            try:
                return load_bytecode(raw.decode("ascii"), what=what)
            except UnicodeDecodeError:
                pass
        if not raw:
            raise BytecodeError(
                f"{what}: empty bytecode; pass runtime bytecode as hex or an artifact"
            )
        return raw
    if isinstance(source, Mapping):
        return load_bytecode(_artifact_code(source, what), what=what)
    if not isinstance(source, str):
        raise BytecodeError(
            f"{what}: expected hex text, bytes or an artifact mapping, got {type(source).__name__}"
        )
    text = source.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise BytecodeError(
                f"{what}: looks like JSON but does not parse ({e.msg} at line {e.lineno}); pass hex or a valid artifact"
            ) from e
        if not isinstance(obj, Mapping):
            raise BytecodeError(f"{what}: JSON is not an artifact object")
        return load_bytecode(_artifact_code(obj, what), what=what)
    text = "".join(text.split())
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if _PLACEHOLDER.search(text):
        log.debug("%s: linking unlinked library placeholders to the zero address", what)
        text = _PLACEHOLDER.sub("0" * 40, text)
    if not text:
        raise BytecodeError(f"{what}: empty bytecode; pass runtime bytecode as hex or an artifact")
    if not _HEX.fullmatch(text):
        bad = next(c for c in text if c not in "0123456789abcdefABCDEF")
        raise BytecodeError(
            f"{what}: not hex (found {bad!r}); pass runtime bytecode as hex, with or without 0x"
        )
    if len(text) % 2:
        raise BytecodeError(
            f"{what}: odd number of hex digits ({len(text)}); the bytecode is truncated"
        )
    return bytes.fromhex(text)


def split_metadata(code: bytes) -> tuple[bytes, bytes]:
    """Split ``code`` into (executable code, CBOR metadata trailer incl. its 2-byte length).

    Returns ``(code, b"")`` when no trailer is recognised.
    """
    if len(code) < 4:
        return code, b""
    n = int.from_bytes(code[-2:], "big")
    start = len(code) - 2 - n
    if n < 4 or start < 0:
        return code, b""
    cbor = code[start:-2]
    if not (0xA1 <= cbor[0] <= 0xBF) or not any(k in cbor for k in _META_KEYS):
        return code, b""
    return code[:start], code[start:]


def _cbor_item(data: bytes, i: int) -> tuple[Any, int]:
    """One CBOR data item at ``data[i]`` (RFC 8949, the subset solc's metadata uses: unsigned
    integers, byte and text strings, maps, booleans); returns (value, next offset). Raises
    ValueError for anything else or a truncated item."""
    head = data[i]
    major, info = head >> 5, head & 0x1F
    i += 1
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if i + size > len(data):
            raise ValueError("truncated CBOR item")
        n, i = int.from_bytes(data[i : i + size], "big"), i + size
    else:
        raise ValueError(f"unsupported CBOR additional info {info}")
    if major == 0:
        return n, i
    if major in (2, 3):
        if i + n > len(data):
            raise ValueError("truncated CBOR string")
        raw = data[i : i + n]
        return (raw if major == 2 else raw.decode("utf-8")), i + n
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _cbor_item(data, i)
            v, i = _cbor_item(data, i)
            out[k] = v
        return out, i
    if major == 7 and info in (20, 21):
        return info == 21, i
    raise ValueError(f"unsupported CBOR major type {major}")


def metadata_fields(code: bytes) -> dict[str, Any]:
    """The CBOR metadata map solc appends to runtime code (``ipfs``/``bzzr0``/``bzzr1``: bytes,
    ``solc``: bytes ``[major, minor, patch]`` for releases or a text version for others,
    ``experimental``: bool), decoded; ``{}`` when there is no trailer or it does not decode.
    Format: Solidity documentation, "Contract Metadata" / "Encoding of the Metadata Hash in
    the Bytecode"."""
    _, trailer = split_metadata(code)
    if not trailer:
        return {}
    try:
        value, end = _cbor_item(trailer[:-2], 0)
    except (ValueError, IndexError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) and end == len(trailer) - 2 else {}


def metadata_compiler_version(code: bytes) -> str | None:
    """The solc version named in the runtime code's CBOR metadata (``"0.8.20"``), or None (no
    trailer, or a compiler before 0.5.9 that did not record it)."""
    v = metadata_fields(code).get("solc")
    if isinstance(v, bytes) and len(v) == 3:
        return f"{v[0]}.{v[1]}.{v[2]}"
    if isinstance(v, str):
        m = re.match(r"\d+\.\d+\.\d+", v)
        return m.group(0) if m else None
    return None


def disassemble(code: bytes) -> list[Instruction]:
    """All instructions of ``code`` in order (no metadata stripping; see :func:`split_metadata`).

    Unassigned bytes become INVALID instructions of one byte; PUSH data is never decoded.
    """
    out: list[Instruction] = []
    pc = 0
    n = len(code)
    while pc < n:
        info = op_info(code[pc])
        if info.push_bytes:
            imm = code[pc + 1 : pc + 1 + info.push_bytes]
            imm = imm + b"\x00" * (info.push_bytes - len(imm))
            out.append(Instruction(pc, info, int.from_bytes(imm, "big"), info.name))
        elif info.name == "PUSH0":
            out.append(Instruction(pc, info, 0, info.name))
        else:
            out.append(Instruction(pc, info, None, info.name))
        pc += 1 + info.push_bytes
    return out


def basic_blocks(instructions: list[Instruction]) -> dict[int, BasicBlock]:
    """Split instructions into basic blocks keyed by start offset.

    A block starts at offset 0, at every JUMPDEST and after every JUMPI or terminator.
    """
    blocks: dict[int, BasicBlock] = {}
    cur: list[Instruction] = []
    for ins in instructions:
        if ins.name == "JUMPDEST" and cur:
            blocks[cur[0].pc] = BasicBlock(cur[0].pc, tuple(cur))
            cur = []
        cur.append(ins)
        if ins.name in TERMINATORS:
            blocks[cur[0].pc] = BasicBlock(cur[0].pc, tuple(cur))
            cur = []
    if cur:
        blocks[cur[0].pc] = BasicBlock(cur[0].pc, tuple(cur))
    return blocks

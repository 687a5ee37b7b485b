"""Selector → text-signature database.

A selector is the first 4 bytes of keccak-256 of the canonical signature (Solidity ABI spec,
"Function Selector"). The database collects every function signature seen in ABIs (compile
outputs, the JSON artifacts shipped in npm packages) and 4byte-style files, keeps all text
signatures per selector (collisions are kept and listed), and is saved as a TSV
(``selector<TAB>signature``, one line per pair, sorted).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from evmlm import atomic
from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)


class SignatureFileError(EvmlmError):
    """A signature file (TSV / 4byte export) cannot be read."""


def selector_of(signature: str) -> str:
    """``"0x"`` + 8 hex chars: keccak-256(signature)[:4] (Solidity ABI spec)."""
    from eth_utils import keccak

    return "0x" + keccak(text=signature)[:4].hex()


def _abi_type(param: Mapping[str, Any]) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return (
            "("
            + ",".join(_abi_type(c) for c in param.get("components", []))
            + ")"
            + t[len("tuple") :]
        )
    return t


def abi_signatures(abi: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Canonical signatures of the ``function`` entries of an ABI (JSON list)."""
    for item in abi:
        if (
            isinstance(item, Mapping)
            and item.get("type", "function") == "function"
            and "name" in item
        ):
            try:
                yield f"{item['name']}({','.join(_abi_type(p) for p in item.get('inputs', []))})"
            except (KeyError, TypeError):
                continue


def _clean_selector(sel: str) -> str | None:
    s = sel.strip().lower()
    s = s[2:] if s.startswith("0x") else s
    if len(s) != 8 or any(c not in "0123456789abcdef" for c in s):
        return None
    return "0x" + s


class SignatureDB:
    """Selector → sorted list of text signatures.

    ``lookup("0xa9059cbb") -> ["transfer(address,uint256)"]``; unknown → ``[]``.
    """

    def __init__(self) -> None:
        self._db: dict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._db)

    def add(self, signature: str, selector: str | None = None) -> None:
        """Add one signature; the selector is computed (keccak) when not given."""
        sel = _clean_selector(selector) if selector else selector_of(signature)
        if sel is None:
            raise ValueError(f"bad selector {selector!r} for {signature!r}")
        self._db[sel].add(signature)

    def add_method_identifiers(self, method_identifiers: Mapping[str, str]) -> None:
        """Add solc's ``evm.methodIdentifiers`` (signature → 8-hex selector)."""
        for sig, sel in method_identifiers.items():
            self.add(sig, sel)

    def add_abi(self, abi: Iterable[Mapping[str, Any]]) -> int:
        """Add every function of an ABI; return how many signatures it had."""
        n = 0
        for sig in abi_signatures(abi):
            self.add(sig)
            n += 1
        return n

    def add_artifacts(self, root: str | Path) -> dict[str, int]:
        """Add the ABIs of every ``*.json`` artifact under ``root`` (Truffle/Hardhat/Foundry
        files with an ``abi`` list); unreadable or ABI-less files are counted and skipped."""
        counts = {"files": 0, "with_abi": 0, "signatures": 0}
        for p in sorted(Path(root).rglob("*.json")):
            counts["files"] += 1
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            abi = data.get("abi") if isinstance(data, dict) else None
            if isinstance(abi, list):
                counts["with_abi"] += 1
                counts["signatures"] += self.add_abi(abi)
        return counts

    def copy(self) -> "SignatureDB":
        """An independent copy (adding to one does not change the other)."""
        new = SignatureDB()
        new._db.update({sel: set(sigs) for sel, sigs in self._db.items()})
        return new

    def lookup(self, selector: str) -> list[str]:
        """All known signatures of ``selector`` ("0x" optional, any case), sorted."""
        sel = _clean_selector(selector)
        return sorted(self._db.get(sel, ())) if sel else []

    def resolve(self, selector: str) -> str | None:
        """The signature when exactly one is known, else None (unknown or a collision)."""
        found = self.lookup(selector)
        return found[0] if len(found) == 1 else None

    def collisions(self) -> dict[str, list[str]]:
        """Selectors with more than one known signature."""
        return {s: sorted(v) for s, v in sorted(self._db.items()) if len(v) > 1}

    def items(self) -> Iterator[tuple[str, str]]:
        for sel in sorted(self._db):
            for sig in sorted(self._db[sel]):
                yield sel, sig

    def save(self, path: str | Path) -> None:
        """Write ``selector<TAB>signature`` lines, sorted (atomic)."""
        atomic.write_text(path, "".join(f"{s}\t{g}\n" for s, g in self.items()))

    @classmethod
    def load(cls, path: str | Path) -> "SignatureDB":
        """Read a TSV written by :meth:`save` (see :meth:`import_file` for other formats)."""
        db = cls()
        db.import_file(path)
        return db

    def import_file(self, path: str | Path) -> int:
        """Import a signature file; return the number of signatures read.

        Formats: TSV/CSV lines ``selector<sep>signature`` (a header line is skipped), lines of
        bare text signatures (selectors computed), or 4byte.directory's JSON export
        (``{"results": [{"hex_signature", "text_signature"}]}`` or a list of such objects, or a
        ``{selector: [signatures]}`` mapping). Raises :class:`SignatureFileError` naming the file.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SignatureFileError(
                f"{p}: cannot read signature file ({e}); pass a TSV or 4byte JSON file"
            ) from e
        n = 0
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise SignatureFileError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from e
            entries: Iterable[Any]
            if isinstance(data, dict) and "results" in data:
                entries = data["results"]
            elif isinstance(data, dict):
                entries = [
                    {"hex_signature": k, "text_signature": s}
                    for k, v in data.items()
                    for s in (v if isinstance(v, list) else [v])
                ]
            else:
                entries = data
            for e in entries:
                if isinstance(e, dict) and e.get("text_signature"):
                    self.add(e["text_signature"], e.get("hex_signature"))
                    n += 1
            return n
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "\t" in line:
                parts = [x.strip() for x in line.split("\t", 1)]
            elif line.lower().startswith("0x") and "," in line:
                parts = [x.strip() for x in line.split(",", 1)]
            else:
                parts = [line]
            if len(parts) == 2 and _clean_selector(parts[0]):
                self.add(parts[1], parts[0])
            elif len(parts) == 1 and "(" in parts[0] and parts[0].endswith(")"):
                self.add(parts[0])
            elif lineno == 1:
                continue  # header
            else:
                raise SignatureFileError(
                    f"{p}:{lineno}: expected 'selector<TAB>signature' or a text signature, got {line[:60]!r}"
                )
            n += 1
        return n

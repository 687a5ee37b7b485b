"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and a crash leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

# the modes open() and mkdir() ask for: the process umask then takes bits away, as for any new file
_FILE_MODE = 0o666
_DIR_MODE = 0o777


def _temp_name(parent: Path, name: str) -> Path:
    return parent / f".{name}.{secrets.token_hex(6)}.tmp"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary file is created empty with mode 0666 less the process umask (what a plain
    ``open(path, "w")`` gives), not tempfile's 0600, so the renamed file is shared as any other.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp_path = _temp_name(path.parent, path.name)
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE))
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A new empty folder ``parent/.name.<random>.tmp`` with mode 0777 less the umask (for a
    folder built in place and then renamed onto its target)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temp_name(parent, name)
        try:
            os.mkdir(tmp, _DIR_MODE)
            return tmp
        except FileExistsError:  # pragma: no cover
            continue


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

"""The Solidity compiler driver: solc-js in warm ``node`` workers (or a native solc), version
resolution from pragmas, standard JSON in and out, and a content-addressed compile cache.

Public API: :func:`compile_sources`, :class:`CompileResult`, :class:`ContractArtifact`,
:class:`CompileSetting`, :func:`get_setting`, :class:`CompileError`.
"""

from __future__ import annotations

from evmlm.solc.compiler import (
    CompileError,
    CompileResult,
    ContractArtifact,
    UnsupportedSettingError,
    compile_job,
    compile_sources,
)
from evmlm.solc.settings import NAMED as NAMED_SETTINGS
from evmlm.solc.settings import CompileSetting, UnknownSettingError, get_setting, supports
from evmlm.solc.versions import PragmaError, installed_compilers, pragmas, resolve_version

__all__ = [
    "CompileError",
    "CompileResult",
    "CompileSetting",
    "ContractArtifact",
    "NAMED_SETTINGS",
    "PragmaError",
    "UnknownSettingError",
    "UnsupportedSettingError",
    "compile_job",
    "compile_sources",
    "get_setting",
    "installed_compilers",
    "pragmas",
    "resolve_version",
    "supports",
]

"""Named compile settings and their standard-JSON ``settings`` form.

A :class:`CompileSetting` fixes the optimizer (on/off, ``runs``), the via-IR code generator and
the target ``evmVersion``. Named settings: ``noopt`` (optimizer off), ``opt200`` (optimizer on,
200 runs — solc's default runs value), ``ir200`` (via-IR + optimizer, 200 runs). A name may
carry an EVM version suffix, e.g. ``opt200@paris``.

Via-IR is only offered from solc 0.8.13, the first release where it is no longer experimental
(solc changelog 0.8.13); :func:`supports` says whether a version can use a setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from semantic_version import Version

from evmlm.errors import EvmlmError


class UnknownSettingError(EvmlmError, ValueError):
    """A compile-setting name is not one of the named settings."""


# EVM versions solc understands (solc docs, "Setting the EVM Version to Target"), oldest first.
EVM_VERSIONS: tuple[str, ...] = (
    "homestead",
    "tangerineWhistle",
    "spuriousDragon",
    "byzantium",
    "constantinople",
    "petersburg",
    "istanbul",
    "berlin",
    "london",
    "paris",
    "shanghai",
    "cancun",
    "prague",
    "osaka",
)
VIA_IR_MIN = Version("0.8.13")


@dataclass(frozen=True)
class CompileSetting:
    """One compiler configuration.

    ``runs``: the optimizer's expected number of executions of each opcode (solc ``--optimize-runs``);
    ignored when ``optimizer`` is False. ``evm_version``: None = the compiler's default target.
    """

    name: str
    optimizer: bool
    runs: int = 200
    via_ir: bool = False
    evm_version: str | None = None

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UnknownSettingError(f"compile setting {self.name}: runs must be >= 1")
        if self.evm_version is not None and self.evm_version not in EVM_VERSIONS:
            raise UnknownSettingError(
                f"compile setting {self.name}: unknown evmVersion {self.evm_version!r} (one of {', '.join(EVM_VERSIONS)})"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def standard_json(self) -> dict[str, Any]:
        """The standard-JSON ``settings`` entries for this setting (without outputSelection)."""
        out: dict[str, Any] = {"optimizer": {"enabled": self.optimizer, "runs": self.runs}}
        if self.via_ir:
            out["viaIR"] = True
        if self.evm_version:
            out["evmVersion"] = self.evm_version
        return out


NAMED: dict[str, CompileSetting] = {
    "noopt": CompileSetting("noopt", optimizer=False),
    "opt200": CompileSetting("opt200", optimizer=True, runs=200),
    "ir200": CompileSetting("ir200", optimizer=True, runs=200, via_ir=True),
}


def get_setting(name: str | CompileSetting) -> CompileSetting:
    """Look up a named setting (``noopt``, ``opt200``, ``ir200``, optionally ``@<evmVersion>``).

    Raises UnknownSettingError naming the setting.
    """
    if isinstance(name, CompileSetting):
        return name
    base, _, evm = name.partition("@")
    if base not in NAMED:
        raise UnknownSettingError(
            f"compile setting {name!r}: unknown; use one of {', '.join(NAMED)} (optionally @<evmVersion>)"
        )
    s = NAMED[base]
    if evm:
        return CompileSetting(name, s.optimizer, s.runs, s.via_ir, evm)
    return s


def supports(setting: CompileSetting, version: str) -> bool:
    """Whether solc ``version`` can compile with ``setting`` (via-IR needs >= 0.8.13)."""
    if setting.via_ir:
        return Version(version) >= VIA_IR_MIN
    return True

from __future__ import annotations

import pytest

from evmlm.errors import EvmlmError
from evmlm.solc import (
    PragmaError,
    get_setting,
    installed_compilers,
    pragmas,
    resolve_version,
    supports,
)
from evmlm.solc.settings import UnknownSettingError

INSTALLED = ["0.4.26", "0.5.16", "0.5.17", "0.6.12", "0.7.6", "0.8.4", "0.8.19", "0.8.26"]


def test_pragmas_ignore_comments():
    text = "// pragma solidity ^0.4.0;\n/* pragma solidity 0.5.0; */\npragma solidity >=0.6.0 <0.8.0;\npragma abicoder v2;"
    assert pragmas(text) == [">=0.6.0 <0.8.0"]


@pytest.mark.parametrize(
    ("exprs", "want"),
    [
        (["^0.8.0"], "0.8.26"),
        ([">=0.6.0 <0.8.0"], "0.7.6"),
        (["^0.5.0"], "0.5.17"),
        (["=0.5.16"], "0.5.16"),
        (["0.8.19"], "0.8.19"),
        ([">=0.4.22<0.6.0"], "0.5.17"),  # no space between the bounds, as Solidity allows
        ([">= 0.6.2"], "0.8.26"),
        (["^0.4.24", ">=0.4.0 <0.5.0"], "0.4.26"),
        ([], "0.8.26"),
    ],
)
def test_newest_installed_version_satisfying_all_pragmas(exprs, want):
    assert (
        resolve_version({f"F{i}.sol": [e] for i, e in enumerate(exprs)}, installed=INSTALLED)
        == want
    )


def test_file_and_import_pragmas_intersect():
    files = {"Root.sol": ["^0.8.0"], "lib/Old.sol": [">=0.6.0 <0.8.20"]}
    assert resolve_version(files, installed=INSTALLED) == "0.8.19"


def test_conflicting_pragmas_name_both_files():
    with pytest.raises(PragmaError) as ei:
        resolve_version({"A.sol": ["^0.8.0"], "lib/B.sol": ["^0.7.0"]}, installed=INSTALLED)
    msg = str(ei.value)
    assert "A.sol" in msg and "lib/B.sol" in msg and "conflicts" in msg
    assert isinstance(ei.value, EvmlmError) and "\n" not in msg


def test_satisfiable_but_not_installed_says_what_to_install():
    with pytest.raises(
        PragmaError, match=r"no installed solc satisfies pragma\(s\) 0\.8\.7.*solc@0\.8\.7"
    ):
        resolve_version({"A.sol": ["0.8.7"]}, installed=INSTALLED)


def test_bad_pragma_is_a_clear_error():
    with pytest.raises(PragmaError, match="not a valid version range"):
        resolve_version({"A.sol": ["^zero.eight"]}, installed=INSTALLED)


def test_installed_compilers_cover_the_required_majors():
    versions = {c.version for c in installed_compilers()}
    for v in ("0.4.26", "0.5.16", "0.5.17", "0.6.12", "0.7.6"):
        assert v in versions
    assert sum(v.startswith("0.8.") for v in versions) >= 8


def test_settings():
    assert get_setting("noopt").optimizer is False
    ir = get_setting("ir200")
    assert ir.via_ir and ir.optimizer and ir.runs == 200
    assert get_setting("opt200@paris").evm_version == "paris"
    assert supports(ir, "0.8.13") and not supports(ir, "0.8.12") and not supports(ir, "0.7.6")
    with pytest.raises(UnknownSettingError, match="opt999"):
        get_setting("opt999")
    with pytest.raises(UnknownSettingError, match="evmVersion"):
        get_setting("opt200@nosuchfork")

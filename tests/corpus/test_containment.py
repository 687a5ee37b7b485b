"""Import containment: an import resolves only inside the source's own package, the other
packages of the universe and declared remappings; anything else is recorded, never read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evmlm.corpus.imports import ImportResolver
from evmlm.corpus.packages import Package, contained_rel
from evmlm.solc.compiler import CompileError, compile_sources

MARKER = "SECRET_MARKER_7f3a9c"
SECRET = f"// {MARKER}\npragma solidity ^0.8.0;\ncontract Secret {{ uint256 constant X = 1; }}\n"


def _dir_pkg(root: Path, files: dict[str, str], name: str = "", **kw) -> Package:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Package(name=name, version="local", root=root, source="dir", **kw)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A local file outside every package, holding the marker."""
    p = tmp_path / "private" / "secret.sol"
    p.parent.mkdir()
    p.write_text(SECRET)
    return p


def _assert_not_read(job, secret: Path) -> None:
    assert all(MARKER not in t for t in job.sources.values())
    assert not any(secret.name in k for k in job.sources)


@pytest.mark.parametrize(
    ("rel", "want"),
    [
        ("a/b.sol", "a/b.sol"),
        ("a/./b.sol", "a/b.sol"),
        ("a/../b.sol", "b.sol"),
        ("/etc/passwd", None),
        ("../x.sol", None),
        ("a/../../x.sol", None),
        ("..", None),
        (".", None),
        ("", None),
        ("a\0.sol", None),
    ],
)
def test_contained_rel(rel, want):
    assert contained_rel(rel) == want


def test_absolute_import_is_outside_and_not_read(tmp_path, secret):
    pkg = _dir_pkg(
        tmp_path / "corpus",
        {"A.sol": f'pragma solidity ^0.8.0;\nimport "{secret}";\ncontract A {{}}\n'},
    )
    job = ImportResolver([pkg]).job(pkg, ["A.sol"])
    assert job.outside == [f"A.sol: {secret}"] and not job.missing
    assert set(job.sources) == {"A.sol"}
    _assert_not_read(job, secret)
    assert pkg.read(str(secret)) is None  # Package.read itself never leaves its root


def test_dotdot_import_is_outside_and_not_read(tmp_path, secret):
    pkg = _dir_pkg(
        tmp_path / "corpus",
        {
            "sub/A.sol": 'import "../../private/secret.sol";\ncontract A {}\n',
            "B.sol": 'import "./sub/../C.sol";\ncontract B {}\n',  # climbs but stays inside: fine
            "C.sol": "contract C {}\n",
        },
    )
    r = ImportResolver([pkg])
    job = r.job(pkg, ["sub/A.sol"])
    assert job.outside == ["sub/A.sol: ../../private/secret.sol"]
    _assert_not_read(job, secret)
    ok = r.job(pkg, ["B.sol"])
    assert not ok.outside and not ok.missing and set(ok.sources) == {"B.sol", "C.sol"}
    assert pkg.read("../private/secret.sol") is None


def test_named_package_cannot_climb_out(tmp_path, secret):
    lib = _dir_pkg(tmp_path / "vendor" / "lib@1", {"Math.sol": "library Math {}\n"}, name="lib")
    app = _dir_pkg(
        tmp_path / "vendor" / "app@1",
        {
            "A.sol": 'import "lib/../../../private/secret.sol";\ncontract A {}\n',
            "B.sol": 'import "../../../private/secret.sol";\ncontract B {}\n',
            "C.sol": 'import "lib/Math.sol";\ncontract C {}\n',
        },
        name="app",
    )
    r = ImportResolver([lib, app])
    for rel in ("A.sol", "B.sol"):
        job = r.job(app, [rel])
        assert len(job.outside) == 1 and job.outside[0].startswith(f"app/{rel}: ")
        _assert_not_read(job, secret)
    ok = r.job(app, ["C.sol"])
    assert not ok.outside and not ok.missing and "lib@local/Math.sol" in ok.sources


def test_remapping_out_of_the_package_is_outside(tmp_path, secret):
    pkg = _dir_pkg(
        tmp_path / "corpus",
        {"A.sol": 'import "leak/secret.sol";\ncontract A {}\n'},
        remappings=(("leak/", "../private/"),),
    )
    job = ImportResolver([pkg]).job(pkg, ["A.sol"])
    assert job.outside == ["A.sol: leak/secret.sol"]
    _assert_not_read(job, secret)


def test_symlinks_pointing_outside(tmp_path, secret):
    root = tmp_path / "corpus"
    pkg = _dir_pkg(
        root,
        {
            "A.sol": 'import "./link.sol";\nimport "./dir/secret.sol";\ncontract A {}\n',
            "In.sol": "contract In {}\n",
        },
    )
    os.symlink(secret, root / "link.sol")
    os.symlink(secret.parent, root / "dir")
    os.symlink(root / "In.sol", root / "Alias.sol")  # a link that stays inside is an ordinary file
    assert list(pkg.sol_files()) == [
        "A.sol",
        "Alias.sol",
        "In.sol",
    ]  # link.sol (outside) is not a corpus file
    job = ImportResolver([pkg]).job(pkg, ["A.sol"])
    assert job.outside == ["A.sol: ./link.sol", "A.sol: ./dir/secret.sol"]
    _assert_not_read(job, secret)
    assert pkg.read("link.sol") is None and pkg.read("Alias.sol") == "contract In {}\n"


def test_compile_sources_never_reads_an_absolute_import(secret):
    with pytest.raises(CompileError) as ei:
        compile_sources(
            {"A.sol": f'pragma solidity ^0.8.0;\nimport "{secret}";\ncontract A {{}}\n'}
        )
    assert ei.value.reason == "missing import" and MARKER not in str(ei.value)

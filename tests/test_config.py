"""Config loading: YAML + flags, unknown keys and wrong types name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from evmlm.config import ConfigError, RunConfig, dump_yaml, load_config, parse_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid() -> None:
    cfg = load_config(None)
    assert isinstance(cfg, RunConfig)
    assert cfg.run_dir == Path("runs") / "default"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_bundled_configs_load(name: str) -> None:
    path = ROOT / "configs" / name
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    assert path.read_text().startswith("#"), (
        "a config's first comment line is the command that runs it"
    )


def test_yaml_and_flag_override(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("run:\n  name: a\ncompile:\n  workers: 3\n")
    cfg = load_config(p, ["--compile.workers=1", "--run.name", "b"])
    assert cfg.compile.workers == 1
    assert cfg.run.name == "b"


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, {"run.seed": 7})
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_yaml(cfg))
    assert load_config(p) == cfg


@pytest.mark.parametrize(
    ("yaml_text", "flags", "key"),
    [
        ("compile:\n  wokers: 2\n", [], "compile.wokers"),
        ("nosuchsection: {}\n", [], "nosuchsection"),
        ("", ["--compile.workers=two"], "compile.workers"),
        ("", ["--compile.workers=0"], "compile.workers"),
        ("", ["--run.seed=1.5"], "run.seed"),
        ("", ["--compile.settings=opt200"], "compile.settings"),
        ("run: [1, 2]\n", [], "run"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, yaml_text: str, flags: list[str], key: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p, flags)
    assert str(e.value).startswith(key)


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError, match="run.seed"):
        load_config(None, {"run.seed": True})


def test_missing_file_and_bad_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a config flag"):
        parse_overrides(["workers=2"])
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--compile.workers"])

"""`cdist-trio info`: explorers and types of the merged conf dirs, with their parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdist_trio import cli
from cdist_trio.info import format_info, merged_entries


def _conf(root: Path, name: str) -> Path:
    conf = root / name
    (conf / "explorer").mkdir(parents=True)
    (conf / "type").mkdir()
    return conf


def _type(conf: Path, name: str, **parameter_files: str) -> Path:
    directory = conf / "type" / name
    (directory / "parameter").mkdir(parents=True)
    for kind, text in parameter_files.items():
        (directory / "parameter" / kind).write_text(text)
    return directory


@pytest.fixture
def confs(tmp_path: Path) -> tuple[Path, Path]:
    first, second = _conf(tmp_path, "first"), _conf(tmp_path, "second")
    (first / "explorer" / "os").write_text("echo first\n")
    (second / "explorer" / "os").write_text("echo second\n")
    (first / "explorer" / "memory").write_text("echo 1\n")
    (first / "explorer" / ".hidden").write_text("")
    _type(first, "__file", optional="mode\n")
    shipped = _type(second, "__file", optional="state\nmode\n", boolean="force\n")
    (shipped / "parameter" / "default").mkdir()
    (shipped / "parameter" / "default" / "state").write_text("present\n")
    (shipped / "explorer").mkdir()
    (shipped / "explorer" / "stat").write_text("")
    single = _type(second, "__marker", required="text\n")
    (single / "singleton").touch()
    (single / "nonparallel").touch()
    return first, second


def test_info_merged_entries_later_conf_dirs_win(confs: tuple[Path, Path]) -> None:
    first, second = confs
    explorers = merged_entries(confs, "explorer")
    assert sorted(explorers) == ["memory", "os"]
    assert explorers["os"].conf_dir == second
    assert explorers["memory"].conf_dir == first
    assert merged_entries(confs, "type")["__file"].path == second / "type" / "__file"


def test_info_lists_types_with_parameters(confs: tuple[Path, Path]) -> None:
    text = format_info(confs)
    _, second = confs
    assert f"  os                       {second}/explorer/os\n" in text
    file_block = text[text.index("  __file") :]
    assert "optional: state (default: 'present'), mode\n" in file_block
    assert "boolean: force\n" in file_block
    assert "explorers: stat\n" in file_block
    assert "markers: singleton, nonparallel\n" in text
    assert "required: text\n" in text
    assert ".hidden" not in text


@pytest.mark.parametrize(
    ("pattern", "shown", "hidden"),
    [
        ("fil", ["__file"], ["__marker", "  os "]),  # no glob characters: *fil*
        ("__m*", ["__marker"], ["__file", "memory"]),
        ("o?", ["  os "], ["__file", "memory"]),
    ],
)
def test_info_pattern(
    confs: tuple[Path, Path], pattern: str, shown: list[str], hidden: list[str]
) -> None:
    text = format_info(confs, pattern)
    for name in shown:
        assert name in text
    for name in hidden:
        assert name not in text


def test_info_command(
    confs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CDIST_PATH", raising=False)
    monkeypatch.delenv("CDIST_CONFIG_FILE", raising=False)
    first, second = confs
    assert cli.main(["info", "-c", str(first), "-c", str(second), "__marker"]) == 0
    out = capsys.readouterr().out
    assert "__marker" in out
    assert "__file" not in out
    # Our own conf dir is merged first, as for `config`.
    assert "cdist_trio/conf\n" in out


def test_info_command_bad_conf_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "-c", str(tmp_path / "missing")]) == 1
    assert "is not a directory" in capsys.readouterr().err

"""`cdist_trio.workdir`: the merged conf of a host's ``$G`` (spec §5.3)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cdist_trio.errors import CdistError
from cdist_trio.workdir import create_workdir

LOG = logging.LoggerAdapter(logging.getLogger("test-workdir"), {})


def _conf(root: Path, *types: str, explorers: tuple[str, ...] = ()) -> Path:
    for name in types:
        (root / "type" / name).mkdir(parents=True)
    (root / "explorer").mkdir(parents=True, exist_ok=True)
    for name in explorers:
        (root / "explorer" / name).write_text(f"echo {name}\n")
    return root


def test_later_conf_dirs_win_and_a_changed_conf_dir_is_seen(tmp_path: Path) -> None:
    first = _conf(tmp_path / "first", "__a", "__b", explorers=("os",))
    second = _conf(tmp_path / "second", "__b")
    one = create_workdir(tmp_path / "h1" / "data", [first, second], LOG)
    assert os.readlink(one.type_base / "__a") == str(first / "type" / "__a")
    assert os.readlink(one.type_base / "__b") == str(second / "type" / "__b")
    assert one.global_explorers() == ["os"]
    # Every host merges the same dirs; an entry added in between shows in the next one.
    (second / "type" / "__c").mkdir()
    (first / "explorer" / "machine").write_text("uname -m\n")
    two = create_workdir(tmp_path / "h2" / "data", [first, second], LOG)
    assert sorted(p.name for p in two.type_base.iterdir()) == ["__a", "__b", "__c"]
    assert two.global_explorers() == ["machine", "os"]
    assert sorted(p.name for p in one.type_base.iterdir()) == ["__a", "__b"]


def test_a_reused_workdir_gets_its_links_replaced(tmp_path: Path) -> None:
    first = _conf(tmp_path / "first", "__a")
    second = _conf(tmp_path / "second", "__a")
    create_workdir(tmp_path / "h" / "data", [first], LOG)
    again = create_workdir(tmp_path / "h" / "data", [first, second], LOG)
    assert os.readlink(again.type_base / "__a") == str(second / "type" / "__a")


def test_an_unreadable_conf_dir_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads anything; a directory symlink loop gives the same kind of error
        conf = tmp_path / "loop"
        (conf).mkdir()
        (conf / "type").symlink_to(conf / "type")
    else:
        conf = _conf(tmp_path / "closed", "__a")
        (conf / "type").chmod(0)
    with pytest.raises(CdistError, match=r"Cannot read conf dir .*/type: .*leave its conf dir out"):
        create_workdir(tmp_path / "h" / "data", [conf], LOG)

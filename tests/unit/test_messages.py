"""`cdist_trio.messages`: what scripts see and leave, and that the files are reused."""

from __future__ import annotations

from pathlib import Path

from cdist_trio.messages import message_files, remove_message_files


def _layout(tmp_path: Path) -> Path:
    messages = tmp_path / "host" / "data" / "messages"
    messages.parent.mkdir(parents=True)
    messages.write_text("initialmanifest:hello\n")
    return messages


def test_scripts_get_the_messages_so_far_and_their_lines_are_prefixed(tmp_path: Path) -> None:
    messages = _layout(tmp_path)
    with message_files(messages, "__file/a") as env:
        assert Path(env["__messages_in"]).read_text() == "initialmanifest:hello\n"
        Path(env["__messages_out"]).write_text("create\nchmod 0644\n")
    assert messages.read_text().splitlines() == [
        "initialmanifest:hello",
        "__file/a:create",
        "__file/a:chmod 0644",
    ]
    with message_files(messages, "__file/b") as env:
        assert Path(env["__messages_in"]).read_text() == messages.read_text()


def test_out_files_are_reused_empty_and_snapshots_shared_until_messages_change(
    tmp_path: Path,
) -> None:
    messages = _layout(tmp_path)
    with message_files(messages, "a") as first, message_files(messages, "b") as second:
        assert first["__messages_out"] != second["__messages_out"]  # concurrent scripts
        assert first["__messages_in"] == second["__messages_in"]  # nothing new yet
        Path(first["__messages_out"]).write_text("one\n")
    with message_files(messages, "c") as third:
        assert third["__messages_out"] in (first["__messages_out"], second["__messages_out"])
        assert Path(third["__messages_out"]).read_text() == ""
        assert third["__messages_in"] != first["__messages_in"]  # "a:one" arrived
        assert Path(third["__messages_in"]).read_text().endswith("a:one\n")


def test_a_script_that_removes_its_out_file_does_not_break_the_run(tmp_path: Path) -> None:
    messages = _layout(tmp_path)
    with message_files(messages, "a") as env:
        Path(env["__messages_out"]).unlink()
    assert messages.read_text() == "initialmanifest:hello\n"


def test_remove_message_files_leaves_nothing_beside_the_workdir(tmp_path: Path) -> None:
    messages = _layout(tmp_path)
    with message_files(messages, "a"):
        pass
    assert (tmp_path / "host" / "message-files").is_dir()
    remove_message_files(messages)
    assert sorted(p.name for p in (tmp_path / "host").iterdir()) == ["data"]


def test_snapshots_no_script_uses_are_reused_for_later_messages(tmp_path: Path) -> None:
    messages = _layout(tmp_path)
    seen: list[tuple[str, str]] = []
    for prefix in ("a", "b", "c", "d"):
        with message_files(messages, prefix) as env:
            path = env["__messages_in"]
            seen.append((path, Path(path).read_text()))
            Path(env["__messages_out"]).write_text(f"from {prefix}\n")
    # every script saw exactly the messages written before it started
    assert [text.splitlines()[-1] for _, text in seen] == [
        "initialmanifest:hello",
        "a:from a",
        "b:from b",
        "c:from c",
    ]
    assert all(text == seen[-1][1][: len(text)] for _, text in seen)
    # at most two copies of the messages exist at any time here: the one in use and
    # the one before it, recycled under the next name
    scratch = tmp_path / "host" / "message-files"
    assert len(list(scratch.glob("in.*"))) <= 2


def test_a_snapshot_in_use_is_not_rewritten_and_a_removed_one_comes_back(
    tmp_path: Path,
) -> None:
    messages = _layout(tmp_path)
    with message_files(messages, "a") as first:
        before = Path(first["__messages_in"]).read_text()
        for prefix in ("b", "c"):
            with message_files(messages, prefix) as env:
                Path(env["__messages_out"]).write_text("more\n")
        assert Path(first["__messages_in"]).read_text() == before
        Path(first["__messages_in"]).unlink()
    with message_files(messages, "d") as env:
        assert Path(env["__messages_in"]).read_text() == messages.read_text()
        Path(env["__messages_in"]).unlink()
    with message_files(messages, "e") as env:
        assert Path(env["__messages_in"]).read_text() == messages.read_text()


def test_snapshots_follow_appends_and_a_rewritten_file(tmp_path: Path) -> None:
    """Only the appended part is read again, yet every snapshot is the whole file; a file
    that shrank (rewritten by someone else) is read whole again."""
    messages = _layout(tmp_path)
    for prefix in ("a", "b", "c"):
        with message_files(messages, prefix) as env:
            assert Path(env["__messages_in"]).read_bytes() == messages.read_bytes()
            Path(env["__messages_out"]).write_text(f"from {prefix}\n")
    with message_files(messages, "d") as env:
        assert Path(env["__messages_in"]).read_text().splitlines() == [
            "initialmanifest:hello",
            "a:from a",
            "b:from b",
            "c:from c",
        ]
    messages.write_text("other:x\n")
    with message_files(messages, "e") as env:
        assert Path(env["__messages_in"]).read_text() == "other:x\n"
    remove_message_files(messages)

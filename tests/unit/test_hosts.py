"""Target hosts from the command line and hosts files (cdist-spec §2.3)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from cdist_trio.errors import HostsFileError, UserError
from cdist_trio.hosts import HostSpec, check_host, read_hosts

NO_STDIN = io.StringIO("")


def names(hosts: list[HostSpec]) -> list[str]:
    return [host.name for host in hosts]


def test_hosts_cli_hosts_come_first_then_files(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("file-1\nfile-2\n")
    hosts = read_hosts(["cli-1", "cli-2"], [str(hosts_file)], NO_STDIN)
    assert names(hosts) == ["cli-1", "cli-2", "file-1", "file-2"]


def test_hosts_comments_anywhere_blank_lines_and_whitespace(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(
        "# a comment line\n"
        "   web-1   \n"
        "\n"
        "web-2 # trailing comment\n"
        "\t   # indented comment\n"
        "root@web-3#no space before it\n"
        "   \n"
    )
    assert names(read_hosts([], [str(hosts_file)], NO_STDIN)) == ["web-1", "web-2", "root@web-3"]


def test_hosts_dash_reads_stdin() -> None:
    stdin = io.StringIO("a\n# c\nb\n")
    assert names(read_hosts(["x"], ["-"], stdin)) == ["x", "a", "b"]


def test_hosts_several_files_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    first.write_text("a\n")
    second.write_text("b\n")
    assert names(read_hosts([], [str(second), str(first)], NO_STDIN)) == ["b", "a"]


def test_hosts_cli_host_used_literally() -> None:
    assert read_hosts(["[::1]:22", "user@h"], [], NO_STDIN) == [
        HostSpec("[::1]:22"),
        HostSpec("user@h"),
    ]


def test_hosts_missing_file_error_names_source(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(
        HostsFileError, match=rf"^Error reading hosts from '{missing}': No such file"
    ):
        read_hosts([], [str(missing)], NO_STDIN)


def test_hosts_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(HostsFileError, match=r"Error reading hosts from '.*': Is a directory"):
        read_hosts([], [str(tmp_path)], NO_STDIN)


def test_hosts_bad_line_reports_file_and_line_number(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("good\n# comment\nbad host\n")
    with pytest.raises(HostsFileError) as info:
        read_hosts([], [str(hosts_file)], NO_STDIN)
    message = str(info.value)
    assert message.startswith(f"Error reading hosts from '{hosts_file}': line 3: 'bad host'")
    assert "whitespace" in message
    assert "one host per line" in message


def test_hosts_bad_line_from_stdin_names_dash() -> None:
    with pytest.raises(HostsFileError, match=r"from '-': line 2: '-oProxyCommand=x'"):
        read_hosts([], ["-"], io.StringIO("ok\n-oProxyCommand=x\n"))


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("", "empty"),
        ("-x", "starts with '-'"),
        ("a b", "whitespace"),
        ("a\x1bb", "control character"),
        ("a\u200bb", "control character"),
    ],
)
def test_hosts_check_host_rejects(host: str, reason: str) -> None:
    problem = check_host(host)
    assert problem is not None
    assert reason in problem


def test_hosts_check_host_accepts_usual_forms() -> None:
    for host in ("web-1", "root@web.example.com", "[fe80::1%eth0]", "10.0.0.1", "ünïcode"):
        assert check_host(host) is None


def test_hosts_bad_cli_host_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"'a b' on the command line"):
        read_hosts(["a b"], [], NO_STDIN)


def test_hosts_none_at_all_is_target_hosts_missing() -> None:
    with pytest.raises(UserError, match=r"^Target host\(s\) missing$"):
        read_hosts([], [], NO_STDIN)


def test_hosts_empty_file_is_target_hosts_missing(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("# nothing here\n")
    with pytest.raises(UserError, match=r"^Target host\(s\) missing: no host in '.*hosts'"):
        read_hosts([], [str(hosts_file)], NO_STDIN)


def test_hosts_duplicates_kept_once_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("b\na\n")
    with caplog.at_level(logging.WARNING, logger="cdist_trio"):
        hosts = read_hosts(["a", "b"], [str(hosts_file)], NO_STDIN)
    assert names(hosts) == ["a", "b"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Host a given more than once" in warnings[1]
    assert f"'{hosts_file}' line 2" in warnings[1]

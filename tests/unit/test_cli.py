"""The cdist-trio command line: argv preprocessing, help, errors, exit codes, the run call."""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

import cdist_trio.emulator
import cdist_trio.run
from cdist_trio import cli
from cdist_trio._version import __version__
from cdist_trio.errors import CdistError
from cdist_trio.hosts import HostSpec
from cdist_trio.settings import DEFAULT_JOBS, DEFAULT_PARALLEL, Settings


class FakeRun:
    """Stands in for run_config: records its arguments, fails the hosts it is told to."""

    def __init__(self, failed: Sequence[str] = (), raises: BaseException | None = None) -> None:
        self.failed = list(failed)
        self.raises = raises
        self.hosts: list[HostSpec] = []
        self.settings: Settings | None = None
        self.manifest_text: str | None = None
        self.manifest_mode: int | None = None
        self.ssh_config_text: str | None = None
        self.ssh_config_mode: int | None = None

    async def __call__(
        self, hosts: Sequence[HostSpec], settings: Settings, **kwargs: object
    ) -> SimpleNamespace:
        self.hosts = list(hosts)
        self.settings = settings
        manifest = settings.initial_manifest
        if manifest is not None and manifest.name.startswith("cdist.stdin."):
            self.manifest_text = manifest.read_text()
            self.manifest_mode = stat.S_IMODE(manifest.stat().st_mode)
        ssh_config = settings.ssh_config
        if ssh_config is not None and ssh_config.name.startswith("cdist-trio.ssh_config."):
            self.ssh_config_text = ssh_config.read_text()
            self.ssh_config_mode = stat.S_IMODE(ssh_config.stat().st_mode)
        if self.raises is not None:
            raise self.raises
        return SimpleNamespace(failed_hosts=self.failed)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user's cdist.cfg or CDIST_* variables leak into these tests."""
    for name in list(os.environ):
        if name.startswith("CDIST_") or name.startswith("__cdist") or name == "NO_COLOR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    fake = FakeRun()
    monkeypatch.setattr(cdist_trio.run, "run_config", fake)
    return fake


def settings_of(fake: FakeRun) -> Settings:
    assert fake.settings is not None
    return fake.settings


# --- argv preprocessing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("config -p -j 16 -f hosts", f"config --parallel={DEFAULT_PARALLEL} --jobs=16 -f hosts"),
        ("config -j host1", f"config --jobs={DEFAULT_JOBS} host1"),
        ("config -j 4 host1", "config --jobs=4 host1"),
        ("config -j4 -p2 h", "config --jobs=4 --parallel=2 h"),
        ("config -vvj h", f"config -vv --jobs={DEFAULT_JOBS} h"),
        ("config --jobs h", f"config --jobs={DEFAULT_JOBS} h"),
        ("config --jobs 8 h", "config --jobs=8 h"),
        ("config --parallel=3 h", "config --parallel=3 h"),
        ("config -jx h", "config --jobs=x h"),
        ("config h -p", f"config h --parallel={DEFAULT_PARALLEL}"),
        ("config -f -j h", "config -f -j h"),  # -j is the value of -f here
        ("config --remote-exec -p h", "config --remote-exec -p h"),
        ("config -- -j", "config -- -j"),
        ("config -4 -6 -46 h", "config --force-ipv4 --force-ipv6 --force-ipv4 --force-ipv6 h"),
    ],
)
def test_cli_preprocess_optional_values(argv: str, expected: str) -> None:
    assert cli.preprocess_argv(argv.split()) == expected.split()


def test_cli_jobs_and_parallel_without_value_before_hosts(fake_run: FakeRun) -> None:
    assert cli.main(["config", "-p", "-j", "host1", "host2"]) == 0
    settings = settings_of(fake_run)
    assert (settings.jobs, settings.parallel) == (DEFAULT_JOBS, DEFAULT_PARALLEL)
    assert fake_run.hosts == [HostSpec("host1"), HostSpec("host2")]


def test_cli_jobs_and_parallel_with_values(fake_run: FakeRun) -> None:
    assert cli.main(["config", "-p", "3", "-j", "5", "h"]) == 0
    assert (settings_of(fake_run).jobs, settings_of(fake_run).parallel) == (5, 3)


# --- help and version ------------------------------------------------------------------

EVERY_OPTION = (
    "-f FILE, --file",
    "-i PATH, --initial-manifest",
    "-c DIR, --conf-dir",
    "-n, --dry-run",
    "-j N, --jobs",
    "-p N, --parallel",
    "-s, --sequential",
    "-r DIR, --remote-out-dir",
    "-o DIR, --out-dir",
    "--remote-exec",
    "--remote-copy",
    "-4, --force-ipv4",
    "-6, --force-ipv6",
    "-v, --verbose",
    "-q, --quiet",
    "-l LEVEL, --log-level",
    "-P, --timestamp",
    "-S, --disable-saving-output-streams",
    "-b, --beta",
    "-g FILE, --config-file",
    "-C PATTERN, --cache-path-pattern",
    "--colors",
    "-V, --version",
    "-h, --help",
    "-F FILE, --ssh-config",
    "--transport",
    "--timeout",
    "--max-sessions",
    "--max-connections",
)


def test_cli_help_mentions_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in EVERY_OPTION:
        assert option in out, option
    assert f"without N, {DEFAULT_JOBS}" in out
    assert "openssh, command, local or" in out


def test_cli_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    assert "Usage:" in capsys.readouterr().out


def test_cli_help_after_config_and_other_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "-v", "-h", "host"]) == 0
    assert "Usage:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["-V"], ["--version"], ["config", "-V"]])
def test_cli_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == f"cdist-trio {__version__}\n"


def test_cli_module_help_in_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cdist_trio", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cdist-trio: ")
    assert "--max-connections" in result.stdout


# --- usage errors: exit 2 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "-j", "0", "h"], "-j/--jobs expects a whole number >= 1, not '0'"),
        (["config", "-jx", "h"], "-j/--jobs expects a whole number >= 1, not 'x'"),
        (["config", "--parallel=-2", "h"], "-p/--parallel expects a whole number >= 1"),
        (["config", "--timeout", "-1", "h"], "--timeout expects a number of seconds > 0"),
        (["config", "--timeout", "soon", "h"], "--timeout expects a number of seconds > 0"),
        (["config", "--transport", "foo", "h"], "--transport expects one of openssh, command"),
        (["config", "--colors", "pink", "h"], "--colors expects one of always, never, auto"),
        (["config", "--max-sessions", "0", "h"], "--max-sessions expects a whole number >= 1"),
        (["config", "-l", "-2", "h"], "-l/--log-level expects a whole number >= -1"),
        (["config", "-4", "-6", "h"], "-4/--force-ipv4 and -6/--force-ipv6 contradict"),
        (["config", "-s", "-p", "2", "h"], "-s/--sequential and -p/--parallel contradict"),
        (["config", "--bogus", "h"], "unknown option --bogus"),
        (["config", "-x", "h"], "unknown option -x"),
        (["config", "--re", "h"], "--re is ambiguous"),
        (["config", "-t", "tag"], "-t: cdist-trio does not support inventory tags"),
        (["config", "--remote-exec", "", "h"], "--remote-exec expects a value"),
    ],
)
def test_cli_bad_values_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], fake_run: FakeRun
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage:\n  cdist-trio config")
    assert f"cdist-trio: error: {message}" in err
    assert fake_run.settings is None


def test_cli_docopt_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "-f"]) == 2
    err = capsys.readouterr().err
    assert "-f requires argument" in err
    assert "Usage:" in err


def test_cli_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["install", "h"]) == 2
    assert "Usage:" in capsys.readouterr().err


# --- cdist errors: exit 1, one line ----------------------------------------------------


def test_cli_missing_hosts(capsys: pytest.CaptureFixture[str], fake_run: FakeRun) -> None:
    assert cli.main(["config"]) == 1
    assert capsys.readouterr().err == "ERROR: cdist: Target host(s) missing\n"
    assert fake_run.settings is None


def test_cli_stdin_for_manifest_and_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "-i", "-", "-f", "-"]) == 1
    assert capsys.readouterr().err == (
        "ERROR: cdist: Cannot read both, manifest and host file, from stdin\n"
    )


def test_cli_missing_conf_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "-c", str(tmp_path / "nope"), "h"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: cdist: -c/--conf-dir: '{tmp_path / 'nope'}' is not a dir")


def test_cli_configured_conf_dir_missing_is_a_warning(
    tmp_path: Path,
    fake_run: FakeRun,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """cdist skips a conf_dir of cdist.cfg or CDIST_PATH that does not exist, silently:
    its types are then "not found" in manifests.  The run goes on, with a warning."""
    missing, present = tmp_path / "nope", tmp_path
    monkeypatch.setenv("CDIST_PATH", f"{missing}:{present}")
    assert cli.main(["config", "h"]) == 0
    assert settings_of(fake_run).conf_dirs == (missing, present)
    assert capsys.readouterr().out == (
        f"WARNING: cdist: conf dir '{missing}' (a conf_dir in cdist.cfg, or CDIST_PATH) "
        "is not a directory: skipped\n"
    )


def test_cli_unreadable_ssh_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "-F", str(tmp_path / "nope"), "h"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: cdist: -F/--ssh-config: cannot read")
    assert "No such file" in err


def test_cli_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[GLOBAL]\nfoo = 1\n")
    assert cli.main(["config", "-g", str(cfg), "h"]) == 1
    assert capsys.readouterr().err.startswith("ERROR: cdist: Invalid option: foo.")


def test_cli_unreadable_hosts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "hosts"
    assert cli.main(["config", "-f", str(missing)]) == 1
    assert capsys.readouterr().err.startswith(
        f"ERROR: cdist: Error reading hosts from '{missing}':"
    )


def test_cli_quiet_suppresses_error_lines_after_logging_is_set_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["config", "-q"]) == 1
    assert capsys.readouterr().err == ""


# --- the run ---------------------------------------------------------------------------


def test_cli_settings_from_flags(fake_run: FakeRun, tmp_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("")
    conf = tmp_path / "conf"
    conf.mkdir()
    argv = [
        "config",
        "-n",
        "-vv",
        "-P",
        "-S",
        "-b",
        "-6",
        "-c",
        str(conf),
        "-i",
        "init",
        "-r",
        "/tmp/r",
        "-o",
        str(tmp_path / "out"),
        "-C",
        "%N",
        "--colors",
        "never",
        "-F",
        str(ssh_config),
        "--remote-exec",
        "my-exec",
        "--timeout",
        "2.5",
        "--max-sessions",
        "4",
        "--max-connections",
        "3",
        "h",
    ]
    assert cli.main(argv) == 0
    assert settings_of(fake_run) == Settings(
        conf_dirs=(conf,),
        initial_manifest=Path("init"),
        dry_run=True,
        remote_out_dir="/tmp/r",
        out_dir=tmp_path / "out",
        remote_exec="my-exec",
        transport="command",
        ssh_config=ssh_config,
        address_family=6,
        verbosity=2,
        timestamp=True,
        save_output_streams=False,
        beta=True,
        cache_path_pattern="%N",
        colored_output="never",
        timeout=2.5,
        max_sessions=4,
        max_connections=3,
    )


def test_cli_log_level_and_verbose_add_up(fake_run: FakeRun) -> None:
    assert cli.main(["config", "-l", "1", "-v", "h"]) == 0
    assert settings_of(fake_run).verbosity == 2


def test_cli_flags_override_environment(fake_run: FakeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDIST_REMOTE_SHELL", "/bin/ksh")
    monkeypatch.setenv("CDIST_COLORED_OUTPUT", "always")
    assert cli.main(["config", "--colors", "never", "h"]) == 0
    settings = settings_of(fake_run)
    assert (settings.remote_shell, settings.colored_output) == ("/bin/ksh", "never")


def test_cli_hosts_from_stdin(fake_run: FakeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("b # comment\nc\n"))
    assert cli.main(["config", "-f", "-", "a"]) == 0
    assert [h.name for h in fake_run.hosts] == ["a", "b", "c"]


def test_cli_manifest_from_stdin_is_private_and_removed(
    fake_run: FakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"__file /tmp/x\n")))
    assert cli.main(["config", "-i", "-", "h"]) == 0
    assert fake_run.manifest_text == "__file /tmp/x\n"
    assert fake_run.manifest_mode == 0o600
    manifest = settings_of(fake_run).initial_manifest
    assert manifest is not None
    assert not manifest.exists()


def test_cli_pipes_for_manifest_and_ssh_config_are_read_once(fake_run: FakeRun) -> None:
    # `-i <(generate)` and `-F <(vagrant ssh-config)`: every host reads the manifest and
    # every ssh master its ssh_config, and a pipe can be read only once (an ssh child
    # cannot even open the engine's /dev/fd/N): both are copied, privately, for the run.
    paths = []
    for text in (b"__file /tmp/x\n", b"Host h\n    Port 2222\n"):
        read, write = os.pipe()
        os.write(write, text)
        os.close(write)
        paths.append(read)
    try:
        argv = ["config", "-i", f"/dev/fd/{paths[0]}", "-F", f"/dev/fd/{paths[1]}", "h"]
        assert cli.main(argv) == 0
    finally:
        for fd in paths:
            os.close(fd)
    assert fake_run.manifest_text == "__file /tmp/x\n"
    assert fake_run.ssh_config_text == "Host h\n    Port 2222\n"
    assert fake_run.ssh_config_mode == 0o600
    ssh_config = settings_of(fake_run).ssh_config
    assert ssh_config is not None
    assert not ssh_config.exists()  # removed after the run


def test_cli_failed_hosts_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdist_trio.run, "run_config", FakeRun(failed=["h"]))
    assert cli.main(["config", "h"]) == 1


def test_cli_cdist_error_from_run_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdist_trio.run, "run_config", FakeRun(raises=CdistError("it broke")))
    assert cli.main(["config", "h"]) == 1
    assert capsys.readouterr().err == "ERROR: cdist: it broke\n"


def test_cli_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdist_trio.run, "run_config", FakeRun(raises=KeyboardInterrupt()))
    assert cli.main(["config", "h"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cli_logging_handlers_removed_after_run(fake_run: FakeRun) -> None:
    assert cli.main(["config", "-v", "h"]) == 0
    assert logging.getLogger("cdist_trio").handlers == []


def test_cli_version_logged_at_verbose(
    fake_run: FakeRun, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["config", "-vv", "h"]) == 0
    assert f"VERBOSE: cdist: version {__version__}\n" in capsys.readouterr().out


# --- the emulator ----------------------------------------------------------------------


def test_cli_emulator_dispatch_by_program_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def fake_emulator(type_name: str, argv: Sequence[str], environ: object, stdin: object) -> int:
        calls.append((type_name, list(argv)))
        return 3

    monkeypatch.setattr(cdist_trio.emulator, "main", fake_emulator)
    assert cli.main(["obj", "--mode", "0644"], prog="/g/bin/__file") == 3
    assert calls == [("__file", ["obj", "--mode", "0644"])]


def test_cli_main_module_name_is_not_a_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-V"], prog="/site/cdist_trio/__main__.py") == 0
    assert capsys.readouterr().out.startswith("cdist-trio ")


def test_the_installed_command_is_console_main() -> None:
    """`console_main` skips the interpreter's teardown; the script must be it."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["cdist-trio"] == "cdist_trio.cli:console_main"


@pytest.mark.parametrize(
    ("argv", "status", "stream", "text"),
    [
        (["--version"], 0, "stdout", "cdist-trio "),
        (["config", "--no-such-flag", "h"], 2, "stderr", "--no-such-flag"),
    ],
)
def test_console_main_flushes_its_output_and_exits_with_mains_status(
    argv: list[str], status: int, stream: str, text: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "from cdist_trio.cli import console_main; console_main()", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == status, completed.stderr
    assert text in getattr(completed, stream)


@pytest.mark.parametrize("transport", ["asyncssh", "openssh"])
def test_cli_connect_error_names_the_host_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    transport: str,
) -> None:
    """A refused connection (a closed port on loopback): the transports put the host in
    their messages, and the log line and the report name it once, not twice."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host dead\n    HostName 127.0.0.1\n    Port {port}\n    BatchMode yes\n")
    manifest = tmp_path / "manifest"
    manifest.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    capfd.readouterr()
    argv = ["config", "--transport", transport, "-F", str(config), "-i", str(manifest)]
    status = cli.main([*argv, "--no-progress", "dead"])
    err = capfd.readouterr().err
    assert status == 1
    lines = [line for line in err.splitlines() if "refused" in line]
    assert lines, err
    for line in lines:
        assert line.count("dead: ") == 1, line
    assert any(line.startswith("ERROR: dead: ") for line in lines), err

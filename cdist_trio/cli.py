"""The ``cdist-trio`` command: docopt usage text → Settings + hosts → one Trio run.

The only module that reads ``sys.argv`` or exits.  Exit status: 0 success, 1 a cdist error
(including failed hosts), 2 a usage error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, get_args

from docopt import DocoptExit, docopt

from cdist_trio._version import __version__
from cdist_trio.errors import (
    CdistError,
    ConfigError,
    UserError,
    exception_leaves,
    local_failure,
)
from cdist_trio.hosts import HostSpec, read_hosts
from cdist_trio.log import (
    VERBOSE,
    get_logger,
    output_gone,
    reset_logging,
    route_python_warnings,
    setup_logging,
)
from cdist_trio.settings import (
    DEFAULT_JOBS,
    DEFAULT_PARALLEL,
    ColoredOutput,
    Settings,
    Transport,
    load_settings,
)

if TYPE_CHECKING:
    from rich.console import Console

    from cdist_trio.progress import ConsoleStream

__all__ = ["USAGE", "console_main", "main", "preprocess_argv"]

PROG = "cdist-trio"

USAGE = f"""\
{PROG}: configure target hosts with cdist types, manifests and explorers, on Trio.

Usage:
  {PROG} config [options] [-v...] [-f FILE]... [-c DIR]... [--] [<host>...]
  {PROG} info [options] [-c DIR]... [<pattern>]
  {PROG} (-h | --help)
  {PROG} (-V | --version)

Configures every <host> given here and every host listed in the -f files, in that
order (a host given twice is configured once).  Hosts are used as given; how they
are reached (address, port, user, keys) comes from ssh_config, see -F.

General:
  -h, --help            Show this help and exit.
  -V, --version         Print "{PROG} <version>" and exit.
  -v, --verbose         Log more; repeat for more: once INFO, twice VERBOSE,
                        three times DEBUG, four TRACE.  Default: WARNING.
  -l LEVEL, --log-level LEVEL
                        Set the verbosity counter directly: -1 ERROR, 0 WARNING,
                        1 INFO, 2 VERBOSE, 3 DEBUG, 4 TRACE; each -v adds one.
                        Default: 0 (WARNING).
  -q, --quiet           Log nothing and discard the output of local child
                        processes (overrides -v and -l).  Default: off.
  -P, --timestamp       Prefix log messages with [YYYYmmddHHMMSS.ffffff].
                        Default: off.
  --colors WHEN         Colour log lines: always, never or auto (auto: stdout is
                        a terminal and NO_COLOR is unset).  Default: auto.
  -b, --beta            Enable beta features.  Default: off.
  -g FILE, --config-file FILE
                        Read this cdist.cfg file last, after /etc/cdist.cfg,
                        ~/.cdist.cfg and $CDIST_CONFIG_FILE.  Default: none.

Hosts and manifests:
  -f FILE, --file FILE  Read more hosts from FILE, one per line ('#' starts a
                        comment); '-' reads standard input.  Repeatable.
                        Default: none (only the <host> arguments).
  -i PATH, --initial-manifest PATH
                        The initial manifest; '-' reads it from standard input,
                        and a pipe (-i <(generate)) is read once, the same way.
                        Default: manifest/init of the merged conf dirs.
  -c DIR, --conf-dir DIR
                        Add a conf dir (type/, manifest/, explorer/, files/);
                        repeatable, later ones win.  Appended to $CDIST_PATH and
                        the conf_dir setting.  Default: none.
  -n, --dry-run         Run explorers, manifests and gencode, but never
                        code-local or code-remote.  Default: off.

Parallelism and limits:
  -j N, --jobs N        Work on up to N objects and explorers of one host at a
                        time; without N, {DEFAULT_JOBS}.  Default: 1.
  -p N, --parallel N    Configure up to N hosts at a time; without N,
                        {DEFAULT_PARALLEL}.  Default: 1.
  -s, --sequential      One host at a time, the same as -p 1 (the default).
  --timeout SECONDS     Give up on a host that takes longer; it is reported as
                        timed out and the others go on.  Default: no limit.
  --fail-fast           Stop the whole run when the first host fails; hosts not
                        finished are reported as interrupted.  Default: off.
  --max-sessions N      Sessions to open on one SSH connection (sshd's
                        MaxSessions).  Default: 10.
  --max-connections N   SSH connections to open per host.  Default: 2.
  --workers N           Share the hosts among N engine processes, so the run's
                        own work uses N cores (worth it from a few hundred
                        hosts; see docs/parallelism.md).  Never more than -p.
                        Default: 1 (every host in this process).

Target access:
  --transport NAME      How to reach targets: openssh, command, local or
                        asyncssh.  Default: command when a remote exec or copy
                        command is set (here or configured), else openssh.
  -F FILE, --ssh-config FILE
                        The ssh_config file for host addresses, users and keys;
                        a pipe (-F <(vagrant ssh-config)) is read once.
                        Default: ssh's own (~/.ssh/config).
  -4, --force-ipv4      Use IPv4 addresses only.  Default: IPv4 or IPv6.
  -6, --force-ipv6      Use IPv6 addresses only.  Default: IPv4 or IPv6.
  --remote-exec CMD     An ssh-like command to run remote commands with
                        (cdist's calling convention).  Default: none.
  --remote-copy CMD     An scp-like command to copy files with.  Default: none.
  -r DIR, --remote-out-dir DIR
                        The work directory on targets; %N is replaced by the
                        host, %h by its hash (for aliases of one machine).
                        Default: /var/lib/cdist.

Local files:
  -o DIR, --out-dir DIR
                        Keep the hosts' local work dirs in DIR.  Default: a new
                        temporary directory.
  -C PATTERN, --cache-path-pattern PATTERN
                        Cache subdirectory per host under ~/.cdist/cache: %N
                        host, %h host hash, %P pid, then strftime codes.
                        Default: the host hash.
  -S, --disable-saving-output-streams
                        Let child processes write to this terminal instead of
                        capturing their output into files.  Default: off.

Output:
  --progress            Show live progress (a bar, a line per host in flight) and
                        a table of hosts at the end, even when stdout is not a
                        terminal.  Default: on when stdout is a terminal,
                        unless -q or -S.
  --no-progress         Never show progress: plain log lines only.  Default:
                        see --progress.
  --report FILE         Write a JSON report of the run to FILE: settings, and
                        per host its status, error, objects, timings and
                        transport statistics.  Default: none.
  --report-values       Put object parameter values in the --report file (they
                        may be secrets).  Default: left out.

Settings come from /etc/cdist.cfg, ~/.cdist.cfg (else
$XDG_CONFIG_HOME/cdist/cdist.cfg), CDIST_* environment variables,
$CDIST_CONFIG_FILE, -g, then these options, later ones winning.
Exit status: 0 success, 1 error or failed hosts, 2 usage error, 130 interrupted
by Ctrl-C (SIGINT), 143 stopped by SIGTERM.
"""

_USAGE_SECTION = USAGE[USAGE.index("Usage:") : USAGE.index("\n\n", USAGE.index("Usage:"))]

# Options whose value may be left out; docopt cannot express that (see preprocess_argv).
_OPTIONAL_VALUE = {"-j": ("--jobs", DEFAULT_JOBS), "-p": ("--parallel", DEFAULT_PARALLEL)}
_OPTIONAL_VALUE_LONG = dict(_OPTIONAL_VALUE.values())


class _UsageError(Exception):
    """A command line with unknown options or bad values: exit 2 with the usage."""


def _option_forms(usage: str) -> dict[str, bool]:
    """Every option form in the usage text (``-f``, ``--file``) → whether it takes a value."""
    forms: dict[str, bool] = {}
    for line in usage.splitlines():
        if line.startswith("  -"):
            for form in line.strip().split("  ", 1)[0].split(", "):
                name, _, value = form.partition(" ")
                forms[name] = bool(value)
    return forms


_OPTIONS = _option_forms(USAGE)
_SHORT_WITH_VALUE = frozenset(o for o, v in _OPTIONS.items() if v and not o.startswith("--"))
_LONG_WITH_VALUE = frozenset(o for o, v in _OPTIONS.items() if v and o.startswith("--"))

# cdist options we deliberately lack, so users get a reason rather than "unknown".
_UNSUPPORTED = {
    "-R": "archiving mode (-R/--use-archiving)",
    "--use-archiving": "archiving mode (-R/--use-archiving)",
    "--log-server": "the log server (--log-server)",
    "-t": "inventory tags (-t/--tag)",
    "--tag": "inventory tags (-t/--tag)",
    "-a": "the inventory (-a/--all)",
    "--all": "the inventory (-a/--all)",
    "-A": "inventory tags (-A/--all-tagged)",
    "--all-tagged": "inventory tags (-A/--all-tagged)",
    "-I": "the inventory (-I/--inventory)",
    "--inventory": "the inventory (-I/--inventory)",
}


def _check_options(argv: Sequence[str]) -> None:
    """Reject options the usage text does not know, naming them (docopt's message is
    opaque).  Long options may be abbreviated to a unique prefix, as docopt allows."""
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            return
        if token.startswith("--"):
            name, has_value, _ = token.partition("=")
            matches = [o for o in _OPTIONS if o.startswith("--") and o.startswith(name)]
            if not matches:
                _unknown(name)
            if name not in _OPTIONS and len(matches) > 1:
                raise _UsageError(f"{name} is ambiguous: it could be {', '.join(matches)}")
            if not has_value and _OPTIONS.get(name, _OPTIONS[matches[0]]):
                i += 1
        elif token.startswith("-") and token != "-":
            for pos, char in enumerate(token[1:], start=1):
                if "-" + char not in _OPTIONS:
                    _unknown("-" + char)
                if _OPTIONS["-" + char]:
                    i += pos == len(token) - 1
                    break


def _unknown(option: str) -> NoReturn:
    if option in _UNSUPPORTED:
        raise _UsageError(f"{option}: cdist-trio does not support {_UNSUPPORTED[option]}")
    raise _UsageError(f"unknown option {option}; see '{PROG} --help' for the options")


def _take_count(argv: Sequence[str], i: int) -> str | None:
    """``argv[i]`` when it is a whole number (the value of a bare -j/-p), else None."""
    if i < len(argv) and re.fullmatch(r"[0-9]+", argv[i]):
        return argv[i]
    return None


def preprocess_argv(argv: Sequence[str]) -> list[str]:
    """Give ``-j``/``-p`` (and ``--jobs``/``--parallel``) an explicit value for docopt.

    A bare one takes the next token only when it is a whole number, else its default;
    so ``-j host1`` means "-j 16, host host1" (cdist would read ``host1`` as the count).
    Attached values (``-j4``, ``--jobs=x``) are kept and validated later.
    Also spells ``-4``/``-6`` out, which docopt-ng would take for negative numbers.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            out.extend(argv[i - 1 :])
            break
        if token.startswith("--"):
            if token in _OPTIONAL_VALUE_LONG:
                count = _take_count(argv, i)
                i += count is not None
                out.append(f"{token}={count or _OPTIONAL_VALUE_LONG[token]}")
                continue
            out.append(token)
            if token in _LONG_WITH_VALUE and i < len(argv):
                out.append(argv[i])
                i += 1
            continue
        if re.fullmatch(r"-[46]+", token):
            # docopt-ng reads number-like tokens as arguments (negative numbers).
            out.extend(f"--force-ipv{char}" for char in token[1:])
            continue
        if not token.startswith("-") or token == "-":
            out.append(token)
            continue
        # A cluster of short options, e.g. -vvj or -j4 or -fhosts.
        for pos, char in enumerate(token[1:], start=1):
            option = "-" + char
            if option in _OPTIONAL_VALUE:
                long, default = _OPTIONAL_VALUE[option]
                if pos > 1:
                    out.append(token[:pos])
                attached = token[pos + 1 :]
                if not attached and _take_count(argv, i) is not None:
                    attached = argv[i]
                    i += 1
                out.append(f"{long}={attached or default}")
                break
            if option in _SHORT_WITH_VALUE:
                out.append(token)
                if pos == len(token) - 1 and i < len(argv):
                    out.append(argv[i])
                    i += 1
                break
        else:
            out.append(token)
    return out


def _int_option(args: Mapping[str, Any], option: str, flag: str, minimum: int) -> int | None:
    raw = args[option]
    if raw is None:
        return None
    assert isinstance(raw, str)
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise _UsageError(f"{flag} expects a whole number >= {minimum}, not {raw!r}")
    return value


def _choice_option(args: Mapping[str, Any], option: str, choices: tuple[str, ...]) -> str | None:
    raw = args[option]
    if raw is None:
        return None
    assert isinstance(raw, str)
    if raw not in choices:
        raise _UsageError(f"{option} expects one of {', '.join(choices)}, not {raw!r}")
    return raw


def _cli_layer(args: Mapping[str, Any]) -> dict[str, object]:
    """The Settings fields the user set on the command line (and only those)."""
    layer: dict[str, object] = {}
    if args["--conf-dir"]:
        layer["conf_dirs"] = tuple(Path(d) for d in args["--conf-dir"])
    for option, field in (
        ("--dry-run", "dry_run"),
        ("--timestamp", "timestamp"),
        ("--beta", "beta"),
        ("--fail-fast", "fail_fast"),
    ):
        if args[option]:
            layer[field] = True
    if args["--disable-saving-output-streams"]:
        layer["save_output_streams"] = False
    if args["--sequential"]:
        if args["--parallel"] is not None:
            raise _UsageError("-s/--sequential and -p/--parallel contradict each other; use one")
        layer["parallel"] = 1
    for option, flag, field, minimum in (
        ("--jobs", "-j/--jobs", "jobs", 1),
        ("--parallel", "-p/--parallel", "parallel", 1),
        ("--max-sessions", "--max-sessions", "max_sessions", 1),
        ("--max-connections", "--max-connections", "max_connections", 1),
        ("--workers", "--workers", "workers", 1),
    ):
        value = _int_option(args, option, flag, minimum)
        if value is not None:
            layer[field] = value
    for option, field in (
        ("--remote-exec", "remote_exec"),
        ("--remote-copy", "remote_copy"),
        ("--remote-out-dir", "remote_out_dir"),
        ("--cache-path-pattern", "cache_path_pattern"),
    ):
        if args[option] is not None:
            if not str(args[option]).strip():
                raise _UsageError(f"{option} expects a value, not an empty string")
            layer[field] = args[option]
    for option, field in (("--out-dir", "out_dir"), ("--ssh-config", "ssh_config")):
        if args[option] is not None:
            layer[field] = Path(str(args[option]))
    if args["--force-ipv4"] and args["--force-ipv6"]:
        raise _UsageError("-4/--force-ipv4 and -6/--force-ipv6 contradict each other; use one")
    if args["--force-ipv4"] or args["--force-ipv6"]:
        layer["address_family"] = 4 if args["--force-ipv4"] else 6
    level = _int_option(args, "--log-level", "-l/--log-level", -1)
    verbose = args["--verbose"]
    assert isinstance(verbose, int)
    if level is not None or verbose:
        layer["verbosity"] = (level or 0) + verbose
        layer["quiet"] = False
    if args["--quiet"]:
        layer["quiet"] = True
    colors = _choice_option(args, "--colors", get_args(ColoredOutput))
    if colors is not None:
        layer["colored_output"] = colors
    transport = _choice_option(args, "--transport", get_args(Transport))
    if transport is not None:
        layer["transport"] = transport
    if args["--timeout"] is not None:
        raw = str(args["--timeout"])
        try:
            timeout = float(raw)
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and timeout > 0):
            raise _UsageError(f"--timeout expects a number of seconds > 0, not {raw!r}")
        layer["timeout"] = timeout
    return layer


def _check_paths(layer: Mapping[str, Any]) -> None:
    """Fail early, naming the flag, on conf dirs and ssh_config files we cannot use."""
    conf_dirs = layer.get("conf_dirs", ())
    assert isinstance(conf_dirs, tuple)
    for conf_dir in conf_dirs:
        if not conf_dir.is_dir():
            raise ConfigError(
                f"-c/--conf-dir: '{conf_dir}' is not a directory; "
                "give an existing conf dir (with type/, manifest/, ...)"
            )
    ssh_config = layer.get("ssh_config")
    if isinstance(ssh_config, Path):
        try:
            with ssh_config.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"-F/--ssh-config: cannot read '{ssh_config}': {exc.strerror or exc}; "
                "give a readable ssh_config file"
            ) from None


def _is_stream(path: str) -> bool:
    """Whether ``path`` is a pipe, socket or terminal (a process substitution,
    ``/dev/stdin``), which can be read only once, rather than a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


def _is_stdin(path: object) -> bool:
    """Whether ``path`` names this process's standard input (``/dev/stdin``)."""
    if not isinstance(path, str) or not _is_stream(path):
        return False
    try:
        given, ours = os.stat(path), os.fstat(0)
    except OSError:
        return False
    return (given.st_dev, given.st_ino) == (ours.st_dev, ours.st_ino)


@contextlib.contextmanager
def _private_copy_of(path: str, prefix: str) -> Iterator[Path]:
    """`_private_copy` of what can be read from ``path`` (a pipe)."""
    with open(path, "rb") as stream, _private_copy(stream, prefix) as copy:
        yield copy


@contextlib.contextmanager
def _private_copy(stream: IO[bytes], prefix: str) -> Iterator[Path]:
    """``stream`` (standard input, a pipe given to ``-i`` or ``-F``) saved to a private
    temp file ``<prefix>*`` (mode 0600, like cdist's copy of a manifest from standard
    input: not executable), removed on exit."""
    fd, name = tempfile.mkstemp(prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as file:
            shutil.copyfileobj(stream, file)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _config(args: Mapping[str, Any]) -> int:
    """The ``config`` command: resolve settings and hosts, then run every host."""
    files: list[str] = list(args["--file"])
    hosts_given: list[str] = list(args["<host>"])
    manifest = args["--initial-manifest"]
    if (manifest == "-" or _is_stdin(manifest)) and "-" in files:
        raise UserError("Cannot read both, manifest and host file, from stdin")
    if _is_stdin(args["--ssh-config"]) and (manifest == "-" or _is_stdin(manifest) or "-" in files):
        raise UserError("Cannot read both, ssh_config and manifest or host file, from stdin")
    layer = _cli_layer(args)
    if isinstance(manifest, str) and manifest != "-":
        layer["initial_manifest"] = Path(manifest)
    _check_paths(layer)
    environ = os.environ
    config_file = args["--config-file"]
    settings = load_settings(
        layer,
        environ,
        home=Path(environ["HOME"]) if environ.get("HOME") else None,
        config_file=Path(config_file) if isinstance(config_file, str) else None,
    )
    output = _output_options(args, settings)
    if output.logs is not None:
        # Log lines go through the display's console, above the live display.
        stream = output.logs.as_text_io()
        errors = stream if _isatty(sys.stderr) else None
        setup_logging(settings, stream_out=stream, stream_err=errors)
    else:
        setup_logging(settings)
    route_python_warnings()
    log = get_logger()
    given = layer.get("conf_dirs", ())
    assert isinstance(given, tuple)
    for conf_dir in settings.conf_dirs:
        if conf_dir not in given and not conf_dir.is_dir():
            # cdist skips it silently; its types would then be "not found" in manifests
            log.warning(
                "conf dir '%s' (a conf_dir in cdist.cfg, or CDIST_PATH) is not a directory: "
                "skipped",
                conf_dir,
            )
    try:
        hosts = read_hosts(hosts_given, files, sys.stdin)
        with contextlib.ExitStack() as stack:
            # A pipe can be read only once (`-i <(generate)`, `-i -`, `-F /dev/stdin`),
            # and every host reads the manifest, every ssh master its ssh_config
            # (an ssh child cannot even open the engine's /dev/fd/63).
            if manifest == "-":
                path = stack.enter_context(_private_copy(sys.stdin.buffer, "cdist.stdin."))
                settings = replace(settings, initial_manifest=path)
            elif isinstance(manifest, str) and _is_stream(manifest):
                path = stack.enter_context(_private_copy_of(manifest, "cdist.stdin."))
                settings = replace(settings, initial_manifest=path)
            if settings.ssh_config is not None and _is_stream(str(settings.ssh_config)):
                path = stack.enter_context(
                    _private_copy_of(str(settings.ssh_config), "cdist-trio.ssh_config.")
                )
                settings = replace(settings, ssh_config=path)
            log.log(VERBOSE, "version %s", __version__)
            _open_files_for(len(hosts), settings)
            return _run(hosts, settings, output)
    except CdistError as exc:
        log.error("%s", exc)
        return 1
    finally:
        reset_logging()


def _open_files_for(hosts: int, settings: Settings) -> None:
    """Raise the open-files limit to what the run may need; warn if the system's hard
    limit is lower (hosts may then fail with "Too many open files")."""
    from cdist_trio.limits import ensure_open_files, open_files_needed

    needed = open_files_needed(min(hosts, settings.parallel), settings.jobs)
    limit = ensure_open_files(needed)
    log = get_logger()
    if limit.raised:
        log.debug("open files limit raised from %d to %d", limit.before, limit.after)
    if limit.after < needed:
        log.warning(
            "%d hosts at a time at -j %d may need about %d open files, and this process "
            "may have %d (ulimit -Hn): if hosts fail with 'Too many open files', lower "
            "-p or raise the hard limit",
            min(hosts, settings.parallel),
            settings.jobs,
            needed,
            limit.after,
        )


@dataclass(frozen=True)
class _Output:
    """What the run shows and writes besides log lines: progress, the JSON report."""

    console: Console | None = None
    logs: ConsoleStream | None = None
    report: Path | None = None
    report_values: bool = False


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _output_options(args: Mapping[str, Any], settings: Settings) -> _Output:
    if args["--progress"] and args["--no-progress"]:
        raise _UsageError("--progress and --no-progress contradict each other; use one")
    if args["--report-values"] and not args["--report"]:
        raise _UsageError("--report-values needs --report FILE")
    report = Path(args["--report"]) if args["--report"] else None
    if report is not None and not report.parent.is_dir():
        raise ConfigError(f"--report: '{report.parent}' is not a directory; give a writable path")
    progress = args["--progress"] or (
        not args["--no-progress"]
        and _isatty(sys.stdout)
        and not settings.quiet
        and settings.save_output_streams
    )
    if not progress:
        return _Output(None, None, report, bool(args["--report-values"]))
    from cdist_trio.progress import ConsoleStream, progress_console

    console = progress_console(force=bool(args["--progress"]))
    return _Output(console, ConsoleStream(console), report, bool(args["--report-values"]))


def _run(hosts: Sequence[HostSpec], settings: Settings, output: _Output | None = None) -> int:
    import trio

    return trio.run(_run_with_signals, hosts, settings, output or _Output())


async def _run_with_signals(
    hosts: Sequence[HostSpec], settings: Settings, output: _Output | None = None
) -> int:
    """Run, turning SIGINT/SIGTERM into an orderly interruption (exit 130/143).

    The first signal cancels every host, which close their connections and kill what
    they started on targets; a second one stops waiting for that clean-up.
    """
    import signal

    import trio

    # Imported here so that --help and --version work without the engine.
    from cdist_trio.run import RunControl, run_config

    output = output or _Output()
    control = RunControl()
    received: list[int] = []

    async def watch_signals(task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                received.append(signum)
                if len(received) > 1:
                    nursery.cancel_scope.cancel()
                name = signal.Signals(signum).name
                get_logger("cdist").warning("%s received: interrupting the run", name)
                control.interrupt(f"interrupted by {name}")

    reports = []
    errors: list[Exception] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_signals)
        try:
            async with contextlib.AsyncExitStack() as stack:
                display = None
                if output.console is not None:
                    from cdist_trio.progress import open_progress

                    display = await stack.enter_async_context(
                        open_progress(output.console, logs=output.logs)
                    )
                reports.append(
                    await run_config(
                        hosts,
                        settings,
                        control=control,
                        events=display.handle if display is not None else None,
                        report_values=output.report_values,
                    )
                )
            if display is not None:
                display.print_summary(reports[0])
        except Exception as exc:
            # Raised outside the nursery below, so it is not wrapped in a group.
            errors.append(exc)
        finally:
            nursery.cancel_scope.cancel()
    if errors:
        raise errors[0]
    report = reports[0]
    if output.report is not None:
        from cdist_trio.report import write_report

        try:
            write_report(report, output.report, values=output.report_values)
        except OSError as exc:
            raise ConfigError(f"--report: cannot write '{output.report}': {exc}") from None
    if received:
        return 128 + received[0]
    return 1 if report.failed_hosts else 0


def _is_emulator(prog: str) -> bool:
    name = os.path.basename(prog)
    # `python -m cdist_trio` has argv[0] = .../__main__.py: not a type.
    return name.startswith("__") and name != "__main__.py"


def _emulate(type_name: str, args: Sequence[str]) -> int:
    from cdist_trio import emulator

    status = emulator.main(type_name, list(args), os.environ, sys.stdin.buffer)
    return int(status or 0)


def _usage_error(message: str) -> int:
    print(f"{_USAGE_SECTION}\n\n{PROG}: error: {message}", file=sys.stderr)
    return 2


def _print_error(message: str) -> None:
    print(f"ERROR: cdist: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line ``argv`` (without the program name); return the exit status.

    Defaults to ``sys.argv``.  When the program is called as ``__<type>`` (a link in
    ``$__global/bin``) it is the type emulator instead and parses nothing itself.
    """
    if argv is None:
        argv = sys.argv[1:]
        prog = sys.argv[0] if prog is None else prog
    if prog is not None and _is_emulator(prog):
        return _emulate(os.path.basename(prog), argv)
    try:
        if not argv:
            print(USAGE, end="")
            return 0
        argv = preprocess_argv(argv)
        _check_options(argv)
        try:
            args = docopt(USAGE, argv, default_help=True, version=f"{PROG} {__version__}")
        except DocoptExit as exc:
            # docopt's message already ends with the usage section.
            print(str(exc.code), file=sys.stderr)
            return 2
        except SystemExit:
            # docopt has printed the help or the version (-h/-V anywhere on the line).
            return 0
        if args["info"]:
            from cdist_trio import info

            return info.main(args)
        return _config(args)
    except _UsageError as exc:
        return _usage_error(str(exc))
    except CdistError as exc:
        _print_error(str(exc))
        return 1
    except BrokenPipeError:
        raise  # our own output is gone: see console_main
    except OSError as exc:
        # this machine's side outside any host: the run's temporary directory, a file
        # given on the command line
        _print_error(str(local_failure(exc) or exc))
        return 1
    except KeyboardInterrupt:
        # cdist exits 2 here; 130 (128 + SIGINT) is what shells and CI expect.
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        cdist_errors, rest = group.split(CdistError)
        if rest is not None or cdist_errors is None:
            raise
        for error in exception_leaves(cdist_errors):
            _print_error(str(error))
        return 1


def console_main(prog: str | None = None) -> NoReturn:
    """Entry point for scripts: run :func:`main` on ``sys.argv`` and exit with its status.

    By the time `main` returns, every host scope, connection, child process and temp
    dir is closed, so the process ends right after flushing its streams: tearing down
    the interpreter (modules, threads' objects) would only add tens of milliseconds.
    """
    try:
        status = main(sys.argv[1:], prog=sys.argv[0] if prog is None else prog)
    except BrokenPipeError:
        # --help, --version or info into a pipe nobody reads any more (``| head``); a
        # config run's log streams are handled where they are written (log.output_gone).
        for stream in (sys.stdout, sys.stderr):
            output_gone(stream, notice=False)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1  # nobody reads our output any more
    os._exit(status)

"""Run settings and where they come from: cdist.cfg files, CDIST_* variables, the CLI.

:func:`load_settings` layers those sources in cdist's order (cdist-spec §3) into one frozen
:class:`Settings`.  Paths and the environment are passed in, so it is testable as is.
"""

from __future__ import annotations

import configparser
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

from cdist_trio.errors import ConfigError
from cdist_trio.log import verbosity_for_level, verbosity_for_name

__all__ = [
    "DEFAULT_JOBS",
    "DEFAULT_PARALLEL",
    "PACKAGE_CONFIG_FILE",
    "SYSTEM_CONFIG_FILE",
    "ColoredOutput",
    "Settings",
    "Transport",
    "load_settings",
    "parse_bool",
    "split_conf_dirs",
    "user_config_file",
]

Transport = Literal["openssh", "command", "local", "asyncssh"]
ColoredOutput = Literal["always", "never", "auto"]

DEFAULT_JOBS = 16
"""``-j`` without N (and cdist.cfg ``jobs = -1``).  cdist uses the CPU count because it forks
processes; our jobs are tasks waiting on the network, so a fixed, modest fan-out per host
is better.  It exceeds sshd's default MaxSessions (10) on purpose: the connection pool
opens a second connection (``max_connections``) instead of failing."""

DEFAULT_PARALLEL = 32
"""``-p`` without N (and cdist.cfg ``parallel = -1``): hosts configured at the same time.
Kept well under sshd's default MaxStartups (10:30:100) times a few targets' worth of
handshakes, which the run-wide connect limiter paces anyway."""

SYSTEM_CONFIG_FILE = Path("/etc/cdist.cfg")
PACKAGE_CONFIG_FILE = Path(__file__).parent / "conf" / "cdist.cfg"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a run needs to know besides its hosts; immutable once built.

    Build it directly (library use) or with :func:`load_settings` (the cdist way).
    Invalid values raise :class:`~cdist_trio.errors.ConfigError`.
    """

    conf_dirs: tuple[Path, ...] = ()
    """Extra conf dirs in merge order (later wins): cdist.cfg/CDIST_PATH, then ``-c``."""
    initial_manifest: Path | None = None
    """The initial manifest; None means ``$__global/conf/manifest/init``."""
    dry_run: bool = False
    """``-n``: run manifests and gencode, never code-local/code-remote."""
    jobs: int = 1
    """``-j``: objects and explorers handled at the same time within one host (>= 1)."""
    parallel: int = 1
    """``-p``: hosts configured at the same time (>= 1)."""
    remote_out_dir: str = "/var/lib/cdist"
    """``-r``: the remote base directory ``$R``."""
    out_dir: Path | None = None
    """``-o``: local base dir for the hosts' work dirs; None means a fresh temp dir."""
    remote_exec: str | None = None
    """``--remote-exec``: an ssh-like command (cdist-spec §9.1); implies transport command."""
    remote_copy: str | None = None
    """``--remote-copy``: an scp-like command; implies transport command."""
    transport: Transport = "openssh"
    """How targets are reached: ``openssh``, ``command`` (remote_exec/copy), ``local``,
    ``asyncssh``."""
    ssh_config: Path | None = None
    """``-F``: the ssh_config file giving host addresses, users, keys."""
    address_family: Literal[4, 6] | None = None
    """``-4``/``-6``: force IPv4/IPv6 for ssh and address resolution; None = either."""
    verbosity: int = 0
    """-1 ERROR, 0 WARNING, 1 INFO, 2 VERBOSE, 3 DEBUG, 4+ TRACE."""
    quiet: bool = False
    """``-q``: log nothing and discard the output of local child processes."""
    timestamp: bool = False
    """``-P``: prefix log messages with ``[YYYYmmddHHMMSS.ffffff] ``."""
    save_output_streams: bool = True
    """Capture child processes' stdout/stderr into files (``-S`` turns it off)."""
    beta: bool = False
    """``-b``: enable beta features."""
    local_shell: str = "/bin/sh"
    """Shell for local scripts (manifests, gencode, code-local)."""
    remote_shell: str = "/bin/sh"
    """Shell for remote scripts (explorers, code-remote)."""
    cache_path_pattern: str | None = None
    """``-C``: cache subdir pattern (cdist-spec §14); None = md5 of the host."""
    colored_output: ColoredOutput = "auto"
    """``--colors``: ``always``, ``never`` or ``auto`` (stdout a TTY and NO_COLOR unset)."""
    timeout: float | None = None
    """``--timeout``: seconds one host may take before it is cancelled; None = no limit."""
    max_sessions: int = 10
    """``--max-sessions``: sessions per SSH connection (sshd's MaxSessions)."""
    max_connections: int = 2
    """``--max-connections``: SSH connections per host."""
    fail_fast: bool = False
    """``--fail-fast``: cancel the whole run when the first host fails."""
    workers: int = 1
    """``--workers``: engine processes the hosts are shared among (`cdist_trio.workers`);
    1 configures every host in the calling process."""

    def __post_init__(self) -> None:
        for name in ("jobs", "parallel", "max_sessions", "max_connections", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Settings.{name} must be an integer >= 1, not {value!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float)
            and math.isfinite(self.timeout)
            and self.timeout > 0
        ):
            raise ConfigError(
                f"Settings.timeout must be a number > 0 or None, not {self.timeout!r}"
            )
        _check_choice("transport", self.transport, get_args(Transport))
        _check_choice("colored_output", self.colored_output, get_args(ColoredOutput))
        _check_choice("address_family", self.address_family, (4, 6, None))


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"Settings.{name} must be one of {choices!r}, not {value!r}")


# --- value parsers: each takes the raw string and raises ValueError with the reason -------

_BOOLEANS = {"yes": True, "on": True, "true": True, "1": True}
_BOOLEANS.update({"no": False, "off": False, "false": False, "0": False})


def parse_bool(raw: str) -> bool:
    """cdist.cfg booleans: yes/no, on/off, true/false, 1/0 (any case)."""
    try:
        return _BOOLEANS[raw.strip().lower()]
    except KeyError:
        raise ValueError(
            f"{raw!r} is not a boolean (use yes/no, on/off, true/false or 1/0)"
        ) from None


def split_conf_dirs(raw: str) -> tuple[Path, ...]:
    """Split a conf_dir list on os.pathsep, like cdist.

    A backslash right before a separator keeps that separator (and the backslash) in the
    entry.  Empty entries are skipped.
    """
    parts = re.split(rf"(?<!\\){re.escape(os.pathsep)}", raw)
    return tuple(Path(part) for part in parts if part)


def _parse_count(raw: str) -> int:
    # cdist.cfg jobs/parallel: -1 = "as many as useful", 0 = off (one at a time).
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None
    if value < -1:
        raise ValueError(f"{value} is below -1")
    return {-1: -1, 0: 1}.get(value, value)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return raw

    return parse


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("the value is empty")
    return raw


# cdist.cfg key -> (Settings field or None when we accept but do not use it, parser).
_FILE_KEYS: dict[str, tuple[str | None, Callable[[str], object]]] = {
    "archiving": (None, _choice("tar", "tgz", "tbz2", "txz", "none")),
    "beta": ("beta", parse_bool),
    "cache_path_pattern": ("cache_path_pattern", str),
    "colored_output": ("colored_output", _choice(*get_args(ColoredOutput))),
    "conf_dir": ("conf_dirs", split_conf_dirs),
    "init_manifest": ("initial_manifest", Path),
    "inventory_dir": (None, str),
    "jobs": ("jobs", _parse_count),
    "local_shell": ("local_shell", _nonempty),
    "out_path": ("out_dir", Path),
    "parallel": ("parallel", _parse_count),
    "remote_copy": ("remote_copy", _nonempty),
    "remote_exec": ("remote_exec", _nonempty),
    "remote_out_path": ("remote_out_dir", _nonempty),
    "remote_shell": ("remote_shell", _nonempty),
    "save_output_streams": ("save_output_streams", parse_bool),
    "timestamp": ("timestamp", parse_bool),
    "verbosity": ("verbosity", verbosity_for_name),
}

# Environment variable -> (Settings field, parser).  Empty values count as unset.
_ENV_VARS: dict[str, tuple[str, Callable[[str], object]]] = {
    "CDIST_PATH": ("conf_dirs", split_conf_dirs),
    "CDIST_LOCAL_SHELL": ("local_shell", str),
    "CDIST_REMOTE_SHELL": ("remote_shell", str),
    "CDIST_REMOTE_EXEC": ("remote_exec", str),
    "CDIST_REMOTE_COPY": ("remote_copy", str),
    "CDIST_CACHE_PATH_PATTERN": ("cache_path_pattern", str),
    "CDIST_COLORED_OUTPUT": ("colored_output", _choice(*get_args(ColoredOutput))),
    "__cdist_log_level": ("verbosity", lambda raw: verbosity_for_level(int(raw))),
}

# Field name -> value; values are checked by their parsers and by Settings itself.
_Layer = dict[str, Any]


def user_config_file(home: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The user's cdist.cfg: ``~/.cdist.cfg`` if it exists, else
    ``$XDG_CONFIG_HOME/cdist/cdist.cfg`` (XDG_CONFIG_HOME defaults to ``~/.config``)."""
    if home is not None and (home / ".cdist.cfg").exists():
        return home / ".cdist.cfg"
    xdg = environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "cdist" / "cdist.cfg"
    if home is not None:
        return home / ".config" / "cdist" / "cdist.cfg"
    return None


def _read_config_file(path: Path, *, origin: str, required: bool) -> _Layer:
    """Parse one cdist.cfg file into Settings field values; only ``[GLOBAL]`` is allowed."""
    # A DEFAULT section would silently feed every section; make it an ordinary (invalid) one.
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
    except FileNotFoundError:
        if not required:
            return {}
        raise ConfigError(
            f"Configuration file '{path}' ({origin}) does not exist; check the path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read configuration file '{path}' ({origin}): {exc}") from None
    except configparser.Error as exc:
        message = str(exc).replace("\n", " ")
        raise ConfigError(
            f"Configuration file '{path}' is not a valid INI file: {message} "
            "(write 'key = value' lines below a [GLOBAL] header)"
        ) from None
    layer: _Layer = {}
    for section in parser.sections():
        if section != "GLOBAL":
            raise ConfigError(
                f"Invalid section: {section}. (in '{path}'; "
                "cdist configuration files have only a [GLOBAL] section)"
            )
        for key, raw in parser.items(section):
            if key not in _FILE_KEYS:
                raise ConfigError(
                    f"Invalid option: {key}. (in '{path}', section [GLOBAL]; "
                    f"known options: {', '.join(_FILE_KEYS)})"
                )
            field, parse = _FILE_KEYS[key]
            try:
                value = parse(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"Bad value for '{key}' in '{path}': {exc}; fix or remove that line"
                ) from None
            if field is not None:
                _set(layer, field, value)
    return layer


def _read_environ(environ: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    if "CDIST_BETA" in environ:  # cdist: being set at all means true
        layer["beta"] = True
    for name, (field, parse) in _ENV_VARS.items():
        raw = environ.get(name, "")
        if not raw:
            continue
        try:
            value = parse(raw)
        except ValueError as exc:
            raise ConfigError(
                f"Bad value in environment variable {name}={raw!r}: {exc}; fix or unset it"
            ) from None
        _set(layer, field, value)
    return layer


def _set(layer: _Layer, field: str, value: object) -> None:
    if field == "verbosity":
        assert isinstance(value, tuple)
        layer["verbosity"], layer["quiet"] = value
    elif field in ("jobs", "parallel") and value == -1:
        layer[field] = DEFAULT_JOBS if field == "jobs" else DEFAULT_PARALLEL
    else:
        layer[field] = value


_FIELDS = frozenset(f.name for f in fields(Settings))


def load_settings(
    cli: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    home: Path | None,
    config_file: Path | None = None,
    default_files: Iterable[Path] = (SYSTEM_CONFIG_FILE, PACKAGE_CONFIG_FILE),
) -> Settings:
    """Resolve the settings of a run, later sources overriding earlier ones (cdist-spec §3).

    1. ``default_files`` (missing ones skipped), then the user file (see
       :func:`user_config_file`);
    2. the environment: CDIST_BETA, CDIST_PATH, CDIST_LOCAL_SHELL, CDIST_REMOTE_SHELL,
       CDIST_REMOTE_EXEC, CDIST_REMOTE_COPY, CDIST_CACHE_PATH_PATTERN,
       CDIST_COLORED_OUTPUT, __cdist_log_level;
    3. the file named by CDIST_CONFIG_FILE; 4. ``config_file`` (``-g``);
    5. ``cli``: Settings field names to values, holding only what the user gave.
       Its ``conf_dirs`` are appended to the configured ones; everything else overrides.

    ``transport`` defaults to ``command`` when remote_exec or remote_copy ends up set.
    Reads only the files named here; raises ConfigError naming the source and the fix.
    """
    unknown = set(cli) - _FIELDS
    if unknown:
        raise TypeError(f"not Settings fields: {', '.join(sorted(unknown))}")
    values: _Layer = {}
    user_file = user_config_file(home, environ)
    files = [*default_files, *([user_file] if user_file else [])]
    for path in files:
        values.update(
            _read_config_file(path, origin="a default configuration file", required=False)
        )
    values.update(_read_environ(environ))
    if environ.get("CDIST_CONFIG_FILE"):
        path = Path(environ["CDIST_CONFIG_FILE"])
        values.update(_read_config_file(path, origin="named by CDIST_CONFIG_FILE", required=True))
    if config_file is not None:
        values.update(
            _read_config_file(config_file, origin="given with -g/--config-file", required=True)
        )
    for name, value in cli.items():
        if name == "conf_dirs":
            assert isinstance(value, Sequence)
            configured = values.get("conf_dirs", ())
            assert isinstance(configured, tuple)
            values["conf_dirs"] = (*configured, *(Path(v) for v in value))
        else:
            values[name] = value
    if "transport" not in cli and (values.get("remote_exec") or values.get("remote_copy")):
        values["transport"] = "command"
    return Settings(**values)

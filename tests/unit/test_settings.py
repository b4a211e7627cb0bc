"""Settings resolution: cdist.cfg files, CDIST_* variables, CLI values (cdist-spec §3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdist_trio.errors import ConfigError
from cdist_trio.settings import (
    DEFAULT_JOBS,
    DEFAULT_PARALLEL,
    Settings,
    load_settings,
    parse_bool,
    split_conf_dirs,
    user_config_file,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(
    tmp_path: Path,
    *,
    cli: dict[str, object] | None = None,
    environ: dict[str, str] | None = None,
    system: str | None = None,
    user: str | None = None,
    config_file: Path | None = None,
) -> Settings:
    """load_settings with a private /etc file and home dir under tmp_path."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    system_file = tmp_path / "etc" / "cdist.cfg"
    if system is not None:
        write(system_file, system)
    if user is not None:
        write(home / ".cdist.cfg", user)
    return load_settings(
        cli or {},
        environ or {},
        home=home,
        config_file=config_file,
        default_files=(system_file,),
    )


def test_settings_defaults_without_any_source(tmp_path: Path) -> None:
    assert load(tmp_path) == Settings()


def test_settings_system_file_is_read(tmp_path: Path) -> None:
    settings = load(tmp_path, system="[GLOBAL]\nremote_shell = /bin/bash\njobs = 4\n")
    assert settings.remote_shell == "/bin/bash"
    assert settings.jobs == 4


def test_settings_user_file_overrides_system_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        system="[GLOBAL]\nremote_shell = /bin/bash\nlocal_shell = /bin/dash\n",
        user="[GLOBAL]\nremote_shell = /bin/zsh\n",
    )
    assert settings.remote_shell == "/bin/zsh"
    assert settings.local_shell == "/bin/dash"


def test_settings_xdg_file_used_when_no_dot_cdist_cfg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    write(xdg / "cdist" / "cdist.cfg", "[GLOBAL]\ntimestamp = yes\n")
    settings = load(tmp_path, environ={"XDG_CONFIG_HOME": str(xdg)})
    assert settings.timestamp is True


def test_settings_user_config_file_prefers_dot_cdist_cfg(tmp_path: Path) -> None:
    write(tmp_path / ".cdist.cfg", "")
    assert user_config_file(tmp_path, {"XDG_CONFIG_HOME": "/x"}) == tmp_path / ".cdist.cfg"
    other = tmp_path / "other"
    assert user_config_file(other, {}) == other / ".config" / "cdist" / "cdist.cfg"
    assert user_config_file(None, {}) is None


def test_settings_environment_overrides_files(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        user="[GLOBAL]\nremote_shell = /bin/zsh\nbeta = no\n",
        environ={
            "CDIST_REMOTE_SHELL": "/bin/ksh",
            "CDIST_LOCAL_SHELL": "/bin/bash",
            "CDIST_CACHE_PATH_PATTERN": "%N",
            "CDIST_COLORED_OUTPUT": "never",
            "CDIST_BETA": "",
        },
    )
    assert settings.remote_shell == "/bin/ksh"
    assert settings.local_shell == "/bin/bash"
    assert settings.cache_path_pattern == "%N"
    assert settings.colored_output == "never"
    assert settings.beta is True  # CDIST_BETA: being set at all means true


def test_settings_cdist_log_level_sets_verbosity(tmp_path: Path) -> None:
    assert load(tmp_path, environ={"__cdist_log_level": "15"}).verbosity == 2
    quiet = load(tmp_path, environ={"__cdist_log_level": "60"})
    assert quiet.quiet is True


def test_settings_cdist_config_file_overrides_environment(tmp_path: Path) -> None:
    extra = write(tmp_path / "extra.cfg", "[GLOBAL]\nremote_shell = /bin/extra\n")
    settings = load(
        tmp_path,
        environ={"CDIST_REMOTE_SHELL": "/bin/ksh", "CDIST_CONFIG_FILE": str(extra)},
    )
    assert settings.remote_shell == "/bin/extra"


def test_settings_g_file_overrides_cdist_config_file(tmp_path: Path) -> None:
    extra = write(tmp_path / "extra.cfg", "[GLOBAL]\nremote_shell = /bin/extra\n")
    g_file = write(tmp_path / "g.cfg", "[GLOBAL]\nremote_shell = /bin/g\n")
    settings = load(tmp_path, environ={"CDIST_CONFIG_FILE": str(extra)}, config_file=g_file)
    assert settings.remote_shell == "/bin/g"


def test_settings_cli_overrides_everything(tmp_path: Path) -> None:
    g_file = write(tmp_path / "g.cfg", "[GLOBAL]\nremote_shell = /bin/g\njobs = 3\n")
    settings = load(tmp_path, config_file=g_file, cli={"remote_shell": "/bin/cli", "jobs": 7})
    assert settings.remote_shell == "/bin/cli"
    assert settings.jobs == 7


def test_settings_cli_conf_dirs_are_appended(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        user=f"[GLOBAL]\nconf_dir = /cfg/a{os.pathsep}/cfg/b\n",
        cli={"conf_dirs": (Path("/cli/c"),)},
    )
    assert settings.conf_dirs == (Path("/cfg/a"), Path("/cfg/b"), Path("/cli/c"))


def test_settings_cdist_path_replaces_configured_conf_dir(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        user="[GLOBAL]\nconf_dir = /cfg/a\n",
        environ={"CDIST_PATH": f"/env/a{os.pathsep}/env/b"},
        cli={"conf_dirs": [Path("/cli")]},
    )
    assert settings.conf_dirs == (Path("/env/a"), Path("/env/b"), Path("/cli"))


def test_settings_split_conf_dirs_backslash_keeps_separator() -> None:
    sep = os.pathsep
    assert split_conf_dirs(f"a\\{sep}b{sep}c{sep}{sep}") == (Path(f"a\\{sep}b"), Path("c"))


def test_settings_booleans_only_when_given(tmp_path: Path) -> None:
    cfg = "[GLOBAL]\ntimestamp = on\nsave_output_streams = off\nbeta = 1\n"
    settings = load(tmp_path, user=cfg, cli={"dry_run": True})
    assert settings.timestamp is True
    assert settings.save_output_streams is False
    assert settings.beta is True
    assert settings.dry_run is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("yes", True), ("On", True), ("TRUE", True), ("1", True)],
        *[("no", False), ("off", False), ("false", False), ("0", False)],
    ],
)
def test_settings_parse_bool_accepts_cdist_spellings(raw: str, expected: bool) -> None:
    assert parse_bool(raw) is expected


def test_settings_bad_boolean_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'beta'.*\.cdist\.cfg.*'maybe' is not a boolean"):
        load(tmp_path, user="[GLOBAL]\nbeta = maybe\n")


def test_settings_invalid_section_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Invalid section: other\. \(in '.*etc/cdist\.cfg'"):
        load(tmp_path, system="[GLOBAL]\n[other]\nx = 1\n")


def test_settings_default_section_is_invalid_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Invalid section: DEFAULT\."):
        load(tmp_path, user="[DEFAULT]\nbeta = yes\n")


def test_settings_invalid_option_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Invalid option: colour\. \(in '.*\.cdist\.cfg'"):
        load(tmp_path, user="[GLOBAL]\ncolour = red\n")


def test_settings_not_ini_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'.*\.cdist\.cfg' is not a valid INI file"):
        load(tmp_path, user="beta = yes\n")


def test_settings_interpolation_is_off(tmp_path: Path) -> None:
    settings = load(tmp_path, user="[GLOBAL]\ncache_path_pattern = %N/%Y-%m-%d\n")
    assert settings.cache_path_pattern == "%N/%Y-%m-%d"


def test_settings_all_cdist_keys_accepted(tmp_path: Path) -> None:
    cfg = """[GLOBAL]
archiving = none
beta = no
cache_path_pattern = %h
colored_output = always
conf_dir = /c
init_manifest = /m/init
inventory_dir = /inv
jobs = -1
local_shell = /bin/sh
out_path = /out
parallel = -1
remote_copy = my-copy
remote_exec = my-exec
remote_out_path = /var/lib/x
remote_shell = /bin/sh
save_output_streams = yes
timestamp = no
verbosity = DEBUG
"""
    settings = load(tmp_path, user=cfg)
    assert settings.jobs == DEFAULT_JOBS
    assert settings.parallel == DEFAULT_PARALLEL
    assert settings.initial_manifest == Path("/m/init")
    assert settings.out_dir == Path("/out")
    assert settings.remote_out_dir == "/var/lib/x"
    assert settings.verbosity == 3
    assert settings.colored_output == "always"
    assert settings.transport == "command"


def test_settings_jobs_zero_in_file_means_one(tmp_path: Path) -> None:
    assert load(tmp_path, user="[GLOBAL]\njobs = 0\n").jobs == 1


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("jobs = many", r"'jobs'.*'many' is not an integer"),
        ("parallel = -5", r"'parallel'.*below -1"),
        ("colored_output = pink", r"'colored_output'.*always, never, auto"),
        ("verbosity = LOUD", r"'verbosity'.*not a log level name"),
        ("archiving = zip", r"'archiving'.*tar, tgz"),
    ],
)
def test_settings_bad_file_value_names_key(tmp_path: Path, line: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load(tmp_path, user=f"[GLOBAL]\n{line}\n")


def test_settings_verbosity_off_means_quiet_until_cli_sets_level(tmp_path: Path) -> None:
    cfg = "[GLOBAL]\nverbosity = OFF\n"
    assert load(tmp_path, user=cfg).quiet is True
    loud = load(tmp_path, user=cfg, cli={"verbosity": 1, "quiet": False})
    assert (loud.quiet, loud.verbosity) == (False, 1)


def test_settings_bad_environment_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CDIST_COLORED_OUTPUT='rainbow'.*unset it"):
        load(tmp_path, environ={"CDIST_COLORED_OUTPUT": "rainbow"})
    with pytest.raises(ConfigError, match=r"__cdist_log_level='loud'"):
        load(tmp_path, environ={"__cdist_log_level": "loud"})


def test_settings_missing_g_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"given with -g/--config-file\) does not exist"):
        load(tmp_path, config_file=tmp_path / "nope.cfg")


def test_settings_missing_cdist_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"named by CDIST_CONFIG_FILE\) does not exist"):
        load(tmp_path, environ={"CDIST_CONFIG_FILE": str(tmp_path / "nope.cfg")})


def test_settings_unreadable_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "dir.cfg").mkdir()
    with pytest.raises(ConfigError, match=r"Cannot read configuration file '.*dir\.cfg'"):
        load(tmp_path, config_file=tmp_path / "dir.cfg")


def test_settings_transport_command_when_remote_exec_set(tmp_path: Path) -> None:
    assert load(tmp_path, environ={"CDIST_REMOTE_COPY": "cp"}).transport == "command"
    assert load(tmp_path, cli={"remote_exec": "x"}).transport == "command"
    explicit = load(tmp_path, cli={"remote_exec": "x", "transport": "local"})
    assert explicit.transport == "local"
    assert load(tmp_path).transport == "openssh"


def test_settings_empty_environment_values_count_as_unset(tmp_path: Path) -> None:
    settings = load(tmp_path, environ={"CDIST_REMOTE_EXEC": "", "CDIST_PATH": ""})
    assert settings.remote_exec is None
    assert settings.conf_dirs == ()


def test_settings_unknown_cli_field_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not Settings fields: bogus"):
        load(tmp_path, cli={"bogus": 1})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"jobs": 0},
        {"parallel": -1},
        {"max_sessions": 0},
        {"timeout": 0.0},
        {"timeout": float("inf")},
        {"transport": "telnet"},
        {"colored_output": "maybe"},
        {"address_family": 5},
    ],
)
def test_settings_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="Settings"):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_settings_is_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.jobs = 2  # type: ignore[misc]

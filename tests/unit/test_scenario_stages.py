"""Scenarios of spec §20 about the stages themselves: the environment of every stage
(§10), captured stream files and ``-S`` (§12.2), messages (§13), the dry run (§15) and
the remote layout (§5.4).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.scenario_support import CONF, CONF_ENVDUMP, Cache, Scenario, q

ENV_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        match = ENV_LINE.fullmatch(line)
        if match:
            env[match[1]] = match[2]
    return env


def envdump_run(scenario: Scenario, *options: str) -> tuple[Cache, dict[str, dict[str, str]]]:
    """Run __envdump (every stage writes `env` to <tmp>/dumps/<stage>) and the global
    explorer dump_env; return the cache (None if the host failed) and the dumps."""
    dumps = scenario.tmp / "dumps"
    dumps.mkdir()
    outcome = scenario.config(
        f"""
env > {q(dumps / "initial-manifest")}
__envdump e --out {q(dumps)}
""",
        *options,
        conf=(CONF, CONF_ENVDUMP),
    ).ok()
    cache = outcome.cache()
    stages = {p.name: parse_env(p.read_text()) for p in dumps.iterdir()}
    stages["global-explorer"] = parse_env((cache.path / "explorer" / "dump_env").read_text())
    return cache, stages


def test_env_per_stage(scenario: Scenario) -> None:
    cache, env = envdump_run(scenario)
    g = str(scenario.workdir())
    r = str(scenario.remote)
    marker = cache.marker
    objdir = f"{g}/object/__envdump/e/{marker}"
    remote_objdir = f"{r}/object/__envdump/e/{marker}"
    assert sorted(env) == [
        "code-local",
        "code-remote",
        "gencode-local",
        "gencode-remote",
        "global-explorer",
        "initial-manifest",
        "type-explorer",
        "type-manifest",
    ]

    def has(stage: str, **expected: str) -> None:
        for key, value in expected.items():
            assert env[stage].get(key) == value, (stage, key, env[stage].get(key))

    def lacks(stage: str, *keys: str) -> None:
        for key in keys:
            assert key not in env[stage], (stage, key, env[stage][key])

    target = {"__target_host": "localhost", "__target_host_tags": ""}
    log = {"__cdist_log_level": "30", "__cdist_log_level_name": "WARNING"}
    for stage in ("initial-manifest", "type-manifest", "gencode-local", "gencode-remote"):
        has(stage, **target, **log, __global=g, __files=f"{g}/conf/files")
        has(stage, __cdist_object_marker=marker)
        assert {"__messages_in", "__messages_out", "__remote_exec", "__remote_copy"} <= set(
            env[stage]
        )
        assert "__target_hostname" in env[stage]
        assert "__target_fqdn" in env[stage]
        lacks(stage, "__cdist_dry_run")
    for stage in ("initial-manifest", "type-manifest"):
        assert env[stage]["PATH"].startswith(f"{g}/bin:")
        has(stage, __manifest=f"{g}/conf/manifest", __cdist_type_base_path=f"{g}/conf/type")
        has(stage, __cdist_colored_log="false")
    has("initial-manifest", __explorer=f"{g}/explorer")
    has("initial-manifest", __cdist_manifest=str(scenario.tmp / "manifest-1"))
    lacks("initial-manifest", "__object", "__object_id", "__object_name", "__type")
    has(
        "type-manifest",
        __object=objdir,
        __object_id="e",
        __object_name="__envdump/e",
        __type=f"{g}/conf/type/__envdump",
        __cdist_manifest=f"{g}/conf/type/__envdump/manifest",
    )
    lacks("type-manifest", "__explorer")

    for stage in ("global-explorer", "type-explorer"):
        has(stage, **target, **log, __explorer=f"{r}/conf/explorer")
        lacks(stage, "__global", "__type", "__messages_in", "__cdist_dry_run")
    lacks("global-explorer", "__object", "__object_id", "__object_name")
    has(
        "type-explorer",
        __object=remote_objdir,
        __object_id="e",
        __object_name="__envdump/e",
        __object_fq=f"__envdump/e/{marker}",
        __type_explorer=f"{r}/conf/type/__envdump/explorer",
    )

    for stage in ("gencode-local", "gencode-remote"):
        has(stage, __object=objdir, __object_id="e", __object_name="__envdump/e")
        has(stage, __type=f"{g}/conf/type/__envdump")
        assert not env[stage]["PATH"].startswith(f"{g}/bin")
        lacks(stage, "__manifest", "__cdist_manifest", "__explorer", "__cdist_type_base_path")
        lacks(stage, "__cdist_colored_log")

    has("code-local", **target, **log, __global=g, __object=objdir, __object_id="e")
    has("code-local", __cdist_object_marker=marker)
    lacks("code-local", "__object_name", "__type", "__messages_in", "__messages_out")
    has("code-remote", __object=remote_objdir, __object_id="e")
    lacks("code-remote", "__object_name", "__type", "__global", "__target_host")


def test_gencode_gets_the_size_of_the_objects_stdin(scenario: Scenario) -> None:
    """cdist-trio's ``__cdist_trio_stdin_size``: the bytes of ``$__object/stdin`` (NUL
    and multibyte characters counted as bytes), in gencode only."""
    dumps = scenario.tmp / "dumps"
    dumps.mkdir()
    scenario.config(
        f"printf 'x\\000y\\303\\251\\n' | __envdump e --out {q(dumps)}\n",
        conf=(CONF, CONF_ENVDUMP),
    ).ok()
    env = {p.name: parse_env(p.read_text()) for p in dumps.iterdir()}
    for stage in ("gencode-local", "gencode-remote"):
        assert env[stage].get("__cdist_trio_stdin_size") == "6", stage
    for stage in ("type-manifest", "code-local", "code-remote"):
        assert "__cdist_trio_stdin_size" not in env[stage], stage


def test_env_dry_run_flag_and_no_code_execution(scenario: Scenario) -> None:
    cache, env = envdump_run(scenario, "-n", "-v")
    for stage in (
        "initial-manifest",
        "type-manifest",
        "global-explorer",
        "type-explorer",
        "gencode-local",
        "gencode-remote",
    ):
        assert env[stage].get("__cdist_dry_run") == "1", stage
        assert env[stage].get("__cdist_log_level") == "20", stage
        assert env[stage].get("__cdist_log_level_name") == "INFO", stage
    # Code was generated but never executed.
    assert "code-local" not in env
    assert "code-remote" not in env
    assert cache.read("__envdump/e", "code-local") is not None
    assert cache.read("__envdump/e", "code-remote") is not None


def test_dry_run_generates_code_but_never_runs_it(scenario: Scenario) -> None:
    log = q(scenario.log)
    outcome = scenario.config(
        f"""
__step a --log {log}
require="__step/a" __step b --log {log}
""",
        "-n",
        "-v",
    ).ok()
    cache = outcome.cache()
    assert scenario.log_lines() == []
    for name in ("__step/a", "__step/b"):
        assert cache.read(name, "state") == "done\n"
        assert f"'local {name}'" in (cache.read(name, "code-local") or "")
        assert f"'remote {name}'" in (cache.read(name, "code-remote") or "")
        assert f"INFO: localhost: Processing {name}\n" in outcome.stdout
        remote_objdir = scenario.remote / "object" / name / cache.marker
        assert not (remote_objdir / "code-remote").exists()
    assert "INFO: localhost: Starting dry run\n" in outcome.stdout
    assert re.search(r"INFO: localhost: Finished dry run in \d+\.\d\d seconds\n", outcome.stdout)
    assert "successful run" not in outcome.stdout


def test_remote_layout_after_a_run(scenario: Scenario) -> None:
    cache, _ = envdump_run(scenario)
    r = scenario.remote
    assert r.stat().st_mode & 0o777 == 0o700
    assert (r / "conf" / "explorer" / "dump_env").is_file()
    explorer = r / "conf" / "type" / "__envdump" / "explorer" / "env"
    assert explorer.stat().st_mode & 0o777 == 0o700
    remote_objdir = r / "object" / "__envdump" / "e" / cache.marker
    assert (remote_objdir / "parameter" / "out").read_text() == str(scenario.tmp / "dumps") + "\n"
    assert (remote_objdir / "code-remote").is_file()
    # Only parameters and code-remote reach the target (spec §5.11).
    assert sorted(p.name for p in remote_objdir.iterdir()) == ["code-remote", "parameter"]


STREAMS_MANIFEST = """
echo "init: stdout"
echo "init: stderr" >&2
__streams s
"""


def test_streams_are_captured_into_files(scenario: Scenario) -> None:
    outcome = scenario.config(STREAMS_MANIFEST).ok()
    cache = outcome.cache()
    assert cache.global_lines("stdout/init") == ["init: stdout"]
    assert cache.global_lines("stderr/init") == ["init: stderr"]
    captured = {
        f"{p.parent.name}/{p.name}": p.read_text()
        for p in cache.object("__streams/s").glob("std*/*")
    }
    assert captured == {
        "stdout/manifest": "manifest: stdout\n",
        "stderr/manifest": "manifest: stderr\n",
        "stderr/gencode-local": "gencode-local: stderr\n",
        "stderr/gencode-remote": "gencode-remote: stderr\n",
        "stdout/code-local": "code-local: stdout\n",
        "stderr/code-local": "code-local: stderr\n",
        "stdout/code-remote": "code-remote: stdout\n",
        "stderr/code-remote": "code-remote: stderr\n",
    }
    # Explorer output is the explorer's result; its stderr joins $G/stderr/remote.
    assert cache.read("__streams/s", "explorer/noisy") == "type-explorer: stdout\n"
    assert "type-explorer: stderr" in cache.global_lines("stderr/remote")
    # gencode's stdout is the code, not a stream.
    assert cache.read("__streams/s", "code-local") == (
        'echo "code-local: stdout"\necho "code-local: stderr" >&2\n'
    )
    for text in ("init: stdout", "manifest: stdout", "code-local: stdout"):
        assert text not in outcome.stdout
    assert "stderr" not in outcome.stderr


def test_streams_not_saved_with_disable_saving(scenario: Scenario) -> None:
    outcome = scenario.config(STREAMS_MANIFEST, "-S").ok()
    cache = outcome.cache()
    assert not (cache.path / "stdout" / "init").exists()
    assert not (cache.path / "stderr" / "init").exists()
    assert list(cache.object("__streams/s").glob("std*/*")) == []
    assert "type-explorer: stderr" not in cache.global_lines("stderr/remote")
    # The children wrote to our own streams instead.
    for text in ("init: stdout", "manifest: stdout", "code-local: stdout", "code-remote: stdout"):
        assert text in outcome.stdout, text
    for text in (
        "init: stderr",
        "manifest: stderr",
        "gencode-local: stderr",
        "gencode-remote: stderr",
        "code-local: stderr",
        "code-remote: stderr",
        "type-explorer: stderr",
    ):
        assert text in outcome.stderr, text


def test_quiet_prints_nothing(scenario: Scenario) -> None:
    outcome = scenario.config(STREAMS_MANIFEST, "-q").ok()
    assert outcome.stdout == ""
    assert outcome.stderr == ""
    assert outcome.cache().object_names() == ["__streams/s"]


def test_messages_carry_prefixes_and_flow_along_dependencies(scenario: Scenario) -> None:
    cache = (
        scenario.config(
            """
echo "hello init" >> "$__messages_out"
__msg a
require="__msg/a" __msg b
require="__msg/b" __single
"""
        )
        .ok()
        .cache()
    )
    assert cache.global_lines("messages") == [
        "initialmanifest:hello init",
        "__msg/a:hello from manifest",
        "__msg/a:hello from gencode",
        "__msg/b:hello from manifest",
        "__msg/b:hello from gencode",
        "__single/:singleton says hi",
    ]
    # Each script sees the messages written before it started, nothing later.
    assert cache.lines("__msg/a", "files/seen-by-manifest") == ["initialmanifest:hello init"]
    assert cache.lines("__msg/a", "files/seen-by-gencode") == [
        "initialmanifest:hello init",
        "__msg/a:hello from manifest",
    ]
    assert cache.lines("__msg/b", "files/seen-by-manifest") == [
        "initialmanifest:hello init",
        "__msg/a:hello from manifest",
        "__msg/a:hello from gencode",
    ]


def test_remote_dir_is_wiped_at_the_start_of_every_run(scenario: Scenario) -> None:
    stray = scenario.remote / "object" / "__old" / "leftover"
    stray.mkdir(parents=True)
    scenario.config("__stdin s\n").ok()
    assert not (scenario.remote / "object" / "__old").exists()
    assert (scenario.remote / "conf").is_dir()


def test_cache_entries_are_replaced_and_host_recorded(scenario: Scenario) -> None:
    scenario.config("__stdin first\n").ok()
    cache = scenario.config("__stdin second\n").ok().cache()
    # object/ is replaced as a whole, not merged with the previous run's.
    assert cache.object_names() == ["__stdin/second"]
    assert (cache.path / "target_host").read_text() == "localhost\n"
    assert (cache.path / "object_marker").read_text() == cache.marker + "\n"
    assert cache.global_lines("typeorder") == ["__stdin/second"]
    # The work dir was moved, not copied.
    assert not scenario.workdir().exists()


def test_cache_path_pattern(scenario: Scenario) -> None:
    scenario.config("__stdin s\n", "-C", "by-name/%N").ok()
    assert (scenario.cache_root / "by-name" / "localhost" / "object" / "__stdin" / "s").is_dir()


def test_initial_manifest_not_executable_runs_with_sh_e(scenario: Scenario) -> None:
    outcome = scenario.config("false\n__stdin after-false\n")
    assert outcome.status == 1
    assert "Error processing initial manifest" in outcome.stderr


def test_initial_manifest_executable_runs_by_its_shebang(scenario: Scenario) -> None:
    manifest = scenario.manifest("#!/bin/sh\nfalse\n__stdin after-false\n")
    manifest.chmod(0o755)
    link = scenario.tmp / "manifest-link"
    link.symlink_to(manifest)
    cache = scenario.config(link).ok().cache()
    # Run directly (no -e), so the manifest went on after `false`.
    assert cache.object_names() == ["__stdin/after-false"]


def test_initial_manifest_defaults_to_conf_manifest_init(scenario: Scenario) -> None:
    extra = scenario.tmp / "site-conf"
    (extra / "manifest").mkdir(parents=True)
    (extra / "manifest" / "init").write_text('__stdin "from-$__target_host"\n')
    outcome = scenario.config(None, "-vv", conf=(CONF, extra)).ok()
    assert outcome.cache().object_names() == ["__stdin/from-localhost"]
    init = scenario.workdir() / "conf" / "manifest" / "init"
    assert f"VERBOSE: localhost: Running initial manifest {init}\n" in outcome.stdout

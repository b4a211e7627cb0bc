"""nox sessions for cdist-trio; each is a thin wrapper around one command, and CI runs the
same ones (`.ci/run` → `nox -s tests`).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

SOURCES = ["cdist_trio", "harness", "tests", "noxfile.py"]


def _install(session: nox.Session, extras: str = "test,asyncssh") -> None:
    session.install("-e", f".[{extras}]")


def _compile(session: nox.Session) -> None:
    """Byte-compile the package, as a regular (non-editable) install does.

    The editable install runs from the source tree, where Python writes no bytecode when
    PYTHONDONTWRITEBYTECODE is set: every benchmarked run would then compile each module
    again, while cdist 7.0.0 runs from its compiled install.
    """
    session.run("python", "-m", "compileall", "-q", "cdist_trio")


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests: no Docker, no network."""
    _install(session)
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests against real sshd containers (needs a Docker engine)."""
    _install(session)
    session.run(
        "pytest", "-m", "integration", "--require-docker", "tests/integration", *session.posargs
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, then integration tests, in one environment."""
    _install(session)
    session.run("pytest", "tests/unit", *session.posargs)
    session.run(
        "pytest", "-m", "integration", "--require-docker", "tests/integration", *session.posargs
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the package and the harness."""
    _install(session, "test,asyncssh,lint")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)
    session.run("mypy", "cdist_trio", "harness")


@nox.session
def demo(session: nox.Session) -> None:
    """Start 3 Debian targets, run `cdist-trio config -p -j 16` on them, remove them."""
    _install(session, "harness,asyncssh")
    session.run("python", "-m", "harness.demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """cdist-trio (openssh, asyncssh) against cdist 7.0.0 on sshd targets, W1–W4 (issue 7).

    Installs cdist 7.0.0 into a Python 3.10 venv under .cache/bench on first use.
    `nox -s bench -- --quick`: one run, no warm-up, W4 with 100 objects.
    """
    _install(session, "harness,asyncssh")
    _compile(session)
    session.run("python", "-m", "benchmarks.bench", *session.posargs)


@nox.session(name="bench-transport")
def bench_transport(session: nox.Session) -> None:
    """Handshake time and commands per second of both SSH transports (issue 4)."""
    _install(session, "harness,asyncssh")
    _compile(session)
    session.run("python", "-m", "benchmarks.transport_bench", *session.posargs)


@nox.session(name="bench-scale")
def bench_scale(session: nox.Session) -> None:
    """The engine against fake targets with 20 ms latency: cost per host and object
    (issue 7): 1,000 and 10,000 hosts; `-- --hosts 50,200` or `-- --quick` for less."""
    _install(session, "harness")
    _compile(session)
    session.run("python", "-m", "benchmarks.scale", *session.posargs)


@nox.session
def compat(session: nox.Session) -> None:
    """cdist 7.0.0's shipped types and global explorers run unchanged by cdist-trio on
    Debian targets, and parity with cdist 7.0.0 itself (issue 6).

    cdist 7.0.0 is a test-only dependency installed here from PyPI; its CLI runs from a
    Python 3.10 venv under .cache/compat (made on first use). Needs Docker.
    """
    _install(session)
    session.install("cdist==7.0.0")
    session.run("pytest", "-m", "integration", "--require-docker", "tests/compat", *session.posargs)

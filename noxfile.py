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

"""pytest plugin: real sshd targets for cdist-trio's integration tests and for type authors.

Fixtures `sshd_image`, `sshd_target`, `fleet` and the `integration` marker. Docker and
testcontainers are imported only when a fixture runs, so the plugin never breaks pytest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from . import cleanup
from .image import FLAVOURS, BuiltImage, Flavour, build_image
from .sshd import SshdTuning

if TYPE_CHECKING:
    from .targets import Fleet, SshTarget


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cdist-trio harness", "sshd targets in containers")
    group.addoption(
        "--sshd-flavour",
        choices=FLAVOURS,
        default=None,
        help="image flavour of fleets that do not name one (default: minimal)",
    )
    group.addoption(
        "--require-docker",
        action="store_true",
        default=False,
        help="fail, rather than skip, harness fixtures when no Docker engine answers",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs a Docker engine; starts real sshd containers"
    )


def _default_flavour(config: pytest.Config) -> Flavour:
    flavour: Flavour | None = config.getoption("sshd_flavour")
    return flavour or "minimal"


def _require_docker(config: pytest.Config) -> None:
    """Skip (or fail with --require-docker) when no Docker engine answers."""
    try:
        import docker

        client = docker.from_env()
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        message = f"no Docker engine answers: {error}"
        if config.getoption("require_docker"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


class FleetFactory:
    """`fleet(n, flavour=..., tuning=..., hosts_per_target=..., fresh=False)`.

    Fleets of the same shape are shared by the session's tests and healed (unpaused, sshd
    started, link delays removed) before each hand-out; `fresh=True` gives a fleet of the
    test's own, which is still removed at the session's end if the test does not stop it.
    """

    def __init__(self, default_flavour: Flavour) -> None:
        self.default_flavour: Flavour = default_flavour
        self._shared: dict[tuple[int, Flavour, SshdTuning, int, tuple[str, ...]], Fleet] = {}
        self._fresh: list[Fleet] = []

    def __call__(
        self,
        n: int = 1,
        *,
        flavour: Flavour | None = None,
        tuning: SshdTuning | None = None,
        hosts_per_target: int = 1,
        fresh: bool = False,
        tmpfs: Sequence[str] = (),
    ) -> Fleet:
        from .targets import Fleet

        key = (
            n,
            flavour or self.default_flavour,
            tuning or SshdTuning(),
            hosts_per_target,
            tuple(tmpfs),
        )
        if not fresh and key in self._shared:
            shared = self._shared[key]
            shared.heal()
            return shared
        fleet = Fleet(
            n, flavour=key[1], tuning=key[2], hosts_per_target=hosts_per_target, tmpfs=key[4]
        )
        fleet.start()
        if fresh:
            self._fresh.append(fleet)
        else:
            self._shared[key] = fleet
        return fleet

    def close(self) -> None:
        fleets = [*self._shared.values(), *self._fresh]
        self._shared.clear()
        self._fresh.clear()
        for fleet in fleets:
            fleet.stop()


@pytest.fixture(scope="session")
def sshd_image(request: pytest.FixtureRequest) -> BuiltImage:
    """The sshd image of the default flavour, built once (a no-op when cached)."""
    _require_docker(request.config)
    return build_image(_default_flavour(request.config))


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest) -> Iterator[FleetFactory]:
    """A factory of fleets; every container is removed at the session's end."""
    _require_docker(request.config)
    cleanup.install_signal_handlers()
    factory = FleetFactory(_default_flavour(request.config))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def sshd_target(fleet: FleetFactory) -> SshTarget:
    """One target of the default flavour with default tuning; `.ssh_config` reaches it."""
    return fleet(1, fresh=True)[0]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After session fixtures are torn down: nothing of ours may be left running."""
    if not cleanup.containers_started():
        return
    problems: list[str] = []
    try:
        leftovers = cleanup.list_containers()
    except Exception as error:  # the engine went away; report rather than hide it
        problems.append(f"cannot list containers: {error}")
        leftovers = []
    if leftovers:
        names = ", ".join(c.name for c in leftovers)
        problems.append(f"{len(leftovers)} container(s) left behind, now removed: {names}")
        cleanup.remove_session_containers()
    children = cleanup.child_processes()
    if children:
        problems.append(f"child processes left running: {children}")
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            if reporter is not None:
                reporter.write_line(f"cdist-trio harness: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""cdist-style log lines and the CLI's logging setup (cdist-spec §12.1)."""

from __future__ import annotations

import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator

import pytest

from cdist_trio.log import (
    OFF,
    TRACE,
    VERBOSE,
    CdistFormatter,
    colors_enabled,
    get_logger,
    level_for,
    level_name,
    reset_logging,
    route_python_warnings,
    setup_logging,
    target_logger,
    verbosity_for_level,
    verbosity_for_name,
)
from cdist_trio.settings import Settings


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def streams() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    yield out, err
    reset_logging()


def configure(
    streams: tuple[io.StringIO, io.StringIO], **settings: object
) -> tuple[io.StringIO, io.StringIO]:
    out, err = streams
    setup_logging(Settings(**settings), stream_out=out, stream_err=err, environ={})  # type: ignore[arg-type]
    return out, err


@pytest.mark.parametrize(
    ("verbosity", "level"),
    [
        (-2, logging.ERROR),
        (-1, logging.ERROR),
        (0, logging.WARNING),
        (1, logging.INFO),
        (2, VERBOSE),
        (3, logging.DEBUG),
        (4, TRACE),
        (9, TRACE),
    ],
)
def test_log_level_for_verbosity(verbosity: int, level: int) -> None:
    assert level_for(verbosity, quiet=False) == level


def test_log_level_for_quiet_is_off() -> None:
    assert level_for(3, quiet=True) == OFF == 60


def test_log_level_names_are_registered() -> None:
    assert (level_name(5), level_name(15), level_name(30), level_name(60)) == (
        "TRACE",
        "VERBOSE",
        "WARNING",
        "OFF",
    )


def test_log_verbosity_round_trips_through_exported_level() -> None:
    for verbosity in range(-1, 5):
        assert verbosity_for_level(level_for(verbosity, quiet=False)) == (verbosity, False)
    assert verbosity_for_level(60) == (0, True)
    with pytest.raises(ValueError, match="not a cdist log level"):
        verbosity_for_level(25)


def test_log_verbosity_for_name() -> None:
    assert verbosity_for_name("VERBOSE") == (2, False)
    assert verbosity_for_name("ERROR") == (-1, False)
    assert verbosity_for_name("OFF") == (0, True)
    with pytest.raises(ValueError, match="not a log level name"):
        verbosity_for_name("CRITICAL")


def test_log_target_line_format(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, err = configure(streams, verbosity=1)
    target_logger("web-1").info("Starting configuration run")
    assert out.getvalue() == "INFO: web-1: Starting configuration run\n"
    assert err.getvalue() == ""


def test_log_logger_short_names(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, _ = configure(streams, verbosity=2)
    get_logger().log(VERBOSE, "version %s", "1")
    get_logger("config").log(VERBOSE, "Total processing time for 1 host(s): 0.1")
    logging.getLogger("cdist_trio.transport.openssh").warning("slow")
    assert out.getvalue().splitlines() == [
        "VERBOSE: cdist: version 1",
        "VERBOSE: config: Total processing time for 1 host(s): 0.1",
        "WARNING: openssh: slow",
    ]


def test_log_errors_go_to_stderr_rest_to_stdout(
    streams: tuple[io.StringIO, io.StringIO],
) -> None:
    out, err = configure(streams, verbosity=4)
    log = target_logger("h")
    log.log(TRACE, "t")
    log.debug("d")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert out.getvalue() == "TRACE: h: t\nDEBUG: h: d\nWARNING: h: w\n"
    assert err.getvalue() == "ERROR: h: e\nCRITICAL: h: c\n"


def test_log_level_filters_by_verbosity(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, _ = configure(streams)
    target_logger("h").info("hidden")
    target_logger("h").warning("shown")
    assert out.getvalue() == "WARNING: h: shown\n"


def test_log_quiet_logs_nothing(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, err = configure(streams, quiet=True, verbosity=4)
    target_logger("h").error("e")
    assert out.getvalue() == err.getvalue() == ""


def test_log_timestamp_prefixes_message(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, _ = configure(streams, timestamp=True)
    target_logger("h").warning("w")
    assert re.fullmatch(r"WARNING: h: \[\d{14}\.\d{6}\] w\n", out.getvalue())


def test_log_colors_always_wraps_line(streams: tuple[io.StringIO, io.StringIO]) -> None:
    out, err = configure(streams, colored_output="always")
    target_logger("h").warning("w")
    target_logger("h").error("e")
    assert out.getvalue() == "\033[0;33mWARNING: h: w\033[0m\n"
    assert err.getvalue() == "\033[0;31mERROR: h: e\033[0m\n"


def test_log_colors_auto_needs_tty_and_no_no_color() -> None:
    assert colors_enabled("auto", TtyStream(), {}) is True
    assert colors_enabled("auto", TtyStream(), {"NO_COLOR": ""}) is False
    assert colors_enabled("auto", io.StringIO(), {}) is False
    assert colors_enabled("always", io.StringIO(), {"NO_COLOR": "1"}) is True
    assert colors_enabled("never", TtyStream(), {}) is False


def test_log_exception_traceback_follows_line() -> None:
    formatter = CdistFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "cdist_trio", logging.ERROR, "f", 1, "failed", (), sys.exc_info()
        )
    text = formatter.format(record)
    assert text.startswith("ERROR: cdist: failed\nTraceback")
    assert text.endswith("RuntimeError: boom")


def test_log_setup_is_replaceable_and_leaves_root_alone(
    streams: tuple[io.StringIO, io.StringIO],
) -> None:
    root_handlers = list(logging.getLogger().handlers)
    configure(streams)
    out2, err2 = io.StringIO(), io.StringIO()
    setup_logging(Settings(), stream_out=out2, stream_err=err2, environ={})
    logger = logging.getLogger("cdist_trio")
    assert len(logger.handlers) == 2
    assert logger.propagate is False
    assert logging.getLogger().handlers == root_handlers
    reset_logging()
    assert logger.handlers == []
    assert logger.propagate is True


def test_python_warnings_go_to_the_debug_log_until_logging_is_reset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A library's warning (cryptography's about a DH key exchange in the ssh_config,
    # through asyncssh) is a DEBUG line of the run, not raw text on stderr.
    before = warnings.showwarning
    settings = Settings(verbosity=3)
    setup_logging(settings, stream_out=sys.stdout, stream_err=sys.stderr)
    route_python_warnings()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("FFDH is deprecated", DeprecationWarning, stacklevel=1)
    finally:
        reset_logging()
    captured = capsys.readouterr()
    assert "DEBUG: cdist: Python warning (" in captured.out
    assert "DeprecationWarning: FFDH is deprecated" in captured.out
    assert "FFDH" not in captured.err
    assert warnings.showwarning is before

"""Test bench for cdist-trio and for cdist type authors: real sshd targets in containers.

Images are built without any registry; fleets start through testcontainers; faults and
inspection helpers act on the targets. Also a pytest plugin (`harness.plugin`).
"""

from .cleanup import SESSION_ID as SESSION_ID
from .faults import FaultUnavailable as FaultUnavailable
from .image import BuiltImage as BuiltImage
from .image import Flavour as Flavour
from .image import ImageBuildError as ImageBuildError
from .image import build_image as build_image
from .inspection import ExecError as ExecError
from .inspection import ExecResult as ExecResult
from .inspection import FileStat as FileStat
from .inspection import Process as Process
from .inspection import SshdCounts as SshdCounts
from .inspection import count_sshd_log as count_sshd_log
from .sshd import SshdTuning as SshdTuning
from .targets import Fleet as Fleet
from .targets import SshTarget as SshTarget

__all__ = [
    "SESSION_ID",
    "BuiltImage",
    "ExecError",
    "ExecResult",
    "FaultUnavailable",
    "FileStat",
    "Flavour",
    "Fleet",
    "ImageBuildError",
    "Process",
    "SshTarget",
    "SshdCounts",
    "SshdTuning",
    "build_image",
    "count_sshd_log",
]

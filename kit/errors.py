"""The errors a user can cause: each carries one line that names the offending file or option, and every
command turns it into ``error: <line>`` on stderr and exit status 2 (``kit.cli.main``)."""
from __future__ import annotations

from hw6.datasets import DataError  # defined with the data it describes, so that datasets.py travels alone


class UsageError(Exception):
    """A bad option value found after parsing (for example a batch size the data cannot fill)."""


class CheckpointError(Exception):
    """A checkpoint that cannot be used (truncated, another task or architecture, other options)."""


class RunFolderError(Exception):
    """An output folder that cannot take a run (a file, not writable, another run's files)."""


class DeviceUnavailable(Exception):
    """The requested device does not exist on this machine."""


class DiskFull(OSError):
    """A write that found no space left (kit.atomic); the file it was to replace is intact."""


EXPECTED_ERRORS = (UsageError, DataError, CheckpointError, RunFolderError, DeviceUnavailable, DiskFull)

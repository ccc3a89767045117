"""The errors :mod:`sarbench_io` raises. Each message says what is wrong and names the file.

The harness raises the same classes (``harness.errors`` takes them from here), so that
``except DataFileError`` catches a bad file whichever side read it.
"""

from __future__ import annotations


class SarbenchError(Exception):
    """Base class of SARBench's errors: the message says what is wrong. The harness's CLI
    reports these as a message (exit code 2), not a traceback."""


class DataFileError(SarbenchError):
    """A data file that cannot be read or is not what it must be; names the file."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class ContractError(SarbenchError):
    """The run's configuration or mounts are not what the container contract promises."""

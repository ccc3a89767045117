"""Error types. Each message says what is wrong and, where it can, what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SarbenchError(Exception):
    """Base class for errors the CLI reports as a message (exit code 2), not a traceback."""


class UnknownNameError(SarbenchError, KeyError):
    """A task, dataset, entry or split name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(known) if known else "(none)"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {listing}")
        self.kind, self.name = kind, name

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataFileError(SarbenchError):
    """A data file that cannot be read or is not what it must be; names the file."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class SourceError(SarbenchError):
    """A dataset source produced something that does not fit the layout or the task."""


class ManifestError(SarbenchError):
    """A manifest that is missing, malformed or disagrees with what it should freeze."""


class DatasetNotPreparedError(SarbenchError):
    """The data files of a dataset are not under the data root."""


class VerificationError(SarbenchError):
    """Data files differ from the frozen manifest; lists every difference."""

    def __init__(self, dataset: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"dataset {dataset!r} does not match its manifest ({len(problems)} problem(s)):\n{lines}"
        )
        self.dataset, self.problems = dataset, problems

"""Error types. Each message says what is wrong and, where it can, what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Shared with what runs in containers: a bad data file is the same error on either side.
from sarbench_io.errors import DataFileError as DataFileError
from sarbench_io.errors import SarbenchError as SarbenchError


def printable(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` made safe to print on a terminal: every control or other non-printable
    character becomes an escape (``\x1b``, ``\u202e``), so that a name or a log line chosen by
    a container cannot move the cursor, recolour or clear the screen, or hide itself.

    Bytes that were not valid UTF-8 (which ``os.scandir`` keeps as lone surrogates) are shown
    as the bytes they were (``\xff``). Newlines and tabs are kept with ``keep_newlines`` (for a
    log's tail) and escaped otherwise (for a file name). The result is printable, so applying
    this twice changes nothing; backslashes are left as they are.

    >>> print(printable("a\x1b[2Jb\nc.tif"))
    a\x1b[2Jb\x0ac.tif
    >>> print(printable("café\u202e.tif"))
    café\u202e.tif
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch in "\n\t"):
            out.append(ch)
            continue
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


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

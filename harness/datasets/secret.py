"""The maintainers' test secret: what makes the official test split of a generated dataset.

The generators are public and deterministic, so a test split made from a public seed can
be rebuilt by anyone, targets included. The official ("private") test split is therefore
made from a seed derived from a secret that only the maintainers hold:

- the environment variable ``SARBENCH_TEST_SECRET``, else
- the file ``<SARBENCH_HOME>/secrets/test-secret`` (a regular file, mode 0600 or stricter).

``sarbench datasets secret new`` writes a fresh one there; ``--rotate`` replaces it,
keeping the old one beside it as ``test-secret.<UTC time>.old``. The secret is never
written into a manifest, a record, a log or an error message: only the per-dataset seed
derived from it (:func:`derive_test_seed`) reaches a generator, and the manifests record the
digest of what it made.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import SarbenchError
from harness.settings import Settings

ENV_VAR = "SARBENCH_TEST_SECRET"
FILE_NAME = "test-secret"
MIN_LENGTH = 16  # characters; `secret new` writes 64 hex digits


class SecretError(SarbenchError):
    """The test secret is unusable (wrong permissions, empty, not a file) or missing."""


@dataclass(frozen=True)
class Secret:
    """A loaded secret and where it came from (``origin`` is safe to print; the value not).

    ``repr`` leaves the value out, so the secret cannot reach a log by accident.
    """

    value: str
    origin: str

    def __repr__(self) -> str:
        return f"Secret(origin={self.origin!r})"

    __str__ = __repr__


def secret_path(settings: Settings) -> Path:
    """Where the secret file lives: ``<home>/secrets/test-secret``."""
    return settings.home / "secrets" / FILE_NAME


def load_secret(settings: Settings) -> Secret | None:
    """The test secret, or None when there is none (no variable, no file).

    A file that exists but is not a regular file, is readable by group or others, or is
    empty is an error naming the file and the fix; the value is never part of a message.
    """
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        value = env.strip()
        if len(value) < MIN_LENGTH:
            raise SecretError(
                f"${ENV_VAR} is set but shorter than {MIN_LENGTH} characters; use a random "
                "one (`sarbench datasets secret new` makes one) or unset it"
            )
        return Secret(value, f"${ENV_VAR}")
    path = secret_path(settings)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the test secret ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(
            f"{path}: the test secret must be a regular file (not a link, folder or device); "
            f"replace it with one (`sarbench datasets secret new --rotate`)"
        )
    if st.st_mode & 0o077:
        raise SecretError(
            f"{path}: the test secret is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"make it private with `chmod 600 {path}` (and consider it leaked if others "
            "could read it: rotate it)"
        )
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"{path}: cannot read the test secret ({exc})") from None
    if len(value) < MIN_LENGTH:
        raise SecretError(
            f"{path}: the test secret is empty or shorter than {MIN_LENGTH} characters; write "
            "a new one with `sarbench datasets secret new --rotate`"
        )
    return Secret(value, str(path))


def require_secret(settings: Settings) -> Secret:
    """The secret, or an error that says how a maintainer provides one."""
    found = load_secret(settings)
    if found is None:
        raise SecretError(
            f"the private test needs the maintainers' test secret: set ${ENV_VAR} or put it "
            f"in {secret_path(settings)} (mode 0600); a maintainer creates one with "
            "`sarbench datasets secret new`. Without it, prepare the public demo test "
            "(`--test demo`)"
        )
    return found


def derive_test_seed(secret: Secret | str, dataset: str) -> int:
    """The seed of ``dataset``'s private test split: 64 bits of SHA-256 over the secret and
    the dataset name (so one secret gives each dataset its own seed, and the seed tells
    nothing about the secret)."""
    value = secret.value if isinstance(secret, Secret) else secret
    digest = hashlib.sha256(f"{value}\0{dataset}\0test".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class NewSecret:
    """What :func:`new_secret` did: the file written and, on rotation, where the old went."""

    path: Path
    old: Path | None


def new_secret(settings: Settings, *, rotate: bool = False) -> NewSecret:
    """Write a fresh random secret (64 hex digits) to :func:`secret_path`, mode 0600.

    An existing secret is kept unless ``rotate``: then it is renamed to
    ``test-secret.<UTC time>.old`` beside the new one.
    """
    path = secret_path(settings)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) & ~0o077)
    exists = os.path.lexists(path)
    if exists and not rotate:
        raise SecretError(
            f"{path}: a test secret already exists; it is kept. Replacing it changes the "
            "private test (hence its digest and the official board): pass --rotate to "
            "replace it (the old one is kept as test-secret.<UTC time>.old)"
        )
    tmp = folder / f".{FILE_NAME}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(tmp, 0o600)
        old: Path | None = None
        if exists:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            old = folder / f"{FILE_NAME}.{stamp}.old"
            n = 1
            while os.path.lexists(old):
                old = folder / f"{FILE_NAME}.{stamp}-{n}.old"
                n += 1
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return NewSecret(path, old)

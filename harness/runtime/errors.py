"""Error types of the container runtime. Each message says what to do about it."""

from __future__ import annotations

from harness.errors import SarbenchError


class EngineUnavailableError(SarbenchError):
    """No Docker engine answers at the address the client was given."""


class ImageNotFoundError(SarbenchError):
    """An image that the engine does not have (nothing is ever pulled)."""


class ImageBuildError(SarbenchError):
    """Building or importing an image failed; the message carries the tool's own output."""


class LimitsError(SarbenchError, ValueError):
    """Limits that are malformed, or that this host cannot give."""


class MountError(SarbenchError, ValueError):
    """A mount that is malformed, missing on the host, or clashes with another."""


class ContainerCreateError(SarbenchError):
    """The engine refused to create a container from a configuration the harness built."""


class ContainerCleanupError(SarbenchError):
    """A container the harness started could not be removed; names it and how to remove it."""

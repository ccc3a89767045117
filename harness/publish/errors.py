"""Error types of publishing. Each message names the file or store and what is wrong."""

from __future__ import annotations

from harness.errors import SarbenchError
from harness.record import RecordError

__all__ = ["RecordError", "StoreBusyError", "TrackingError"]


class TrackingError(SarbenchError):
    """The MLflow tracking store refused or failed an operation; names the store."""


class StoreBusyError(TrackingError):
    """The store stayed locked by another process for longer than publishing waits; the
    message names the store, the lock and what to do. Nothing half-written is left shown."""

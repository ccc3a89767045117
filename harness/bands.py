"""Band roles on the harness's side: what a dataset's bands are, and whether an entry's
variant can use them.

The vocabulary is :mod:`sarbench_io.bands` (containers read the same module): ``pre`` and
``post`` (one polarisation before and after the event), ``VV`` and ``VH`` (two
polarisations of one date). Which layouts each task's datasets may have is declared with
the task (:attr:`harness.tasks.Task.band_layouts`): a flood chip is ``pre``/``post`` or
``VV``/``VH``; an ndvi chip is ``VV``/``VH``.

- :func:`band_roles`: a manifest's roles: its ``band_roles`` where it has them, else what
  its band names state unambiguously (:func:`roles_from_names`), else None (unknown).
- :class:`DatasetFacts`: what deciding whether an entry runs on a dataset needs.
- :func:`roles_problem`: why a dataset's roles do not fit the layouts a variant requires
  (``requires_roles`` in its entry file), or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sarbench_io.bands import (
    POST,
    PRE,
    PRE_POST,
    ROLES,
    VH,
    VV,
    VV_VH,
    check_roles,
    layout_text,
    roles_from_names,
    run_band_roles,
)

if TYPE_CHECKING:
    from harness.datasets.manifest import Manifest

__all__ = [
    "POST",
    "PRE",
    "PRE_POST",
    "ROLES",
    "VH",
    "VV",
    "VV_VH",
    "DatasetFacts",
    "band_roles",
    "check_roles",
    "layout_text",
    "layouts_text",
    "roles_from_names",
    "roles_problem",
    "run_band_roles",
]

Layouts = tuple[tuple[str, ...], ...]
"""The band layouts a variant accepts, each a tuple of roles in band order; () = any."""


def band_roles(manifest: Manifest) -> tuple[str, ...] | None:
    """The roles of the dataset's bands, in band order: the manifest's ``band_roles``
    where present, else those its band names state (:func:`roles_from_names`), else None."""
    if manifest.band_roles is not None:
        return tuple(manifest.band_roles)
    return roles_from_names(manifest.bands)


@dataclass(frozen=True)
class DatasetFacts:
    """What deciding whether an entry runs on a dataset needs: its name, task, band names
    and band roles (None: unknown)."""

    name: str
    task: str
    bands: tuple[str, ...]
    roles: tuple[str, ...] | None
    splits: tuple[str, ...] = ()
    """The dataset's splits (an entry may need one beyond train and val)."""

    @classmethod
    def of(cls, manifest: Manifest, name: str | None = None) -> DatasetFacts:
        return cls(
            name or manifest.name,
            manifest.task,
            tuple(manifest.bands),
            band_roles(manifest),
            tuple(manifest.splits),
        )


def layouts_text(layouts: Sequence[Sequence[str]]) -> str:
    """``pre/post``, ``pre/post or VV/VH``."""
    return " or ".join(layout_text(layout) for layout in layouts)


def roles_problem(layouts: Layouts, facts: DatasetFacts) -> str | None:
    """Why ``facts``'s band roles are none of ``layouts`` (None: they are one, or
    ``layouts`` is empty: any roles do)."""
    if not layouts:
        return None
    need = f"needs bands {layouts_text(layouts)}"
    if facts.roles is None:
        return (
            f"{need}; the roles of {facts.name}'s bands ({', '.join(facts.bands)}) are not "
            "known (its manifest has no band_roles and the band names do not tell)"
        )
    if tuple(facts.roles) in layouts:
        return None
    return f"{need}; {facts.name}'s bands are {layout_text(facts.roles)} ({', '.join(facts.bands)})"

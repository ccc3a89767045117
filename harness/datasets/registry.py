"""One registry of datasets: the embedded generators, the importers, and frozen manifests."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from harness.datasets.source import DatasetSource
from harness.errors import UnknownNameError
from harness.settings import Settings


@dataclass(frozen=True)
class SourceKind:
    """A generator (no arguments) or an importer (takes a source folder)."""

    name: str
    task: str | None
    summary: str
    factory: str  # "module:callable", imported only when used

    def build(self, **kwargs: Any) -> DatasetSource:
        module, attr = self.factory.split(":")
        return getattr(importlib.import_module(module), attr)(**kwargs)


GENERATORS: dict[str, SourceKind] = {
    g.name: g
    for g in (
        SourceKind(
            "flood-synth",
            "flood",
            "196 pre/post-event VV chips, 256x256, two synthetic flood events (embedded default)",
            "harness.datasets.flood_synth:FloodSynth",
        ),
        SourceKind(
            "ndvi-synth",
            "ndvi",
            "VV/VH to NDVI, 128x128, farm parcels May-Nov, with a second-sensor pretrain split "
            "(embedded default)",
            "harness.datasets.ndvi_synth:NdviSynth",
        ),
    )
}

IMPORTERS: dict[str, SourceKind] = {
    i.name: i
    for i in (
        SourceKind(
            "sen1floods11",
            "flood",
            "Sen1Floods11 hand-labelled chips (S1Hand/, LabelHand/, flood_*_data.csv)",
            "harness.datasets.importers:Sen1Floods11Source",
        ),
        SourceKind(
            "folder",
            None,
            "any task: <split>/inputs|targets[/valid] GeoTIFF folders (e.g. the flood study's)",
            "harness.datasets.importers:FolderSource",
        ),
    )
}


def generator(name: str) -> SourceKind:
    try:
        return GENERATORS[name]
    except KeyError:
        raise UnknownNameError("synthetic dataset", name, GENERATORS) from None


def importer(name: str) -> SourceKind:
    try:
        return IMPORTERS[name]
    except KeyError:
        raise UnknownNameError("importer", name, IMPORTERS) from None


def frozen_names(settings: Settings) -> list[str]:
    """Datasets with a manifest in the work folder's manifests folder or among those that
    ship with SARBench (:meth:`Settings.manifest_dirs`)."""
    names: set[str] = set()
    for root in settings.manifest_dirs():
        if root.is_dir():
            names.update(p.parent.name for p in root.glob("*/manifest.json"))
    return sorted(names)


def known_names(settings: Settings) -> list[str]:
    return sorted(set(GENERATORS) | set(frozen_names(settings)))


def check_known(settings: Settings, name: str) -> str:
    if name not in known_names(settings):
        raise UnknownNameError("dataset", name, known_names(settings))
    return name

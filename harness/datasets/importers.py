"""Importers of real data: the Sen1Floods11 hand-labelled chips, and any folder of GeoTIFFs.

Both importers stream: they plan from file names first, then read one sample at a time.
Every problem found (a missing or unreadable file, a wrong band count, a target on another
grid, a value out of range...) is collected, and one error lists them all at the end, each
naming its file; nothing is written under the data root unless every sample is sound.

**Grids.** A target (label) or valid mask must lie on its input's grid by the one rule of
:func:`harness.geo.compare_grids`: same size and CRS, transforms within 10^-6 of a pixel
(every pixel corner). Within it, the file is written onto the input's exact grid and listed
in :attr:`snapped` (:class:`Snap`: which file, onto which input, by how many pixels), which
the import report prints: Sen1Floods11's labels, as published, have pixel sizes that
differ from their S1 chip's in the 15th digit (~2e-12 of a pixel across a chip). Beyond
it, the problem names both files and each differing field in words.

**What the data is.** Each importer records in the manifest's ``source.about`` what it can
state about the data: classes and their meaning, source, licence, citation, groups (the
dataset card shows it); and its bands' roles (``band_roles``: ``VV``/``VH``,
``pre``/``post``).

### `sen1floods11`: Sen1Floods11 hand-labelled chips

**Features.** 446 Sentinel-1 GRD chips of 512x512 pixels (10 m, EPSG:4326) over 11 flood
events, with hand-drawn water labels. Bands: `VV_db`, `VH_db` (sigma0 in dB, as published;
NaN where there is no data).

**Format.** Anywhere under the source folder (searched a few levels deep), as in the
published bucket (`v1.1/`):

```
data/flood_events/HandLabeled/S1Hand/<Event>_<id>_S1Hand.tif        2 bands VV, VH, float32 dB
data/flood_events/HandLabeled/LabelHand/<Event>_<id>_LabelHand.tif  int16: -1 nodata, 0, 1
splits/flood_handlabeled/flood_{train,valid,test}_data.csv           required
splits/flood_handlabeled/flood_bolivia_data.csv                      optional
```

Each CSV has no header; a row names an S1Hand file and its LabelHand file. The splits are
`train`, `val` (from `flood_valid_data.csv`), `test` and `bolivia` (the held-out event,
where its CSV exists). Sample ids are `<Event>_<id>`; the manifest records each one's event,
which is also its independence group (chips of one flood event are correlated). The test
labels are published with the data: its test is `public` (comparable, not blind).

**Classes.** Target 1 = water (label 1: all surface water, permanent water included, not
only newly flooded land), 0 = not water (label 0). Label -1 (not labelled) and pixels where
any input band is not finite (the NaN at chip edges) are not scored: the valid mask is 0
there. Inputs are kept as they are, NaN included (their nodata value is NaN). Band roles:
``VV``, ``VH`` (one date, two polarisations; not pre/post).

**Licence.** The dataset's README names none and asks users to cite it; see
https://github.com/cloudtostreet/Sen1Floods11.

**Citation.** Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020). Sen1Floods11:
a georeferenced dataset to train and test deep learning flood algorithms for Sentinel-1.
CVPR Workshops, pp. 210-211.

### `folder`: any task from a folder of GeoTIFFs

**Format.** One folder per split under the source folder: `train/`, `val/` (also spelled
`valid/` or `validation/`), `test/`, and any other lowercase split name (`pretrain/`...).
In each split folder:

```
inputs/<id>.tif     (or images/, img/)            the task's input bands, any numeric dtype
targets/<id>.tif    (or masks/, labels/, label/)  one band, same grid as its input
valid/<id>.tif      optional, one band            0 = not scored
```

Files pair up by name (`.tif` or `.tiff`). Inputs are stored as float32 and keep their
nodata value. Band names come from the inputs' band descriptions where every input has the
same complete, distinct set; otherwise `band1`, `band2`, ...

**Independence groups.** Chips of one place or one event are correlated; the statistics
need to know which. An optional `groups.csv` in the source folder names them: a header
`id,group`, then one row per chip (its file stem and its group: a site, an event, a tile
block). Without it, the part of the file stem before the first `_` is the group (as in
`valencia_r01c02` or `Bolivia_103757`), where every stem has that form, no prefix is a
split name, and the prefixes group at least two chips together. Otherwise the import says
so, names no groups, and every chip counts as its own group (intervals are then too narrow
if chips are correlated).

**Classes.** Flood targets must be 0 or 1 and ndvi targets in [-1, 1] (stored as float32)
wherever they are not nodata. A pixel is not scored (valid mask 0) where the target holds
its nodata value (or NaN), where an input band holds its nodata value or is not finite,
where the optional valid mask is 0, or, with ``parcels`` (``--parcels PATH``), outside
every polygon of that vector file (GeoPackage, GeoJSON, shapefile; reprojected to each
chip's CRS; a pixel is inside where its centre is): the farm mask of an ndvi dataset. The
name defaults to the folder's name, and the task must be given: this is how the flood
study's own 156/20/20 dataset is imported.

**What the user states.** An optional ``dataset.toml`` in the source folder
(``description``, ``source``, ``licence``, ``citation``, ``[classes]`` target value ->
meaning, ``band_roles``), or the flags ``--class VALUE=MEANING``, ``--licence``,
``--citation``, ``--band-roles`` (which win), say what the data is; the card says "not
stated by the importer" for what nobody stated. Band roles default to what the band names
say without ambiguity (``*pre*``/``*post*``, ``VV``/``VH``).

The code is in one module per concern: :mod:`harness.datasets.import_common` (the error,
:class:`Snap` and the shared helpers), :mod:`harness.datasets.sen1floods11_import`,
:mod:`harness.datasets.folder_import` and :mod:`harness.datasets.parcels` (``--parcels``).
This module re-exports their public names: import them from here.
"""

from __future__ import annotations

from harness.datasets.folder_import import (
    ABOUT_FILE,
    ABOUT_TEXT_KEYS,
    GROUP_WORDS,
    GROUPS_CSV,
    INPUT_FOLDERS,
    SPLIT_ALIASES,
    TARGET_FOLDERS,
    TIF_SUFFIXES,
    VALID_FOLDER,
    FolderSource,
)
from harness.datasets.import_common import (
    IMPORTER_VERSION,
    MAX_LISTED,
    Snap,
    SourceDataError,
)
from harness.datasets.sen1floods11_import import (
    LABEL_FOLDER,
    LABEL_VALUES,
    OPTIONAL_SPLITS,
    S1_FOLDER,
    S1_NAME,
    SEARCH_DEPTH,
    SEN1FLOODS11_ABOUT,
    SEN1FLOODS11_URL,
    SPLIT_CSVS,
    Sen1Floods11Source,
)

__all__ = [
    "ABOUT_FILE",
    "ABOUT_TEXT_KEYS",
    "GROUPS_CSV",
    "GROUP_WORDS",
    "IMPORTER_VERSION",
    "INPUT_FOLDERS",
    "LABEL_FOLDER",
    "LABEL_VALUES",
    "MAX_LISTED",
    "OPTIONAL_SPLITS",
    "S1_FOLDER",
    "S1_NAME",
    "SEARCH_DEPTH",
    "SEN1FLOODS11_ABOUT",
    "SEN1FLOODS11_URL",
    "SPLIT_ALIASES",
    "SPLIT_CSVS",
    "TARGET_FOLDERS",
    "TIF_SUFFIXES",
    "VALID_FOLDER",
    "FolderSource",
    "Sen1Floods11Source",
    "Snap",
    "SourceDataError",
]

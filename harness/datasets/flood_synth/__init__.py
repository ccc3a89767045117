"""flood-synth: a deterministic, physically grounded pre/post-event Sentinel-1 flood dataset.

The embedded default dataset of the ``flood`` task. It stands in for the dataset of the
source study (two events, Valencia 2024 and Mississippi 2019; 196 chips of 256x256 with a
pre-event band, a post-event band and a newly-flooded mask; 156/20/20 train/val/test), made
by code so that anyone can rebuild it bit for bit.

Features
--------
- 196 chips of 256 x 256 pixels at 10 m from two events. ``valencia``: a Mediterranean
  coastal plain with a river, ravines ("barrancos") crossing it, a lagoon ringed by rice
  fields, a city and towns, orchards, steep terraced hills and isolated knolls.
  ``mississippi``: a broad floodplain with a meandering river, oxbow lakes, natural levees
  and backswamps, large crop fields, bottomland forest, and forested bluffs cut by gullies.
- Split 156 / 20 / 20 (train / val / test). Train and val (78 / 10 per event) are tiles of
  each event's scene, made from the public seed, in spatially disjoint strips of tile
  columns with an unused column between strips. The test split (10 per event) is made
  from a separate **test seed** only: 5 blocks per event, each its own scene (a window of
  the event's kind of landscape, with its own river, fields and flood), 2 chips each. The
  *demo* test comes from the public demo test seed; the official *private* test from a
  seed derived from the maintainers' secret, so that it cannot be rebuilt from this code.
- Independence groups (``meta["group"]``): a test block (10 groups in the test split);
  for train and val, the event and a band of 4 tile columns of its scene.
- Every chip has a real CRS (EPSG:32630 for Valencia, EPSG:32615 for Mississippi) and a
  north-up transform at realistic UTM coordinates (test blocks lie south of the scene).
- Every chip has at least 10 % newly flooded pixels (about half on average).
- What defeats a threshold on the change: wind-roughened flood water, flooded vegetation
  and towns that brighten, radar shadow that appears between the dates (Valencia),
  harvest, and wind on permanent water. Each is recognisable from its context.

Format
------
- inputs: float32 (2, 256, 256). Band 1 ``VV_pre_db``, band 2 ``VV_post_db``: VV sigma0
  in dB on a 0.001 dB grid, speckled (no speckle filter), no nodata.
- target: uint8 (256, 256), 1 = newly flooded. Every pixel is scored (no valid mask).
- meta: ``event``, ``group``; train and val also ``row`` and ``col`` of the tile in its
  scene and ``flood_fraction``; test chips ``block`` (nothing derived from their targets).
- ids: ``<event>_r<row>c<col>`` (train, val); ``<event>_test<block>_r<row>c<col>`` (the
  private test) or ``<event>_demo<block>_r<row>c<col>`` (the demo test).

Classes
-------
0. not newly flooded: dry land, permanent water, and ground steeper than 5 %
1. newly flooded: open flood water, wind-roughened flood water, flooded vegetation/towns

How it is made
--------------
Each event is one large scene that is cut into non-overlapping tiles (train and val);
each test block is a smaller scene of its own, made the same way from the test seed.

1. Terrain. A river (a Kinoshita meander curve) whose level falls downstream; a floodplain
   rising away from the river, with relief at several scales and (Mississippi) natural
   levees; hills or bluffs beyond wiggly valley edges (fractal relief, Valencia's terraced
   into cliffs); steep isolated knolls; tributary ravines whose beds only descend; oxbow
   lakes; a lagoon with a flat marsh. The DEM is rounded to 1 mm before any comparison.
2. Flood, the way the study refined its masks. Each source (river, tributary beds on the
   plain, lagoon) raises a water surface: its level plus the event's rise at its nearest
   pixel, falling off slowly with distance. Ground below the highest such surface and
   connected (4-neighbours) to a source is flooded; permanent water (river, lakes, lagoon)
   is removed, and so are pixels on slopes over 5 %. Tiles under 10 % flooded are dropped.
3. Land cover. Voronoi parcels with classes drawn per zone (plain, lowland near the lagoon
   or the river, hills), towns with street blocks. Per-parcel VV backscatter drawn in its
   class range (dB, flat ground, 38 deg): open water -25..-18, bare soil -15..-10, crops
   -14..-8, orchards -10..-7, forest -9..-6, shrub -13..-9, urban -2..+5; plus persistent,
   spatially correlated texture.
4. Imaging. Two descending passes from different relative orbits (incidence 31.6 / 43.1
   deg for Valencia, 36.2 / 44.0 deg for Mississippi), radar to the east. Backscatter
   follows the local incidence angle (a cos^2 law times the illuminated area, so
   foreslopes are brighter and backslopes darker); radar shadow is cast along range with
   a running maximum, so it differs between the dates; thermal noise (NESZ -23.5 dB) is
   added in linear power, and is all that shadow returns.
5. Change between the dates. Flood water is dark, except wind-roughened patches (flood and
   permanent water, -14..-8 dB) and flooded forest, orchards and towns, which brighten by
   double bounce (+3..+6 dB; towns +2..+5 dB). Non-flood change: harvest and tillage
   (to smooth bare soil), crop growth, rain-wetted soil (up to +2.5 dB), and wind patches
   on permanent water that differ between the dates.
6. Speckle. Multiplicative Gamma noise in linear power, ENL 4.4, independent per date.
7. Splits. In each event's scene a strip of tile columns for ``val`` and a reserved one
   (the test strip of version 1, now unused, so that train and val are unchanged) start
   at fixed columns and grow east until they hold 10 eligible tiles; ``train`` has the
   other columns but one gap column on each side of those strips. Each split's tiles are
   drawn at random from its eligible tiles. The test split: for each event, 5 blocks, each
   a scene 4 tiles wide and as tall as the event's, whose valley edges, lagoon, city and
   river level are those of a window of the event's scene drawn at random (the event's
   landscape, another realisation of it); 2 eligible tiles are drawn from each block.

Randomness comes only from ``numpy.random.SeedSequence`` sub-streams of the seed (train
and val) and of the test seed (the test split). Fields that decide a mask are quantized
before they are compared, and dB values are rounded to 0.001 dB before the cast to
float32, so the output is bit-identical across machines.

Code
----
The package ``harness.datasets.flood_synth``, by concern:

- ``spec``: VERSION, the constants, the land-cover classes and their dB ranges, and
  ``EventSpec`` with ``EVENTS``, the two scenes' layout, landscape and acquisitions.
- ``fields``: the random sub-streams, quantization, and the random fields, series and
  distance maps the steps share.
- ``terrain``: step 1 (river, floodplain, hills, knolls, lagoon, oxbows, tributaries).
- ``water``: step 2 (rising water over connected low ground, with permanent water; slopes).
- ``landcover``: step 3's classes (parcels, zones, natural cover, towns).
- ``backscatter``: steps 3 to 6 in dB (parcels and towns, change between the dates,
  double-bounce and wind confusers, local incidence, radar shadow, noise floor, speckle).
- ``scene``: ``make_scene`` runs the steps for one event; ``Scene`` holds the result and
  cuts it into tiles.
- ``chips``: step 7 (``select_tiles``, ``make_block``) and ``FloodSynth``, the dataset
  source.

Citation
--------
Dataset design (two events, mask refinement, 10 % rule, split sizes) after: M. Hatami
Goloujeh, "Exploring Cross-Modality Transfer Learning: Fine-Tuning Optical Pre-Trained
Models on Synthetic Aperture Radar Image", University of South Carolina. The chips are
synthetic and contain no Sentinel-1 data; cite SARBench and the study when you use them.
"""

from harness.datasets.flood_synth.chips import Block, FloodSynth, make_block, select_tiles
from harness.datasets.flood_synth.scene import Scene, make_scene
from harness.datasets.flood_synth.spec import FloodSynthError, window_spec

__all__ = [
    "Block",
    "FloodSynth",
    "FloodSynthError",
    "Scene",
    "make_block",
    "make_scene",
    "select_tiles",
    "window_spec",
]

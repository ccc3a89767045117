"""Step 1, terrain: the river, floodplain, hills or bluffs, knolls, lagoon, oxbow lakes and
tributary ravines of an event's scene, and the flood sources with their levels and rise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.datasets.flood_synth.fields import (
    _count,
    _field,
    _fractal,
    _nearest,
    _q,
    _rng,
    _series,
    _smoothstep,
)
from harness.datasets.flood_synth.spec import PIXEL, EventSpec


def _rasterize(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (2, n) as (rows, cols) of a densely sampled path, in path order, in the scene."""
    rows = np.floor(_q(ys) / PIXEL).astype(np.int64)
    cols = np.floor(_q(xs) / PIXEL).astype(np.int64)
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    rc = np.stack([rows[inside], cols[inside]])
    if rc.shape[1] > 1:
        keep = np.ones(rc.shape[1], dtype=bool)
        keep[1:] = np.any(rc[:, 1:] != rc[:, :-1], axis=0)
        rc = rc[:, keep]
    return rc


def _edge(knots: tuple[tuple[float, float], ...], u: np.ndarray) -> np.ndarray:
    ku, kv = zip(*knots, strict=True)
    return np.interp(u, ku, kv)


@dataclass
class _Terrain:
    dem: np.ndarray  # m, on a 1 mm grid
    permanent_water: np.ndarray
    sources: list[tuple[np.ndarray, float]]  # (pixels, fall-off of the surface in m/m)
    level: np.ndarray  # at source pixels: normal level (river, lagoon) or bed (tributary)
    rise: np.ndarray  # at source pixels: the event's rise
    river_level: np.ndarray  # normal level of the nearest point of the river
    d_bank: np.ndarray  # distance to the river bank (m)
    hill: np.ndarray  # hill / upland zone
    lagoon_zone: np.ndarray  # flat marsh around the lagoon


def _river_path(
    spec: EventSpec, rng: np.random.Generator, h_m: float, w_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """A Kinoshita meander curve crossing the scene from west to east, in 2 m steps."""
    ds = 2.0
    n = int((w_m + 4_000.0) * 4.0 / ds)
    lam = spec.meander_wavelength / ds
    omega = math.radians(spec.meander_angle) * (1.0 + 0.25 * _series(rng, n, lam))
    phase = 2.0 * np.pi * np.arange(n) / lam + rng.uniform(0, 2 * np.pi)
    phase += 2.0 * _series(rng, n, 0.7 * lam)
    heading = omega * np.sin(phase)
    heading += omega**3 * (0.03 * np.cos(3 * phase) - 0.02 * np.sin(3 * phase))
    xs = -2_000.0 + np.cumsum(np.cos(heading)) * ds
    ys = np.cumsum(np.sin(heading)) * ds
    beyond = xs > w_m + 2_000.0
    end = int(np.argmax(beyond)) if beyond.any() else n
    xs, ys = xs[:end], ys[:end]
    ys = ys - np.interp(xs, [xs[0], xs[-1]], [ys[0], ys[-1]]) + spec.river_v * h_m
    return xs, ys


def _tributaries(
    spec: EventSpec,
    rng: np.random.Generator,
    river_xy: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
) -> list[tuple[np.ndarray, float]]:
    """Tributaries from the north or south edge to the river: (pixels, wall slope) each."""
    xs, ys = river_xy
    h_m, w_m = shape[0] * PIXEL, shape[1] * PIXEL
    ok = np.flatnonzero((xs > 0.04 * w_m) & (xs < 0.96 * w_m))
    out = []
    for i in range(_count(spec.tributaries, w_m / 10_000.0)):
        j = ok[int(rng.integers(0, ok.size))]
        north = (i % 2 == 0) == (rng.random() < 0.8)
        x0 = xs[j] + rng.uniform(-0.35, 0.35) * h_m
        y0 = -300.0 if north else h_m + 300.0
        length = math.hypot(xs[j] - x0, ys[j] - y0)
        t = np.linspace(0.0, 1.0, max(2, int(length / 2.0)))
        cycles, offset = rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        wiggle = (
            rng.uniform(100.0, 450.0) * np.sin(np.pi * t) * np.sin(2 * np.pi * cycles * t + offset)
        )
        nx, ny = -(ys[j] - y0) / length, (xs[j] - x0) / length
        px = x0 + (xs[j] - x0) * t + wiggle * nx
        py = y0 + (ys[j] - y0) * t + wiggle * ny
        out.append((_rasterize(px, py, shape), rng.uniform(*spec.trib_wall)))
    return out


def _oxbow_lakes(
    spec: EventSpec,
    rng: np.random.Generator,
    river_xy: tuple[np.ndarray, np.ndarray],
    d_bank: np.ndarray,
) -> np.ndarray:
    """Crescent lakes (cut-off meanders) near the river."""
    xs, ys = river_xy
    h, w = d_bank.shape
    y = (np.arange(h) + 0.5) * PIXEL
    x = (np.arange(w) + 0.5) * PIXEL
    ok = np.flatnonzero((xs > 0.02 * w * PIXEL) & (xs < 0.98 * w * PIXEL))
    lakes = np.zeros((h, w), dtype=bool)
    for _ in range(_count(spec.oxbows, h * w * PIXEL * PIXEL / 1e8)):
        j = ok[int(rng.integers(0, ok.size))]
        radius = rng.uniform(500.0, 1_300.0)
        off = spec.river_half_width + radius + rng.uniform(200.0, 2_200.0)
        ang = rng.uniform(0, 2 * np.pi)
        cx, cy = xs[j] + off * math.cos(ang), ys[j] + off * math.sin(ang)
        width, start, span = rng.uniform(110, 230), rng.uniform(0, 2 * np.pi), rng.uniform(2.4, 4.2)
        reach = radius + width
        r0, r1 = max(int((cy - reach) / PIXEL), 0), min(int((cy + reach) / PIXEL) + 1, h)
        c0, c1 = max(int((cx - reach) / PIXEL), 0), min(int((cx + reach) / PIXEL) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        dy, dx = y[r0:r1, None] - cy, x[None, c0:c1] - cx
        ring = _q(np.abs(np.hypot(dy, dx) - radius)) <= width / 2
        arc = _q(np.mod(np.arctan2(dy, dx) - start, 2 * np.pi)) <= span
        lakes[r0:r1, c0:c1] |= ring & arc & (_q(d_bank[r0:r1, c0:c1]) > 250.0)
    return lakes


def _knolls(
    spec: EventSpec, rng: np.random.Generator, d_bank: np.ndarray, hill_zone: np.ndarray
) -> list[tuple[float, float, float, float, float]]:
    """Steep isolated hills on the plain, away from the river: (cx, cy, radius, height, edge).

    Their flanks rise ``height`` over about ``edge`` metres; some are steep enough to cast
    radar shadow at both incidence angles, some at the steeper (post-event) one only.
    """
    h, w = d_bank.shape
    out = []
    for _ in range(_count(spec.knolls, h * w * PIXEL * PIXEL / 1e8)):
        cx, cy = rng.uniform(0, w * PIXEL), rng.uniform(0, h * PIXEL)
        radius, height, edge = rng.uniform(250, 700), rng.uniform(35, 90), rng.uniform(30, 80)
        r, c = min(int(cy / PIXEL), h - 1), min(int(cx / PIXEL), w - 1)
        if d_bank[r, c] > radius + 300.0 and not hill_zone[r, c]:
            out.append((cx, cy, radius, height, edge))
    return out


def _terrain(spec: EventSpec, seed: int, shape: tuple[int, int]) -> _Terrain:
    rng = _rng(seed, spec.name, 0)
    h, w = shape
    h_m, w_m = h * PIXEL, w * PIXEL
    x = (np.arange(w, dtype=np.float64) + 0.5) * PIXEL
    y = (np.arange(h, dtype=np.float64) + 0.5) * PIXEL

    # river: centre line, distance to it, normal level of its nearest point
    river_xy = _river_path(spec, rng, h_m, w_m)
    centre = np.zeros(shape, dtype=bool)
    rc = _rasterize(*river_xy, shape)
    centre[rc[0], rc[1]] = True
    d_centre, _, ic = _nearest(centre)
    river_level = _q(spec.river_level_mouth + spec.river_gradient * (w_m - (ic + 0.5) * PIXEL), 3)
    del ic, centre
    channel = _q(d_centre) <= spec.river_half_width
    d_bank = np.maximum(d_centre - spec.river_half_width, 0.0)
    del d_centre

    # floodplain
    dem = river_level + spec.bank_height + spec.lateral_slope * d_bank
    if spec.levee_height > 0:
        dem += spec.levee_height * np.exp(-d_bank / spec.levee_decay)
    dem += spec.relief_amp * _field(rng, shape, spec.relief_scale / PIXEL)
    dem += spec.swale_amp * _field(rng, shape, 40.0)
    dem += spec.micro_amp * _field(rng, shape, 6.0)

    # hills or bluffs beyond wiggly valley edges
    edge_n = _edge(spec.hills_north, x / w_m) * h_m + 0.025 * h_m * _series(rng, w, 150.0)
    edge_s = _edge(spec.hills_south, x / w_m) * h_m + 0.025 * h_m * _series(rng, w, 150.0)
    excess = np.maximum(edge_n[None, :] - y[:, None], y[:, None] - edge_s[None, :])
    hill_zone = _q(excess) > 150.0
    ramp = _smoothstep(excess / 1_500.0)
    relief = np.maximum(1.0 + 0.6 * _fractal(rng, shape, spec.hill_scale / PIXEL), 0.0)
    hill = spec.hill_wall_slope * np.clip(excess, 0.0, 3_000.0) + spec.hill_amp * ramp * relief
    del relief
    if spec.bluff_height > 0:
        hill += spec.bluff_height * _smoothstep(excess / 220.0)
    del excess
    if spec.terrace_step > 0:  # treads and cliffs, risers not quite along contours
        steps = hill / spec.terrace_step
        steps += 0.35 * _smoothstep(steps) * _field(rng, shape, 60.0)
        floor = np.floor(steps)
        hill = spec.terrace_step * (floor + _smoothstep((steps - floor - 0.85) / 0.15))
        del steps, floor
    hill += 1.5 * ramp * _field(rng, shape, 3.0)
    dem += hill
    del hill, ramp

    for cx, cy, radius, height, edge in _knolls(spec, rng, d_bank, hill_zone):
        r0, r1 = (
            max(int((cy - radius - edge) / PIXEL), 0),
            min(int((cy + radius + edge) / PIXEL) + 1, h),
        )
        c0, c1 = (
            max(int((cx - radius - edge) / PIXEL), 0),
            min(int((cx + radius + edge) / PIXEL) + 1, w),
        )
        dy, dx = y[r0:r1, None] - cy, x[None, c0:c1] - cx
        lobes = radius * (1.0 + 0.2 * np.sin(3 * np.arctan2(dy, dx) + rng.uniform(0, 2 * np.pi)))
        inside = _q(lobes - np.hypot(dy, dx))
        dem[r0:r1, c0:c1] += height * _smoothstep(inside / edge)
        hill_zone[r0:r1, c0:c1] |= inside > -edge

    # lagoon and its flat marsh
    lagoon = np.zeros(shape, dtype=bool)
    lagoon_zone = np.zeros(shape, dtype=bool)
    lagoon_level = 0.2
    if spec.lagoon is not None:  # worked out in the lagoon's reach only
        lu, lv, ru, rv = spec.lagoon
        r0, r1 = max(int((lv - 3 * rv) * h), 0), min(int((lv + 3 * rv) * h) + 1, h)
        c0, c1 = max(int((lu - 3 * ru) * w), 0), min(int((lu + 3 * ru) * w) + 1, w)
        dy = (y[r0:r1, None] - lv * h_m) / (rv * h_m)
        dx = (x[None, c0:c1] - lu * w_m) / (ru * w_m)
        ang = np.arctan2(dy, dx)
        wobble = 1.0 + 0.12 * np.sin(3 * ang + rng.uniform(0, 2 * np.pi)) + 0.06 * np.sin(7 * ang)
        r_norm = _q(np.hypot(dy, dx) / wobble)
        lagoon[r0:r1, c0:c1] = r_norm <= 1.0
        lagoon_zone[r0:r1, c0:c1] = r_norm <= 2.0
        lagoon_zone &= ~lagoon & ~hill_zone
        marsh = lagoon_level + 0.4 + 0.0006 * np.maximum(r_norm - 1.0, 0.0) * ru * w_m
        sub = dem[r0:r1, c0:c1]
        sub -= _smoothstep(2.0 - r_norm) * np.maximum(sub - marsh, 0.0)
        dem[lagoon] = lagoon_level - 1.5

    # oxbow lakes: depressions below the floodplain
    lakes = _oxbow_lakes(spec, rng, river_xy, d_bank) & ~hill_zone
    dem[lakes] = np.minimum(dem[lakes], river_level[lakes] + spec.bank_height - 2.5)

    # tributaries: beds that only descend, walls as steep as each ravine's
    trib = np.zeros(shape, dtype=bool)
    bed = np.zeros(shape)
    wall = np.zeros(shape)
    for pix, slope in _tributaries(spec, rng, river_xy, shape):
        if pix.shape[1] == 0:
            continue
        trib[pix[0], pix[1]] = True
        bed[pix[0], pix[1]] = np.minimum.accumulate(dem[pix[0], pix[1]] - spec.trib_incision)
        wall[pix[0], pix[1]] = slope
    if trib.any():
        d_trib, tr, tc = _nearest(trib)
        np.minimum(dem, bed[tr, tc] + wall[tr, tc] * np.maximum(d_trib - 10.0, 0.0), out=dem)
        del d_trib, tr, tc
    del wall

    dem[channel] = river_level[channel] - spec.channel_depth
    dem = np.round(dem, 3)

    # flood sources: each with its level and the event's rise
    rise_x = _q(spec.rise_mean + spec.rise_amp * _series(rng, w, 700.0), 3)
    level = np.where(trib, np.round(bed, 3), river_level)
    del bed
    level[lagoon] = lagoon_level
    rise = np.broadcast_to(rise_x[None, :], shape).copy()
    rise[trib] = spec.trib_rise
    rise[lagoon] = spec.lagoon_rise
    return _Terrain(
        dem=dem,
        permanent_water=channel | lakes | lagoon,
        sources=[
            (channel, spec.river_decay),
            (trib & ~channel & ~hill_zone, spec.trib_decay),
            (lagoon, spec.lagoon_decay),
        ],
        level=level,
        rise=rise,
        river_level=river_level,
        d_bank=d_bank,
        hill=hill_zone,
        lagoon_zone=lagoon_zone,
    )

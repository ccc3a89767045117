"""Band roles: what each input band of a dataset *is*, in a small fixed vocabulary.

A flood chip's two bands are either the same polarisation before and after the event
(``pre``, ``post``: flood-synth's ``VV_pre_db``, ``VV_post_db``) or two polarisations of one
date (``VV``, ``VH``: Sen1Floods11). An ndvi chip's are ``VV``, ``VH``. A model that takes
the difference of band 2 and band 1 means something on the first and nothing on the
second, so datasets declare their roles (the manifest's ``band_roles``, passed to every
container as ``run.json``'s ``dataset.band_roles``) and entries say which they need.

- :data:`ROLES`: every role there is; :data:`PRE_POST` and :data:`VV_VH`: the two layouts.
- :func:`roles_from_names`: the roles read off band names, where they are unambiguous
  (``*pre*``/``*post*`` -> pre/post; ``VV``/``VH`` -> VV/VH), else None.
- :func:`run_band_roles`: the roles of a run, from ``run.json`` (``dataset.band_roles``;
  a configuration written before the key existed: from its band names).

Pure Python: the harness (``harness.bands``) and containers share this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PRE, POST, VV, VH = "pre", "post", "VV", "VH"
ROLES: dict[str, str] = {
    PRE: "before the event (one polarisation, the same as its post band)",
    POST: "after the event (one polarisation, the same as its pre band)",
    VV: "VV polarisation (one date, the same as its VH band)",
    VH: "VH polarisation (one date, the same as its VV band)",
}
"""Every band role, with what it means."""
PRE_POST: tuple[str, ...] = (PRE, POST)
"""One polarisation before and after the event (flood-synth)."""
VV_VH: tuple[str, ...] = (VV, VH)
"""Two polarisations of one date (Sen1Floods11, ndvi-synth)."""

_TOKEN = re.compile(r"[^a-z0-9]+")
_POLARISATIONS = {"vv": VV, "vh": VH}


def _tokens(name: str) -> list[str]:
    return [t for t in _TOKEN.split(name.lower()) if t]


def _when(tokens: list[str]) -> str | None:
    """``pre`` or ``post`` where exactly one of them starts a token of the name."""
    found = {POST if t.startswith("post") else PRE for t in tokens if t.startswith(("pre", "post"))}
    return found.pop() if len(found) == 1 else None


def _polarisation(tokens: list[str]) -> str | None:
    found = {_POLARISATIONS[t] for t in tokens if t in _POLARISATIONS}
    return found.pop() if len(found) == 1 else None


def roles_from_names(bands: Iterable[str]) -> tuple[str, ...] | None:
    """The roles that band names state without ambiguity, else None.

    - every band names exactly one of ``pre*``/``post*`` (a token of the name, split at
      anything but letters and digits), each a different one, and no two name different
      polarisations: ``pre``/``post`` in band order (``VV_pre_db``, ``VV_post_db`` ->
      ``("pre", "post")``);
    - else, no band is dated and every band names exactly one of ``VV``/``VH``, each a
      different one: those (``VV_db``, ``VH_db`` -> ``("VV", "VH")``);
    - anything else (``band1``, ``band2``; a dated band beside an undated one): None.
    """
    tokens = [_tokens(b) for b in bands]
    if not tokens:
        return None
    when = [_when(t) for t in tokens]
    pols = [_polarisation(t) for t in tokens]
    if any(when):
        named = {p for p in pols if p is not None}
        if all(when) and len(set(when)) == len(when) and len(named) <= 1:
            return tuple(w for w in when if w is not None)
        return None
    if all(pols) and len(set(pols)) == len(pols):
        return tuple(p for p in pols if p is not None)
    return None


def check_roles(roles: Any, n_bands: int | None = None) -> list[str]:
    """What is wrong with a declared list of roles (empty: nothing)."""
    if not isinstance(roles, (list, tuple)) or not all(isinstance(r, str) for r in roles):
        return [f"band roles must be a list of strings, got {roles!r}"]
    problems = [
        f"unknown band role {r!r} (known: {', '.join(ROLES)})" for r in roles if r not in ROLES
    ]
    if len(set(roles)) != len(roles):
        problems.append(f"band roles repeat: {list(roles)}")
    if n_bands is not None and len(roles) != n_bands:
        problems.append(f"{len(roles)} band role(s) for {n_bands} band(s)")
    return problems


def run_band_roles(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The band roles of a run, from its ``run.json`` (as :func:`read_run_config` returns
    it): ``dataset.band_roles`` (None: the dataset's roles are not known), or, in a
    configuration written before that key existed, the roles its band names state."""
    dataset = config.get("dataset")
    if not isinstance(dataset, Mapping):
        return None
    if "band_roles" in dataset:
        roles = dataset["band_roles"]
        return tuple(roles) if isinstance(roles, (list, tuple)) and not check_roles(roles) else None
    bands = dataset.get("bands")
    if not isinstance(bands, (list, tuple)) or not all(isinstance(b, str) for b in bands):
        return None
    return roles_from_names(bands)


def layout_text(roles: Iterable[str] | None) -> str:
    """``pre/post``, ``VV/VH``; ``unknown`` for None."""
    return "unknown" if roles is None else "/".join(roles)

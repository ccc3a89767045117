"""The check every built board must pass: a comparison's words, its p-value and its
interval never disagree, and "better" follows the metric's direction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ALPHA = 0.05


def check_marks(rows: Iterable[Mapping[str, Any]], prefix: str, direction: str) -> int:
    """Assert agreement for every row's ``<prefix>_*`` figures (a table's JSON); returns how
    many comparisons were checked."""
    checked = 0
    for row in rows:
        verdict = row.get(f"{prefix}_verdict")
        if verdict is None or verdict == "n/a":
            continue
        d, low, high = (row[f"{prefix}_{k}"] for k in ("difference", "low", "high"))
        p, p_holm = row[f"{prefix}_p_value"], row[f"{prefix}_p_holm"]
        assert p <= p_holm <= 1, row
        zero_inside = low <= 0 <= high
        assert low <= d <= high, row
        if verdict == "tied":
            assert p_holm >= ALPHA and zero_inside, row
        else:
            assert p_holm < ALPHA and not zero_inside, row
            if direction in ("higher", "lower"):  # "closer to 0" has no sign rule
                better = d > 0 if direction == "higher" else d < 0
                assert verdict == ("better" if better else "worse"), row
        checked += 1
    return checked

"""The one rule for "the best mean setting", used by the sweep (to choose what to replicate) and by
the report (to choose what a table shows when no sweep chose).

The candidate with the highest mean score over its scored seeds wins; a tie goes to the candidate
with more scored seeds, then to the earlier candidate. Unscored seeds (not done, or NaN) are left
out of the mean; a candidate with no scored seed cannot win.
"""
from __future__ import annotations

import math
from typing import Hashable, Mapping, Sequence


def best_mean(candidates: Mapping[Hashable, Sequence[float | None]]) -> tuple[Hashable, float, int] | None:
    """``candidates`` maps a key (in preference order) to its scores per seed. Returns the winner's
    key, mean and seed count; None when no candidate has a score."""
    best, best_key = None, None
    for index, (key, values) in enumerate(candidates.items()):
        scored = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not scored:
            continue
        mean = sum(scored) / len(scored)
        rank = (mean, len(scored), -index)
        if best_key is None or rank > best_key:
            best, best_key = (key, mean, len(scored)), rank
    return best

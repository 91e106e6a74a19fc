"""One order and one set of colours for every figure and table of a report.

Leaders and followers are listed in the order of the tournament spec (then any others by name),
the same in every heatmap, facet grid and legend. Each follower learner has one colour and line
style and each leader one colour, fixed for the whole report, so a reader who learns them on one
figure can read the next one without its legend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Okabe-Ito (colour-blind safe), then tab10's remaining hues for larger tournaments.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
          "#F0E442", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (3, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Palette:
    """The report's fixed orders of leaders and followers, and their styles."""

    leaders: tuple[str, ...]
    followers: tuple[str, ...]

    def leader_color(self, leader: str) -> str:
        return COLORS[self._index(self.leaders, leader) % len(COLORS)]

    def follower_style(self, follower: str) -> dict:
        """Line properties of a follower learner's curve: colour, line style, marker."""
        k = self._index(self.followers, follower)
        return {"color": COLORS[k % len(COLORS)],
                "linestyle": LINESTYLES[(k // len(COLORS)) % len(LINESTYLES)],
                "marker": MARKERS[k % len(MARKERS)]}

    @staticmethod
    def _index(names: tuple[str, ...], name: str) -> int:
        return names.index(name) if name in names else len(names)


def _ordered(found: Iterable[str], preferred: Sequence[str]) -> tuple[str, ...]:
    found = set(found)
    first = [n for n in dict.fromkeys(preferred) if n in found]
    return tuple(first + sorted(found - set(first)))


def spec_labels(spec: Mapping | None, section: str) -> tuple[str, ...]:
    """The labels of a spec section (``leaders``, ``followers``, ``games``), in spec order."""
    entries = (spec or {}).get(section, ())
    labels = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping):
            label = entry.get("label") or entry.get("algorithm") or entry.get("learner") \
                or entry.get("id")
            if isinstance(label, str):
                labels.append(label)
    return tuple(labels)


def make_palette(leaders: Iterable[str], followers: Iterable[str],
                 spec: Mapping | None = None) -> Palette:
    """The palette of a report: the names found, in the spec's order where it has them."""
    return Palette(_ordered(leaders, spec_labels(spec, "leaders")),
                   _ordered(followers, spec_labels(spec, "followers")))


def color_limits(values: np.ndarray, log: bool,
                 percentiles: tuple[float, float] = (5.0, 95.0)) -> tuple[float, float] | None:
    """Robust limits of a heatmap's colour scale: the given percentiles of its finite values
    (of its positive values on a log scale), so one outlier does not wash out the rest; cells
    beyond them take the end colours. None when there is nothing to scale."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x) & (x > 0)] if log else x[np.isfinite(x)]
    if x.size == 0:
        return None
    low, high = np.percentile(np.log10(x) if log else x, percentiles)
    if log:
        low, high = 10.0 ** low, 10.0 ** high
    if not high > low:  # one distinct value: a scale around it
        low, high = (low / 10, high * 10) if log else (low - 0.5, high + 0.5)
    return float(low), float(high)

"""Parameter checks shared by the game builders and the environments.

Every check returns the cleaned value or raises a :class:`ValueError` whose message names the
parameter and shows the offending value, e.g. ``n_states must be a positive integer, got 0``.
"""

from __future__ import annotations

import math
import numbers


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1."""
    if not _is_integer(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0."""
    if not _is_integer(value) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def finite_float(name: str, value: object, *, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite ``float`` (and >= 0 when ``nonnegative``)."""
    kind = "a finite non-negative number" if nonnegative else "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (nonnegative and number < 0):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return number


def probability(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def discount(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` discount factor in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a discount factor in [0, 1), got {value!r}")
    return float(value)

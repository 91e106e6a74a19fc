"""Checks for configuration dataclasses: one message format, naming the offending field."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_fields(
    config: object,
    *,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    positive_int: Iterable[str] = (),
    non_negative_int: Iterable[str] = (),
    unit_interval: Iterable[str] = (),
    section: str | None = None,
) -> None:
    """Raise ``ValueError`` naming the first field of ``config`` outside its range.

    Parameters
    ----------
    config : dataclass instance
    positive, non_negative : field names that must be finite numbers > 0 / >= 0
    positive_int, non_negative_int : field names that must be integers >= 1 / >= 0
    unit_interval : field names that must be numbers in [0, 1]
    section : str, optional
        Prefix for the message (e.g. ``"leader"``); defaults to the config's ``section``
        attribute, if any.
    """
    prefix = section or getattr(config, "section", "")
    prefix = f"{prefix}." if prefix else ""

    def fail(name: str, value: object, what: str) -> None:
        raise ValueError(f"{prefix}{name} must be {what}, got {value!r}")

    for name in positive:
        value = getattr(config, name)
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            fail(name, value, "a finite number > 0")
    for name in non_negative:
        value = getattr(config, name)
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            fail(name, value, "a finite number >= 0")
    for name in positive_int:
        value = getattr(config, name)
        if not _is_int(value) or value < 1:
            fail(name, value, "an integer >= 1")
    for name in non_negative_int:
        value = getattr(config, name)
        if not _is_int(value) or value < 0:
            fail(name, value, "an integer >= 0")
    for name in unit_interval:
        value = getattr(config, name)
        if not _is_number(value) or not (0 <= value <= 1):
            fail(name, value, "a number in [0, 1]")

"""Checks of user-given values, in one message style: ``<name> must be <what>, got <value>``.

Three kinds of check live here, so that every part of the project words its refusals alike:

- :func:`check_type`: does a value read from a config file fit a field's type annotation
  (a boolean field takes only ``true``/``false``, a number field refuses booleans and strings)?
- :func:`check_fields`: are the fields of a config dataclass in range?
- :func:`positive_int`, :func:`finite_float`, ... : one parameter of a game builder, returned
  cleaned.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def _is_int(value: object) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (numbers.Real, np.integer, np.floating)) \
        and not isinstance(value, (bool, np.bool_))


# -- types of config values -----------------------------------------------------------------

_SEQUENCES = (list, tuple, Sequence, typing.Sequence)


def describe_type(annotation: Any) -> str:
    """The expected type in words, for messages: ``float`` -> ``"a number"``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return "a boolean (true or false)"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args if a is not type(None))
    if origin in _SEQUENCES:
        inner = describe_type(args[0]) if args else "values"
        for article in ("an ", "a "):
            if inner.startswith(article):
                inner = inner[len(article):]
        plural = {"integer": "integers", "number": "numbers", "string": "strings",
                  "boolean (true or false)": "booleans (true or false)"}
        if inner.startswith("list of "):
            return "a list of lists of " + inner[len("list of "):]
        return "a list of " + plural.get(inner, inner)
    return "a value"


def _fits(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, (bool, np.bool_))
    if annotation is int:
        return _is_int(value)
    if annotation is float:
        return _is_number(value)
    if annotation is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args if a is not type(None)) or value is None
    if origin in _SEQUENCES:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            return False
        if not args or (origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)):
            return True  # a fixed-length tuple: left to the field's own check
        return all(_fits(item, args[0]) for item in value)
    return True  # anything else (Any, a mapping, a class): the field's own check decides


def check_type(name: str, value: Any, annotation: Any) -> None:
    """Raise ``ValueError`` if ``value`` does not fit the type ``annotation``.

    Booleans are not numbers here (TOML's ``true`` is no ``1``), strings are not numbers
    (``"0.5"`` is refused, not converted) and a non-empty string is no ``true``. Annotations
    this does not know (``Any``, a class) accept every value: the field's own check decides.

    Parameters
    ----------
    name : str
        How the message names the value, e.g. ``"leader.critic_step"``.
    value : Any
        The value as read (TOML data).
    annotation : type
        The field's resolved annotation (``typing.get_type_hints``).
    """
    if not _fits(value, annotation):
        raise ValueError(f"{name} must be {describe_type(annotation)}, got {value!r}")


@functools.cache
def _hints(owner: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(owner)
    except Exception:  # an annotation that does not resolve: no types to check against
        return {}


def check_types(section: str, values: Mapping[str, Any], owner: Any) -> None:
    """:func:`check_type` for every entry of ``values`` that ``owner`` annotates.

    ``owner`` is a dataclass or a function (its parameters); entries it does not annotate
    are left to the caller (unknown keys are refused elsewhere, with the accepted ones listed).
    Messages name the entry ``section.key``.
    """
    hints = _hints(owner)
    for key, value in values.items():
        if key in hints and key != "return":
            check_type(f"{section}.{key}" if section else key, value, hints[key])


# -- ranges of config dataclass fields ------------------------------------------------------


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
    """Raise ``ValueError`` naming the first field of ``config`` of the wrong type (every
    annotated field, see :func:`check_type`) or outside its range.

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

    if dataclasses.is_dataclass(config):
        check_types(prefix.rstrip("."), {f.name: getattr(config, f.name)
                                         for f in dataclasses.fields(config)}, type(config))

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


# -- one parameter of a game builder, cleaned -----------------------------------------------


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1."""
    if not _is_int(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0."""
    if not _is_int(value) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def finite_float(name: str, value: object, *, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite ``float`` (and >= 0 when ``nonnegative``)."""
    kind = "a finite non-negative number" if nonnegative else "a finite number"
    if not _is_number(value):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (nonnegative and number < 0):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return number


def probability(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` in [0, 1]."""
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def discount(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` discount factor in [0, 1)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a discount factor in [0, 1), got {value!r}")
    return float(value)

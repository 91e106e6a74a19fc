"""Sweeps: a list where a leader's or follower's hyperparameter takes one value is a grid.

In a spec (README, "Sweeps"), ``lam = [10, 100]`` in a ``[[leaders]]`` entry stands for two
entries, labelled ``pbrl-value[lam=10]`` and ``pbrl-value[lam=100]``; two lists give their
product, and a label names the swept keys in the order the entry writes them
(``pbrl-value[lam=10,alpha_x=0.5]``). Only a key whose field holds one value (a number, a
boolean, a string: the annotation of the agent's config dataclass, or a follower's ``tau``) is
swept; a list given to a field that itself holds a list or tuple is that field's value.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackelberg.app.config import AGENT_KEYS, FOLLOWER_COMMON_KEYS, ConfigError

#: Annotations of a single value: a list given to such a field is a sweep.
SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Variant:
    """One point of a sweep: its label, its parameters, and the swept keys' values."""

    label: str
    params: dict[str, Any]
    swept: tuple[tuple[str, Any], ...] = ()


def holds_one_value(annotation: Any) -> bool:
    """Whether a field annotated ``annotation`` takes a single number, boolean or string
    (``float``, ``Literal["a", "b"]``, ``int | None``), not a list or tuple."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(holds_one_value(a) for a in args)
    return annotation in SCALARS


def _field_types(section: str, name: str) -> dict[str, Any]:
    """The annotations of the keys an agent's entry takes (empty for an unknown agent)."""
    spec = AGENT_KEYS[section][1].get(name)
    if spec is None:
        return {}
    try:
        hints = typing.get_type_hints(spec.config_class)
    except Exception:  # an annotation that does not resolve: nothing is swept
        return {}
    if section == "follower":
        hints.update({key: float for key in FOLLOWER_COMMON_KEYS})
    return hints


def format_value(value: Any) -> str:
    """A value as a label shows it: TOML's spelling of booleans, exact floats."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def sweep_label(label: str, swept: tuple[tuple[str, Any], ...]) -> str:
    """``label[key=value,...]`` (just ``label`` when nothing is swept)."""
    if not swept:
        return label
    return f"{label}[{','.join(f'{k}={format_value(v)}' for k, v in swept)}]"


def expand(section: str, name: str, label: str, params: Mapping[str, Any],
           where: str) -> list[Variant]:
    """The entries a leader's or follower's entry stands for: itself if it sweeps nothing,
    else one per point of the product of its swept lists, in the order the keys are written.

    Raises
    ------
    ConfigError
        A swept list that is empty (naming ``where`` and the key).
    """
    types_ = _field_types(section, name)
    keys = [k for k, v in params.items()
            if isinstance(v, list) and k in types_ and holds_one_value(types_[k])]
    for key in keys:
        if not params[key]:
            raise ConfigError(f"{where}.{key}: an empty list sweeps nothing; give one value or "
                              "a list of the values to try")
    if not keys:
        return [Variant(label, dict(params))]
    variants = []
    for values in itertools.product(*(params[k] for k in keys)):
        swept = tuple(zip(keys, values, strict=True))
        variants.append(Variant(sweep_label(label, swept), {**params, **dict(swept)}, swept))
    return variants


__all__ = ["Variant", "expand", "format_value", "holds_one_value", "sweep_label"]

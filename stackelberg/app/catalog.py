"""What the registries offer, as data for ``stackelberg algorithms``: every leader and follower
with each parameter's type, default and a one-line description.

One source of truth: names and summaries come from :mod:`agents.registry`, types and defaults
from the config dataclasses, descriptions from the ``Attributes`` sections of their docstrings
(the numpy convention every config class follows; a base class documents its own fields).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from agents.registry import FOLLOWERS, LEADERS, AgentSpec
from stackelberg.app.config import default_tau

_SECTION = re.compile(r"^(\w[\w ]*)\n-+$", re.M)
_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:")


@dataclass(frozen=True)
class Parameter:
    """One key an agent's config section takes."""

    name: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class Algorithm:
    """A registered leader or follower learner and the keys of its config section."""

    role: str  # "leader" or "follower"
    name: str
    summary: str
    parameters: tuple[Parameter, ...]
    fixed: dict[str, Any]  # fields this name sets itself (pbrl-bellman: penalty = "bellman")
    kinds: tuple[str, ...] = ("game",)  # the registry kinds it plays
    #: The same name's forms for other kinds (an economy's followers, happy text), each with
    #: its own parameters (:class:`agents.registry.AgentSpec`).
    forms: tuple[Algorithm, ...] = ()

    def as_json(self) -> dict[str, Any]:
        found = {"role": self.role, "name": self.name, "summary": self.summary,
                 "parameters": [dataclasses.asdict(p) for p in self.parameters],
                 "fixed": self.fixed, "kinds": list(self.kinds)}
        for form in self.forms:  # under its kind's name: "economy", "text"
            found[form.kinds[0]] = form.as_json()
        return found


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (``e.g.`` and ``a.b`` do not)."""
    return re.split(r"(?<=\.)\s+(?=[A-Z`(])", text.strip(), maxsplit=1)[0]


def _entries(body: str) -> dict[str, str]:
    """``name : type`` entries of one numpy-style section and their descriptions; an entry
    may name several fields (``w0, w_growth : float``)."""
    found: dict[str, str] = {}
    names: list[str] = []
    lines: list[str] = []
    for line in [*body.splitlines(), "END:"]:  # the sentinel closes the last entry
        entry = _ENTRY.match(line)
        if entry or not line.strip():
            found.update({n: first_sentence(" ".join(lines)) for n in names})
            names = [n.strip() for n in entry.group(1).split(",")] if entry else []
            lines = []
        elif names:
            lines.append(line.strip())
    return found


def attribute_docs(cls: type) -> dict[str, str]:
    """First sentence of each entry of the ``Attributes`` sections of ``cls`` and its bases
    (a subclass's entry wins over its base's)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        sections = _SECTION.split(doc)  # [preamble, title, body, title, body, ...]
        for title, body in zip(sections[1::2], sections[2::2], strict=True):
            if title.strip() in ("Attributes", "Parameters"):
                found.update(_entries(body))
    return found


def type_name(annotation: Any) -> str:
    """``float``, ``int | None``, ``tuple[float, ...]``: an annotation as code writes it."""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe(role: str, spec: AgentSpec) -> Algorithm:
    """The :class:`Algorithm` of one registry entry."""
    hints = typing.get_type_hints(spec.config_class)
    docs = attribute_docs(spec.config_class)
    defaults = dataclasses.asdict(spec.make_config())
    fixed = dict(spec.fixed)
    parameters = []
    if role == "follower":  # not a dataclass field: ExperimentConfig.tau
        text = spec.kinds == ("text",)
        parameters.append(Parameter("tau", "float", default_tau(spec.kinds[0]),
                                    "KL weight to the pre-trained model (docs/theory.md §8.2)."
                                    if text else "Entropy weight of the follower's objective "
                                    "(docs/theory.md §1); > 0 makes its best response unique."))
    for f in dataclasses.fields(spec.config_class):
        if f.name in fixed:
            continue
        parameters.append(Parameter(f.name, type_name(hints.get(f.name, f.type)),
                                    defaults[f.name], docs.get(f.name, "")))
    return Algorithm(role, spec.name, spec.summary, tuple(parameters), fixed, spec.kinds,
                     tuple(describe(role, form) for form in spec.forms))


#: Longest parameter description in :func:`as_text` (the JSON listing has every one whole).
DESCRIPTION_WIDTH = 72


def as_text(found: list[Algorithm]) -> str:
    """The listing ``stackelberg algorithms`` prints: per role, each name and summary, then
    ``name: type = default  description`` per parameter (values spelled as in TOML)."""
    lines = []
    for role in ("leader", "follower"):
        lines.append(f"{role}s ([{role}] {'algorithm' if role == 'leader' else 'learner'} "
                     "= NAME):")
        for algorithm in (a for a in found if a.role == role):
            fixed = ", ".join(f"{k} = {json.dumps(v)}" for k, v in algorithm.fixed.items())
            every = (*algorithm.kinds, *(k for form in algorithm.forms for k in form.kinds))
            plays = "" if every == ("game",) else f" (plays: {', '.join(every)})"
            lines.append(f"  {algorithm.name}: {algorithm.summary}"
                         + (f" [{fixed}]" if fixed else "") + plays)
            lines.extend(_parameter_lines(algorithm.parameters, "      "))
            for form in algorithm.forms:
                lines.append(f"    {form.summary}:")
                lines.extend(_parameter_lines(form.parameters, "      "))
    return "\n".join(lines)


def _parameter_lines(parameters: tuple[Parameter, ...], indent: str) -> list[str]:
    lines = []
    for p in parameters:
        text = p.description
        if len(text) > DESCRIPTION_WIDTH:
            text = text[:DESCRIPTION_WIDTH - 3].rstrip() + "..."
        lines.append(f"{indent}{p.name}: {p.type} = {json.dumps(p.default)}  {text}")
    return lines


def algorithms() -> list[Algorithm]:
    """Every registered leader, then every follower learner, in registry order."""
    return [*(describe("leader", s) for s in LEADERS.values()),
            *(describe("follower", s) for s in FOLLOWERS.values())]


__all__ = ["Algorithm", "Parameter", "algorithms", "as_text", "attribute_docs", "describe"]

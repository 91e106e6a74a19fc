"""Command-line overrides of a tournament spec: ``key=value`` applied to the spec as read.

How an override names what it changes (README, "Tournaments")::

    seeds=[0,1]                   the top-level list of run seeds
    budget.iterations=50          a key of [budget]; run.iterations=50 is the same (the
                                  budget holds what [run] holds in an experiment config)
    leaders.pbrl-value.lam=10     a key of the [[leaders]] entry labelled pbrl-value (its
                                  label, or its algorithm when it has none)
    followers.*.tau=0.05          a key of every [[followers]] entry
    games.textbook.n_states=4     likewise for [[games]]

Values are TOML values, as ``stackelberg run``'s ``section.key=value`` (``lam=[10,100]`` makes
a sweep, ``budget={iterations=100}`` a leader's own budget). Overrides change the spec before it
is validated, so the spec that runs, and that the results store is bound to, includes them: a
rerun with the same overrides resumes, one with overrides that change the spec is refused as a
different tournament. ``leaders.LABEL.algorithm=X`` starts from X's defaults as in ``run``
(:func:`stackelberg.app.config.switch_agent`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stackelberg.app.config import (
    AGENT_KEYS,
    ConfigError,
    Overridden,
    parse_value,
    switch_agent,
)

#: The spec's lists of entries, and the section of an experiment config each entry becomes.
LISTS = {"games": "game", "leaders": "leader", "followers": "follower"}
NAME_KEYS = {"game": "id", "leader": "algorithm", "follower": "learner"}
BUDGET_NAMES = ("budget", "run")
ADDRESSES = ("seeds=[...]", "budget.KEY=...", "run.KEY=...", "games.LABEL.KEY=...",
             "leaders.LABEL.KEY=...", "followers.LABEL.KEY=...")
#: Keys of an entry that are not its agent's parameters (kept when the agent is switched).
ENTRY_KEYS = ("label", "budget")


def _refuse(item: str, why: str) -> ConfigError:
    return ConfigError(f"override {item!r}: {why}; an override is one of "
                       f"{', '.join(ADDRESSES)} (LABEL * means every entry)")


def _chosen(data: Mapping[str, Any], plural: str, label: str, item: str) -> list[int]:
    """Positions of the entries of list ``plural`` labelled ``label`` (every one for ``*``)."""
    items = data.get(plural)
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise _refuse(item, f"the spec has no [[{plural}]] entries")
    name_key = NAME_KEYS[LISTS[plural]]
    # a game entry naming a user's environment is named by env, as the spec's entries are
    labels = [e.get("label", e.get(name_key, e.get("env"))) for e in items]
    chosen = [k for k, x in enumerate(labels) if label in ("*", x)]
    if not chosen:
        raise ConfigError(f"override {item!r}: no entry of {plural} is labelled {label!r}; "
                          f"labels: {', '.join(map(repr, labels))}")
    return chosen


def apply_spec_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> Overridden:
    """Apply ``key=value`` overrides to raw spec data (a new dict is returned; ``data`` is
    unchanged).

    Raises
    ------
    ConfigError
        An override that is not ``key=value`` or names nothing in the spec (the message
        quotes it). Values are checked when the spec is validated, with the spec's messages.
    """
    out = {k: [dict(e) if isinstance(e, dict) else e for e in v] if isinstance(v, list) else v
           for k, v in data.items()}
    given: dict[tuple[str, int], set[str]] = {}  # keys set per entry: (list, position)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _refuse(item, "it is not of the form key=value")
        value = parse_value(text.strip())
        head, dot, rest = key.partition(".")
        if not dot:
            if head != "seeds":
                raise _refuse(item, f"{head!r} is not a top-level entry to set")
            out["seeds"] = value
        elif head in BUDGET_NAMES:
            if not rest or "." in rest:
                raise _refuse(item, f"name one key of [budget] after {head}.")
            budget = out.get("budget", {})
            out["budget"] = {**(budget if isinstance(budget, dict) else {}), rest: value}
        elif head in LISTS:
            label, dot, name = rest.rpartition(".")
            if not dot or not label or not name:
                raise _refuse(item, f"name an entry and a key: {head}.LABEL.KEY=value")
            for k in _chosen(out, head, label, item):
                out[head][k][name] = value
                given.setdefault((head, k), set(ENTRY_KEYS)).add(name)
        else:
            raise _refuse(item, f"the spec has no {head!r} to override")
    notes = []
    for (plural, k), keys in given.items():
        section = LISTS[plural]
        if section not in AGENT_KEYS:
            continue
        out[plural][k], dropped = switch_agent(section, data[plural][k], out[plural][k], keys)
        if dropped:
            name = out[plural][k][NAME_KEYS[section]]
            notes.append(f"{plural}[{k}]: {NAME_KEYS[section]} = {name!r} drops "
                         f"{', '.join(dropped)} (not taken by {name}; it starts from its "
                         "defaults)")
    return Overridden(out, tuple(notes))


__all__ = ["apply_spec_overrides"]

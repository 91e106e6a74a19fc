"""The validated exact model of a finite two-player Stackelberg Markov game.

A finite game is five arrays (REFERENCE §1, "Stackelberg Markov game reduction"):

- ``transitions[s, b, a, s']`` = P(s' | s, b, a), leader action ``b``, follower action ``a``;
- ``leader_rewards[s, b, a]`` and ``follower_rewards[s, b, a]``;
- ``initial[s]``, the initial state distribution;
- ``gamma``, the discount in [0, 1).

Every environment in ``games`` samples from such a model, so the sampled and the exact
worlds cannot disagree. Construction validates everything and names the offending array and
index in the error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Absolute tolerance on probability rows summing to one.
PROBABILITY_ATOL = 1e-8

#: Largest value scale ``max |r| / (1 - gamma)`` a model may have. Values reach this scale,
#: gradients one more factor ``1 / (1 - gamma)`` (occupancies), the hypergradient a factor
#: ``1 / tau`` more, and norms square all of it: with values at most 1e100, every one of these
#: stays many orders of magnitude below the largest double (1.8e308) for any ``gamma`` and
#: ``tau`` a config can reasonably hold, where payoffs of 1e308 overflow to inf and end in NaN
#: policies. (Relative precision does not depend on the scale; this bound is about range.)
MAX_VALUE_SCALE = 1e100


class ModelError(ValueError):
    """A game model is malformed (shapes, probabilities, non-finite values, discount)."""


def _as_float_array(name: str, value: object, ndim: int) -> np.ndarray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{name} is not a numeric array: {err}") from None
    if array.ndim != ndim:
        raise ModelError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def _first_bad_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise :class:`ModelError` naming the first NaN or infinite entry of ``array``."""
    bad = ~np.isfinite(array)
    if bad.any():
        index = _first_bad_index(bad)
        raise ModelError(f"{name}{list(index)} is {array[index]}: values must be finite")


def check_distribution(name: str, array: np.ndarray, axis: int = -1) -> None:
    """Raise :class:`ModelError` unless ``array`` holds probability vectors along ``axis``."""
    check_finite(name, array)
    negative = array < 0
    if negative.any():
        index = _first_bad_index(negative)
        raise ModelError(f"{name}{list(index)} = {float(array[index])!r} is a negative probability")
    sums = array.sum(axis=axis)
    off = np.abs(sums - 1.0) > PROBABILITY_ATOL
    if off.any():
        index = _first_bad_index(np.atleast_1d(off))
        row = list(index) if sums.ndim else []
        value = float(np.atleast_1d(sums)[index])
        raise ModelError(f"{name}{row} sums to {value!r}, not 1 (a probability row)")


def check_value_scale(name: str, rewards: np.ndarray, gamma: float) -> None:
    """Raise :class:`ModelError` naming the largest entry of ``rewards`` when
    ``max |r| / (1 - gamma)`` exceeds :data:`MAX_VALUE_SCALE`."""
    if rewards.size == 0:
        return
    index = np.unravel_index(int(np.abs(rewards).argmax()), rewards.shape)
    largest = float(abs(rewards[index]))
    with np.errstate(over="ignore"):
        scale = largest / (1.0 - gamma)
    if not scale <= MAX_VALUE_SCALE:
        raise ModelError(
            f"{name}{[int(i) for i in index]} = {float(rewards[index])!r} is too large: with "
            f"gamma = {gamma!r} the values reach |r| / (1 - gamma) = {scale:.3g}, above "
            f"{MAX_VALUE_SCALE:.0e}, the largest scale evaluated safely; rescale the rewards")


@dataclass(frozen=True)
class GameModel:
    """Exact model of a finite Stackelberg Markov game (leader moves ``b``, follower ``a``).

    Parameters
    ----------
    transitions : array, shape (S, B, A, S)
        ``transitions[s, b, a, s']`` is the probability of moving to ``s'``.
    leader_rewards, follower_rewards : array, shape (S, B, A)
        Immediate rewards of the leader and of the follower.
    initial : array, shape (S,)
        Initial state distribution.
    gamma : float
        Discount factor in [0, 1).
    name : str
        A human-readable name, used in tables and figures.
    state_names, leader_action_names, follower_action_names : tuple of str, optional
        Labels; default to ``s0, s1, ...``, ``b0, ...`` and ``a0, ...``.
    shared_commitment : bool
        If true the leader commits to one distribution over its actions, used in every state
        (e.g. a designer choosing where to put a reward), so its variable has one row instead
        of one per state. Default: one distribution per state.
    """

    transitions: np.ndarray
    leader_rewards: np.ndarray
    follower_rewards: np.ndarray
    initial: np.ndarray
    gamma: float
    name: str = "game"
    state_names: tuple[str, ...] = field(default=())
    leader_action_names: tuple[str, ...] = field(default=())
    follower_action_names: tuple[str, ...] = field(default=())
    shared_commitment: bool = False

    def __post_init__(self) -> None:
        P = _as_float_array("transitions", self.transitions, 4)
        rL = _as_float_array("leader_rewards", self.leader_rewards, 3)
        rF = _as_float_array("follower_rewards", self.follower_rewards, 3)
        rho = _as_float_array("initial", self.initial, 1)
        S, B, A, S2 = P.shape
        if min(S, B, A) < 1:
            raise ModelError(f"transitions has an empty dimension: shape {P.shape}")
        if S2 != S:
            raise ModelError(
                f"transitions must have shape (S, B, A, S); got {P.shape} "
                f"({S} states but {S2} next states)"
            )
        for name, r in (("leader_rewards", rL), ("follower_rewards", rF)):
            if r.shape != (S, B, A):
                raise ModelError(
                    f"{name} must have shape (S, B, A) = {(S, B, A)} to match transitions, "
                    f"got {r.shape}"
                )
            check_finite(name, r)
        if rho.shape != (S,):
            raise ModelError(
                f"initial must have shape ({S},) to match transitions, got {rho.shape}"
            )
        check_distribution("transitions", P, axis=-1)
        check_distribution("initial", rho, axis=-1)
        try:
            gamma = float(self.gamma)
        except (TypeError, ValueError):
            raise ModelError(f"gamma must be a number, got {self.gamma!r}") from None
        if not (0.0 <= gamma < 1.0):
            raise ModelError(f"gamma must be in [0, 1), got {gamma!r}")
        for attr, count, prefix in (
            ("state_names", S, "s"),
            ("leader_action_names", B, "b"),
            ("follower_action_names", A, "a"),
        ):
            names = tuple(str(n) for n in getattr(self, attr)) or tuple(
                f"{prefix}{i}" for i in range(count)
            )
            if len(names) != count:
                raise ModelError(f"{attr} has {len(names)} labels for {count} entries")
            object.__setattr__(self, attr, names)
        for attr, array in (
            ("transitions", P),
            ("leader_rewards", rL),
            ("follower_rewards", rF),
            ("initial", rho),
        ):
            array.setflags(write=False)
            object.__setattr__(self, attr, array)
        object.__setattr__(self, "gamma", gamma)
        for name, r in (("leader_rewards", rL), ("follower_rewards", rF)):
            check_value_scale(name, r, gamma)
        if not isinstance(self.shared_commitment, (bool, np.bool_)):
            raise ModelError(
                f"shared_commitment must be True or False, got {self.shared_commitment!r}"
            )

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_leader_actions(self) -> int:
        return self.transitions.shape[1]

    @property
    def n_follower_actions(self) -> int:
        return self.transitions.shape[2]

    @property
    def is_matrix_game(self) -> bool:
        """One state and no future: a bimatrix game (REFERENCE §1)."""
        return self.n_states == 1 and self.gamma == 0.0

    @property
    def leader_independent_transitions(self) -> bool:
        """``P(s'|s, b, a)`` is the same for every leader action ``b``: the leader shapes only
        rewards (what RAC's Hessian-free x-gradient needs, REFERENCE §4)."""
        return bool(np.allclose(self.transitions, self.transitions[:, :1]))

    def reward_range(self) -> tuple[float, float]:
        """Smallest and largest immediate reward of either player."""
        both = np.concatenate([self.leader_rewards.ravel(), self.follower_rewards.ravel()])
        return float(both.min()), float(both.max())

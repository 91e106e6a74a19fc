"""The validated exact model of a finite two-player Stackelberg Markov game.

A finite game is five arrays (docs/theory.md §1, "Stackelberg Markov game reduction"):

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
from functools import cached_property

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


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
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
class TransitionSupport:
    """The outcomes ``(b, a, s')`` of each state ``s`` with ``P(s'|s, b, a) > 0``.

    Attributes
    ----------
    outcomes : int array (S, W)
        Flat indices ``(b A + a) S + s'`` in increasing order; a row with fewer than ``W``
        positive outcomes is padded at the end with its last one.
    actions : int array (S, W)
        The joint action ``b A + a`` of each outcome (``outcomes // S``).
    probs : array (S, W)
        ``P(s'|s, b, a)`` of each outcome (0 on the padding).
    """

    outcomes: np.ndarray
    actions: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class NextStateTable:
    """Inverse-CDF tables of the next state, one row per ``(s, b, a)``, over the positive
    entries of ``P(.|s, b, a)`` only (at most ``W`` of them).

    A draw with ``u`` uniform in [0, 1) is ``states[s, b, a, k]`` with ``k`` the number of
    entries of ``cdf[s, b, a]`` at or below ``u * cdf[s, b, a, -1]``: the same next state as
    counting over the full row of ``S`` cumulative sums, whose first entry above the key is
    always at a positive probability.

    Attributes
    ----------
    cdf : array (S, B, A, W)
        Cumulative sums at the positive entries, in increasing order of ``s'``; a row with
        fewer than ``W`` of them repeats its total.
    states : int array (S, B, A, W + 1)
        The next state of each entry (the padding's: the row's last positive one), and
        ``S - 1`` in the last column (a key at the total, which rounding may produce).
    """

    cdf: np.ndarray
    states: np.ndarray


#: :attr:`GameModel.transition_support` is kept only when no state has more than this share of
#: its ``B A S`` outcomes possible (a sparse table is no faster on fuller rows).
SPARSE_SUPPORT = 0.5


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
        """One state and no future: a bimatrix game (docs/theory.md §1)."""
        return self.n_states == 1 and self.gamma == 0.0

    @cached_property
    def leader_independent_transitions(self) -> bool:
        """``P(s'|s, b, a)`` is the same for every leader action ``b``: the leader shapes only
        rewards (what RAC's Hessian-free x-gradient needs, Zeng et al. 2026). Decided once per
        model (the sampled leaders ask at every estimate)."""
        return bool(np.allclose(self.transitions, self.transitions[:, :1]))

    @cached_property
    def next_state_table(self) -> NextStateTable:
        """The cumulative sums of every row ``P(.|s, b, a)`` over its positive entries, for
        inverse-CDF sampling of next states (:func:`stackelberg.sampling.sample_transitions`),
        computed once per model instead of for every sampled row. Leaving out the zeros changes
        no sum (adding 0 is exact) and no draw (see :class:`NextStateTable`)."""
        P = self.transitions
        positive = P > 0
        counts = positive.sum(axis=-1)
        width = int(counts.max())
        # a stable sort puts every row's positive entries first, in increasing order
        order = np.argsort(~positive, axis=-1, kind="stable")[..., :width]
        padding = np.arange(width) >= counts[..., None]
        cdf = np.cumsum(np.where(padding, 0.0, np.take_along_axis(P, order, axis=-1)), axis=-1)
        last = np.take_along_axis(order, (counts - 1)[..., None], axis=-1)
        beyond = np.full((*counts.shape, 1), self.n_states - 1)
        states = np.concatenate([np.where(padding, last, order), beyond], axis=-1)
        return NextStateTable(cdf=_read_only(cdf), states=_read_only(states))
    @cached_property
    def transition_support(self) -> TransitionSupport | None:
        """Where the transitions are positive (:class:`TransitionSupport`), for sampling rounds
        from sparse games (:mod:`stackelberg.sampling`); None when some state has more than
        ``SPARSE_SUPPORT`` of its outcomes possible. Found once per model."""
        S = self.n_states
        flat = self.transitions.reshape(S, -1)
        positive = flat > 0
        counts = positive.sum(axis=1)
        width = int(counts.max())
        if width > SPARSE_SUPPORT * flat.shape[1]:
            return None
        # a stable sort puts every row's positive outcomes first, in increasing order
        order = np.argsort(~positive, axis=1, kind="stable")[:, :width]
        padding = np.arange(width)[None, :] >= counts[:, None]
        last = np.take_along_axis(order, (counts - 1)[:, None], axis=1)
        outcomes = _read_only(np.where(padding, last, order))
        probs = np.where(padding, 0.0, np.take_along_axis(flat, order, axis=1))
        return TransitionSupport(outcomes=outcomes, actions=_read_only(outcomes // S),
                                 probs=_read_only(probs))

    @cached_property
    def initial_cdf(self) -> np.ndarray:
        """``cumsum(initial)``, read-only (see :attr:`transition_cdf`)."""
        return _read_only(np.cumsum(self.initial))

    def reward_range(self) -> tuple[float, float]:
        """Smallest and largest immediate reward of either player."""
        both = np.concatenate([self.leader_rewards.ravel(), self.follower_rewards.ravel()])
        return float(both.min()), float(both.max())

"""Vectorized sampling of transitions from a game's exact model.

The PettingZoo environments are the interface; sample-based learners draw batches here, from
the same arrays the environments sample from, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import NamedTuple

import numpy as np

from stackelberg.model import GameModel, check_distribution
from stackelberg.tabular import SHORT_ROW


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs`` (shape ``(N, K)``) by inverting the cumulative sums."""
    return sample_from_cdf(np.cumsum(probs, axis=1), rng)


def sample_from_cdf(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of the cumulative sums ``cdf`` (shape ``(N, K)``, each row
    non-decreasing): the number of entries at or below ``u * cdf[-1]``, ``u`` uniform in
    [0, 1), capped at ``K - 1`` (:func:`sample_categorical` of the probabilities whose
    cumulative sums these are). Given precomputed sums, it skips the cumulative sum of every
    drawn row and gives the same draws."""
    return np.minimum(_entries_below_key(cdf, rng), cdf.shape[1] - 1)


def _entries_below_key(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How many entries of each row of ``cdf`` are at or below ``u`` times the row's last."""
    n, width = cdf.shape
    u = rng.random((n, 1)) * cdf[:, -1:]
    if width > SHORT_ROW:
        return (cdf <= u).sum(axis=1)
    # a few columns: one comparison per column (numpy's reduction along a short last axis
    # loops over the rows, several times slower)
    u = u[:, 0]
    count = np.zeros(n, dtype=np.int64)
    for column in cdf.T:
        count += column <= u
    return count


@dataclass(frozen=True)
class TransitionBatch:
    """A batch of one-step transitions ``(s, b, a, r_L, r_F, s')``, arrays of equal length."""

    states: np.ndarray
    leader_actions: np.ndarray
    follower_actions: np.ndarray
    leader_rewards: np.ndarray
    follower_rewards: np.ndarray
    next_states: np.ndarray

    def __len__(self) -> int:
        return len(self.states)

    @classmethod
    def concatenate(cls, batches: Sequence[TransitionBatch]) -> TransitionBatch:
        """One batch holding ``batches`` one after the other."""
        return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in batches])
                      for f in fields(cls)})


def sample_transitions(
    model: GameModel,
    mu: np.ndarray,
    states: np.ndarray,
    follower_actions: np.ndarray,
    rng: np.random.Generator,
) -> TransitionBatch:
    """Draw the leader's action ``b ~ mu(.|s)`` and the next state ``s' ~ P(.|s, b, a)``.

    Parameters
    ----------
    model : GameModel
    mu : array (S, B)
        The leader's commitment.
    states, follower_actions : int arrays (N,)
    rng : numpy Generator
    """
    # mu's cumulative sums once per state, then gathered: the same numbers as summing every
    # gathered row, in a fraction of the time (likewise the model's precomputed P sums)
    b = sample_from_cdf(np.cumsum(mu, axis=1)[states], rng)
    table = model.next_state_table
    # one flat index per (s, b, a): a single take is faster than indexing with three arrays
    cell = states * model.n_leader_actions
    cell += b
    cell *= model.n_follower_actions
    cell += follower_actions
    width = table.cdf.shape[-1]
    count = _entries_below_key(table.cdf.reshape(-1, width)[cell], rng)
    count += cell * (width + 1)
    return TransitionBatch(
        states=states,
        leader_actions=b,
        follower_actions=follower_actions,
        leader_rewards=model.leader_rewards.reshape(-1).take(cell),
        follower_rewards=model.follower_rewards.reshape(-1).take(cell),
        next_states=table.states.reshape(-1).take(count),
    )


# -- trajectories ---------------------------------------------------------------------------


class _CategoricalRows:
    """Inverse-CDF sampling from many categorical distributions at once, exactly, in integers.

    Row ``r`` of ``probs`` (shape ``(R, K)``, non-negative rows with a positive sum) becomes the
    integers ``(r << shift) + floor(2**shift * cdf[r, k])`` in one sorted array ``table``, where
    ``cdf`` is the row's cumulative sum divided by its total. A draw in row ``r`` with ``U``
    uniform on ``0 .. 2**shift - 1`` is the position at which ``(r << shift) + U`` would be
    inserted (``table.searchsorted(..., side="right")``). Integers make the rows' boundaries
    exact: a draw never leaves its row, never lands on a zero-probability category, and each
    probability is represented to ``2**-shift`` (``2**-53`` for fewer than ``2**10`` rows,
    like ``Generator.random``).

    Speed: a plain ``searchsorted`` of unsorted keys costs one mispredicted branch per level of
    the binary search (~50-100 ns a key here). Instead a guide table (Chen & Asau's cutpoint
    method) gives, for each of ``M >= K`` equal slices of ``U``'s range, the first category
    the slice can fall in; the key then advances over at most ``GUIDE_STEPS`` boundaries,
    branch-free and vectorized, and the few keys still short of their category (those in
    slices crossed by several boundaries) are finished by ``searchsorted``. The result is the
    same index as the plain search, 3 to 4 times faster for ``K`` from 90 to 900.
    """

    GUIDE_STEPS = 2

    def __init__(self, probs: np.ndarray, categories: np.ndarray | None = None):
        """``probs`` of shape ``(R, K)``; or, with ``categories`` (integers of the same shape,
        increasing along each row), only the entries of a sparser distribution that may be
        positive: ``probs[r, j]`` is then the probability of category ``categories[r, j]``,
        every other category has probability 0, and draws are reported as categories. Leaving
        out zeros changes no draw: a cumulative sum is unchanged by adding 0, and a draw is
        the first entry above the key, never one of a run of equal entries but its first."""
        n_rows, n_categories = probs.shape
        self.categories = None if categories is None else categories.ravel()
        self.n_categories = n_categories
        self.shift = min(53, 63 - n_rows.bit_length())  # keeps n_rows << shift < 2**63
        cdf = np.cumsum(probs, axis=1)
        cdf /= cdf[:, -1:].copy()  # exactly 1 (x / x) at the end and after the last positive
        cdf *= float(1 << self.shift)  # exact: a power of two
        local = cdf.astype(np.int64)  # floor: non-decreasing, equal across zero probabilities
        del cdf
        row = np.arange(n_rows, dtype=np.int64)[:, None]

        # Guide: M = 2**bucket_bits >= K slices of width 2**width_bits; guide[r, m] is the first
        # index whose cdf exceeds the slice's start m * width, i.e. #{k: cdf_k <= m * width}
        # = #{k: ceil(cdf_k / width) <= m}, a cumulative count. Rows are M + 1 long (the last
        # column counts the entries equal to 1 and is never looked up).
        self.bucket_bits = min((n_categories - 1).bit_length(), self.shift)
        self.width_bits = self.shift - self.bucket_bits
        self.guide_stride = (1 << self.bucket_bits) + 1
        ceil_slice = local + ((1 << self.width_bits) - 1)
        ceil_slice >>= self.width_bits  # 0 .. M
        ceil_slice += row * self.guide_stride
        guide = np.bincount(ceil_slice.ravel(), minlength=n_rows * self.guide_stride)
        del ceil_slice
        guide = guide.reshape(n_rows, self.guide_stride)
        np.cumsum(guide, axis=1, out=guide)
        guide += row * n_categories
        self.guide = guide.ravel()

        local += row << self.shift
        self.table = local.ravel()

    def keys(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniform keys for :meth:`find`. Drawing them for several calls at once gives
        the same keys as drawing them call by call (a power-of-two range: every key takes one
        64-bit word of the stream, nothing is buffered or rejected)."""
        return rng.integers(0, 1 << self.shift, size=n, dtype=np.int64)

    def draw(self, rows: np.ndarray, rng: np.random.Generator,
             n_categories: int | None = None) -> np.ndarray:
        """One draw in each of ``rows`` (int64); returns flat indices ``row * K + category``
        (``K = n_categories``, the number of categories of a sparse table's rows)."""
        return self.find(rows, self.keys(len(rows), rng), n_categories)

    def find(self, rows: np.ndarray, u: np.ndarray,
             n_categories: int | None = None) -> np.ndarray:
        """:meth:`draw` with the keys ``u`` given (from :meth:`keys`)."""
        index = self.locate(rows, u)
        if self.categories is None:
            return index
        index = self.categories[index]
        index += rows * n_categories
        return index

    def locate(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``table.searchsorted((rows << shift) + u, side="right")``, for ``0 <= u < 2**shift``."""
        table = self.table
        index = self.guide[rows * self.guide_stride + (u >> self.width_bits)]
        keys = u + (rows << self.shift)
        for _ in range(self.GUIDE_STEPS):
            index += table.take(index) <= keys
        pending = (table.take(index) <= keys).nonzero()[0]
        if pending.size:
            index[pending] = table.searchsorted(keys[pending], side="right")
        return index


class DiscountedReturns(NamedTuple):
    """Per-episode discounted returns of the two players, each of shape ``(n_episodes,)``."""

    leader: np.ndarray
    follower: np.ndarray


@dataclass(frozen=True)
class TrajectoryBatch:
    """``n_episodes`` parallel episodes of ``horizon`` rounds; every array has that shape.

    Row ``i`` is episode ``i``, column ``t`` its round ``t``: in state ``states[i, t]`` the
    leader played ``leader_actions[i, t]``, the follower ``follower_actions[i, t]``, they
    received ``leader_rewards[i, t]`` and ``follower_rewards[i, t]``, and the game moved to
    ``next_states[i, t]`` (which is ``states[i, t + 1]``).
    """

    states: np.ndarray
    leader_actions: np.ndarray
    follower_actions: np.ndarray
    leader_rewards: np.ndarray
    follower_rewards: np.ndarray
    next_states: np.ndarray

    @property
    def n_episodes(self) -> int:
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        return self.states.shape[1]

    @property
    def n_transitions(self) -> int:
        """``n_episodes * horizon``."""
        return self.states.size

    def flatten(self) -> TransitionBatch:
        """All transitions as one :class:`TransitionBatch`, episode after episode (row-major).

        ``flatten()`` of a batch of shape ``(N, T)`` holds transition ``(i, t)`` at position
        ``i * T + t``; reshaping its arrays to ``(N, T)`` gives back this batch.
        """
        return TransitionBatch(
            states=self.states.reshape(-1),
            leader_actions=self.leader_actions.reshape(-1),
            follower_actions=self.follower_actions.reshape(-1),
            leader_rewards=self.leader_rewards.reshape(-1),
            follower_rewards=self.follower_rewards.reshape(-1),
            next_states=self.next_states.reshape(-1),
        )

    def discounted_returns(self, gamma: float) -> DiscountedReturns:
        """``sum_t gamma**t r[i, t]`` of each episode ``i``, for the leader and the follower.

        The sums stop at the horizon: the expected value under the model falls short of the
        infinite-horizon value by a term of order ``gamma**horizon``.
        """
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        weights = gamma ** np.arange(self.horizon)
        return DiscountedReturns(
            leader=self.leader_rewards @ weights, follower=self.follower_rewards @ weights
        )


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _policy(name: str, value: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    policy = np.asarray(value, dtype=float)
    if policy.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {policy.shape}")
    check_distribution(name, policy, axis=1)
    return policy


def sample_trajectories(
    model: GameModel,
    mu: np.ndarray,
    pi: np.ndarray,
    n_episodes: int,
    horizon: int,
    rng: np.random.Generator,
    initial_states: np.ndarray | None = None,
) -> TrajectoryBatch:
    """Play ``n_episodes`` independent episodes of ``horizon`` rounds, all at once.

    Each episode starts in a state drawn from ``model.initial`` (or in ``initial_states``);
    every round, in state ``s``, the leader plays ``b ~ mu(.|s)``, the follower
    ``a ~ pi(.|s)`` (simultaneously, as in the parallel environment), both receive their
    rewards ``r(s, b, a)`` and the next state is ``s' ~ P(.|s, b, a)``.

    Parameters
    ----------
    model : GameModel
    mu : array (S, B)
        The leader's commitment, a distribution over her actions in every state.
    pi : array (S, A)
        The follower's policy.
    n_episodes, horizon : int >= 1
        Number of parallel episodes and rounds per episode.
    rng : numpy Generator
        The only source of randomness: the same generator state gives the same batch.
    initial_states : int array (n_episodes,), optional
        Start states; default: drawn from ``model.initial``.

    Returns
    -------
    TrajectoryBatch
        Arrays of shape ``(n_episodes, horizon)``: int64 states and actions, float rewards.

    Notes
    -----
    Vectorized over episodes; the only Python loop is over the rounds. Since ``b`` and ``a``
    are drawn independently given ``s``, a round is one draw from the joint distribution
    ``q(b, a, s' | s) = mu(b|s) pi(a|s) P(s'|s, b, a)``: its cumulative sums over the
    ``B * A * S`` outcomes of every state are computed once per call (as many numbers as the
    transition tensor), and each round costs one lookup of ``n_episodes`` uniform keys in that
    table (a guided search, see :class:`_CategoricalRows`). This is exact
    inverse-CDF sampling, like :func:`sample_categorical`, and was the fastest variant measured
    on random games with 3 x 3 actions and 10 or 100 states: 2-4 times as fast as drawing
    ``b``, ``a`` and ``s'`` in turn by comparing uniforms with precomputed cumulative sums, and
    4-12 times as fast as three :func:`sample_categorical` calls per round.
    ``benchmarks/bench_sampling.py`` measures the throughput against stepping the PettingZoo
    environment.

    The table is rebuilt at every call, in ``O(S * B * A * S)``, which dominates for one short
    batch in a large game: draw many episodes per call.
    """
    S = model.n_states
    rounds = _RoundTable(model, mu, pi)
    n_episodes = _count("n_episodes", n_episodes)
    horizon = _count("horizon", horizon)
    states = _start_states(model, n_episodes, rng, initial_states)
    outcomes = np.empty((horizon, n_episodes), dtype=np.int64)  # see _RoundTable.decode
    keys = rounds.keys(horizon * n_episodes, rng).reshape(horizon, n_episodes)
    for t in range(horizon):
        drawn = rounds.find(states, keys[t])
        outcomes[t] = drawn
        states = drawn % S
    return TrajectoryBatch(**rounds.decode(np.ascontiguousarray(outcomes.T)))


def _start_states(model: GameModel, n_episodes: int, rng: np.random.Generator,
                  initial_states: np.ndarray | None) -> np.ndarray:
    """``n_episodes`` start states drawn from ``model.initial``, or ``initial_states`` checked."""
    if initial_states is None:
        start = _CategoricalRows(model.initial[None, :])
        return start.draw(np.zeros(n_episodes, dtype=np.int64), rng)
    states = np.asarray(initial_states)
    if states.shape != (n_episodes,) or not np.issubdtype(states.dtype, np.integer):
        raise ValueError(
            f"initial_states must be an integer array of shape ({n_episodes},), got "
            f"{states.dtype} {states.shape}"
        )
    if states.size and (states.min() < 0 or states.max() >= model.n_states):
        raise ValueError(f"initial_states must lie in 0 .. {model.n_states - 1}")
    return states.astype(np.int64)


class _RoundTable:
    """One round of play as one draw from ``q(b, a, s' | s) = mu(b|s) pi(a|s) P(s'|s, b, a)``.

    A draw is the outcome index ``s * (B*A*S) + (b*A + a)*S + s'`` (see
    :func:`sample_trajectories`, Notes); :meth:`decode` turns an array of them into the fields
    of a :class:`TrajectoryBatch` of the same shape.
    """

    def __init__(self, model: GameModel, mu: np.ndarray, pi: np.ndarray):
        S, B, A = model.n_states, model.n_leader_actions, model.n_follower_actions
        mu = _policy("mu", mu, (S, B))
        pi = _policy("pi", pi, (S, A))
        self.model = model
        self.n_outcomes = B * A * S
        support = model.transition_support
        if support is None:
            joint = mu[:, :, None, None] * pi[:, None, :, None] * model.transitions
            self.rows = _CategoricalRows(joint.reshape(S, B * A * S))
        else:
            # the same products, at the outcomes the transitions allow only (a grid world
            # moves to one of 5 of its 87 cells: the table is 17 times smaller)
            mu_pi = (mu[:, :, None] * pi[:, None, :]).reshape(S, B * A)
            joint = np.take_along_axis(mu_pi, support.actions, axis=1) * support.probs
            self.rows = _CategoricalRows(joint, support.outcomes)

    def draw(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One outcome per state in ``states``; ``outcome % S`` is the next state."""
        return self.rows.draw(states, rng, self.n_outcomes)

    def keys(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` keys for :meth:`find`, as :meth:`draw` would draw them (one call for many
        rounds saves a generator call per round)."""
        return self.rows.keys(n, rng)

    def find(self, states: np.ndarray, u: np.ndarray) -> np.ndarray:
        """:meth:`draw` with the keys ``u`` given."""
        return self.rows.find(states, u, self.n_outcomes)

    def decode(self, outcomes: np.ndarray) -> dict[str, np.ndarray]:
        """The :class:`TrajectoryBatch` fields of ``outcomes`` (which it overwrites)."""
        model = self.model
        S, B, A = model.n_states, model.n_leader_actions, model.n_follower_actions
        # Decode in place, in as few fresh arrays as possible (each costs page faults): ``//``
        # by a scalar is fast in numpy, ``np.divmod`` and ``%`` are not.
        state_action = outcomes // S  # (s * B + b) * A + a
        leader_rewards = model.leader_rewards.reshape(-1).take(state_action)
        follower_rewards = model.follower_rewards.reshape(-1).take(state_action)
        scratch = np.multiply(state_action, S)
        next_states = np.subtract(outcomes, scratch, out=outcomes)
        state_leader = state_action // A  # s * B + b
        follower_actions = np.subtract(state_action, np.multiply(state_leader, A, out=scratch),
                                       out=state_action)
        states = state_leader // B
        leader_actions = np.subtract(state_leader, np.multiply(states, B, out=scratch),
                                     out=state_leader)
        return dict(
            states=states,
            leader_actions=leader_actions,
            follower_actions=follower_actions,
            leader_rewards=leader_rewards,
            follower_rewards=follower_rewards,
            next_states=next_states,
        )


# -- episodes of geometric length -------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeBatch:
    """Episodes of random lengths, all transitions in one flat batch, episode after episode.

    Episode ``i`` holds ``lengths[i]`` transitions, in the order played; ``rounds`` gives each
    transition's round ``t`` within its episode. Rewards are weighted by ``discount**t``: the
    part of the game's discount that the episodes' random lengths do not already apply
    (:func:`sample_episodes`).
    """

    transitions: TransitionBatch
    lengths: np.ndarray
    discount: float

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_transitions(self) -> int:
        """Transitions drawn from the model: ``lengths.sum()``."""
        return len(self.transitions)

    @cached_property
    def played(self) -> np.ndarray:
        """``played[i, t]``: episode ``i`` played round ``t``; shape ``(n_episodes, max length)``
        (its ``True`` entries in row-major order are the transitions, in order)."""
        return np.arange(self.lengths.max()) < self.lengths[:, None]

    @cached_property
    def episode(self) -> np.ndarray:
        """The episode of every transition, shape ``(n_transitions,)``."""
        return np.repeat(np.arange(self.n_episodes), self.lengths)

    @cached_property
    def rounds(self) -> np.ndarray:
        """The round ``t`` of every transition within its episode."""
        return np.nonzero(self.played)[1]

    def returns(self, rewards: np.ndarray) -> np.ndarray:
        """``sum_t discount**t rewards_t`` per episode, for a per-transition array ``rewards``."""
        weighted = rewards * self.discount ** self.rounds
        return np.bincount(self.episode, weights=weighted, minlength=self.n_episodes)

    def returns_to_go(self, rewards: np.ndarray) -> np.ndarray:
        """``G_t = sum_{t' >= t} discount**(t' - t) rewards_t'`` within each transition's
        episode (a backward recursion over the rounds, vectorized over the episodes)."""
        played = self.played
        padded = np.zeros(played.shape)
        padded[played] = rewards
        for t in range(padded.shape[1] - 2, -1, -1):
            padded[:, t] += self.discount * padded[:, t + 1]
        return padded[played]


def sample_episodes(
    model: GameModel,
    mu: np.ndarray,
    pi: np.ndarray,
    n_episodes: int,
    rng: np.random.Generator,
    continuation: float | None = None,
) -> EpisodeBatch:
    """Play ``n_episodes`` episodes that continue after every round with probability
    ``continuation`` (default ``gamma``).

    Each episode starts in a state drawn from ``model.initial`` and plays rounds as in
    :func:`sample_trajectories`; its length ``L`` is drawn in advance, geometric with
    ``P(L > t) = q**t`` (``q = continuation``), and its rewards are weighted by
    ``discount**t`` with ``discount = gamma / q``. Since ``q**t discount**t = gamma**t``, the
    weighted sum of any reward over an episode (:meth:`EpisodeBatch.returns`) is an unbiased
    estimate of its discounted value, with no truncation bias, and the same holds from any round
    on (the geometric law is memoryless): the reward-to-go (:meth:`EpisodeBatch.returns_to_go`)
    from ``(s_t, b_t, a_t)`` is an unbiased estimate of the action value there. These are the
    random-horizon rollouts of unbiased policy-gradient estimates (Zhang, Koppel, Zhu, Basar,
    *Global convergence of policy gradient methods to (almost) locally optimal policies*,
    SIAM J. Control Optim. 2020, who take ``q = sqrt(gamma)``).

    ``q = gamma`` gives unweighted sums (``discount = 1``) of episodes of mean length
    ``1 / (1 - gamma)``, whose random lengths make the returns noisy when ``gamma`` is near 1;
    ``q`` nearer 1 costs longer episodes (mean ``1 / (1 - q)``) and gives less noisy returns.

    Parameters
    ----------
    model : GameModel
    mu : array (S, B)
        The leader's commitment.
    pi : array (S, A)
        The follower's policy.
    n_episodes : int >= 1
    rng : numpy Generator
        The only source of randomness. Two calls with generators in the same state and the same
        ``n_episodes`` and ``continuation`` draw the same uniform numbers and the same lengths,
        whatever ``mu`` and ``pi`` are: common random numbers for comparing two policies.
    continuation : float in [gamma, 1), optional

    Returns
    -------
    EpisodeBatch
        Exactly ``lengths.sum()`` transitions were drawn; nothing past an episode's end is.

    Notes
    -----
    Episodes are sorted by decreasing length, so the episodes still running in round ``t`` are
    a prefix of the batch and each round is one guided lookup (:class:`_CategoricalRows`) of
    that prefix.
    """
    S = model.n_states
    rounds = _RoundTable(model, mu, pi)
    n_episodes = _count("n_episodes", n_episodes)
    q = model.gamma if continuation is None else float(continuation)
    if not model.gamma <= q < 1.0:
        raise ValueError(f"continuation must be in [gamma, 1) = [{model.gamma}, 1), got {q!r}")
    states = _start_states(model, n_episodes, rng, None)
    lengths = np.sort(rng.geometric(1.0 - q, size=n_episodes))[::-1]
    # running[t] = number of episodes that play round t (lengths > t)
    running = np.bincount(lengths, minlength=lengths[0] + 1)[::-1].cumsum()[::-1][1:]
    outcomes = np.zeros((n_episodes, lengths[0]), dtype=np.int64)
    keys = rounds.keys(int(running.sum()), rng)  # every round's keys in one call, in order
    start = 0
    for t, n in enumerate(running):
        drawn = rounds.find(states[:n], keys[start:start + n])
        start += n
        outcomes[:n, t] = drawn
        states[:n] = drawn % S
    played = np.arange(lengths[0]) < lengths[:, None]
    discount = model.gamma / q if q > 0 else 0.0
    return EpisodeBatch(TransitionBatch(**rounds.decode(outcomes[played])), lengths, discount)

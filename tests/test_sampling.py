"""Vectorized trajectory sampling from a game's exact model (stackelberg.sampling)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from games import patrol_game, random_markov_game
from stackelberg.model import GameModel
from stackelberg.sampling import (
    EpisodeBatch,
    TrajectoryBatch,
    TransitionBatch,
    _CategoricalRows,
    sample_episodes,
    sample_trajectories,
    sample_transitions,
)
from stackelberg.tabular import evaluate_policy

#: Allowed deviation of an estimate from its exact value, in standard errors. A 5-sigma
#: deviation of a normal estimate has probability ~6e-7, so the ~100 entries checked below would
#: all pass for all but a negligible fraction of seeds: the fixed seeds are not cherry-picked.
SIGMAS = 5.0

FIELDS = [f.name for f in dataclasses.fields(TrajectoryBatch)]


def random_policies(model: GameModel, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.dirichlet(np.ones(model.n_leader_actions), size=model.n_states)
    pi = rng.dirichlet(np.ones(model.n_follower_actions), size=model.n_states)
    return mu, pi


@pytest.fixture
def small_game() -> GameModel:
    """S=4, B=2, A=3, gamma 0.8, and a non-uniform initial distribution."""
    model = random_markov_game(4, 2, 3, gamma=0.8, seed=3)
    return dataclasses.replace(model, initial=np.array([0.1, 0.2, 0.3, 0.4]))


def assert_within_standard_errors(estimate, exact, standard_error, what):
    deviation = np.abs(np.asarray(estimate) - np.asarray(exact))
    assert np.all(deviation <= SIGMAS * np.asarray(standard_error) + 1e-12), (
        f"{what}: max deviation {np.max(deviation / np.maximum(standard_error, 1e-300)):.2f} "
        f"standard errors"
    )


# --- determinism, shapes, consistency -------------------------------------------------------


def test_same_seed_same_batch_different_seed_different_batch(small_game):
    mu, pi = random_policies(small_game, 0)
    first = sample_trajectories(small_game, mu, pi, 50, 20, np.random.default_rng(7))
    again = sample_trajectories(small_game, mu, pi, 50, 20, np.random.default_rng(7))
    other = sample_trajectories(small_game, mu, pi, 50, 20, np.random.default_rng(8))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    for name in ("states", "leader_actions", "follower_actions", "next_states"):
        assert not np.array_equal(getattr(first, name), getattr(other, name)), name


def test_shapes_dtypes_ranges_and_chaining(small_game):
    mu, pi = random_policies(small_game, 0)
    batch = sample_trajectories(small_game, mu, pi, 37, 11, np.random.default_rng(0))
    assert (batch.n_episodes, batch.horizon, batch.n_transitions) == (37, 11, 37 * 11)
    S, B, A = small_game.n_states, small_game.n_leader_actions, small_game.n_follower_actions
    for name, bound in (("states", S), ("leader_actions", B), ("follower_actions", A),
                        ("next_states", S)):
        array = getattr(batch, name)
        assert array.shape == (37, 11) and array.dtype == np.int64, name
        assert array.flags.c_contiguous, name
        assert array.min() >= 0 and array.max() < bound, name
    for name in ("leader_rewards", "follower_rewards"):
        array = getattr(batch, name)
        assert array.shape == (37, 11) and array.dtype == np.float64, name
    np.testing.assert_array_equal(batch.next_states[:, :-1], batch.states[:, 1:])
    s, b, a = batch.states, batch.leader_actions, batch.follower_actions
    np.testing.assert_array_equal(batch.leader_rewards, small_game.leader_rewards[s, b, a])
    np.testing.assert_array_equal(batch.follower_rewards, small_game.follower_rewards[s, b, a])


def test_given_initial_states_are_used(small_game):
    mu, pi = random_policies(small_game, 0)
    start = np.array([3, 0, 2, 2, 1])
    batch = sample_trajectories(small_game, mu, pi, 5, 4, np.random.default_rng(0),
                                initial_states=start)
    np.testing.assert_array_equal(batch.states[:, 0], start)


def test_horizon_one_and_one_episode(small_game):
    mu, pi = random_policies(small_game, 0)
    batch = sample_trajectories(small_game, mu, pi, 1, 1, np.random.default_rng(0))
    assert batch.states.shape == (1, 1)
    assert len(batch.flatten()) == 1


def test_impossible_events_never_happen():
    """Zero probabilities, first, last or in between, are never drawn (patrol has many)."""
    model = patrol_game(slip=0.0)  # deterministic moves: most next states are impossible
    S, B, A = model.n_states, model.n_leader_actions, model.n_follower_actions
    mu = np.zeros((S, B))
    mu[:, -1] = 1.0  # last action only
    mu[::2, 0], mu[::2, -1] = 0.5, 0.5
    pi = np.zeros((S, A))
    pi[:, 1:] = 1.0 / (A - 1)  # never the first action
    batch = sample_trajectories(model, mu, pi, 2000, 30, np.random.default_rng(1))
    s, b, a, s2 = batch.states, batch.leader_actions, batch.follower_actions, batch.next_states
    assert np.all(mu[s, b] > 0)
    assert np.all(pi[s, a] > 0)
    assert np.all(model.transitions[s, b, a, s2] > 0)


@pytest.mark.parametrize("probs", [
    [[0.0, 0.0, 1.0, 0.0]],
    [[0.0, 0.5, 0.0, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]],
    [[1e-300, 0.0, 1.0 - 1e-16, 0.0]],
])
def test_categorical_rows_exact_support(probs):
    probs = np.array(probs)
    rows = _CategoricalRows(probs)
    R, K = probs.shape
    which = np.repeat(np.arange(R), 5000)
    drawn = rows.draw(which, np.random.default_rng(0))
    assert np.all(drawn // K == which)  # never leaves its row
    assert np.all(probs.ravel()[drawn] > 0)


@pytest.mark.parametrize(("n_rows", "n_categories", "seed"), [(1, 1, 0), (3, 5, 1), (10, 90, 2),
                                                          (100, 900, 3), (7, 64, 4)])
def test_guided_search_equals_plain_search(n_rows, n_categories, seed):
    """The guide table and its fallback give exactly ``searchsorted``'s index, edges included."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(n_categories, 0.3), size=n_rows)  # many tiny probabilities
    probs[rng.random(probs.shape) < 0.3] = 0.0  # and zeros
    probs[:, rng.integers(n_categories)] += 0.1  # keep every row's sum positive
    rows = _CategoricalRows(probs)
    top = 1 << rows.shift
    local = (rows.table.reshape(n_rows, n_categories) - (np.arange(n_rows)[:, None] << rows.shift))
    which = np.concatenate([rng.integers(n_rows, size=20_000), np.repeat(np.arange(n_rows), 4),
                            np.repeat(np.arange(n_rows), 2 * n_categories)])
    u = np.concatenate([
        rng.integers(top, size=20_000),
        np.tile([0, 1, top - 2, top - 1], n_rows),  # the ends of the range
        np.clip(np.stack([local, local - 1], axis=-1).ravel(), 0, top - 1),  # at each boundary
    ])
    expected = rows.table.searchsorted((which << rows.shift) + u, side="right")
    np.testing.assert_array_equal(rows.locate(which, u), expected)


# --- statistics -----------------------------------------------------------------------------


def test_transition_frequencies_match_mu_pi_p(small_game):
    """Given the state, (b, a, s') has probability mu(b|s) pi(a|s) P(s'|s, b, a).

    Within an episode the transitions are dependent, but by the Markov property the outcome of a
    round is a fresh draw given its state, so the count of each (s, b, a, s') minus
    ``q * n_s`` is a martingale and the binomial standard error ``sqrt(q (1 - q) / n_s)`` holds.
    """
    model = small_game
    S, B, A = model.n_states, model.n_leader_actions, model.n_follower_actions
    mu, pi = random_policies(model, 1)
    batch = sample_trajectories(model, mu, pi, 2000, 50, np.random.default_rng(2))
    flat = batch.flatten()
    index = ((flat.states * B + flat.leader_actions) * A + flat.follower_actions) * S
    counts = np.bincount(index + flat.next_states, minlength=S * B * A * S)
    counts = counts.reshape(S, B * A * S)
    n_s = counts.sum(axis=1, keepdims=True)
    assert n_s.min() > 10_000
    expected = (mu[:, :, None, None] * pi[:, None, :, None] * model.transitions).reshape(S, -1)
    se = np.sqrt(expected * (1 - expected) / n_s)
    assert_within_standard_errors(counts / n_s, expected, se, "(s, b, a, s') frequencies")


def test_initial_state_frequencies_match_model(small_game):
    mu, pi = random_policies(small_game, 0)
    n = 40_000
    batch = sample_trajectories(small_game, mu, pi, n, 1, np.random.default_rng(3))
    frequencies = np.bincount(batch.states[:, 0], minlength=small_game.n_states) / n
    rho = small_game.initial
    assert_within_standard_errors(frequencies, rho, np.sqrt(rho * (1 - rho) / n),
                                  "initial state frequencies")


def test_mean_discounted_returns_match_exact_values(small_game):
    """Monte Carlo returns vs ``rho . V`` of the follower's MDP induced by the leader's mu.

    gamma 0.8 and horizon 100: the truncated tail, at most ``gamma**100 / (1 - gamma) * max|r|``
    ~ 1e-9, is far below the standard error (~1e-3).
    """
    model = small_game
    gamma, horizon, n = model.gamma, 100, 20_000
    assert gamma == 0.8 and gamma**horizon / (1 - gamma) < 1e-8
    mu, pi = random_policies(model, 4)
    P_x = np.einsum("sb,sbat->sat", mu, model.transitions)
    batch = sample_trajectories(model, mu, pi, n, horizon, np.random.default_rng(4))
    returns = batch.discounted_returns(gamma)
    for player, rewards, sampled in (
        ("follower", model.follower_rewards, returns.follower),
        ("leader", model.leader_rewards, returns.leader),
    ):
        r_x = np.einsum("sb,sba->sa", mu, rewards)
        exact = model.initial @ evaluate_policy(P_x, r_x, pi, gamma, tau=0.0).V
        se = sampled.std(ddof=1) / np.sqrt(n)
        assert_within_standard_errors(sampled.mean(), exact, se, f"{player} value")


# --- TrajectoryBatch helpers ----------------------------------------------------------------


def test_flatten_round_trips(small_game):
    mu, pi = random_policies(small_game, 0)
    batch = sample_trajectories(small_game, mu, pi, 9, 13, np.random.default_rng(5))
    flat = batch.flatten()
    assert isinstance(flat, TransitionBatch)
    assert len(flat) == batch.n_transitions
    for name in FIELDS:
        array = getattr(flat, name)
        assert array.shape == (9 * 13,), name
        np.testing.assert_array_equal(array.reshape(9, 13), getattr(batch, name), err_msg=name)
    assert flat.states[4 * 13 + 6] == batch.states[4, 6]  # episode after episode
    rebuilt = TrajectoryBatch(**{name: getattr(flat, name).reshape(9, 13) for name in FIELDS})
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(batch, name))


def test_discounted_returns_by_hand():
    rewards = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    zeros = np.zeros((2, 3), dtype=np.int64)
    batch = TrajectoryBatch(zeros, zeros, zeros, rewards, 2 * rewards, zeros)
    leader, follower = batch.discounted_returns(0.5)
    np.testing.assert_allclose(leader, [1 + 1 + 0.75, 0 - 0.5 + 1.0])
    np.testing.assert_allclose(follower, 2 * leader)
    np.testing.assert_allclose(batch.discounted_returns(0.0).leader, [1.0, 0.0])
    with pytest.raises(ValueError, match="gamma"):
        batch.discounted_returns(1.5)


# --- episodes of geometric length -----------------------------------------------------------


def test_episodes_are_chained_counted_and_common_random_numbers(small_game):
    mu, pi = random_policies(small_game, 0)
    episodes = sample_episodes(small_game, mu, pi, 300, np.random.default_rng(6))
    batch, lengths = episodes.transitions, episodes.lengths
    assert episodes.n_transitions == lengths.sum() == len(batch) and lengths.min() >= 1
    within = np.ones(len(batch) - 1, dtype=bool)
    within[np.cumsum(lengths)[:-1] - 1] = False  # the last round of an episode starts no other
    np.testing.assert_array_equal(batch.next_states[:-1][within], batch.states[1:][within])
    np.testing.assert_array_equal(episodes.rounds[:5], np.arange(5)[: lengths[0]])
    # the same generator state gives the same lengths and uniforms whatever the policies
    other_mu, other_pi = random_policies(small_game, 1)
    again = sample_episodes(small_game, other_mu, other_pi, 300, np.random.default_rng(6))
    np.testing.assert_array_equal(again.lengths, lengths)
    with pytest.raises(ValueError, match=r"continuation must be in \[gamma, 1\)"):
        sample_episodes(small_game, mu, pi, 3, np.random.default_rng(0), continuation=0.5)


def test_episode_returns_by_hand():
    rewards = np.array([1.0, 2.0, 3.0, 5.0, 7.0])
    zeros = np.zeros(5, dtype=np.int64)
    episodes = EpisodeBatch(TransitionBatch(zeros, zeros, zeros, rewards, rewards, zeros),
                            lengths=np.array([3, 2]), discount=0.5)
    np.testing.assert_allclose(episodes.returns(rewards), [1 + 1 + 0.75, 5 + 3.5])
    np.testing.assert_allclose(episodes.returns_to_go(rewards), [2.75, 3.5, 3.0, 8.5, 7.0])
    np.testing.assert_array_equal(episodes.rounds, [0, 1, 2, 0, 1])


@pytest.mark.parametrize("exponent", [1.0, 0.5])
def test_episode_returns_and_visits_are_unbiased(small_game, exponent):
    """Geometric lengths with ``q = gamma**exponent`` and weights ``(gamma / q)**t``: the mean
    return is the exact value (no truncation) and the mean number of visits of ``s`` per episode
    is ``d_pi(s) / (1 - gamma)``."""
    model = small_game
    mu, pi = random_policies(model, 4)
    n = 20_000
    episodes = sample_episodes(model, mu, pi, n, np.random.default_rng(7),
                               continuation=model.gamma**exponent)
    P_x = np.einsum("sb,sbat->sat", mu, model.transitions)
    r_x = np.einsum("sb,sba->sa", mu, model.leader_rewards)
    evaluation = evaluate_policy(P_x, r_x, pi, model.gamma, tau=0.0)
    returns = episodes.returns(episodes.transitions.leader_rewards)
    assert_within_standard_errors(returns.mean(), model.initial @ evaluation.V,
                                  returns.std(ddof=1) / np.sqrt(n), "leader value")
    weights = episodes.discount ** episodes.rounds
    visits = np.zeros((n, model.n_states))
    np.add.at(visits, (episodes.episode, episodes.transitions.states), weights)
    occupancy = evaluation.visitation(model.initial, model.gamma) / (1 - model.gamma)
    assert_within_standard_errors(visits.mean(axis=0), occupancy,
                                  visits.std(axis=0, ddof=1) / np.sqrt(n), "visits")


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"mu": np.full((4, 3), 1 / 3)}, r"mu must have shape \(4, 2\)"),
    ({"pi": np.full((4, 3), 0.5)}, r"pi\[0\] sums to"),
    ({"mu": np.array([[1.5, -0.5]] * 4)}, r"mu\[0, 1\] = -0.5"),
    ({"n_episodes": 0}, "n_episodes must be a positive integer"),
    ({"horizon": 2.0}, "horizon must be a positive integer"),
    ({"initial_states": np.array([0, 4])}, r"initial_states must lie in 0 \.\. 3"),
    ({"initial_states": np.array([0, 1, 2])}, r"shape \(2,\)"),
    ({"initial_states": np.array([0.0, 1.0])}, "integer array"),
])
def test_invalid_arguments_are_named(small_game, change, message):
    mu, pi = random_policies(small_game, 0)
    kwargs = {"mu": mu, "pi": pi, "n_episodes": 2, "horizon": 3, **change}
    with pytest.raises(ValueError, match=message):
        sample_trajectories(small_game, rng=np.random.default_rng(0), **kwargs)


def test_transition_batches_concatenate_field_by_field():
    model = random_markov_game(n_states=4, seed=1)
    rng = np.random.default_rng(0)
    mu = np.full((4, model.n_leader_actions), 1 / model.n_leader_actions)
    first, second = (sample_transitions(model, mu, rng.integers(4, size=n),
                                        rng.integers(model.n_follower_actions, size=n), rng)
                     for n in (3, 5))
    both = TransitionBatch.concatenate([first, second])
    assert len(both) == 8
    for name in ("states", "leader_actions", "follower_actions", "leader_rewards",
                 "follower_rewards", "next_states"):
        np.testing.assert_array_equal(getattr(both, name)[:3], getattr(first, name))
        np.testing.assert_array_equal(getattr(both, name)[3:], getattr(second, name))

"""The library's fast paths give the numbers of the paths they replace, bit for bit.

- An inner minimization over the follower's policy at a fixed ``x`` (the Bellman penalty's
  L-BFGS in ``agents.leaders.pbrl``) asks for the ``theta`` parts of the gradients alone
  (:meth:`JointEvaluation.grad_upper_objective_theta`,
  :meth:`JointEvaluation.grad_bellman_penalty_theta`, ``ValueObjective.combination_theta``).
- The congestion Newton solver builds its weighted incidence matrices on the incidence's own
  sparsity pattern and factorizes by LAPACK directly (``stackelberg.congestion.kkt``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg
from test_congestion import HELD_OUT_SEEDS

import games
from stackelberg.congestion.equilibrium import solve_equilibrium
from stackelberg.congestion.instances import random_network
from stackelberg.congestion.kkt import ReducedSolver, _cho_factor, _cho_solve
from stackelberg.parameterizations import CommitmentLogits, LeaderRewards
from stackelberg.problem import BilevelProblem, StackelbergProblem
from stackelberg.upper_level import ValueObjective


class PlainRewards:
    """The leader's rewards as a plain reward map (no combined backup): the objective then
    takes its other branch."""

    def __init__(self, inner: LeaderRewards):
        self.inner = inner

    def rewards(self, x):
        return self.inner.rewards(x)

    def vjp(self, x, weights, mirror=False):
        return self.inner.vjp(x, weights, mirror)


def problems(shared: bool) -> dict[str, BilevelProblem]:
    model = games.make_model("stackelberg/random-markov-v0", n_states=6, n_leader_actions=3,
                             n_follower_actions=4, gamma=0.9, seed=11)
    if shared:  # one commitment row for every state
        model = dataclasses.replace(model, shared_commitment=True)
    commitment = CommitmentLogits(model)
    return {"coupled": StackelbergProblem(model, 0.1),
            "plain": BilevelProblem(commitment, ValueObjective(PlainRewards(
                LeaderRewards(commitment))), 0.1, model=model)}


@pytest.mark.parametrize("shared", [False, True], ids=["per-state", "shared"])
def test_theta_parts_alone_are_the_full_gradients_theta_parts(shared):
    rng = np.random.default_rng(3)
    for name, problem in problems(shared).items():
        x = rng.normal(size=problem.x_shape)
        pi = rng.dirichlet(np.ones(problem.policy_shape[1]), size=problem.policy_shape[0])
        full, alone = problem.evaluate(x, pi), problem.evaluate(x, pi)
        assert np.array_equal(alone.grad_upper_objective_theta(),
                              full.grad_upper_objective().theta), name
        assert np.array_equal(alone.grad_bellman_penalty_theta(),
                              full.grad_bellman_penalty().theta), name
        upper = problem.upper
        for leader, follower, mirror in [(-1.0, -250.0, False), (0.0, -3.0, True),
                                         (2.0, 0.0, True)]:
            assert np.array_equal(upper.combination_theta(alone, leader, follower, mirror),
                                  upper.combination(full, leader, follower, mirror).theta), \
                (name, leader, follower, mirror)


def test_remembered_leader_rewards_are_the_mixture_and_read_only():
    problem = problems(False)["coupled"]
    reward = problem.upper.reward
    x = np.zeros(problem.x_shape)
    other = np.random.default_rng(1).normal(size=problem.x_shape)
    first = reward.rewards(x)
    commitment = problem.commitment_logits
    assert np.array_equal(first, commitment.mix(commitment.policy(x),
                                                problem.model.leader_rewards))
    assert reward.rewards(x.copy()) is first and not first.flags.writeable
    assert not np.array_equal(reward.rewards(other), first)  # a new x is a new answer


def test_reduced_solver_builds_what_scipy_sparse_builds():
    for seed in HELD_OUT_SEEDS[:3]:
        net = random_network(seed)
        eq = solve_equilibrium(net, tau=1e-2, tol=1e-10)
        for h in (eq.path_flows, np.linspace(0.5, 2.0, eq.paths.n_paths)):
            solver = ReducedSolver(net, eq.paths, h, eq.edge_flows, 1e-2)
            slope = net.latency_derivative(eq.edge_flows)
            g = eq.paths.incidence.multiply(np.sqrt(slope)[None, :]).tocsr()
            gw = g.T.multiply(solver.w[None, :]).tocsr()
            for ours, theirs in ((solver.g, g), (solver.gw, gw)):
                assert ours.shape == theirs.shape
                assert np.array_equal(ours.indptr, theirs.indptr)
                assert np.array_equal(ours.indices, theirs.indices)
                assert ours.data.tobytes() == theirs.data.tobytes()


def test_cholesky_helpers_are_scipys_calls():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 7))
    m = a @ a.T + 7 * np.eye(7)
    b = rng.normal(size=(7, 3))
    c, lower = scipy.linalg.cho_factor(m)
    assert not lower
    assert np.array_equal(_cho_factor(m), c)
    assert np.array_equal(_cho_solve(_cho_factor(m), b), scipy.linalg.cho_solve((c, False), b))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        _cho_factor(-m)
    with pytest.raises(ValueError, match="infs or NaNs"):
        _cho_factor(np.full((2, 2), np.nan))

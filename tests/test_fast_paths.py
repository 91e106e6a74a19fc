"""The library's fast paths give the numbers of the paths they replace, bit for bit.

- An inner minimization over the follower's policy at a fixed ``x`` (the Bellman penalty's
  L-BFGS in ``agents.leaders.pbrl``) asks for the ``theta`` parts of the gradients alone
  (:meth:`JointEvaluation.grad_upper_objective_theta`,
  :meth:`JointEvaluation.grad_bellman_penalty_theta`, ``ValueObjective.combination_theta``).
- That L-BFGS drives scipy's L-BFGS-B routine without ``scipy.optimize.minimize``'s wrapper
  (``agents.leaders.lbfgs``) and returns the same minimizer.
- The exact metrics answer a state they observed last with the row they computed for it.
- The congestion Newton solver builds its weighted incidence matrices on the incidence's own
  sparsity pattern and factorizes by LAPACK directly (``stackelberg.congestion.kkt``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from test_congestion import HELD_OUT_SEEDS

import games
from agents.leaders.lbfgs import minimize_lbfgs
from stackelberg.congestion.equilibrium import solve_equilibrium
from stackelberg.congestion.instances import random_network
from stackelberg.congestion.kkt import ReducedSolver, _cho_factor, _cho_solve
from stackelberg.metrics import ExactMetrics
from stackelberg.parameterizations import CommitmentLogits, LeaderRewards
from stackelberg.problem import BilevelProblem, StackelbergProblem
from stackelberg.tabular import softmax
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


def bellman_inner_objective(seed: int):
    """The Bellman penalty's inner objective over the follower's logits at a fixed ``x`` (what
    ``PBRLLeader._minimize_over_pi`` hands to L-BFGS), and a start away from its minimizer."""
    problem = problems(False)["coupled"]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=problem.x_shape)
    shape, lam = problem.policy_shape, 50.0
    mdp = problem.follower_mdp(x)

    def objective(flat):
        ev = problem.evaluate(x, softmax(flat.reshape(shape), axis=1), mdp)
        grad = ev.grad_upper_objective_theta() + lam * ev.grad_bellman_penalty_theta()
        return ev.upper_objective + lam * ev.bellman_penalty(), grad.ravel()

    return objective, rng.normal(size=shape).ravel()


def rosenbrock(z):
    value = float(np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2))
    grad = np.zeros_like(z)
    grad[:-1] = -400.0 * z[:-1] * (z[1:] - z[:-1] ** 2) - 2 * (1 - z[:-1])
    grad[1:] += 200.0 * (z[1:] - z[:-1] ** 2)
    return value, grad


@pytest.mark.parametrize("case", ["bellman-0", "bellman-1", "rosenbrock", "rosenbrock-maxiter"])
def test_the_direct_lbfgs_loop_returns_scipys_minimizer(case):
    """``agents.leaders.lbfgs.minimize_lbfgs`` (scipy's L-BFGS-B routine without ``minimize``'s
    wrapper) returns the very ``x`` of ``scipy.optimize.minimize``, with and without the start's
    evaluation handed in, also when ``maxiter`` stops it."""
    if case.startswith("bellman"):
        objective, x0 = bellman_inner_objective(int(case[-1]))
        gtol, maxiter = 1e-8, 200
    else:
        objective, x0 = rosenbrock, np.linspace(-1.2, 1.0, 5)
        gtol, maxiter = 1e-8, (7 if case.endswith("maxiter") else 200)
    calls = []

    def counted(z):
        calls.append(1)
        return objective(z)

    reference = scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                        options={"gtol": gtol, "maxiter": maxiter})
    assert reference.nit > 3  # a real run, not a start that is already optimal
    direct = minimize_lbfgs(counted, x0, gtol, maxiter)
    handed = minimize_lbfgs(objective, x0, gtol, maxiter, first=objective(x0.copy()))
    assert direct.tobytes() == reference.x.tobytes()
    assert handed.tobytes() == reference.x.tobytes()
    assert len(calls) == reference.nfev


def test_the_metrics_remember_only_the_row_of_the_same_observed_state():
    """``ExactMetrics`` answers a repeated state (``x``, the policies, ``tau``) with its last
    row (a settled leader's rows), equal to a fresh observer's; any change is computed afresh,
    and a caller changing a returned row does not change the next one."""
    problem = problems(False)["coupled"]
    rng = np.random.default_rng(5)
    x = rng.normal(size=problem.x_shape)
    pi = problem.best_response(x).pi
    uniform = np.full(problem.policy_shape, 1.0 / problem.policy_shape[1])
    metrics = ExactMetrics(problem)
    first = metrics(x, None, (pi,))
    first["upper_objective"] = 0.0  # a caller's change
    assert metrics(x, None, (pi,)) == ExactMetrics(problem)(x, None, (pi,))
    other = metrics(x, None, (uniform,))
    assert other == ExactMetrics(problem)(x, None, (uniform,))
    assert other["follower_gap"] > metrics(x, None, (pi,))["follower_gap"]
    assert metrics(x, uniform, (pi,)) == ExactMetrics(problem)(x, uniform, (pi,))
    before = metrics(x, None, (pi,))
    problem.set_tau(0.05)
    assert metrics(x, None, (pi,)) == ExactMetrics(problem)(x, None, (pi,)) != before

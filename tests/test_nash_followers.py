"""The n-follower lower level (stackelberg.nash_followers) and the economy as a bilevel problem
(stackelberg.incentive_problem): with one follower the game's equilibrium, Nash gap and
Nikaido–Isoda penalty are the single follower's soft best response, ``max_s (V* - V_pi)`` and
value penalty (docs/theory.md §7.3); the problem's penalty gradient in ``x`` matches central
finite differences; its hyper-objective is the economy's equilibrium outcome."""

from __future__ import annotations

import numpy as np
import pytest

import games
from games.commons import commons_economy
from stackelberg.bilevel import FollowerModel
from stackelberg.economy import equilibrium_outcome
from stackelberg.lower_level import SoftFollower
from stackelberg.nash_followers import NashFollowers, NashSolver
from stackelberg.problem import StackelbergProblem

TAU = 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_one_follower_is_the_soft_follower(seed):
    problem = StackelbergProblem(games.make_model("stackelberg/random-markov-v0", n_states=4,
                                                  n_follower_actions=3, seed=seed), TAU)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=problem.x_shape)
    mdp = problem.follower_mdp(x)
    model = FollowerModel(P=mdp.P, r=mdp.r[None], rho=mdp.rho, gamma=mdp.gamma,
                          action_sizes=(mdp.r.shape[1],))
    lower = NashFollowers(1, NashSolver(damping=1.0, tol=1e-12))
    eq = lower.equilibrium(model, TAU)
    star = SoftFollower().best_response(mdp, tol=1e-13)
    assert eq.converged
    np.testing.assert_allclose(eq.profile[0], star.pi, atol=1e-10)
    pi = rng.dirichlet(np.ones(3), size=4)
    gap = lower.gap(model, [pi], TAU)
    assert gap.penalty == pytest.approx(problem.value_penalty(x, pi), abs=1e-11)
    V_pi = problem.evaluate(x, pi).follower.V
    assert gap.gap == pytest.approx(float((star.V - V_pi).max()), abs=1e-10)
    assert gap.penalty > 1e-3  # a random policy is not the best response


def test_the_economy_problem_matches_its_pieces():
    economy = commons_economy(n_followers=2, stock_levels=4)
    problem = economy.problem(TAU)
    assert problem.n_followers == 2
    x = np.array([-1.0, 0.5, 0.2])
    outcome = equilibrium_outcome(economy, x, TAU)
    assert problem.hyper_objective(x) == outcome.upper.objective
    assert problem.nash_gap(x, outcome.equilibrium.profile).gap < 1e-10
    # the NI penalty's gradient in x (Danskin, pulled back through the incentives) against
    # central differences of psi at a fixed, off-equilibrium profile
    rng = np.random.default_rng(3)
    profile = [rng.dirichlet(np.ones(k), size=economy.n_states)
               for k in economy.base.action_sizes]
    ni, grad_x = problem.penalty_gradient(x, profile)
    h = 1e-6
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        fd = (problem.nash_gap(x + e, profile).penalty
              - problem.nash_gap(x - e, profile).penalty) / (2 * h)
        assert grad_x[k] == pytest.approx(fd, abs=1e-6)
    assert ni.value == pytest.approx(problem.nash_gap(x, profile).penalty, abs=1e-12)

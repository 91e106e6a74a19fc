"""The game lower level (stackelberg.nash): equilibrium, Nikaido–Isoda penalty, Danskin gradients.

Done-criterion 3 of issue 12 (docs/theory.md §7): damped best responses reach a Nash gap below
1e-8; ``psi >= 0`` on random profiles and ~0 at the equilibrium; the gradients (in the incentive
parameters through the parameterization's vjp, and in every follower's logits) match central
finite differences (best responses recomputed) and torch autograd through an independent torch
evaluation (joint kernel, dense solves; the best responses held fixed, which is Danskin's
theorem); with one follower ``psi`` is the single-follower value penalty.
"""

from __future__ import annotations

import numpy as np
import pytest

from games import random_markov_game
from stackelberg.bilevel import FollowerModel
from stackelberg.incentives import Box, Budget, LinearIncentives
from stackelberg.nash import (
    joint_policy,
    nash_equilibrium,
    nash_gap,
    ni_penalty_gradient,
)
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import softmax

FD_STEP = 1e-5
FD_RTOL = 1e-6
AUTOGRAD_RTOL = 1e-8
TAU = 0.5

#: (n_states, action sizes, gamma, seed)
SPECS = [(3, (2, 2), 0.8, 0), (4, (2, 3), 0.9, 1), (3, (2, 2, 2), 0.7, 2)]


# torch is imported by the first test of this module, not at collection (seconds of CPU for
# every xdist worker), on the worker of the other torch tests
torch = None
pytestmark = pytest.mark.xdist_group("torch")


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    global torch
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_game(S: int, sizes: tuple[int, ...], gamma: float, seed: int) -> FollowerModel:
    rng = np.random.default_rng(seed)
    A = int(np.prod(sizes))
    return FollowerModel(P=rng.dirichlet(np.ones(S), size=(S, A)),
                         r=rng.uniform(size=(len(sizes), S, A)),
                         rho=rng.dirichlet(np.ones(S)), gamma=gamma, action_sizes=sizes)


def random_logits(rng: np.random.Generator, S: int, sizes) -> list[np.ndarray]:
    return [rng.normal(size=(S, k)) for k in sizes]


def rel_err(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12))


@pytest.mark.parametrize("seed", range(8))
def test_damped_best_responses_reach_a_nash_gap_below_1e8(seed):
    S, sizes = 4, ((2, 3), (3, 3), (2, 2, 2))[seed % 3]
    model = random_game(S, sizes, 0.9, seed)
    eq = nash_equilibrium(model, TAU, tol=1e-10)
    assert eq.converged and eq.gap.gap < 1e-8
    # the equilibrium is a fixed point: each policy is its own soft best response
    for pi, br in zip(eq.profile, eq.gap.best_responses, strict=True):
        assert np.abs(pi - br).max() < 1e-4
    assert abs(eq.gap.penalty) < 1e-8 * len(sizes)


@pytest.mark.parametrize("seed", range(10))
def test_ni_penalty_is_nonnegative_on_random_profiles(seed):
    rng = np.random.default_rng(seed)
    S, sizes, gamma, _ = SPECS[seed % len(SPECS)]
    model = random_game(S, sizes, gamma, seed)
    profile = [softmax(t, axis=1) for t in random_logits(rng, S, sizes)]
    gap = nash_gap(model, profile, TAU)
    assert gap.penalty > 0 and gap.gap > 0
    # and it is the sum of the followers' (non-negative) improvements
    assert ni_penalty_gradient(model, profile, TAU).value == pytest.approx(gap.penalty, rel=1e-12)


def test_joint_policy_is_the_product_in_row_major_order():
    rng = np.random.default_rng(0)
    profile = [rng.dirichlet(np.ones(k), size=2) for k in (2, 3, 2)]
    joint = joint_policy(profile)
    for flat in range(12):
        a = np.unravel_index(flat, (2, 3, 2))
        expected = profile[0][:, a[0]] * profile[1][:, a[1]] * profile[2][:, a[2]]
        assert np.allclose(joint[:, flat], expected, rtol=1e-15)


# -- gradients -----------------------------------------------------------------------------


def make_incentives(model: FollowerModel, seed: int, budget: bool) -> LinearIncentives:
    rng = np.random.default_rng(50 + seed)
    K = 2
    features = rng.normal(size=(*model.r.shape, K))
    levels = Budget(budget=1.0, size=K) if budget else Box(lo=[-1.0, -0.5], hi=[1.0, 2.0])
    return LinearIncentives(model, features, levels)


def psi_at(param: LinearIncentives, x: np.ndarray, logits: list[np.ndarray]) -> float:
    profile = [softmax(t, axis=1) for t in logits]
    return nash_gap(param.followers(x), profile, TAU).penalty


def torch_psi(param: LinearIncentives, budget: bool, w, thetas, best_responses) -> torch.Tensor:
    """psi from the raw arrays in torch: r_x = r + Phi g(w); each value by a dense solve in the
    joint kernel with the joint (product) policy; the best responses are constants."""
    base = param.base
    P = torch.tensor(base.P)
    Phi = torch.tensor(param.features)
    if budget:
        g = param.range_map.budget * torch.softmax(torch.cat([w, torch.zeros(1, dtype=w.dtype)]),
                                                   0)[:-1]
    else:
        lo, hi = torch.tensor(param.range_map.lo), torch.tensor(param.range_map.hi)
        g = lo + (hi - lo) * torch.sigmoid(w)
    r = torch.tensor(base.r) + Phi @ g
    rho, gamma = torch.tensor(base.rho), base.gamma
    S, n = base.n_states, base.n_followers
    pis = [torch.softmax(t, dim=1) for t in thetas]

    def joint(profile):
        out = profile[0]
        for pi in profile[1:]:
            out = (out[:, :, None] * pi[:, None, :]).reshape(S, -1)
        return out

    def value(i, profile):
        sigma = joint(profile)
        P_pi = torch.einsum("sa,sat->st", sigma, P)
        own = profile[i]
        r_pi = (sigma * r[i]).sum(1) - TAU * (own * torch.log(own)).sum(1)
        V = torch.linalg.solve(torch.eye(S, dtype=P.dtype) - gamma * P_pi, r_pi)
        return rho @ V

    total = torch.zeros((), dtype=P.dtype)
    for i in range(n):
        sigma = [torch.tensor(best_responses[i]) if k == i else pis[k] for k in range(n)]
        total = total + value(i, sigma) - value(i, pis)
    return total


@pytest.mark.parametrize("budget", [False, True], ids=["box", "budget"])
@pytest.mark.parametrize("spec", SPECS, ids=[f"S{s[0]}-{len(s[1])}f-seed{s[3]}" for s in SPECS])
def test_ni_gradients_match_finite_differences_and_autograd(spec, budget):
    S, sizes, gamma, seed = spec
    model = random_game(S, sizes, gamma, seed)
    param = make_incentives(model, seed, budget)
    rng = np.random.default_rng(seed + 10)
    x = rng.normal(size=2)
    logits = random_logits(rng, S, sizes)
    profile = [softmax(t, axis=1) for t in logits]
    grad = ni_penalty_gradient(param.followers(x), profile, TAU)
    grad_x = param.vjp(x, grad.dP, grad.dr)

    # central finite differences, best responses recomputed at every point
    fd_x = np.array([(psi_at(param, x + e, logits) - psi_at(param, x - e, logits)) / (2 * FD_STEP)
                     for e in np.eye(2) * FD_STEP])
    assert rel_err(grad_x, fd_x) < FD_RTOL
    for j, theta in enumerate(logits):
        fd = np.zeros_like(theta)
        for index in np.ndindex(theta.shape):
            shifted = [t.copy() for t in logits]
            shifted[j][index] += FD_STEP
            up = psi_at(param, x, shifted)
            shifted[j][index] -= 2 * FD_STEP
            fd[index] = (up - psi_at(param, x, shifted)) / (2 * FD_STEP)
        assert rel_err(grad.theta[j], fd) < FD_RTOL, j

    # torch autograd through an independent evaluation, best responses held fixed (Danskin)
    w = torch.tensor(x, requires_grad=True)
    thetas = [torch.tensor(t, requires_grad=True) for t in logits]
    value = torch_psi(param, budget, w, thetas, grad.best_responses)
    assert value.item() == pytest.approx(grad.value, rel=1e-10)
    autograd = torch.autograd.grad(value, [w, *thetas])
    assert rel_err(grad_x, autograd[0].numpy()) < AUTOGRAD_RTOL
    for j in range(len(sizes)):
        assert rel_err(grad.theta[j], autograd[j + 1].numpy()) < AUTOGRAD_RTOL


def test_kernel_weights_match_autograd():
    """``dP``: the weights on the joint kernel (a parameterization that moves ``P`` needs them)."""
    S, sizes, gamma, seed = SPECS[1]
    model = random_game(S, sizes, gamma, seed)
    rng = np.random.default_rng(3)
    profile = [rng.dirichlet(np.ones(k), size=S) for k in sizes]
    grad = ni_penalty_gradient(model, profile, TAU)
    P = torch.tensor(model.P, requires_grad=True)
    r = torch.tensor(model.r)
    rho = torch.tensor(model.rho)
    pis = [torch.tensor(p) for p in profile]

    def value(i, prof):
        sigma = torch.tensor(joint_policy([np.asarray(p) for p in prof]))
        P_pi = torch.einsum("sa,sat->st", sigma, P)
        own = prof[i]
        r_pi = (sigma * r[i]).sum(1) - TAU * (own * torch.log(own)).sum(1)
        return rho @ torch.linalg.solve(torch.eye(S, dtype=P.dtype) - gamma * P_pi, r_pi)

    total = sum(value(i, [torch.tensor(grad.best_responses[i]) if k == i else pis[k]
                          for k in range(len(sizes))]) - value(i, pis)
                for i in range(len(sizes)))
    (dP,) = torch.autograd.grad(total, [P])
    assert rel_err(grad.dP, dP.numpy()) < AUTOGRAD_RTOL


# -- one follower: the value penalty ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_one_follower_psi_is_the_value_penalty(seed):
    game = random_markov_game(4, 3, 3, gamma=0.9, seed=seed)
    problem = StackelbergProblem(game, tau=TAU)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=problem.x_shape)
    theta = rng.normal(size=problem.policy_shape)
    pi = softmax(theta, axis=1)
    mdp = problem.follower_mdp(x)
    model = FollowerModel(P=mdp.P, r=mdp.r[None], rho=mdp.rho, gamma=mdp.gamma,
                          action_sizes=(mdp.r.shape[1],))
    grad = ni_penalty_gradient(model, [pi], TAU)
    assert grad.value == pytest.approx(problem.value_penalty(x, pi), rel=1e-12, abs=1e-12)
    # and its logit gradient is -grad_theta V(x, pi), the value penalty's
    expected = -problem.evaluate(x, pi).grad_follower_value().theta
    assert np.abs(grad.theta[0] - expected).max() < 1e-12

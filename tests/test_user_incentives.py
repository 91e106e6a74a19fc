"""A user's incentive parameterization written as one torch function gives the gradients of the
built-in closed form (issue: economies, done-means 4; docs/theory.md §7 and §12).

The user writes ``r_x = r + Phi g(x)`` in torch, with ``g`` the box or budget range map; the
built-in :class:`~stackelberg.incentives.LinearIncentives` has the same map in closed form. Their
forward maps, their vector-Jacobian products and the Nikaido–Isoda gradient in ``x`` that
``pbrl-nash`` follows must agree to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest

from stackelberg.bilevel import FollowerModel
from stackelberg.incentives import Box, Budget, LinearIncentives
from stackelberg.nash import nash_equilibrium, ni_penalty_gradient
from stackelberg.parameterizations import TorchParameterization

# torch is imported by the first test of this module, not at collection (seconds of CPU for
# every xdist worker), on the worker of the other torch tests (test_gradients)
torch = None
pytestmark = pytest.mark.xdist_group("torch")


@pytest.fixture(autouse=True, scope="module")
def import_torch():
    global torch
    import torch  # a declared dependency: missing torch is a failure, not a skip


def economy(seed: int, sizes: tuple[int, ...] = (2, 3), S: int = 3, K: int = 4):
    rng = np.random.default_rng(seed)
    A = int(np.prod(sizes))
    base = FollowerModel(P=rng.dirichlet(np.ones(S), size=(S, A)),
                         r=rng.uniform(size=(len(sizes), S, A)),
                         rho=rng.dirichlet(np.ones(S)), gamma=0.9, action_sizes=sizes)
    features = rng.normal(size=(len(sizes), S, A, K))
    return base, features, rng


def user_function(base: FollowerModel, features: np.ndarray, levels: Box | Budget):
    """What a user would write: the same incentive, in torch, without the package's help."""
    r = torch.as_tensor(base.r, dtype=torch.float64)
    phi = torch.as_tensor(features, dtype=torch.float64)
    if isinstance(levels, Box):
        lo = torch.as_tensor(levels.lo, dtype=torch.float64)
        hi = torch.as_tensor(levels.hi, dtype=torch.float64)

        def g(x):
            return lo + (hi - lo) * torch.sigmoid(x)
    else:
        def g(x):
            shares = torch.softmax(torch.cat([x, x.new_zeros(1)]), dim=0)[:-1]
            return levels.budget * shares

    def fn(x):
        return None, r + phi @ g(x)

    return fn


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["box", "budget"])
def test_torch_incentives_match_the_closed_form(seed, kind):
    base, features, rng = economy(seed)
    K = features.shape[-1]
    levels = Box(lo=-rng.uniform(0, 1, K), hi=rng.uniform(0.5, 2, K)) if kind == "box" \
        else Budget(budget=1.5, size=K)
    built_in = LinearIncentives(base, features, levels)
    user = TorchParameterization(user_function(base, features, levels), (K,), base.rho,
                                 base.gamma, base.action_sizes, P=base.P)
    for _ in range(3):
        x = rng.normal(size=K)
        np.testing.assert_allclose(user.followers(x).r, built_in.followers(x).r,
                                   rtol=0, atol=1e-12)
        dr = rng.normal(size=base.r.shape)
        expected = built_in.vjp(x, None, dr)
        assert np.abs(expected).max() > 1e-3  # a gradient that could disagree
        np.testing.assert_allclose(user.vjp(x, None, dr), expected, rtol=0, atol=1e-9)


def test_pbrl_nash_gradient_is_the_same_through_either_parameterization():
    base, features, rng = economy(7, sizes=(2, 2), K=3)
    levels = Budget(budget=1.0, size=3)
    built_in = LinearIncentives(base, features, levels)
    user = TorchParameterization(user_function(base, features, levels), (3,), base.rho,
                                 base.gamma, base.action_sizes, P=base.P)
    x = rng.normal(size=3)
    tau = 0.3
    model = built_in.followers(x)
    # away from the equilibrium, so that the penalty and its gradient are not zero
    profile = [rng.dirichlet(np.ones(k), size=base.n_states) for k in base.action_sizes]
    grad = ni_penalty_gradient(model, profile, tau)
    assert grad.value > 1e-3
    g_built_in = built_in.vjp(x, grad.dP, grad.dr)
    g_user = user.vjp(x, grad.dP, grad.dr)
    assert np.abs(g_built_in).max() > 1e-4
    np.testing.assert_allclose(g_user, g_built_in, rtol=0, atol=1e-9)
    # at the followers' equilibrium the penalty and its x-gradient vanish through both (to the
    # equilibrium solver's tolerance: the gradient shrinks like the root of the penalty)
    eq = nash_equilibrium(model, tau)
    at_eq = ni_penalty_gradient(model, eq.profile, tau)
    assert at_eq.value < 1e-8
    assert np.abs(user.vjp(x, at_eq.dP, at_eq.dr)).max() < 1e-3 * np.abs(g_user).max()

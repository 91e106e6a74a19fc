"""Linear incentives (stackelberg.incentives): constraints hold for any ``w``; vjp and payments
gradients against central finite differences; the parameterization changes rewards only."""

from __future__ import annotations

import numpy as np
import pytest

from stackelberg.bilevel import FollowerModel, Parameterization
from stackelberg.incentives import Box, Budget, LinearIncentives

FD_STEP = 1e-6
FD_RTOL = 1e-7


def random_model(seed: int, S: int = 3, sizes: tuple[int, ...] = (2, 2)) -> FollowerModel:
    rng = np.random.default_rng(seed)
    A = int(np.prod(sizes))
    return FollowerModel(P=rng.dirichlet(np.ones(S), size=(S, A)),
                         r=rng.uniform(size=(len(sizes), S, A)),
                         rho=rng.dirichlet(np.ones(S)), gamma=0.8, action_sizes=sizes)


def range_maps(K: int):
    return [Box(lo=-np.arange(1, K + 1) * 0.5, hi=np.full(K, 2.0)), Budget(budget=1.5, size=K)]


def central_difference(fun, x: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e.flat[k] = FD_STEP
        grad.flat[k] = (fun(x + e) - fun(x - e)) / (2 * FD_STEP)
    return grad


@pytest.mark.parametrize("seed", range(5))
def test_levels_respect_the_constraint_for_any_w(seed):
    rng = np.random.default_rng(seed)
    box, budget = range_maps(4)
    for scale in (0.1, 10.0, 1e3):
        w = rng.normal(scale=scale, size=4)
        g = box.levels(w)
        assert np.all(g >= box.lo) and np.all(g <= box.hi)
        g = budget.levels(w)
        assert np.all(g >= 0) and g.sum() <= budget.budget * (1 + 1e-15)


@pytest.mark.parametrize("range_index", [0, 1])
@pytest.mark.parametrize("seed", range(3))
def test_vjp_matches_finite_differences(seed, range_index):
    base = random_model(seed)
    K = 3
    rng = np.random.default_rng(100 + seed)
    features = rng.normal(size=(*base.r.shape, K))
    param = LinearIncentives(base, features, range_maps(K)[range_index])
    assert isinstance(param, Parameterization)
    x = rng.normal(size=K)
    dr = rng.normal(size=base.r.shape)
    dP = rng.normal(size=base.P.shape)

    def contracted(z):
        m = param.followers(z)
        return float((dr * m.r).sum() + (dP * m.P).sum())

    expected = central_difference(contracted, x)
    got = param.vjp(x, dP, dr)
    assert np.abs(got - expected).max() <= FD_RTOL * max(1.0, np.abs(expected).max())
    # the kernel does not move with x; rho, gamma and sizes neither
    m = param.followers(x)
    assert m.P is base.P and m.rho is base.rho and m.action_sizes == base.action_sizes


@pytest.mark.parametrize("range_index", [0, 1])
def test_payments_and_their_gradient(range_index):
    base = random_model(7)
    rng = np.random.default_rng(8)
    features = rng.normal(size=(*base.r.shape, 2))
    param = LinearIncentives(base, features, range_maps(2)[range_index])
    occupancy = rng.uniform(size=base.r.shape[1:])
    x = rng.normal(size=2)
    transfers = param.followers(x).r - base.r  # what the planner hands out
    assert param.payments(x, occupancy) == pytest.approx(
        float((occupancy[None] * transfers).sum()), rel=1e-13)
    expected = central_difference(lambda z: param.payments(z, occupancy), x)
    assert np.allclose(param.payments_gradient(x, occupancy), expected, rtol=0, atol=1e-8)
    # a separate payment map (taxes rebated): only its columns count
    only_first = features * np.array([1.0, 0.0])
    rebated = LinearIncentives(base, features, range_maps(2)[range_index], only_first)
    assert np.array_equal(rebated.followers(x).r, param.followers(x).r)
    g = rebated.levels(x)
    assert rebated.payments(x, occupancy) == pytest.approx(
        float((occupancy[None] * features[..., 0] * g[0]).sum()), rel=1e-13)
    expected = central_difference(lambda z: rebated.payments(z, occupancy), x)
    assert np.allclose(rebated.payments_gradient(x, occupancy), expected, rtol=0, atol=1e-8)


def test_neutral_start():
    base = random_model(1)
    features = np.ones((*base.r.shape, 2))
    box = LinearIncentives(base, features, Box(lo=[-1.0, 0.5], hi=[3.0, 1.0]))
    assert box.levels(box.initial_x()) == pytest.approx([0.0, 0.75])
    budget = LinearIncentives(base, features, Budget(budget=3.0, size=2))
    assert budget.levels(budget.initial_x()) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Budget(budget=-1.0, size=2), "budget"),
        (lambda: Budget(budget=float("nan"), size=2), "budget"),
        (lambda: Box(lo=[0.0, 2.0], hi=[1.0, 1.0]), "lo[1]"),
        (lambda: Box(lo=[0.0], hi=[1.0, 1.0]), "lo and hi"),
    ],
)
def test_invalid_ranges_name_the_parameter(make, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_features_of_the_wrong_shape_are_refused():
    base = random_model(0)
    with pytest.raises(ValueError, match="features must have shape"):
        LinearIncentives(base, np.ones((2, 3, 4, 5, 1)), Budget(1.0, 1))

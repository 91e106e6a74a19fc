"""Parameterizations (how ``x`` reaches the follower): every vector-Jacobian product against
central finite differences of ``<dP, P_x> + <dr, r_x>``, and a torch function of the commitment
mixing against the closed form (docs/theory.md §12)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_gradients import central_difference, relative_error

from games import random_markov_game
from stackelberg.bilevel import BackupWeights, Parameterization, pull_back
from stackelberg.model import GameModel
from stackelberg.parameterizations import (
    CommitmentLogits,
    LeaderRewards,
    TorchParameterization,
    TorchRewardMap,
)

#: The torch function and the closed form do the same arithmetic in another order.
TORCH_RTOL = 1e-9

# torch is imported where it is used, not at collection (seconds of CPU for every xdist worker),
# and the tests that use it share the worker of test_gradients
pytestmark = pytest.mark.xdist_group("torch")


def game(shared: bool, seed: int = 3) -> GameModel:
    model = random_markov_game(5, 3, 4, 0.8, seed=seed)
    return dataclasses.replace(model, shared_commitment=True) if shared else model


def torch_commitment(model: GameModel) -> tuple[TorchParameterization, TorchRewardMap]:
    """The commitment mixing of docs/theory.md §1 written as a user would, in torch."""
    import torch

    S = model.n_states
    P = torch.tensor(model.transitions)
    r_F = torch.tensor(model.follower_rewards)
    r_L = torch.tensor(model.leader_rewards)

    def mu(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1).expand(S, -1)

    def followers(x: torch.Tensor):
        m = mu(x)
        return (torch.einsum("sb,sbat->sat", m, P),
                torch.einsum("sb,sba->sa", m, r_F)[None])

    x_shape = CommitmentLogits(model).x_shape
    parameterization = TorchParameterization(followers, x_shape, model.initial, model.gamma,
                                             (model.n_follower_actions,))
    leader = TorchRewardMap(lambda x: torch.einsum("sb,sba->sa", mu(x), r_L))
    return parameterization, leader


def random_weights(model_at_x, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=model_at_x.P.shape), rng.normal(size=model_at_x.r.shape)


def pairing(parameterization: Parameterization, dP: np.ndarray, dr: np.ndarray):
    """``x -> <dP, P_x> + <dr, r_x>``, whose gradient the vjp is."""
    def scalar(x: np.ndarray) -> float:
        m = parameterization.followers(x)
        return float((dP * m.P).sum() + (dr * m.r).sum())
    return scalar


@pytest.mark.parametrize("shared", [False, True], ids=["per-state", "shared"])
@pytest.mark.parametrize("kind", ["closed-form", "torch"])
def test_vjp_matches_finite_differences(kind, shared):
    model = game(shared)
    rng = np.random.default_rng(0)
    commitment = CommitmentLogits(model)
    parameterization = commitment if kind == "closed-form" else torch_commitment(model)[0]
    x = rng.normal(size=commitment.x_shape)
    dP, dr = random_weights(parameterization.followers(x), rng)
    fd = central_difference(pairing(parameterization, dP, dr), x)
    assert relative_error(parameterization.vjp(x, dP, dr), fd) < 1e-8


def test_vjp_of_a_fixed_kernel_matches_finite_differences():
    """A linear incentive ``r_x = r + Phi x`` with the kernel fixed (``fn`` returns None for
    it): only ``dr`` counts."""
    import torch

    model = game(False)
    rng = np.random.default_rng(1)
    S, A = model.n_states, model.n_follower_actions
    P = model.transitions[:, 0]
    r = torch.tensor(model.follower_rewards[:, 0])
    phi = torch.as_tensor(rng.normal(size=(S, A, 3)))
    parameterization = TorchParameterization(
        lambda x: (None, (r + phi @ x)[None]), (3,), model.initial, model.gamma, (A,), P=P)
    x = rng.normal(size=3)
    dP, dr = random_weights(parameterization.followers(x), rng)
    fd = central_difference(pairing(parameterization, dP, dr), x)
    grad = parameterization.vjp(x, dP, dr)
    assert relative_error(grad, fd) < 1e-8
    np.testing.assert_allclose(grad, np.einsum("sa,sak->k", dr[0], phi.numpy()), rtol=1e-12)


@pytest.mark.parametrize("shared", [False, True], ids=["per-state", "shared"])
def test_torch_commitment_equals_the_closed_form(shared):
    """Forward maps equal; the vjps agree to 1e-9 on dense weights, on backup weights, and
    for the leader's reward (the shape of the issue's user-parameterization check)."""
    model = game(shared)
    rng = np.random.default_rng(2)
    commitment = CommitmentLogits(model)
    torch_param, torch_leader = torch_commitment(model)
    for _ in range(3):
        x = rng.normal(size=commitment.x_shape)
        closed, by_torch = commitment.followers(x), torch_param.followers(x)
        np.testing.assert_allclose(by_torch.P, closed.P, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(by_torch.r, closed.r, rtol=1e-13, atol=1e-15)
        dP, dr = random_weights(closed, rng)
        expected = commitment.vjp(x, dP, dr)
        assert relative_error(torch_param.vjp(x, dP, dr), expected) < TORCH_RTOL
        weights = BackupWeights(rng.random(closed.r.shape[1:]), rng.normal(size=model.n_states),
                                (float(rng.normal()),))
        factored = pull_back(commitment, x, weights, model.gamma)
        assert relative_error(pull_back(torch_param, x, weights, model.gamma),
                              factored) < TORCH_RTOL
        w = rng.normal(size=closed.r.shape[1:])
        leader = LeaderRewards(commitment)
        np.testing.assert_allclose(torch_leader.rewards(x), leader.rewards(x), rtol=1e-13)
        assert relative_error(torch_leader.vjp(x, w), leader.vjp(x, w)) < TORCH_RTOL


def test_backup_vjp_is_the_vjp_of_its_dense_weights():
    """The commitment's factored vjp (no ``(S, A, S)`` array) is the plain vjp of
    ``dP = gamma w (x) V``, ``dr = c w``, including its mirror direction (the gradient without
    the softmax factor)."""
    model = game(False)
    rng = np.random.default_rng(4)
    commitment = CommitmentLogits(model)
    x = rng.normal(size=commitment.x_shape)
    for c in (0.0, 1.0, -2.5):
        weights = BackupWeights(rng.random((model.n_states, model.n_follower_actions)),
                                rng.normal(size=model.n_states), (c,))
        dense = commitment.vjp(x, *weights.dense(model.gamma))
        factored = commitment.backup_vjp(x, weights)
        np.testing.assert_allclose(factored, dense, rtol=1e-12, atol=1e-14)
        mirror = commitment.backup_vjp(x, weights, mirror=True)
        np.testing.assert_allclose(commitment.policy(x) * mirror, factored, rtol=1e-12,
                                   atol=1e-14)


def test_a_torch_parameterization_has_no_mirror_geometry():
    model = game(False)
    param, leader = torch_commitment(model)
    x = np.zeros(param.x_shape)
    weights = BackupWeights(np.ones((model.n_states, model.n_follower_actions)),
                            np.ones(model.n_states))
    with pytest.raises(ValueError, match="mirror"):
        pull_back(param, x, weights, model.gamma, mirror=True)
    with pytest.raises(ValueError, match="mirror"):
        leader.vjp(x, np.ones((model.n_states, model.n_follower_actions)), mirror=True)


def test_wrong_shape_is_refused():
    model = game(False)
    param, _ = torch_commitment(model)
    with pytest.raises(ValueError, match="shape"):
        param.followers(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        CommitmentLogits(model).followers(np.zeros((2, 2)))

"""Closed-form gradients of ``stackelberg.problem`` against finite differences and torch autograd.

Done-criterion (docs/theory.md §3): every closed-form gradient agrees with central finite
differences (relative error below 1e-6) and with torch autograd through an independent torch
implementation of the same tabular evaluation, on random games, for ``tau in {0.05, 1}``.

Relative error is ``max|closed - reference| / max|reference|`` over all entries.

The torch side never calls the library: it rebuilds ``mu_x``, ``P_x``, ``r_x``, ``V_pi`` (by a
dense linear solve), ``Q_pi``, ``V_L``, ``f``, ``V(x, pi)`` and the Bellman penalty from the raw
game arrays. For the hypergradient it differentiates through a few unrolled soft
policy-iteration steps started at the (numpy) fixed point ``pi*_x``: policy iteration is Newton's
method on the soft Bellman equation, so its Jacobian with respect to the policy vanishes at the
fixed point and the unrolled derivative equals the derivative of ``pi*_x`` itself
(checked below against finite differences, and by the agreement of 1 and 3 unrolled steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from games import random_markov_game
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import softmax

# importing torch costs seconds of CPU: it is imported by the first test of this module (in
# single_torch_thread), and the tests that use torch share one pytest-xdist worker, so that a
# `make test` worker that runs none of them never pays for it
torch = None
pytestmark = pytest.mark.xdist_group("torch")

#: Central-difference step (float64). Error ~ h^2 |f'''| / 6 + eps |f| / h: values here are O(10)
#: (1/(1-gamma) plus the entropy bonus) while some gradients are O(0.02), so at h = 1e-6 rounding
#: alone gives relative errors up to ~7e-7; h = 1e-5 keeps every case below ~5e-8.
FD_STEP = 1e-5
#: Done-criterion: relative error of a closed form against central finite differences.
FD_RTOL = 1e-6
#: Closed forms against autograd: both exact up to float64 rounding.
AUTOGRAD_RTOL = 1e-8

TAUS = [0.05, 1.0]
#: (n_states, n_leader_actions, n_follower_actions, gamma, seed)
GAME_SPECS = [
    (4, 3, 2, 0.9, 0),
    (4, 3, 2, 0.9, 1),
    (4, 3, 2, 0.9, 2),
    (3, 2, 3, 0.5, 3),
]


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Tiny tensors: torch's intra-op thread pool only adds latency (milliseconds per softmax on
    a busy machine), so run single-threaded here and restore the setting afterwards."""
    global torch
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _spec_id(spec: tuple) -> str:
    S, B, A, gamma, seed = spec
    return f"S{S}B{B}A{A}-g{gamma}-seed{seed}"


@dataclass
class Case:
    problem: StackelbergProblem
    x: np.ndarray
    theta: np.ndarray

    @property
    def pi(self) -> np.ndarray:
        return softmax(self.theta, axis=1)


def make_case(spec: tuple, tau: float) -> Case:
    S, B, A, gamma, seed = spec
    model = random_markov_game(S, B, A, gamma=gamma, seed=seed)
    rng = np.random.default_rng(1000 + seed)
    x = rng.normal(scale=1.0, size=(S, B))
    theta = rng.normal(scale=1.0, size=(S, A))
    return Case(StackelbergProblem(model, tau), x, theta)


@pytest.fixture(
    params=[(spec, tau) for spec in GAME_SPECS for tau in TAUS],
    ids=[f"{_spec_id(spec)}-tau{tau}" for spec in GAME_SPECS for tau in TAUS],
)
def case(request) -> Case:
    spec, tau = request.param
    return make_case(spec, tau)


def central_difference(
    fun: Callable[[np.ndarray], float], z: np.ndarray, h: float = FD_STEP
) -> np.ndarray:
    """Gradient of the scalar ``fun`` at ``z`` by central differences, entry by entry."""
    grad = np.zeros_like(z, dtype=float)
    for index in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (fun(plus) - fun(minus)) / (2.0 * h)
    return grad


def relative_error(closed: np.ndarray, reference: np.ndarray) -> float:
    scale = np.abs(reference).max()
    assert scale > 1e-8, "reference gradient is (numerically) zero: the check would be vacuous"
    return float(np.abs(closed - reference).max() / scale)


# -- an independent torch implementation of the tabular evaluation --------------------------------


class TorchGame:
    """The game arrays as float64 tensors, with the tabular evaluation written out in torch."""

    def __init__(self, problem: StackelbergProblem):
        model = problem.model
        as_t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
        self.P = as_t(model.transitions)  # (S, B, A, S)
        self.rF = as_t(model.follower_rewards)  # (S, B, A)
        self.rL = as_t(model.leader_rewards)
        self.rho = as_t(model.initial)
        self.gamma = float(model.gamma)
        self.tau = float(problem.tau)
        self.S = model.n_states

    def evaluate(self, x: torch.Tensor, pi: torch.Tensor, log_pi: torch.Tensor) -> dict:
        """All objectives of ``(x, pi)``; ``log_pi`` is passed so that log(0) never appears."""
        gamma, tau = self.gamma, self.tau
        mu = torch.softmax(x, dim=1)
        P_x = torch.einsum("sb,sbat->sat", mu, self.P)
        r_x = torch.einsum("sb,sba->sa", mu, self.rF)
        P_pi = torch.einsum("sa,sat->st", pi, P_x)
        M = torch.eye(self.S, dtype=torch.float64) - gamma * P_pi
        r_pi = (pi * r_x).sum(dim=1) - tau * (pi * log_pi).sum(dim=1)
        V = torch.linalg.solve(M, r_pi)
        Q = r_x + gamma * torch.einsum("sat,t->sa", P_x, V)
        r_L = torch.einsum("sb,sa,sba->s", mu, pi, self.rL)
        V_L = torch.linalg.solve(M, r_L)
        return {
            "V": V,
            "Q": Q,
            "follower_value": self.rho @ V,
            "upper_objective": -(self.rho @ V_L),
            "bellman_penalty": self.rho @ (tau * torch.logsumexp(Q / tau, dim=1) - V),
        }

    def evaluate_logits(self, x: torch.Tensor, theta: torch.Tensor) -> dict:
        return self.evaluate(x, torch.softmax(theta, dim=1), torch.log_softmax(theta, dim=1))

    def unrolled_best_response(
        self, x: torch.Tensor, pi_start: np.ndarray, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` soft policy-iteration steps from the constant ``pi_start``, differentiable."""
        pi = torch.tensor(pi_start, dtype=torch.float64)
        log_pi = torch.log(pi)
        for _ in range(steps):
            Q = self.evaluate(x, pi, log_pi)["Q"]
            pi = torch.softmax(Q / self.tau, dim=1)
            log_pi = torch.log_softmax(Q / self.tau, dim=1)
        return pi, log_pi


def autograd(scalar_fn: Callable[..., torch.Tensor], *arrays: np.ndarray) -> list[np.ndarray]:
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    grads = torch.autograd.grad(scalar_fn(*leaves), leaves)
    return [g.detach().numpy() for g in grads]


# -- the torch implementation itself agrees with the library's values -----------------------------


def test_torch_evaluation_reproduces_library_values(case):
    ev = case.problem.evaluate(case.x, case.pi)
    out = TorchGame(case.problem).evaluate_logits(torch.tensor(case.x), torch.tensor(case.theta))
    np.testing.assert_allclose(out["V"].numpy(), ev.follower.V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["Q"].numpy(), ev.follower.Q, rtol=1e-12, atol=1e-12)
    assert float(out["follower_value"]) == pytest.approx(ev.follower_value, rel=1e-12)
    assert float(out["upper_objective"]) == pytest.approx(ev.upper_objective, rel=1e-12)
    assert float(out["bellman_penalty"]) == pytest.approx(ev.bellman_penalty(), rel=1e-9, abs=1e-13)


# -- follower value V(x, pi) ----------------------------------------------------------------------


def test_grad_follower_value_matches_finite_differences(case):
    problem, x, theta = case.problem, case.x, case.theta
    grad = problem.evaluate(x, case.pi).grad_follower_value()
    fd_x = central_difference(lambda z: problem.evaluate(z, case.pi).follower_value, x)
    fd_theta = central_difference(
        lambda t: problem.evaluate(x, softmax(t, axis=1)).follower_value, theta
    )
    assert relative_error(grad.x, fd_x) < FD_RTOL
    assert relative_error(grad.theta, fd_theta) < FD_RTOL


def test_grad_follower_value_matches_autograd(case):
    grad = case.problem.evaluate(case.x, case.pi).grad_follower_value()
    tg = TorchGame(case.problem)
    ag_x, ag_theta = autograd(
        lambda x, t: tg.evaluate_logits(x, t)["follower_value"], case.x, case.theta
    )
    assert relative_error(grad.x, ag_x) < AUTOGRAD_RTOL
    assert relative_error(grad.theta, ag_theta) < AUTOGRAD_RTOL


# -- upper objective f(x, pi) ---------------------------------------------------------------------


def test_grad_upper_objective_matches_finite_differences(case):
    problem, x, theta = case.problem, case.x, case.theta
    grad = problem.evaluate(x, case.pi).grad_upper_objective()
    fd_x = central_difference(lambda z: problem.evaluate(z, case.pi).upper_objective, x)
    fd_theta = central_difference(
        lambda t: problem.evaluate(x, softmax(t, axis=1)).upper_objective, theta
    )
    assert relative_error(grad.x, fd_x) < FD_RTOL
    assert relative_error(grad.theta, fd_theta) < FD_RTOL


def test_grad_upper_objective_matches_autograd(case):
    grad = case.problem.evaluate(case.x, case.pi).grad_upper_objective()
    tg = TorchGame(case.problem)
    ag_x, ag_theta = autograd(
        lambda x, t: tg.evaluate_logits(x, t)["upper_objective"], case.x, case.theta
    )
    assert relative_error(grad.x, ag_x) < AUTOGRAD_RTOL
    assert relative_error(grad.theta, ag_theta) < AUTOGRAD_RTOL


# -- Bellman penalty g(x, pi) ---------------------------------------------------------------------


def test_grad_bellman_penalty_matches_finite_differences(case):
    problem, x, theta = case.problem, case.x, case.theta
    grad = problem.evaluate(x, case.pi).grad_bellman_penalty()
    fd_x = central_difference(lambda z: problem.evaluate(z, case.pi).bellman_penalty(), x)
    fd_theta = central_difference(
        lambda t: problem.evaluate(x, softmax(t, axis=1)).bellman_penalty(), theta
    )
    assert relative_error(grad.x, fd_x) < FD_RTOL
    assert relative_error(grad.theta, fd_theta) < FD_RTOL


def test_grad_bellman_penalty_matches_autograd(case):
    grad = case.problem.evaluate(case.x, case.pi).grad_bellman_penalty()
    tg = TorchGame(case.problem)
    ag_x, ag_theta = autograd(
        lambda x, t: tg.evaluate_logits(x, t)["bellman_penalty"], case.x, case.theta
    )
    assert relative_error(grad.x, ag_x) < AUTOGRAD_RTOL
    assert relative_error(grad.theta, ag_theta) < AUTOGRAD_RTOL


@pytest.mark.parametrize("spec", GAME_SPECS, ids=_spec_id)
def test_grad_bellman_penalty_tau_zero_matches_finite_differences(spec):
    """With tau = 0 the penalty E_rho[max_a Q_pi - V_pi] is smooth where the argmax is unique."""
    c = make_case(spec, 0.0)
    problem, x, theta = c.problem, c.x, c.theta
    Q = problem.evaluate(x, c.pi).follower.Q
    top2 = np.sort(Q, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-4, "argmax nearly tied: not differentiable here"
    grad = problem.evaluate(x, c.pi).grad_bellman_penalty()
    fd_x = central_difference(lambda z: problem.evaluate(z, c.pi).bellman_penalty(), x)
    fd_theta = central_difference(
        lambda t: problem.evaluate(x, softmax(t, axis=1)).bellman_penalty(), theta
    )
    assert relative_error(grad.x, fd_x) < FD_RTOL
    assert relative_error(grad.theta, fd_theta) < FD_RTOL


def test_mirror_directions_are_the_gradients_without_the_softmax_factor(case):
    """``mirror=True`` drops the factor ``mu`` (resp. ``pi``) of the softmax Jacobian and keeps
    the per-state centring of the direct gradient."""
    ev = case.problem.evaluate(case.x, case.pi)
    mu = softmax(case.x, axis=1)
    for name in ("grad_follower_value", "grad_upper_objective", "grad_bellman_penalty"):
        grad, mirror = getattr(ev, name)(), getattr(ev, name)(mirror=True)
        np.testing.assert_allclose(mu * mirror.x, grad.x, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(case.pi * mirror.theta, grad.theta, rtol=1e-12, atol=1e-15)
        # the leader direction is centred under mu in every state
        np.testing.assert_allclose((mu * mirror.x).sum(axis=1), 0.0, atol=1e-12)


# -- value penalty p(x, pi) = V*(x) - V(x, pi) (Danskin) ------------------------------------------


def value_penalty_gradient(case: Case):
    """Closed form (docs/theory.md §3): grad_x p = grad_x V(x, pi*) - grad_x V(x, pi),
    grad_theta p = -grad_theta V(x, pi)."""
    problem = case.problem
    pi_star = problem.best_response(case.x).pi
    at_pi = problem.evaluate(case.x, case.pi).grad_follower_value()
    at_star = problem.evaluate(case.x, pi_star).grad_follower_value()
    return at_star.x - at_pi.x, -at_pi.theta


def test_grad_value_penalty_matches_finite_differences(case):
    problem, x, theta = case.problem, case.x, case.theta
    closed_x, closed_theta = value_penalty_gradient(case)
    fd_x = central_difference(lambda z: problem.value_penalty(z, case.pi), x)
    fd_theta = central_difference(lambda t: problem.value_penalty(x, softmax(t, axis=1)), theta)
    assert relative_error(closed_x, fd_x) < FD_RTOL
    assert relative_error(closed_theta, fd_theta) < FD_RTOL


def test_grad_value_penalty_matches_autograd(case):
    closed_x, closed_theta = value_penalty_gradient(case)
    tg = TorchGame(case.problem)
    pi_star = case.problem.best_response(case.x).pi

    def penalty(x, theta):
        pi, log_pi = tg.unrolled_best_response(x, pi_star, steps=2)
        v_star = tg.evaluate(x, pi, log_pi)["follower_value"]
        return v_star - tg.evaluate_logits(x, theta)["follower_value"]

    ag_x, ag_theta = autograd(penalty, case.x, case.theta)
    assert relative_error(closed_x, ag_x) < AUTOGRAD_RTOL
    assert relative_error(closed_theta, ag_theta) < AUTOGRAD_RTOL


# -- hyper-objective Phi(x) = f(x, pi*_x) ---------------------------------------------------------


def test_hypergradient_value_is_the_hyper_objective(case):
    hg = case.problem.hypergradient(case.x)
    assert hg.value == pytest.approx(case.problem.hyper_objective(case.x), rel=1e-12)
    np.testing.assert_allclose(hg.best_response, case.problem.best_response(case.x).pi, atol=1e-12)


def test_hypergradient_matches_finite_differences(case):
    problem = case.problem
    hg = problem.hypergradient(case.x)
    fd = central_difference(problem.hyper_objective, case.x)
    assert relative_error(hg.grad, fd) < FD_RTOL


def torch_hypergradient(problem: StackelbergProblem, x: np.ndarray, steps: int) -> np.ndarray:
    tg = TorchGame(problem)
    pi_star = problem.best_response(x).pi

    def phi(xt):
        pi, log_pi = tg.unrolled_best_response(xt, pi_star, steps=steps)
        return tg.evaluate(xt, pi, log_pi)["upper_objective"]

    return autograd(phi, x)[0]


def test_hypergradient_matches_autograd_through_unrolled_policy_iteration(case):
    hg = case.problem.hypergradient(case.x)
    ag = torch_hypergradient(case.problem, case.x, steps=3)
    assert relative_error(hg.grad, ag) < AUTOGRAD_RTOL


def test_unrolled_policy_iteration_derivative_is_the_fixed_point_derivative(case):
    """The torch reference itself: Newton's zero Jacobian at the fixed point makes 1 and 3
    unrolled steps agree, and both match finite differences of Phi (independently of the
    library's closed form)."""
    one = torch_hypergradient(case.problem, case.x, steps=1)
    three = torch_hypergradient(case.problem, case.x, steps=3)
    assert relative_error(one, three) < 1e-10
    fd = central_difference(case.problem.hyper_objective, case.x)
    assert relative_error(three, fd) < FD_RTOL


def test_hypergradient_differs_from_the_partial_gradient(case):
    """Guards against a vacuous hypergradient: the best-response term is not negligible."""
    hg = case.problem.hypergradient(case.x)
    partial = case.problem.evaluate(case.x, hg.best_response).grad_upper_objective().x
    assert relative_error(partial, hg.grad) > 1e-3


def test_hypergradient_accepts_a_given_best_response(case):
    pi_star = case.problem.best_response(case.x).pi
    given = case.problem.hypergradient(case.x, pi_star=pi_star)
    computed = case.problem.hypergradient(case.x)
    np.testing.assert_allclose(given.grad, computed.grad, rtol=1e-12, atol=1e-14)


def test_hypergradient_requires_positive_tau():
    problem = StackelbergProblem(random_markov_game(3, 2, 2, gamma=0.9, seed=0), tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        problem.hypergradient(np.zeros(problem.x_shape))


@pytest.mark.parametrize("weights", [(-1.0, -7.0), (0.0, 1.0), (-1.0, 0.0), (2.0, 3.0)])
@pytest.mark.parametrize("mirror", [False, True])
def test_grad_value_combination_is_the_combination_of_the_two_gradients(case, weights, mirror):
    """One backup of the combined values gives ``a grad V_L + b grad V`` (``V_L = -f``)."""
    leader, follower = weights
    ev = case.problem.evaluate(case.x, case.pi)
    combined = ev.grad_value_combination(leader, follower, mirror)
    expected = (-leader) * ev.grad_upper_objective(mirror) + follower * ev.grad_follower_value(
        mirror
    )
    scale = max(np.abs(expected.x).max(), np.abs(expected.theta).max())
    np.testing.assert_allclose(combined.x, expected.x, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(combined.theta, expected.theta, rtol=0, atol=1e-13 * scale)

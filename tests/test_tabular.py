"""Exact tabular MDP maths (``stackelberg.tabular``) against plain fixed-point iterations.

References are computed here by iterating operators to convergence (contraction at rate gamma,
so ``n`` iterations leave an error of ``gamma^n / (1 - gamma)`` times the reward scale).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from stackelberg.tabular import (
    check_tau,
    evaluate_policy,
    greedy_policy,
    kl_rows,
    log_softmax,
    neg_entropy,
    row_max,
    row_sum,
    soft_max_value,
    softmax,
    solve_mdp,
)

EXAMPLES = settings(max_examples=30, deadline=None)


def random_mdp(seed: int, S: int = 5, A: int = 3, reward_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    r = reward_scale * rng.uniform(-1.0, 1.0, size=(S, A))
    return P, r


def random_policy(seed: int, S: int, A: int, scale: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    return scipy.special.softmax(rng.normal(scale=scale, size=(S, A)), axis=1)


def iterate(operator, V0: np.ndarray, gamma: float, tol: float = 1e-14) -> np.ndarray:
    """Iterate a gamma-contraction until the sup-norm step is below tol * (1 - gamma)."""
    V = V0
    for _ in range(20_000):
        new = operator(V)
        if np.abs(new - V).max() <= tol * (1 - gamma):
            return new
        V = new
    raise AssertionError("reference iteration did not converge")


def neg_entropy_reference(pi: np.ndarray) -> np.ndarray:
    return np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(axis=1)


# -- policy evaluation ----------------------------------------------------------------------------


@EXAMPLES
@given(
    seed=st.integers(0, 2**20),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    gamma=st.sampled_from([0.0, 0.5, 0.9, 0.95]),
    tau=st.sampled_from([0.0, 0.05, 1.0]),
)
def test_evaluate_policy_is_the_fixed_point_of_the_bellman_expectation_operator(
    seed, S, A, gamma, tau
):
    P, r = random_mdp(seed, S, A)
    pi = random_policy(seed, S, A)
    entropy_term = tau * neg_entropy_reference(pi)

    def bellman_expectation(V):
        return (pi * (r + gamma * np.einsum("sat,t->sa", P, V))).sum(axis=1) - entropy_term

    V_ref = iterate(bellman_expectation, np.zeros(S), gamma)
    ev = evaluate_policy(P, r, pi, gamma, tau)
    np.testing.assert_allclose(ev.V, V_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ev.Q, r + gamma * np.einsum("sat,t->sa", P, V_ref), atol=1e-10)


def test_evaluate_policy_handles_deterministic_policies_with_zeros():
    P, r = random_mdp(1, 4, 3)
    pi = np.eye(3)[[0, 2, 1, 2]]
    ev = evaluate_policy(P, r, pi, 0.9, tau=0.5)  # h(pi) = 0 for a deterministic policy
    assert np.isfinite(ev.V).all()
    np.testing.assert_allclose(ev.V, evaluate_policy(P, r, pi, 0.9, tau=0.0).V, atol=1e-13)
    np.testing.assert_allclose(ev.V, (pi * ev.Q).sum(axis=1), atol=1e-12)


def test_visitation_solve_and_transposed_solve():
    P, r = random_mdp(2, 5, 2)
    pi = random_policy(2, 5, 2)
    gamma = 0.8
    ev = evaluate_policy(P, r, pi, gamma, 0.3)
    M = np.eye(5) - gamma * np.einsum("sa,sat->st", pi, P)
    b = np.arange(5.0)
    np.testing.assert_allclose(ev.solve(b), np.linalg.solve(M, b), rtol=1e-12)
    np.testing.assert_allclose(ev.solve_transposed(b), np.linalg.solve(M.T, b), rtol=1e-12)
    rho = np.full(5, 0.2)
    np.testing.assert_allclose(
        ev.visitation(rho, gamma), (1 - gamma) * np.linalg.solve(M.T, rho), rtol=1e-12
    )


# -- soft optimality (tau > 0) --------------------------------------------------------------------


@EXAMPLES
@given(
    seed=st.integers(0, 2**20),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    gamma=st.sampled_from([0.0, 0.5, 0.9, 0.95]),
    tau=st.sampled_from([0.01, 0.05, 0.3, 1.0, 5.0]),
)
def test_solve_mdp_soft_satisfies_the_soft_bellman_optimality_equation(seed, S, A, gamma, tau):
    P, r = random_mdp(seed, S, A)
    sol = solve_mdp(P, r, gamma, tau)
    Q = r + gamma * np.einsum("sat,t->sa", P, sol.V)
    np.testing.assert_allclose(sol.Q, Q, atol=1e-12)
    np.testing.assert_allclose(
        sol.V, tau * scipy.special.logsumexp(Q / tau, axis=1), rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(sol.pi, scipy.special.softmax(Q / tau, axis=1), rtol=0, atol=1e-10)


def test_solve_mdp_soft_matches_soft_value_iteration():
    P, r = random_mdp(3, 6, 3)
    gamma, tau = 0.9, 0.2

    def soft_bellman(V):
        Q = r + gamma * np.einsum("sat,t->sa", P, V)
        return tau * scipy.special.logsumexp(Q / tau, axis=1)

    V_ref = iterate(soft_bellman, np.zeros(6), gamma)
    np.testing.assert_allclose(solve_mdp(P, r, gamma, tau).V, V_ref, rtol=0, atol=1e-10)


def test_soft_optimum_dominates_every_policy_statewise():
    P, r = random_mdp(4, 4, 3)
    gamma, tau = 0.9, 0.5
    V_star = solve_mdp(P, r, gamma, tau).V
    for seed in range(30):
        V = evaluate_policy(P, r, random_policy(seed, 4, 3, scale=3.0), gamma, tau).V
        assert (V <= V_star + 1e-12).all()


# -- unregularized optimality (tau = 0) -----------------------------------------------------------


@EXAMPLES
@given(
    seed=st.integers(0, 2**20),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    gamma=st.sampled_from([0.0, 0.5, 0.9, 0.95]),
)
def test_solve_mdp_unregularized_matches_value_iteration(seed, S, A, gamma):
    P, r = random_mdp(seed, S, A)

    def bellman_optimality(V):
        return (r + gamma * np.einsum("sat,t->sa", P, V)).max(axis=1)

    V_ref = iterate(bellman_optimality, np.zeros(S), gamma)
    sol = solve_mdp(P, r, gamma, 0.0)
    np.testing.assert_allclose(sol.V, V_ref, rtol=0, atol=1e-9)
    # pi is a distribution supported on argmax_a Q(s, a)
    np.testing.assert_allclose(sol.pi.sum(axis=1), 1.0, atol=1e-12)
    assert (sol.pi >= 0).all()
    Q = sol.Q
    off_argmax = Q < Q.max(axis=1, keepdims=True) - 1e-9
    assert (sol.pi[off_argmax] == 0).all()


def test_solve_mdp_unregularized_with_ties_terminates_at_an_optimal_policy():
    """Duplicate actions make every argmax a tie; the solver must still stop, at an optimum."""
    P, r = random_mdp(5, 4, 2)
    P2, r2 = np.concatenate([P, P], axis=1), np.concatenate([r, r], axis=1)
    sol = solve_mdp(P2, r2, 0.9, 0.0)
    np.testing.assert_allclose(sol.V, solve_mdp(P, r, 0.9, 0.0).V, atol=1e-12)


# -- warm starts, solver contract -----------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_warm_start_takes_fewer_iterations(tau):
    P, r = random_mdp(6, 8, 4, reward_scale=5.0)
    gamma = 0.95
    start = solve_mdp(P, r, gamma, tau)
    # a nearby MDP: the previous optimum is a good warm start for it
    r_near = r + 1e-3 * np.random.default_rng(0).normal(size=r.shape)
    cold = solve_mdp(P, r_near, gamma, tau)
    warm = solve_mdp(P, r_near, gamma, tau, pi0=start.pi)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.pi, cold.pi, atol=1e-10)
    np.testing.assert_allclose(warm.V, cold.V, atol=1e-10)
    # at the exact optimum one improvement step confirms convergence
    assert solve_mdp(P, r_near, gamma, tau, pi0=cold.pi).iterations == 1


def test_solve_mdp_raises_when_the_budget_is_too_small():
    from stackelberg.tabular import ConvergenceError

    P, r = random_mdp(7, 6, 3, reward_scale=5.0)
    with pytest.raises(ConvergenceError, match="did not converge"):
        solve_mdp(P, r, 0.95, 0.05, max_iter=1)


def test_solve_mdp_does_not_modify_the_warm_start():
    P, r = random_mdp(8, 4, 3)
    pi0 = random_policy(8, 4, 3)
    before = pi0.copy()
    solve_mdp(P, r, 0.9, 0.0, pi0=pi0)
    solve_mdp(P, r, 0.9, 0.3, pi0=pi0)
    np.testing.assert_array_equal(pi0, before)


# -- softmax family -------------------------------------------------------------------------------


HUGE_LOGITS = np.array(
    [
        [1000.0, 999.0, -1000.0],
        [1e300, 1e300, 1e300],
        [-1e300, -1e300, -1e300],
        [1e300, 0.0, -1e300],
        [710.0, 709.0, 0.0],  # exp(710) overflows without the shift
    ]
)


def test_softmax_is_stable_for_huge_logits():
    p = softmax(HUGE_LOGITS, axis=1)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-15)
    e = np.exp(-1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_array_equal(p[3], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[4], scipy.special.softmax(HUGE_LOGITS[4]), rtol=1e-14)


def test_log_softmax_is_stable_for_huge_logits():
    lp = log_softmax(HUGE_LOGITS, axis=1)
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(
        lp[0, :2], [-np.log1p(np.exp(-1.0)), -1 - np.log1p(np.exp(-1.0))], rtol=1e-14
    )
    assert lp[0, 2] == pytest.approx(-2000 + lp[0, 0], rel=1e-14)
    np.testing.assert_allclose(lp[1], -np.log(3.0), rtol=1e-15)
    np.testing.assert_allclose(lp[3], [0.0, -1e300, -2e300], rtol=1e-15)
    np.testing.assert_allclose(lp[4], scipy.special.log_softmax(HUGE_LOGITS[4]), rtol=1e-14)


@EXAMPLES
@given(
    logits=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=6),
    shift=st.floats(-1e6, 1e6),
)
def test_softmax_family_agrees_with_scipy_and_is_shift_invariant(logits, shift):
    z = np.array([logits])
    np.testing.assert_allclose(
        softmax(z), scipy.special.softmax(z, axis=-1), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(
        log_softmax(z), scipy.special.log_softmax(z, axis=-1), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(softmax(z + shift), softmax(z), rtol=1e-7, atol=1e-12)


def test_softmax_respects_the_axis_argument():
    z = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(softmax(z, axis=0), scipy.special.softmax(z, axis=0), rtol=1e-15)
    np.testing.assert_allclose(softmax(z, axis=0).sum(axis=0), 1.0)


# -- small helpers --------------------------------------------------------------------------------


def test_soft_max_value_is_logsumexp_and_tends_to_max():
    Q = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, -1.0], [1e4, 0.0, -1e4]])
    for tau in (0.01, 0.5, 3.0):
        np.testing.assert_allclose(
            soft_max_value(Q, tau), tau * scipy.special.logsumexp(Q / tau, axis=1), rtol=1e-14
        )
    np.testing.assert_array_equal(soft_max_value(Q, 0.0), Q.max(axis=1))
    # max Q <= tau logsumexp(Q/tau) <= max Q + tau log A
    tau = 1e-3
    v = soft_max_value(Q, tau)
    assert (v >= Q.max(axis=1)).all()
    assert (v <= Q.max(axis=1) + tau * np.log(3) + 1e-12).all()


def test_greedy_policy():
    Q = np.array([[1.0, 3.0, 2.0], [4.0, 4.0, 0.0]])
    np.testing.assert_array_equal(greedy_policy(Q, 0.0), [[0, 1, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(
        greedy_policy(Q, 0.7), scipy.special.softmax(Q / 0.7, axis=1), rtol=1e-14
    )


def test_kl_rows_and_neg_entropy():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(kl_rows(p, q), [np.log(2.0), 0.0], atol=1e-15)
    np.testing.assert_allclose(
        neg_entropy(p), [-np.log(2.0), (p[1] * np.log(p[1])).sum()], rtol=1e-15
    )
    assert (kl_rows(q, np.full((2, 3), 1 / 3)) > 0).all()


# -- check_tau ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1e-12, -1.0, float("nan"), float("inf"), float("-inf")])
def test_check_tau_rejects_invalid_values(bad):
    with pytest.raises(ValueError, match="tau"):
        check_tau(bad)


@pytest.mark.parametrize("bad", [-0.5, float("nan")])
def test_solve_mdp_rejects_invalid_tau(bad):
    P, r = random_mdp(0, 3, 2)
    with pytest.raises(ValueError, match="tau"):
        solve_mdp(P, r, 0.9, bad)


def test_check_tau_accepts_and_converts():
    assert check_tau(0) == 0.0
    assert isinstance(check_tau(np.float32(0.25)), float)
    assert check_tau(np.float32(0.25)) == 0.25
    assert check_tau(3) == 3.0


# -- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.0, 0.1])
def test_same_input_gives_bitwise_identical_output(tau):
    P, r = random_mdp(9, 5, 3)
    pi = random_policy(9, 5, 3)
    a, b = solve_mdp(P, r, 0.9, tau), solve_mdp(P.copy(), r.copy(), 0.9, tau)
    np.testing.assert_array_equal(a.pi, b.pi)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.Q, b.Q)
    assert a.iterations == b.iterations
    e1, e2 = evaluate_policy(P, r, pi, 0.9, tau), evaluate_policy(P, r, pi, 0.9, tau)
    np.testing.assert_array_equal(e1.V, e2.V)
    np.testing.assert_array_equal(e1.Q, e2.Q)


# -- borrowed factorizations: iterative refinement --------------------------------------------


def test_refine_with_a_nearby_factorization_matches_a_direct_solve():
    from stackelberg.tabular import lu_factor, refine, state_transitions

    P, _ = random_mdp(3, 40, 3)
    pi0 = random_policy(3, 40, 3)
    pi = 0.99 * pi0 + 0.01 * random_policy(4, 40, 3)  # a nearby policy
    M0 = np.eye(40) - 0.9 * state_transitions(P, pi0)
    M = np.eye(40) - 0.9 * state_transitions(P, pi)
    rhs = np.random.default_rng(0).normal(size=40)
    for trans, system in ((0, M), (1, M.T)):
        x = refine(M, lu_factor(M0), rhs, trans=trans)
        np.testing.assert_allclose(x, np.linalg.solve(system, rhs), rtol=0, atol=1e-13)


def test_refine_gives_up_on_a_distant_factorization():
    from stackelberg.tabular import lu_factor, refine, state_transitions

    P, _ = random_mdp(5, 30, 3)
    M = np.eye(30) - 0.99 * state_transitions(P, random_policy(5, 30, 3))
    far = np.eye(30)  # (I - 0.99 P_pi)^{-1} is far from I: the error grows
    assert refine(M, lu_factor(far), np.ones(30)) is None
    # a step budget too small for the observed rate is refused up front
    near = np.eye(30) - 0.9 * state_transitions(P, random_policy(5, 30, 3))
    assert refine(M, lu_factor(near), np.ones(30), max_steps=1) is None


@pytest.mark.parametrize("seed", range(4))
def test_policy_iteration_with_borrowed_factorizations_matches_the_plain_one(seed):
    S = 120
    P, r = random_mdp(seed, S, 3, reward_scale=2.0)
    gamma, tau = 0.9, 0.05
    start = solve_mdp(P, r, gamma, tau).pi
    # a nearby MDP warm-started from the old optimum, as in a match
    r_near = r + 0.05 * np.random.default_rng(seed).normal(size=r.shape)
    plain = solve_mdp(P, r_near, gamma, tau, pi0=start, tol=1e-10, max_refine_steps=0)
    borrowed = solve_mdp(P, r_near, gamma, tau, pi0=start, tol=1e-10, max_refine_steps=30)
    assert plain.factorizations == plain.iterations
    assert borrowed.factorizations < plain.factorizations
    assert borrowed.iterations == plain.iterations
    np.testing.assert_allclose(borrowed.pi, plain.pi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(borrowed.V, plain.V, rtol=0, atol=1e-10)
    np.testing.assert_allclose(borrowed.Q, plain.Q, rtol=0, atol=1e-10)
    # the returned evaluation solves with its own policy's matrix, whichever factors it holds
    rhs = np.random.default_rng(1).normal(size=S)
    for solve in ("solve", "solve_transposed"):
        np.testing.assert_allclose(getattr(borrowed.evaluation, solve)(rhs),
                                   getattr(plain.evaluation, solve)(rhs), rtol=0, atol=1e-12)


def test_small_mdps_factorize_every_policy_by_default():
    P, r = random_mdp(2, 10, 3)
    solution = solve_mdp(P, r, 0.9, 0.1)
    assert solution.factorizations == solution.iterations
    assert solution.evaluation.M is None


def test_large_mdps_borrow_factorizations_by_default():
    from stackelberg.tabular import REFINE_MIN_STATES

    S = REFINE_MIN_STATES + 50
    P, r = random_mdp(2, S, 3, reward_scale=2.0)
    start = solve_mdp(P, r, 0.9, 0.05).pi
    r_near = r + 0.05 * np.random.default_rng(2).normal(size=r.shape)
    warm = solve_mdp(P, r_near, 0.9, 0.05, pi0=start)
    assert warm.factorizations < warm.iterations


def test_a_borrowed_evaluation_solves_exactly_even_when_refinement_stalls():
    from stackelberg.tabular import PolicyEvaluation, lu_factor, state_transitions

    P, _ = random_mdp(6, 30, 3)
    M = np.eye(30) - 0.99 * state_transitions(P, random_policy(6, 30, 3))
    ev = PolicyEvaluation(V=np.zeros(30), Q=np.zeros((30, 3)), lu=lu_factor(np.eye(30)), M=M)
    rhs = np.random.default_rng(2).normal(size=30)
    np.testing.assert_allclose(ev.solve(rhs), np.linalg.solve(M, rhs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ev.solve_transposed(rhs), np.linalg.solve(M.T, rhs),
                               rtol=0, atol=1e-12)


# -- predicted convergence, warm start from values -------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_predicted_stop_returns_a_policy_within_tol_and_saves_the_confirming_evaluation(seed):
    P, r = random_mdp(seed, 30, 3, reward_scale=2.0)
    gamma, tau, tol = 0.9, 0.05, 1e-10
    start = solve_mdp(P, r, gamma, tau)
    r_near = r + 0.05 * np.random.default_rng(seed).normal(size=r.shape)
    exact = solve_mdp(P, r_near, gamma, tau, tol=1e-13)
    plain = solve_mdp(P, r_near, gamma, tau, pi0=start.pi, tol=tol)
    predicted = solve_mdp(P, r_near, gamma, tau, pi0=start.pi, tol=tol, predict=True)
    assert predicted.mdp is not None  # stopped on the prediction: pi was not evaluated
    assert predicted.factorizations == plain.factorizations - 1
    assert np.abs(predicted.pi - exact.pi).max() <= tol
    # the evaluation made on demand is the policy's own, and is made once
    direct = evaluate_policy(P, r_near, predicted.pi, gamma, tau)
    np.testing.assert_array_equal(predicted.V, direct.V)
    np.testing.assert_array_equal(predicted.Q, direct.Q)
    assert predicted.evaluation is predicted.evaluation
    np.testing.assert_allclose(predicted.V, exact.V, rtol=0, atol=1e-10)
    # last: the evaluation of the policy before, whose values are already near the optimum
    np.testing.assert_allclose(predicted.last.V, exact.V, rtol=0, atol=1e-6)


def test_prediction_needs_two_changes_and_tau_positive():
    P, r = random_mdp(3, 20, 3, reward_scale=2.0)
    at_optimum = solve_mdp(P, r, 0.9, 0.05, tol=1e-13)
    # from the optimum the first change is already below tol: no prediction, pi evaluated
    again = solve_mdp(P, r, 0.9, 0.05, pi0=at_optimum.pi, tol=1e-10, predict=True)
    assert again.iterations == 1 and again.mdp is None
    # tau = 0 stops on a stable greedy set only
    hard = solve_mdp(P, r, 0.9, 0.0, predict=True)
    assert hard.mdp is None
    np.testing.assert_allclose(hard.V, solve_mdp(P, r, 0.9, 0.0).V, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_warm_start_from_values_reaches_the_same_optimum(seed):
    P, r = random_mdp(seed, 30, 3, reward_scale=2.0)
    gamma, tau = 0.9, 0.05
    start = solve_mdp(P, r, gamma, tau)
    r_near = r + 0.05 * np.random.default_rng(seed).normal(size=r.shape)
    exact = solve_mdp(P, r_near, gamma, tau, tol=1e-13)
    from_values = solve_mdp(P, r_near, gamma, tau, V0=start.V, tol=1e-10)
    from_policy = solve_mdp(P, r_near, gamma, tau, pi0=start.pi, tol=1e-10)
    assert from_values.factorizations <= from_policy.factorizations
    assert np.abs(from_values.pi - exact.pi).max() <= 1e-10
    np.testing.assert_allclose(from_values.V, exact.V, rtol=0, atol=1e-10)
    # V0 is used, not pi0: a bad pi0 changes nothing
    uniform = np.full_like(start.pi, 1.0 / 3)
    same = solve_mdp(P, r_near, gamma, tau, pi0=uniform, V0=start.V, tol=1e-10)
    np.testing.assert_array_equal(same.pi, from_values.pi)


@pytest.mark.parametrize("shape", [(100, 3), (7, 1), (4, 16), (5, 17), (1, 3), (6,)])
def test_row_reductions_match_numpy(shape):
    z = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_array_equal(row_max(z), z.max(axis=-1))
    np.testing.assert_allclose(row_sum(z), z.sum(axis=-1), rtol=1e-15, atol=1e-15)
    # a fresh array, never a view of the input
    if z.ndim == 2:
        m = row_max(z)
        m += 1.0
        np.testing.assert_array_equal(row_max(z), z.max(axis=-1))

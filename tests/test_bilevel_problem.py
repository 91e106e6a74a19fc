"""A bilevel problem composed of a user's torch parameterization, the single-follower lower level
and a value objective gives the built-in Stackelberg problem's numbers: every gradient, the
exact hypergradient, and whole matches of the exact leaders through the coordinator
(docs/theory.md §12)."""

from __future__ import annotations

import numpy as np
import pytest
from test_gradients import central_difference, relative_error
from test_parameterizations import game, torch_commitment

from agents.registry import FOLLOWERS, LEADERS
from stackelberg.bilevel import BackupWeights
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.parameterizations import CommitmentLogits, LeaderRewards
from stackelberg.problem import BilevelProblem, StackelbergProblem
from stackelberg.seeding import run_streams
from stackelberg.upper_level import ValueObjective

pytestmark = pytest.mark.xdist_group("torch")  # on the worker that imports torch (test_gradients)
TAU = 0.1
#: The same arithmetic in another order (torch's einsum against numpy's BLAS products).
RTOL = 1e-9


class DenseOnly:
    """The commitment logits without their factored vjp: the problem must then form
    ``(dP, dr)`` and call the plain ``vjp`` of the contract."""

    def __init__(self, commitment: CommitmentLogits):
        self.inner = commitment
        self.x_shape = commitment.x_shape

    def initial_x(self) -> np.ndarray:
        return self.inner.initial_x()

    def followers(self, x: np.ndarray):
        return self.inner.followers(x)

    def vjp(self, x, dP, dr):
        return self.inner.vjp(x, dP, dr)


def problems(shared: bool) -> dict[str, BilevelProblem]:
    model = game(shared)
    param, leader = torch_commitment(model)
    commitment = CommitmentLogits(model)
    return {
        "built-in": StackelbergProblem(model, TAU),
        "torch": BilevelProblem(param, ValueObjective(leader), TAU, model=model),
        "dense": BilevelProblem(DenseOnly(commitment),
                                ValueObjective(LeaderRewards(commitment)), TAU, model=model),
    }


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return relative_error(a, b) < RTOL


@pytest.mark.parametrize("shared", [False, True], ids=["per-state", "shared"])
def test_composed_problems_give_the_built_in_gradients(shared):
    built = problems(shared)
    reference = built.pop("built-in")
    rng = np.random.default_rng(5)
    x = rng.normal(size=reference.x_shape)
    pi = rng.dirichlet(np.ones(reference.policy_shape[1]), size=reference.policy_shape[0])
    expected = reference.evaluate(x, pi)
    for name, problem in built.items():
        assert problem.x_shape == reference.x_shape and problem.policy_shape == pi.shape
        ev = problem.evaluate(x, pi)
        assert ev.upper_objective == pytest.approx(expected.upper_objective, rel=1e-12)
        assert ev.follower_value == pytest.approx(expected.follower_value, rel=1e-12)
        assert ev.bellman_penalty() == pytest.approx(expected.bellman_penalty(), rel=1e-10)
        for method in ("grad_follower_value", "grad_upper_objective", "grad_bellman_penalty"):
            got, want = getattr(ev, method)(), getattr(expected, method)()
            assert close(got.x, want.x), (name, method)
            assert close(got.theta, want.theta), (name, method)
        got = ev.grad_value_combination(-1.0, -7.0)
        want = expected.grad_value_combination(-1.0, -7.0)
        assert close(got.x, want.x) and close(got.theta, want.theta), name
        hyper, want_hyper = problem.hypergradient(x), reference.hypergradient(x)
        assert hyper.value == pytest.approx(want_hyper.value, rel=1e-12)
        assert close(hyper.grad, want_hyper.grad), name
        np.testing.assert_allclose(problem.penalized_response(x, 3.0).pi,
                                   reference.penalized_response(x, 3.0).pi, atol=1e-10)


def test_composed_hypergradient_matches_finite_differences():
    """Independently of the built-in path: the torch problem's exact hypergradient against
    central differences of its own hyper-objective."""
    problem = problems(False)["torch"]
    x = np.random.default_rng(6).normal(size=problem.x_shape)
    fd = central_difference(lambda z: problem.hyper_objective(z), x)
    assert relative_error(problem.hypergradient(x).grad, fd) < 1e-6


def test_backup_weights_pull_back_equals_the_dense_contract():
    """The problem's pull-back of weights on the model is the same through the factored and
    the dense vjp (what lets any parameterization carry the lower level's gradients)."""
    built = problems(False)
    rng = np.random.default_rng(7)
    x = rng.normal(size=built["built-in"].x_shape)
    S, A = built["built-in"].policy_shape
    weights = BackupWeights(rng.random((S, A)), rng.normal(size=S), (0.5,))
    expected = built["built-in"].pull_back(x, weights)
    for name in ("torch", "dense"):
        assert close(built[name].pull_back(x, weights), expected), name


#: Leader settings on which both problems run the same algorithm: the euclidean geometry (the
#: natural and mirror geometries are defined for softmax logits only), one start, and a fixed
#: tau (annealed to 1e-3, the value penalty's weight lam_tau / tau reaches 1e4 and multiplies
#: the best responses' tolerance of 1e-10 into differences of 1e-8 between any two exact
#: paths: a matter of conditioning, not of the parameterization).
LEADER_PARAMS = {
    "pbrl-value": {"geometry": "euclidean", "random_starts": 1, "tau_ratio": 1.0},
    "pbrl-bellman": {"geometry": "euclidean", "random_starts": 1, "tau_ratio": 1.0},
    "hypergradient": {"random_starts": 1, "tau_ratio": 1.0},
    "partial-gradient": {"random_starts": 1, "tau_ratio": 1.0},
}


def play(problem: BilevelProblem, leader: str, iterations: int = 12):
    spec = LEADERS[leader]
    lead = spec.factory(spec.make_config(**LEADER_PARAMS[leader]))
    follow = FOLLOWERS["best-response"].factory(FOLLOWERS["best-response"].make_config())
    config = MatchConfig(iterations=iterations, progress=False)
    return run_match(problem, lead, [follow], config, run_streams(3))


#: pbrl-bellman's penalized policy comes out of an L-BFGS run to a gradient tolerance of 1e-8
#: (``agents.leaders.pbrl.BELLMAN_GTOL``), whose iterates rounding differences move: its
#: numbers agree to that solver's accuracy (measured: metrics 5e-9, x 4e-7), not to the
#: arithmetic's (the other leaders: 3e-11 or better).
TOLERANCE = {"pbrl-bellman": 1e-6}


@pytest.mark.parametrize("leader", sorted(LEADER_PARAMS))
def test_exact_leaders_run_on_a_torch_parameterization(leader):
    built = problems(False)
    reference = play(built["built-in"], leader)
    result = play(built["torch"], leader)
    # the gaps are differences of values of order 1: absolute agreement is what is meaningful
    tol = TOLERANCE.get(leader, RTOL)
    assert len(result.metrics) == len(reference.metrics)
    for row, want in zip(result.metrics, reference.metrics, strict=True):
        for key in ("upper_objective", "hyper_objective", "lower_level_gap", "follower_gap",
                    "tau", "grad_norm"):
            assert row[key] == pytest.approx(want[key], rel=tol, abs=tol), (key, row)
    np.testing.assert_allclose(result.x, reference.x, rtol=tol, atol=tol)
    # the game-level V_L needs a commitment: the problem without a game reports the leader's
    # objective -Phi(x) at the configured tau instead (tau_ratio = 1 here: the final row's)
    assert reference.summary["leader_value"] != pytest.approx(-reference.summary["hyper_objective"])
    assert result.summary["leader_value"] == -result.summary["hyper_objective"]
    assert result.leader_policy is None
    moved = np.abs(reference.x - built["built-in"].initial_x()).max()
    assert moved > 1e-3, "the leader did not move: the comparison would be vacuous"

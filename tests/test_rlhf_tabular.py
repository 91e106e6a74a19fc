"""Tabular RLHF (docs/theory.md §8): the exact preference objective and its gradients against
central differences and an independent torch implementation, the sampled pairs against the
exact expectation, the Bradley-Terry identities, and matches of the exact leaders on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_gradients import central_difference, relative_error

from agents.registry import FOLLOWERS, LEADERS
from games.rlhf_tabular import RLHFProblem, rlhf_tabular
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.preferences import (
    preference_accuracy,
    sample_pairs,
    sample_segments,
    sampled_loss,
)
from stackelberg.seeding import run_streams
from stackelberg.tabular import softmax

# torch costs seconds of CPU to import: this module's tests import it (the fixture below) and
# share test_gradients' pytest-xdist worker, so that the other worker never pays for it
torch = None
pytestmark = pytest.mark.xdist_group("torch")


@pytest.fixture(autouse=True, scope="module")
def _import_torch():
    global torch
    import torch


TAU = 0.3
VARIANTS = [("tabular", False), ("linear", False), ("tabular", True)]


def problem(reward_model: str = "tabular", excess: bool = False, **task) -> RLHFProblem:
    params = {"n_states": 5, "n_actions": 3, "seed": 1, **task}
    return RLHFProblem(rlhf_tabular(reward_model=reward_model, **params), TAU, excess=excess)


def point(p: RLHFProblem, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=p.x_shape), rng.normal(size=p.policy_shape)


def f(p: RLHFProblem, x: np.ndarray, theta: np.ndarray) -> float:
    return p.evaluate(x, softmax(theta, axis=1)).upper_objective


def torch_objective(p: RLHFProblem, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``f(x, theta)`` written out independently: visitation by a dense solve, every pair's
    expected NLL by ``logsigmoid``."""
    t = p.task
    as_t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    P, rho = as_t(t.P), as_t(t.rho)
    pi = torch.softmax(theta, dim=1)
    r = x if t.features is None else as_t(t.features) @ x[0]
    S = P.shape[0]
    P_pi = torch.einsum("sa,sat->st", pi, P)
    d = (1 - t.gamma) * torch.linalg.solve((torch.eye(S, dtype=torch.float64)
                                            - t.gamma * P_pi).T, rho)
    q = (d[:, None] * pi).reshape(-1)
    R, rf = as_t(t.true_reward).reshape(-1), r.reshape(-1)
    pstar = torch.sigmoid(t.beta * (R[None, :] - R[:, None]))
    D = t.beta * (rf[None, :] - rf[:, None])
    loss = -pstar * torch.nn.functional.logsigmoid(D) - (1 - pstar) * \
        torch.nn.functional.logsigmoid(-D)
    if p.upper.excess:
        loss = loss + pstar * torch.log(pstar) + (1 - pstar) * torch.log1p(-pstar)
    return q @ loss @ q


@pytest.mark.parametrize("reward_model,excess", VARIANTS)
def test_objective_gradients_match_finite_differences(reward_model, excess):
    p = problem(reward_model, excess)
    x, theta = point(p)
    grad = p.evaluate(x, softmax(theta, axis=1)).grad_upper_objective()
    assert relative_error(grad.x, central_difference(lambda z: f(p, z, theta), x)) < 1e-6
    assert relative_error(grad.theta, central_difference(lambda z: f(p, x, z), theta)) < 1e-6


@pytest.mark.parametrize("reward_model,excess", VARIANTS)
def test_objective_and_gradients_match_torch_autograd(reward_model, excess):
    p = problem(reward_model, excess)
    x, theta = point(p, 3)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(theta, requires_grad=True)
    value = torch_objective(p, xt, tt)
    value.backward()
    ev = p.evaluate(x, softmax(theta, axis=1))
    grad = ev.grad_upper_objective()
    assert ev.upper_objective == pytest.approx(value.item(), rel=1e-12)
    assert relative_error(grad.x, xt.grad.numpy()) < 1e-10
    assert relative_error(grad.theta, tt.grad.numpy()) < 1e-10


@pytest.mark.parametrize("reward_model", ["tabular", "linear"])
def test_hypergradient_matches_finite_differences(reward_model):
    """The core's implicit hypergradient through the reward model's vjp (docs/theory.md §12)."""
    p = problem(reward_model)
    x, _ = point(p, 5)
    fd = central_difference(lambda z: p.hyper_objective(z), x, h=1e-5)
    assert relative_error(p.hypergradient(x).grad, fd) < 1e-6


def test_penalized_direction_is_the_gradient_of_f_minus_lam_v():
    """``combination(-1, -lam)``, what the PBRL leader follows, is ``grad f - lam grad V``."""
    p = problem("linear")
    x, theta = point(p, 7)
    lam = 4.0

    def penalized(z: np.ndarray, th: np.ndarray) -> float:
        ev = p.evaluate(z, softmax(th, axis=1))
        return ev.upper_objective - lam * ev.follower_value

    got = p.evaluate(x, softmax(theta, axis=1)).grad_value_combination(-1.0, -lam)
    assert relative_error(got.x, central_difference(lambda z: penalized(z, theta), x)) < 1e-6
    assert relative_error(got.theta,
                          central_difference(lambda z: penalized(x, z), theta)) < 1e-6


def test_sampled_segments_follow_the_discounted_occupancy():
    p = problem(n_states=4, n_actions=2)
    pi = softmax(point(p, 2)[1], axis=1)
    q = p.segments(pi).reshape(-1)
    n = 40_000
    t = p.task
    counts = np.bincount(sample_segments(t.P, t.rho, t.gamma, pi, n, np.random.default_rng(0)),
                         minlength=q.size)
    se = np.sqrt(q * (1 - q) / n)
    assert np.all(np.abs(counts / n - q) < 4 * se + 1e-12)


@pytest.mark.parametrize("reward_model", ["tabular", "linear"])
def test_objective_equals_the_mean_nll_of_sampled_pairs(reward_model):
    """``f`` and ``grad_x f`` are the expectations of the sampled NLL and its gradient over
    pairs from the policy's rollouts with the annotator's labels (within 3 standard errors)."""
    p = problem(reward_model)
    x, theta = point(p, 4)
    pi = softmax(theta, axis=1)
    ev = p.evaluate(x, pi)
    pairs = sample_pairs(p.upper, pi, 20_000, np.random.default_rng(1))
    batches = [sampled_loss(p.upper, x, type(pairs)(pairs.first[i::20], pairs.second[i::20],
                                                    pairs.label[i::20])) for i in range(20)]
    values = np.array([b.value for b in batches])
    assert abs(values.mean() - ev.upper_objective) < 3 * values.std(ddof=1) / np.sqrt(20)
    grads = np.array([b.grad_x.ravel() for b in batches])
    exact = ev.grad_upper_objective().x.ravel()
    se = grads.std(axis=0, ddof=1) / np.sqrt(20)
    # 3 s.e. per entry, with at most a few entries outside (each one is a 0.3% event)
    assert np.sum(np.abs(grads.mean(axis=0) - exact) > 3 * se) <= max(1, exact.size // 20)
    whole = sampled_loss(p.upper, x, pairs)
    assert whole.value == pytest.approx(values.mean(), rel=1e-12)


def test_bradley_terry_identities_for_a_fixed_policy():
    """With a fixed full-support policy and a tabular model of the annotator's temperature, the
    NLL is minimal at ``r_x = R* + c`` (zero gradient; any other ``x`` is worse), where it equals
    the labels' entropy, and the excess NLL is zero there. A model with temperature ``b`` is
    minimal at ``(beta / b) R* + c``."""
    p = problem()
    pi = softmax(point(p, 6)[1], axis=1)
    R = p.task.true_reward
    at_truth = p.evaluate(R + 2.5, pi)
    assert np.abs(at_truth.grad_upper_objective().x).max() < 1e-12
    q = p.segments(pi)
    assert at_truth.upper_objective == pytest.approx(p.upper.label_entropy(q), rel=1e-12)
    rng = np.random.default_rng(8)
    for _ in range(5):
        other = R + 0.3 * rng.normal(size=R.shape)
        assert p.evaluate(other, pi).upper_objective > at_truth.upper_objective
    excess = problem(excess=True)
    assert excess.evaluate(R - 1.0, pi).upper_objective == pytest.approx(0.0, abs=1e-12)
    # a constant shift changes nothing: the x gradient sums to zero anywhere
    x = point(p, 9)[0]
    assert abs(p.evaluate(x, pi).grad_upper_objective().x.sum()) < 1e-12
    hot = RLHFProblem(p.task, TAU, model_beta=2.0)
    grad = hot.evaluate(R / 2.0, pi).grad_upper_objective().x
    assert np.abs(grad).max() < 1e-12


def test_preference_accuracy_of_the_truth_its_reverse_and_a_constant():
    p = problem()
    R = p.task.true_reward
    assert p.accuracy(R + 1.0) == 1.0 and p.accuracy(-R) == 0.0
    assert p.accuracy(np.zeros_like(R)) == 0.5
    assert p.accuracy(R, "optimal") == 1.0
    # hand-checked: three segments, R* = (0, 1, 2), the model swaps the first two
    q = np.array([0.5, 0.25, 0.25])
    acc = preference_accuracy(np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0]), q)
    # ordered pairs with R* distinct: (0,1),(1,0) wrong, mass 2*0.125; the rest right, 0.375
    assert acc == pytest.approx(0.375 / 0.625)


def test_true_return_of_the_optimal_policy_beats_every_soft_response():
    p = problem()
    best = p.optimal_return()
    for seed in range(3):
        x = point(p, seed)[0]
        assert p.true_return(p.best_response(x).pi) <= best + 1e-12
    assert p.true_return(p.best_response(p.task.true_reward).pi) > p.true_return(
        p.best_response(-p.task.true_reward).pi)


LEADER_PARAMS = {
    "pbrl-value": {"geometry": "euclidean", "starts": 1, "tau_ratio": 1.0},
    "hypergradient": {"starts": 1, "tau_ratio": 1.0},
    "partial-gradient": {"starts": 1, "tau_ratio": 1.0},
}


@pytest.mark.parametrize("leader", sorted(LEADER_PARAMS))
def test_exact_leaders_lower_their_objective_on_rlhf(leader):
    """Each exact leader runs through the coordinator on the reward-model problem and ends
    lower on what it descends: the hyper-objective (hypergradient, PBRL) or ``f`` at the
    follower's current policy (partial gradient)."""
    p = problem("linear")
    spec = LEADERS[leader]
    follower = FOLLOWERS["best-response"]
    result = run_match(p, spec.factory(spec.make_config(**LEADER_PARAMS[leader])),
                       [follower.factory(follower.make_config())],
                       MatchConfig(iterations=15, progress=False), run_streams(0))
    first, last = result.metrics[0], result.metrics[-1]
    key = "upper_objective" if leader == "partial-gradient" else "hyper_objective"
    assert last[key] < first[key] - 1e-3
    assert result.leader_policy is None and result.x.shape == p.x_shape


def test_pbrl_refuses_a_logit_geometry_on_a_reward_model():
    p = problem()
    spec = LEADERS["pbrl-value"]
    leader = spec.factory(spec.make_config(geometry="natural", starts=1, tau_ratio=1.0))
    follower = FOLLOWERS["best-response"]
    with pytest.raises(ValueError, match="geometry"):
        run_match(p, leader, [follower.factory(follower.make_config())],
                  MatchConfig(iterations=2, progress=False), run_streams(0))


@pytest.mark.parametrize("params,name", [
    ({"n_states": 0}, "n_states"), ({"gamma": 1.0}, "gamma"), ({"beta": 0.0}, "beta"),
    ({"reward_model": "neural"}, "reward_model"), ({"start": "middle"}, "start"),
    ({"concentration": 0.0}, "concentration"), ({"n_states": 1, "n_actions": 1}, "n_states"),
])
def test_builder_names_a_bad_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        rlhf_tabular(**params)


def test_builder_is_deterministic_and_linear_truth_is_in_reach_without_misspecification():
    a, b = rlhf_tabular(seed=3), rlhf_tabular(seed=3)
    assert np.array_equal(a.P, b.P) and np.array_equal(a.true_reward, b.true_reward)
    t = rlhf_tabular(reward_model="linear", misspecification=0.0, seed=3)
    phi = t.features.reshape(-1, t.features.shape[2])
    w, *_ = np.linalg.lstsq(phi, t.true_reward.reshape(-1), rcond=None)
    np.testing.assert_allclose(phi @ w, t.true_reward.reshape(-1), atol=1e-10)


def test_rac_pair_samples_are_unbiased_for_the_frozen_reward_and_its_x_gradient():
    """RAC's samples on an RLHF problem (:mod:`agents.leaders.rac_rlhf`): the pair-loss reward
    of a segment has mean ``-(1 - gamma) c(z)``, ``c = 2 L q`` (docs/theory.md §8.1), and ``g_x``
    has mean ``grad_x f(x, pi) + w (grad_x V(x, pihat) - grad_x V(x, pi))``, with chains past
    their burn-in (4 standard errors of 20 block means)."""
    from agents.leaders.rac_rlhf import SegmentChains, preference_step

    p = problem("linear", n_states=4, n_actions=2, n_features=3, start="uniform", seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=p.x_shape)
    pi, pihat = (softmax(rng.normal(size=p.policy_shape), axis=1) for _ in range(2))
    w = 2.0
    ev, ev_hat = p.evaluate(x, pi), p.evaluate(x, pihat)
    exact = ev.grad_upper_objective().x + w * (ev_hat.grad_follower_value_x()
                                               - ev.grad_follower_value_x())
    terms = p.upper.pair_terms(x, p.segments(pi))
    frozen = -(1 - p.task.gamma) * 2.0 * (terms.loss @ terms.q)
    chains = SegmentChains(p.upper, 500, rng), SegmentChains(p.upper, 500, rng)
    for _ in range(100):
        chains[0].step(pi), chains[1].step(pihat)
    grads, rewards, counts = [], np.zeros(frozen.size), np.zeros(frozen.size)
    for _ in range(400):
        drawn = preference_step(p.upper, x, w, chains[0].step(pi), chains[1].step(pihat), rng)
        grads.append(drawn.g_x.ravel())
        z = drawn.batch.states * 2 + drawn.batch.follower_actions
        np.add.at(rewards, z, drawn.batch.leader_rewards)
        np.add.at(counts, z, 1.0)
    blocks = np.array(grads).reshape(20, 20, -1).mean(axis=1)
    se = blocks.std(axis=0, ddof=1) / np.sqrt(20)
    assert np.all(np.abs(blocks.mean(axis=0) - exact.ravel()) < 4 * se)
    np.testing.assert_allclose(rewards / counts, frozen, rtol=0.02)


def test_rac_runs_on_rlhf_and_counts_its_samples():
    p = problem()
    spec = LEADERS["rac"]
    leader = spec.factory(spec.make_config(batch_size=32, tau_decay=0.0,
                                           common_random_numbers=True))
    follower = FOLLOWERS["best-response"]
    result = run_match(p, leader, [follower.factory(follower.make_config())],
                       MatchConfig(iterations=20, progress=False), run_streams(0))
    assert result.summary["samples"] == 20 * 2 * 32
    assert np.isfinite(result.x).all() and not np.array_equal(result.x, p.initial_x())
    bad = spec.factory(spec.make_config(critic="model"))
    with pytest.raises(ValueError, match="critic"):
        run_match(p, bad, [follower.factory(follower.make_config())],
                  MatchConfig(iterations=2, progress=False), run_streams(0))


def test_rlhf_metrics_add_the_true_return_and_accuracies_of_the_best_response():
    from games.rlhf_tabular import RLHFMetrics
    from stackelberg.metrics import metrics_for

    p = problem("linear")
    x, theta = point(p, 11)
    pi = softmax(theta, axis=1)
    observe = metrics_for(p)
    assert isinstance(observe, RLHFMetrics)
    row = observe(x, pi, (pi,))
    star = p.best_response(x).pi
    assert row["true_return"] == pytest.approx(p.true_return(star), rel=1e-9)
    assert row["hyper_objective"] == pytest.approx(p.hyper_objective(x), rel=1e-9)
    assert row["accuracy_uniform"] == p.accuracy(x) and row["accuracy_optimal"] == p.accuracy(
        x, "optimal")
    uniform = np.full(pi.shape, 1.0 / pi.shape[1])
    assert observe(x, uniform, (uniform,))["normalized_return"] == pytest.approx(
        (p.true_return(star) - p.true_return(uniform))
        / (p.optimal_return() - p.true_return(uniform)))
    assert set(RLHFMetrics.KEYS) <= set(observe.summarize(row))


def test_the_shipped_config_runs_through_the_registry_and_the_bilevel_leader_lowers_f(
        tmp_path, cli):
    """`stackelberg run configs/rlhf_tabular.toml`: the registered problem plays through the CLI
    with its own metrics (true return, accuracies), and the bilevel leader reaches a lower
    hyper-objective than the alternating loop on the same task (what it optimizes; BENCHMARKS.md
    "Tabular RLHF" shows what that does to the true return)."""
    config = Path(__file__).resolve().parents[1] / "configs" / "rlhf_tabular.toml"
    summaries = {}
    for leader, figure in (("partial-gradient", []), ("hypergradient", ["--no-figure"])):
        out = tmp_path / leader  # (one figure shows that this game's metrics draw)
        done = cli("run", str(config), "--out", str(out), "run.iterations=40", *figure,
                   "run.progress=false", f"leader.algorithm={leader}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "hyper-objective" in done.stdout
        summaries[leader] = json.loads((out / "summary.json").read_text())
    assert (tmp_path / "partial-gradient" / "convergence.png").stat().st_size > 10_000
    for summary in summaries.values():
        assert summary["game"] == "stackelberg/rlhf-tabular-v0"
        assert summary["leader_value"] == -summary["hyper_objective"]  # tau never moved
        assert 0.0 <= summary["accuracy_uniform"] <= 1.0 and "true_return" in summary
    assert (summaries["hypergradient"]["hyper_objective"]
            < summaries["partial-gradient"]["hyper_objective"] - 0.05)

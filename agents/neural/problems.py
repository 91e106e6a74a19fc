"""Simulator-only problems for the neural learners: the duopolies of :mod:`games.duopoly` and
:mod:`games.duopoly_dynamic`, and their Monte-Carlo evaluation.

:func:`duopoly_problem` builds the :class:`~stackelberg.simulated.SimulatedProblem` of the
Parallel duopoly (the follower observes the leader's commitment, her policy's parameters), with
linear Gaussian policies by default (the best response is affine in what the follower observes,
docs/theory.md §9). :func:`evaluate` is its sampled evaluation: both players' discounted values
with standard errors, and the duopoly's quantities next to their closed forms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from agents.neural.policies import DTYPE, PolicySpec, load_parameters, make_policy
from agents.neural.rollout import play
from games.duopoly import FOLLOWER, LEADER, duopoly_env
from games.duopoly_dynamic import duopoly_dynamic_env
from stackelberg.simulated import SampledValues, SimulatedProblem
from stackelberg.simulator import ParallelSimulator

__all__ = ["duopoly_problem", "evaluate"]

Describe = Callable[[object, object, np.ndarray], dict[str, float]]


def evaluate(problem: SimulatedProblem, x: np.ndarray, follower: np.ndarray, episodes: int,
             rng: np.random.Generator, describe: Describe | None = None) -> SampledValues:
    """Monte-Carlo values of the leader with parameters ``x`` against the follower with
    parameters ``follower``: ``episodes`` independent episodes, mean and standard error of each
    player's discounted return."""
    generator = torch.Generator()
    generator.manual_seed(int(rng.integers(0, 2**62)))
    leader = make_policy(problem.leader_spec, generator)
    response = make_policy(problem.follower_spec, generator)
    load_parameters(leader, x)
    load_parameters(response, follower)
    simulator = ParallelSimulator(problem.make_env, episodes, fast=problem.fast)
    batch = play(problem, simulator, leader, [response], x, rng, generator)
    weights = problem.gamma ** torch.arange(batch.alive.shape[0], dtype=DTYPE).unsqueeze(1)
    values = {}
    for role, side in (("leader", batch.leader), ("follower", batch.follower)):
        returns = (weights * side.reward).sum(0).numpy()
        values[role] = (float(returns.mean()),
                        float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1
                        else float("nan"))
    extra = {} if describe is None else describe(leader, response, x)
    return SampledValues(values["leader"][0], values["leader"][1], values["follower"][0],
                         values["follower"][1], episodes, extra)


def _describe_duopoly(market, leader, response, x: np.ndarray, dynamic: bool = False
                      ) -> dict[str, float]:
    """The firms' planned (mean) quantities against the closed forms: the leader's against
    Stackelberg, the follower's against his best response to the leader's planned quantity
    (in the dynamic game: in a period whose demand is at its mean level ``a``)."""
    level = [1.0] if dynamic else []  # what the dynamic game shows of a_t / a
    obs_leader = torch.tensor([level or [0.0]], dtype=DTYPE)
    q_leader = float(leader.mean_action(obs_leader)[0, 0])
    obs_follower = torch.as_tensor(np.concatenate([level, np.asarray(x, dtype=np.float64)])[None],
                                   dtype=DTYPE)
    q_follower = float(response.mean_action(obs_follower)[0, 0])
    target = market.stackelberg().q_leader
    response_target = market.best_response(q_leader)
    return {"leader_quantity": q_leader, "follower_quantity": q_follower,
            "stackelberg_quantity": target, "best_response_quantity": response_target,
            "leader_quantity_error": abs(q_leader - target) / target,
            "follower_quantity_error": abs(q_follower - response_target)
            / max(response_target, 1e-12)}


def duopoly_problem(tau: float = 0.05, *, dynamic: bool = False, periods: int = 8,
                    gamma: float | None = None, hidden: tuple[int, ...] = (),
                    init_std: float = 0.3, min_std: float = 0.02, leader_std: float = 0.1,
                    fast: bool = True, **market: float) -> SimulatedProblem:
    """The neural learners' problem on ``stackelberg/duopoly-v0`` (``dynamic=False``, one
    round, ``gamma = 0``) or ``stackelberg/duopoly-dynamic-v0`` (``periods`` rounds, discount
    ``gamma``, default 0.9); ``market`` holds ``a``, ``b``, ``cost_leader``, ``cost_follower``,
    and for the dynamic game ``rho``, ``sigma``."""
    leader_obs = 1
    # the leader's policy: linear mean, fixed spread; its parameters (weight, bias) are her
    # commitment, which the follower observes (``hidden`` shapes the follower's network only)
    commitment_size = leader_obs + 1
    if dynamic:
        discount = 0.9 if gamma is None else gamma

        def make_env():
            return duopoly_dynamic_env("parallel", periods, gamma=discount,
                                       commitment_size=commitment_size, **market)
        probe = make_env()
        follower_obs = 1 + commitment_size
        name = "stackelberg/duopoly-dynamic-v0"
        describe = functools.partial(_describe_duopoly, probe.market, dynamic=True)
    else:
        discount = 0.0 if gamma is None else gamma

        def make_env():
            return duopoly_env("parallel", commitment_size=commitment_size, **market)
        probe = make_env()
        follower_obs = commitment_size
        name = "stackelberg/duopoly-v0"
        describe = functools.partial(_describe_duopoly, probe.market)
    leader_spec = PolicySpec(leader_obs, probe.action_space(LEADER), (), init_std=leader_std,
                             min_std=leader_std, learn_std=False)
    follower_spec = PolicySpec(follower_obs, probe.action_space(FOLLOWER), hidden,
                               init_std=init_std, min_std=min_std)
    problem = SimulatedProblem(name=name, make_env=make_env, leader_agent=LEADER,
                               follower_agent=FOLLOWER, leader_spec=leader_spec,
                               follower_spec=follower_spec, gamma=discount, tau=tau,
                               evaluate=lambda *args: None, fast=fast and not dynamic)
    problem.evaluate = functools.partial(evaluate, problem, describe=describe)
    return problem

"""The Monte-Carlo evaluation of the torch policies on a simulated problem
(:mod:`stackelberg.simulated`): both players' discounted values with standard errors, and the
game's own quantities (``problem.describe``) of the policies' mean actions.

A problem built on the game side holds only what the game knows; the neural learners
:func:`install` this evaluation on it when they reset, since they know how a
:class:`~stackelberg.simulated.PolicySpec`'s policy acts.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from agents.neural.policies import DTYPE, load_parameters, make_policy
from agents.neural.rollout import play
from stackelberg.simulated import SampledValues, SimulatedProblem
from stackelberg.simulator import ParallelSimulator

__all__ = ["evaluate", "install"]


def _numpy_mean(policy):
    """``obs (n, d) -> environment actions``: the policy's mean action, on numpy arrays."""
    return lambda obs: policy.mean_action(torch.as_tensor(np.asarray(obs, dtype=np.float64),
                                                          dtype=DTYPE))


def evaluate(problem: SimulatedProblem, x: np.ndarray, follower: np.ndarray, episodes: int,
             rng: np.random.Generator) -> SampledValues:
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
    extra = ({} if problem.describe is None else
             problem.describe(_numpy_mean(leader), _numpy_mean(response), np.asarray(x)))
    return SampledValues(values["leader"][0], values["leader"][1], values["follower"][0],
                         values["follower"][1], episodes, extra)


def install(problem: SimulatedProblem) -> None:
    """Give ``problem`` this evaluation unless its builder gave one."""
    if problem.evaluate is None:
        problem.evaluate = functools.partial(evaluate, problem)

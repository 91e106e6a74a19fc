"""The neural learners on a finite game that also has an exact model (issue 14, criterion 2).

:func:`finite_problem` builds the :class:`~stackelberg.simulated.SimulatedProblem` of a finite
Stackelberg game from its PettingZoo environment alone
(:class:`games.commitment_parallel.CommitmentParallelEnv`: simultaneous moves, the follower
observing the leader's commitment ``mu(. | s)``). Both roles have categorical policies, linear
in their one-hot observations by default (``hidden=()``), so the leader's policy can be any
per-state distribution and the follower's any per-state response; the leader's commitment ``x``
is her policy's parameter vector, which the environment shows the follower as the table
:func:`leader_table` reads from it. ``rac-neural``, ``partial-gradient-neural`` and the
``actor-critic`` follower then play it through the simulator, seeing observations and rewards
only.

:func:`score` is the step the learners never see: it maps the leader's final parameters to the
exact problem's commitment ``x_exact = log mu`` (``softmax(log mu) = mu``, docs/theory.md §1)
and evaluates the exact hyper-objective ``Phi(x_exact) = -V_L(mu, pi*)`` against the
follower's exact soft best response at the game's ``tau`` (docs/theory.md §2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from agents.neural.evaluation import install
from agents.neural.policies import DTYPE, CategoricalPolicy, PolicySpec, load_parameters
from games.commitment_parallel import CommitmentParallelEnv
from games.env import FOLLOWER, LEADER
from stackelberg.model import GameModel
from stackelberg.problem import StackelbergProblem
from stackelberg.simulated import SimulatedProblem

__all__ = ["FiniteScore", "finite_problem", "leader_table", "score"]


def _leader_observations(n_states: int) -> torch.Tensor:
    """What the leader observes in each state: ``[one-hot state | indicator 1, 0]``."""
    obs = torch.zeros((n_states, n_states + 2), dtype=DTYPE)
    obs[:, :n_states] = torch.eye(n_states, dtype=DTYPE)
    obs[:, n_states] = 1.0
    return obs


def leader_table(spec: PolicySpec, x: np.ndarray) -> np.ndarray:
    """The leader's policy ``mu(b | s)`` of shape ``(S, B)`` for parameters ``x`` (one row per
    state's observation; ``S = spec.observation_size - 2``)."""
    policy = CategoricalPolicy(spec, torch.Generator())
    load_parameters(policy, x)
    with torch.no_grad():
        return policy.distribution(_leader_observations(spec.observation_size - 2)).probs.numpy()


def finite_problem(model: GameModel, tau: float, *, hidden: tuple[int, ...] = (),
                   max_cycles: int | None = None, name: str | None = None) -> SimulatedProblem:
    """The neural learners' problem on ``model``'s commitment environment (module docstring).

    ``model`` only builds the environment: the problem holds no model, its spaces and discount
    are read from the environment. ``tau`` is the follower's starting entropy weight (a
    leader's schedule changes it in a match).
    """
    probe = CommitmentParallelEnv(model, max_cycles=max_cycles)
    leader_spec = PolicySpec(probe.observation_space(LEADER).shape[0],
                             probe.action_space(LEADER), hidden)
    follower_spec = PolicySpec(probe.observation_space(FOLLOWER).shape[0],
                               probe.action_space(FOLLOWER), hidden)
    view = functools.partial(leader_table, leader_spec)

    def make_env() -> CommitmentParallelEnv:
        return CommitmentParallelEnv(model, view, max_cycles=max_cycles)

    problem = SimulatedProblem(name=name or probe.metadata["name"], make_env=make_env,
                               leader_agent=LEADER, follower_agent=FOLLOWER,
                               leader_spec=leader_spec, follower_spec=follower_spec,
                               gamma=float(probe.metadata["discount"]), tau=tau)
    install(problem)
    return problem


@dataclass(frozen=True)
class FiniteScore:
    """The exact verdict on a neural leader's policy.

    ``table``: her policy ``mu`` ``(S, B)``; ``x``: the exact problem's commitment (logits);
    ``hyper_objective``: ``Phi(x) = -V_L`` against the exact soft best response at ``tau``;
    ``initial``: ``Phi`` of the uniform commitment (where every leader starts).
    """

    table: np.ndarray
    x: np.ndarray
    hyper_objective: float
    initial: float


def score(model: GameModel, tau: float, problem: SimulatedProblem, x: np.ndarray
          ) -> FiniteScore:
    """Score the leader parameters ``x`` of ``problem`` with the exact model (module
    docstring)."""
    exact = StackelbergProblem(model, tau)
    table = leader_table(problem.leader_spec, x)
    logits = np.log(np.maximum(table, 1e-300))
    if exact.x_shape[0] != table.shape[0]:  # a shared commitment: one row for every state
        if not np.allclose(table, table[:1], atol=1e-9):
            raise ValueError("the game has one commitment for every state, but the leader's "
                             "policy differs between states")
        logits = logits[:1]
    return FiniteScore(table=table, x=logits,
                       hyper_objective=float(exact.hyper_objective(logits)),
                       initial=float(exact.hyper_objective(exact.initial_x())))

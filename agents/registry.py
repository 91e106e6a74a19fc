"""Names of leaders and follower learners, as configs use them, with their config classes.

The top layer (``stackelberg.app``) turns a config section into an object through these tables;
adding an algorithm means adding its module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.followers.exact import (
    BestResponseConfig,
    BestResponseFollower,
    MirrorDescentConfig,
    MirrorDescentFollower,
)
from agents.followers.model_based import ModelBasedConfig, ModelBasedFollower
from agents.followers.soft_q import SoftQConfig, SoftQFollower
from agents.leaders.gradient import (
    GradientLeaderConfig,
    HypergradientLeader,
    PartialGradientLeader,
    SampledGradientConfig,
    SampledPartialGradientLeader,
)
from agents.leaders.pbrl import PBRLConfig, PBRLLeader
from agents.leaders.pbrl_sampled import SampledPBRLConfig, SampledPBRLLeader
from agents.leaders.rac import RACConfig, RACLeader
from agents.leaders.search import SearchLeader
from agents.leaders.zeroth_order import ZerothOrderConfig, ZerothOrderLeader
from agents.neural.actor_critic import ActorCriticConfig, ActorCriticFollower
from agents.neural.rac import (
    NeuralPartialGradientConfig,
    NeuralPartialGradientLeader,
    RACNeuralConfig,
    RACNeuralLeader,
)


@dataclass(frozen=True)
class AgentSpec:
    """A named algorithm: its config dataclass, a factory from a config, a one-line summary."""

    name: str
    config_class: type
    factory: Callable[[object], object]
    summary: str
    fixed: tuple[tuple[str, object], ...] = ()
    #: Learns through a simulator only (a game with no exact model, ``SimulatedProblem``).
    simulator_only: bool = False

    def make_config(self, **params: object) -> object:
        """Build the config; ``fixed`` entries (e.g. the penalty of ``pbrl-bellman``) win."""
        fixed = dict(self.fixed)
        clash = sorted(set(params) & set(fixed))
        if clash:
            raise ValueError(f"{self.name} fixes {clash[0]} = {fixed[clash[0]]!r}; remove it")
        return self.config_class(**params, **fixed)


def searching(local: type) -> Callable[[object], SearchLeader]:
    """Factory of an exact local method inside the global search and tau continuation of
    :mod:`agents.leaders.search` (its config carries the search fields)."""
    return lambda config: SearchLeader(local(config), config)


LEADERS: dict[str, AgentSpec] = {
    spec.name: spec
    for spec in (
        AgentSpec("pbrl-value", PBRLConfig, searching(PBRLLeader),
                  "PBRL with the value penalty V*(x) - V(x, pi) (Shen et al.)",
                  fixed=(("penalty", "value"),)),
        AgentSpec("pbrl-bellman", PBRLConfig, searching(PBRLLeader),
                  "PBRL with the Bellman penalty (no inner best response needed)",
                  fixed=(("penalty", "bellman"),)),
        AgentSpec("hypergradient", GradientLeaderConfig, searching(HypergradientLeader),
                  "gradient descent on the exact implicit hypergradient (baseline)"),
        AgentSpec("partial-gradient", GradientLeaderConfig,
                  searching(PartialGradientLeader),
                  "ignores the follower's dependence on x (alternating baseline)"),
        AgentSpec("rac", RACConfig, RACLeader,
                  "regularized actor-critic from samples, decaying entropy (Zeng et al.)"),
        AgentSpec("rac-fixed-tau", RACConfig, RACLeader,
                  "RAC with a constant entropy weight (the paper's ablation)",
                  fixed=(("tau_decay", 0.0),)),
        AgentSpec("pbrl-value-sampled", SampledPBRLConfig, SampledPBRLLeader,
                  "PBRL value penalty from sampled policy gradients, inner soft-Q oracle"),
        AgentSpec("partial-gradient-sampled", SampledGradientConfig, SampledPartialGradientLeader,
                  "partial gradient from sampled episodes (score-function estimate)"),
        AgentSpec("zeroth-order", ZerothOrderConfig, ZerothOrderLeader,
                  "two-point finite-difference hypergradient from sampled evaluations"),
        AgentSpec("rac-neural", RACNeuralConfig, RACNeuralLeader,
                  "RAC with torch policies through a simulator (games with no exact model)",
                  simulator_only=True),
        AgentSpec("partial-gradient-neural", NeuralPartialGradientConfig,
                  NeuralPartialGradientLeader,
                  "torch policy gradient of the leader's own return, follower held fixed",
                  simulator_only=True),
    )
}

FOLLOWERS: dict[str, AgentSpec] = {
    spec.name: spec
    for spec in (
        AgentSpec("best-response", BestResponseConfig, BestResponseFollower,
                  "exact soft best response by policy iteration"),
        AgentSpec("mirror-descent", MirrorDescentConfig, MirrorDescentFollower,
                  "policy mirror descent with exact Q-values"),
        AgentSpec("soft-q", SoftQConfig, SoftQFollower,
                  "soft Q-learning on transitions sampled from the game"),
        AgentSpec("model-based", ModelBasedConfig, ModelBasedFollower,
                  "soft best response to a model estimated from sampled transitions"),
        AgentSpec("actor-critic", ActorCriticConfig, ActorCriticFollower,
                  "torch actor and TD(0) critic on batched rollouts (games with no exact model)",
                  simulator_only=True),
    )
}



def on_exact_models(table: dict[str, AgentSpec]) -> dict[str, AgentSpec]:
    """The entries of ``table`` that run on a game with an exact model (not simulator-only)."""
    return {name: spec for name, spec in table.items() if not spec.simulator_only}


__all__ = ["AgentSpec", "LEADERS", "FOLLOWERS", "on_exact_models"]

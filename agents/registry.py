"""Names of leaders and follower learners, as configs use them, with their config classes.

The top layer (``stackelberg.app``) turns a config section into an object through these tables;
adding an algorithm means adding its module and one line here.

An algorithm plays the kinds of problem its spec names (``kinds``, the registry kinds of
:mod:`games.registry`): the single-follower leaders and learners play ``"game"``, the exact ones
also a ``"problem"`` built without a game model (they read only the problem), ``pbrl-nash``
plays ``"economy"`` (a planner over n followers playing a game), and the torch learners
(``rac-neural``, ``partial-gradient-neural``, ``actor-critic``) play ``"simulator"``: a game with
no exact model, through its PettingZoo environment only (:mod:`stackelberg.simulated`); the
happy-text learners (``alternating``, ``kl-policy-gradient``, and ``rac-neural`` on sequences)
play ``"text"``, a language model's RLHF (:mod:`agents.neural.happy`). One name may have other
forms for other kinds (``forms``), each with its own config: a follower learner that also plays
an economy (one learner per follower, built as ``factory(config, index)``), ``best-response``
and ``soft-q``; ``rac-neural``, whose text form is RAC on sequences.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from agents.followers.exact import (
    BestResponseConfig,
    BestResponseFollower,
    MirrorDescentConfig,
    MirrorDescentFollower,
)
from agents.followers.game import (
    DampedBestResponse,
    DampedBestResponseConfig,
    IndependentSoftQ,
    IndependentSoftQConfig,
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
from agents.leaders.pbrl_nash import PBRLNashConfig, PBRLNashLeader
from agents.leaders.pbrl_sampled import SampledPBRLConfig, SampledPBRLLeader
from agents.leaders.rac import RACConfig, RACLeader
from agents.leaders.search import SearchLeader
from agents.leaders.zeroth_order import ZerothOrderConfig, ZerothOrderLeader
from agents.neural.configs import ActorCriticConfig, NeuralPartialGradientConfig, RACNeuralConfig
from agents.neural.happy_configs import AlternatingConfig, KLFollowerConfig, RACHappyConfig


def _torch_learner(module: str, name: str) -> Callable[..., object]:
    """A factory that imports its torch learner when a match builds it (module docstring of
    :mod:`agents.neural.configs`)."""

    def build(config: object, *args: object) -> object:
        return getattr(importlib.import_module(module), name)(config, *args)

    build.__name__ = build.__qualname__ = name
    return build


@dataclass(frozen=True)
class AgentSpec:
    """A named algorithm: its config dataclass, a factory from a config, a one-line summary."""

    name: str
    config_class: type
    factory: Callable[..., object]
    summary: str
    fixed: tuple[tuple[str, object], ...] = ()
    #: The kinds of problem it plays (module docstring).
    kinds: tuple[str, ...] = ("game",)
    #: The same name's forms for other kinds, each with its own config (module docstring).
    forms: tuple[AgentSpec, ...] = ()

    def for_kind(self, kind: str) -> AgentSpec | None:
        """The spec that plays ``kind``: this one, one of its ``forms``, or None."""
        if kind in self.kinds:
            return self
        return next((form for form in self.forms if kind in form.kinds), None)

    def all_kinds(self) -> tuple[str, ...]:
        """Every kind the name plays, its forms' included."""
        return (*self.kinds, *(kind for form in self.forms for kind in form.kinds))

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


def damped_best_response(config: DampedBestResponseConfig, index: int) -> DampedBestResponse:
    """Follower ``index`` of an economy, best-responding (damped) to the others."""
    return DampedBestResponse(index, config)


def independent_soft_q(config: IndependentSoftQConfig, index: int) -> IndependentSoftQ:
    """Follower ``index`` of an economy, learning soft Q-values from its own samples."""
    return IndependentSoftQ(index, config)


#: What the exact single-follower algorithms play: games, and problems without a game model.
EXACT = ("game", "problem")

LEADERS: dict[str, AgentSpec] = {
    spec.name: spec
    for spec in (
        AgentSpec("pbrl-value", PBRLConfig, searching(PBRLLeader),
                  "PBRL with the value penalty V*(x) - V(x, pi) (Shen et al.)",
                  fixed=(("penalty", "value"),), kinds=EXACT),
        AgentSpec("pbrl-bellman", PBRLConfig, searching(PBRLLeader),
                  "PBRL with the Bellman penalty (no inner best response needed)",
                  fixed=(("penalty", "bellman"),), kinds=EXACT),
        AgentSpec("hypergradient", GradientLeaderConfig, searching(HypergradientLeader),
                  "gradient descent on the exact implicit hypergradient (baseline)",
                  kinds=EXACT),
        AgentSpec("partial-gradient", GradientLeaderConfig,
                  searching(PartialGradientLeader),
                  "ignores the follower's dependence on x (alternating baseline)",
                  kinds=EXACT),
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
        AgentSpec("pbrl-nash", PBRLNashConfig, PBRLNashLeader,
                  "a planner's PBRL with the Nikaido-Isoda penalty, n followers in a game",
                  kinds=("economy",)),
        AgentSpec("rac-neural", RACNeuralConfig,
                  _torch_learner("agents.neural.rac", "RACNeuralLeader"),
                  "RAC with torch policies through a simulator (games with no exact model)",
                  kinds=("simulator",),
                  forms=(AgentSpec("rac-neural", RACHappyConfig,
                                   _torch_learner("agents.neural.happy", "RACHappyLeader"),
                                   "on happy text: RAC on sequences, a bag-of-words reward model",
                                   kinds=("text",)),)),
        AgentSpec("partial-gradient-neural", NeuralPartialGradientConfig,
                  _torch_learner("agents.neural.rac", "NeuralPartialGradientLeader"),
                  "torch policy gradient of the leader's own return, follower held fixed",
                  kinds=("simulator",)),
        AgentSpec("alternating", AlternatingConfig,
                  _torch_learner("agents.neural.happy", "AlternatingLeader"),
                  "standard RLHF: fit the reward model on the follower's current pairs",
                  kinds=("text",)),
    )
}

FOLLOWERS: dict[str, AgentSpec] = {
    spec.name: spec
    for spec in (
        AgentSpec("best-response", BestResponseConfig, BestResponseFollower,
                  "exact soft best response by policy iteration", kinds=EXACT,
                  forms=(AgentSpec("best-response", DampedBestResponseConfig,
                                    damped_best_response,
                                    "in an economy: damped simultaneous soft best responses",
                                    kinds=("economy",)),)),
        AgentSpec("mirror-descent", MirrorDescentConfig, MirrorDescentFollower,
                  "policy mirror descent with exact Q-values", kinds=EXACT),
        AgentSpec("soft-q", SoftQConfig, SoftQFollower,
                  "soft Q-learning on transitions sampled from the game",
                  forms=(AgentSpec("soft-q", IndependentSoftQConfig, independent_soft_q,
                                    "in an economy: independent soft Q-learning, each "
                                    "follower from its own samples",
                                    kinds=("economy",)),)),
        AgentSpec("model-based", ModelBasedConfig, ModelBasedFollower,
                  "soft best response to a model estimated from sampled transitions"),
        AgentSpec("actor-critic", ActorCriticConfig,
                  _torch_learner("agents.neural.actor_critic", "ActorCriticFollower"),
                  "torch actor and TD(0) critic on batched rollouts (games with no exact model)",
                  kinds=("simulator",)),
        AgentSpec("kl-policy-gradient", KLFollowerConfig,
                  _torch_learner("agents.neural.happy", "KLFollower"),
                  "a language model's policy gradient with a KL term to its pre-trained model",
                  kinds=("text",)),
    )
}


__all__ = ["AgentSpec", "LEADERS", "FOLLOWERS"]

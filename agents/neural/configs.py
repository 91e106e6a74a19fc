"""The torch learners' config dataclasses, apart from their torch code: the agents registry
(and so every CLI call and test worker) reads them without importing torch, which only the
learners themselves load, when a match builds them.

A field left at ``None`` takes a default by the kind of action the learner's policy draws
(:func:`by_action_kind`, applied when a match starts): a Gaussian policy's parameters are a mean
in normalized units that a market answer needs to a few hundredths, a categorical policy's are
logits of which a pure commitment needs several units, so one step size cannot serve both. The
``Box`` values were tuned on the duopoly (``benchmarks/bench_duopoly.py``), the ``Discrete``
ones on random Markov and matrix games, training seeds 0-19 (``benchmarks/bench_neural_exact.py``,
whose docstring gives the evidence).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from stackelberg.validation import check_fields

__all__ = ["ActorCriticConfig", "NeuralPartialGradientConfig", "RACNeuralConfig",
           "by_action_kind"]


def by_action_kind(config: Any, action_space: Any) -> Any:
    """``config`` with each ``None`` field set from ``config.kind_defaults`` (a field name ->
    ``(Box value, Discrete value)``), chosen by ``action_space`` (module docstring)."""
    discrete = getattr(action_space, "n", None) is not None
    return dataclasses.replace(config, **{
        name: values[discrete] for name, values in config.kind_defaults.items()
        if getattr(config, name) is None})


def _check_optional(config: Any, positive_int: tuple[str, ...] = (),
                    positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                    non_negative_int: tuple[str, ...] = ("hold", "segment"),
                    unit_interval: tuple[str, ...] = ("tail",)) -> None:
    """:func:`check_fields` for the fields that are set (``None``: by the action kind)."""
    def given(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if getattr(config, n, None) is not None)

    check_fields(config, positive_int=given(positive_int), positive=given(positive),
                 non_negative=given(non_negative), non_negative_int=given(non_negative_int),
                 unit_interval=given(unit_interval))


def _check_updates(config: Any) -> None:
    """The follower actor's update rules (``critic_fit``, ``actor_update``, ``explore``)."""
    for name, allowed in (("critic_fit", ("td", "lstd")),
                          ("actor_update", ("gradient", "natural"))):
        value = getattr(config, name)
        if value not in (None, *allowed):
            raise ValueError(f"{config.section}.{name} must be one of {', '.join(allowed)}, "
                             f"got {value!r}")
    if config.explore is not None and not 0.0 <= config.explore < 1.0:
        raise ValueError(f"{config.section}.explore must be in [0, 1), got {config.explore!r}")


# the match's segments (agents.neural.starts), by action kind: (Box, Discrete)
SEGMENTS: dict[str, tuple[Any, Any]] = {
    "segment": (0, 150), "tail": (0.0, 0.25), "hold": (0, 0), "start_scale": (1.0, 1.5)}


@dataclass(frozen=True)
class SegmentConfig:
    """The fields both neural leaders share: how a match is cut into starts.

    Attributes
    ----------
    segment, tail, hold, start_scale : optional
        The match's segments (:mod:`agents.neural.starts`, docs/theory.md §14): a match of
        ``K`` iterations makes ``max(1, K // segment)`` starts of equal length (``segment =
        0``: one), the first from the uniform commitment, the others from uniform logits plus
        ``start_scale`` times standard normal draws; the first ``hold`` iterations of each take
        no leader step (the followers adapt first); reported at the end: the parameters
        averaged over the last ``tail`` share of the segment whose mean estimated return there
        was highest. Default: 0, 0, 0, 1 for a ``Box`` leader (the last iterate of one run, as
        before); 150, 0.25, 0, 1.5 for a ``Discrete`` one.
    """

    segment: int | None = None
    tail: float | None = None
    hold: int | None = None
    start_scale: float | None = None


@dataclass(frozen=True)
class NeuralPartialGradientConfig(SegmentConfig):
    """The partial-gradient leader's step.

    Attributes
    ----------
    batch : int, optional
        Episodes per step (default: 256 for a ``Box`` leader, 64 for a ``Discrete`` one).
    lr, decay : float, optional
        The leader's Adam step size ``lr (k+1)^-decay`` (default: 0.01, 0.3 for a ``Box``
        leader; 0.2, 0.3 for a ``Discrete`` one, RAC's ``xi`` there).
    segment, tail, hold, start_scale : optional
        The match's starts and what it reports (:class:`SegmentConfig`).
    """

    batch: int | None = None
    lr: float | None = None
    decay: float | None = None

    section = "leader"
    kind_defaults: ClassVar[dict[str, tuple[Any, Any]]] = {
        "batch": (256, 64), "lr": (0.01, 0.2), "decay": (0.3, 0.3), **SEGMENTS}

    def __post_init__(self) -> None:
        _check_optional(self, positive_int=("batch",), positive=("lr",),
                        non_negative=("decay", "start_scale"))



@dataclass(frozen=True)
class RACNeuralConfig(SegmentConfig):
    """RAC's schedules, each ``base (k+1)^-exponent`` (module docstring).

    Attributes
    ----------
    batch : int, optional
        Episodes per group per iteration (two groups share their noise: ``theta``, ``theta'``);
        default 256 for a ``Box`` leader, 64 for a ``Discrete`` one.
    xi, xi_decay : float, optional
        The leader's Adam step size and its decay exponent (the slowest time scale); default
        0.02, 0.5 for a ``Box`` leader, 0.2, 0.3 for a ``Discrete`` one.
    alpha, alpha_decay : float, optional
        The penalized actor's step and its decay exponent (default 0.05, 0.4 for a ``Box``
        leader: Adam's step size; 0.2, 0 for a ``Discrete`` one: the share of a soft
        policy-iteration step).
    critic_fit, actor_update, explore : optional
        How the penalized actor and its critic learn, as the ``actor-critic`` follower's
        fields of the same names (:class:`ActorCriticConfig`); default ``"td"``,
        ``"gradient"``, 0 for a ``Box`` leader, ``"lstd"``, ``"natural"``, 0 for a
        ``Discrete`` one (no exploring actions: the leader's gradient is read from these
        episodes).
    beta, beta_decay : float
        Its critic's step size and decay exponent (the fastest time scale).
    tau0, tau_decay : float
        The follower's entropy weight ``tau_k = tau0 (k+1)^-tau_decay`` (on scaled rewards);
        ``tau0`` default 0.05 for a ``Box`` leader, 0.2 for a ``Discrete`` one (a follower who
        reaches his soft best response answers a commitment almost deterministically at a
        small ``tau``, and the leader's landscape then has steps; docs/theory.md §15).
    w0, w_growth : float
        The penalty weight ``w_k = w0 (k+1)^w_growth``.
    w_max : float
        Cap of ``w_k``; the stationary point is biased by ``O(1/w)`` (docs/theory.md §9).
    leader_tau0, leader_tau_decay : float
        A decaying entropy bonus ``leader_tau0 (k+1)^-leader_tau_decay`` on the leader's own
        policy [ours] (0: none).
    follower_signal : {"to-go", "reward"}, optional
        What multiplies the leader's log-probability in the Hessian-free term: the follower's
        discounted reward to go (exact when her action moves the state, as in a finite
        Markov game) or his reward of the round (exact when it does not, as in the duopolies,
        and of lower variance); default ``"reward"`` for a ``Box`` leader, ``"to-go"`` for a
        ``Discrete`` one (docs/theory.md §13).
    segment, tail, hold, start_scale : optional
        The match's starts and what it reports (:class:`SegmentConfig`).
    """

    batch: int | None = None
    xi: float | None = None
    xi_decay: float | None = None
    alpha: float | None = None
    alpha_decay: float | None = None
    beta: float = 0.1
    beta_decay: float = 0.3
    tau0: float | None = None
    tau_decay: float = 0.3
    w0: float = 2.0
    w_growth: float = 0.5
    w_max: float = 40.0
    leader_tau0: float = 0.0
    leader_tau_decay: float = 0.5
    follower_signal: str | None = None
    critic_fit: str | None = None
    actor_update: str | None = None
    explore: float | None = None

    section = "leader"
    kind_defaults: ClassVar[dict[str, tuple[Any, Any]]] = {
        "batch": (256, 64), "xi": (0.02, 0.2), "xi_decay": (0.5, 0.3),
        "follower_signal": ("reward", "to-go"), "alpha": (0.05, 0.2), "alpha_decay": (0.4, 0.0),
        "tau0": (0.05, 0.2),
        "critic_fit": ("td", "lstd"), "actor_update": ("gradient", "natural"),
        "explore": (0.0, 0.0), **SEGMENTS}

    def __post_init__(self) -> None:
        _check_optional(self, positive_int=("batch",),
                        positive=("xi", "alpha", "beta", "w0", "w_max"),
                        non_negative=("xi_decay", "alpha_decay", "beta_decay", "tau0",
                                      "tau_decay", "w_growth", "leader_tau0", "leader_tau_decay",
                                      "start_scale"))

        _check_updates(self)
        if self.follower_signal not in (None, "to-go", "reward"):
            raise ValueError(f"leader.follower_signal must be 'to-go' or 'reward', got "
                             f"{self.follower_signal!r}")


@dataclass(frozen=True)
class ActorCriticConfig:
    """The follower learner's steps, each ``lr (k+1)^-decay``.

    Attributes
    ----------
    batch : int, optional
        Episodes per step (default: 256 for a ``Box`` follower, 64 for a ``Discrete`` one).
    actor_lr, actor_decay : float, optional
        The actor's step ``actor_lr (k+1)^-actor_decay``: Adam's step size for a ``Box``
        follower (default 0.05, 0.4); for a ``Discrete`` one the share ``eta`` of a soft
        policy-iteration step (default 0.2, 0: a constant share, so he keeps tracking a moving
        commitment).
    critic_lr, critic_decay : float
        The critic's step size and its decay exponent.
    critic_hidden : tuple of int
        Hidden tanh layers of the critic (``()``: linear).
    critic_fit : {"td", "lstd"}, optional
        How the critic learns: one Adam step on the squared TD error per batch (``"td"``,
        ``critic_lr``), or set to the batch's TD fixed point by least squares (``"lstd"``, a
        linear critic only; :func:`agents.neural.common.fit_linear_critic`, docs/theory.md
        §15). Default ``"td"`` for a ``Box`` follower, ``"lstd"`` for a ``Discrete`` one.
    actor_update : {"gradient", "natural"}, optional
        The actor's step: Adam on ``delta grad log pi + tau grad H`` (``"gradient"``), or a share
        of a soft policy-iteration step fitted on the compatible features (``"natural"``, a
        linear categorical policy only; :func:`agents.neural.common.soft_policy_step`).
        Default ``"gradient"`` for a ``Box`` follower, ``"natural"`` for a ``Discrete`` one.
    explore : float, optional
        Share of uniformly drawn actions in the follower's own batches (the critic is
        reweighted to his policy); default 0 for a ``Box`` follower, 0.1 for a ``Discrete``
        one (docs/theory.md §15).
    """

    batch: int | None = None
    actor_lr: float | None = None
    actor_decay: float | None = None
    critic_lr: float = 0.1
    critic_decay: float = 0.3
    critic_hidden: tuple[int, ...] = ()
    critic_fit: str | None = None
    actor_update: str | None = None
    explore: float | None = None

    section = "follower"
    kind_defaults: ClassVar[dict[str, tuple[Any, Any]]] = {
        "batch": (256, 64), "critic_fit": ("td", "lstd"), "actor_update": ("gradient", "natural"),
        "actor_lr": (0.05, 0.2), "actor_decay": (0.4, 0.0),
        "explore": (0.0, 0.1)}

    def __post_init__(self) -> None:
        _check_optional(self, positive_int=("batch",), positive=("actor_lr", "critic_lr"),
                        non_negative=("actor_decay", "critic_decay"))
        _check_updates(self)
        if self.critic_fit == "lstd" and self.critic_hidden:
            raise ValueError("follower.critic_fit 'lstd' needs a linear critic "
                             "(critic_hidden = [])")

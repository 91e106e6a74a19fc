"""The torch learners' config dataclasses, apart from their torch code: the agents registry
(and so every CLI call and test worker) reads them without importing torch, which only the
learners themselves load, when a match builds them."""

from __future__ import annotations

from dataclasses import dataclass

from stackelberg.validation import check_fields


@dataclass(frozen=True)
class NeuralPartialGradientConfig:
    """The partial-gradient leader's step.

    Attributes
    ----------
    batch : int
        Episodes per step.
    lr, decay : float
        The leader's Adam step size ``lr (k+1)^-decay``.
    """

    batch: int = 256
    lr: float = 0.01
    decay: float = 0.3

    section = "leader"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), positive=("lr",), non_negative=("decay",))


@dataclass(frozen=True)
class RACNeuralConfig:
    """RAC's schedules, each ``base (k+1)^-exponent`` (module docstring).

    Attributes
    ----------
    batch : int
        Episodes per group per iteration (two groups share their noise: ``theta``, ``theta'``).
    xi, xi_decay : float
        The leader's Adam step size and its decay exponent (the slowest time scale).
    alpha, alpha_decay : float
        The penalized actor's step size and its decay exponent.
    beta, beta_decay : float
        Its critic's step size and decay exponent (the fastest time scale).
    tau0, tau_decay : float
        The follower's entropy weight ``tau_k = tau0 (k+1)^-tau_decay`` (on scaled rewards).
    w0, w_growth : float
        The penalty weight ``w_k = w0 (k+1)^w_growth``.
    w_max : float
        Cap of ``w_k``; the stationary point is biased by ``O(1/w)`` (docs/theory.md §9).
    """

    batch: int = 256
    xi: float = 0.02
    xi_decay: float = 0.5
    alpha: float = 0.05
    alpha_decay: float = 0.4
    beta: float = 0.1
    beta_decay: float = 0.3
    tau0: float = 0.05
    tau_decay: float = 0.3
    w0: float = 2.0
    w_growth: float = 0.5
    w_max: float = 40.0

    section = "leader"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",),
                     positive=("xi", "alpha", "beta", "w0", "w_max"),
                     non_negative=("xi_decay", "alpha_decay", "beta_decay", "tau0", "tau_decay",
                                   "w_growth"))


@dataclass(frozen=True)
class ActorCriticConfig:
    """The follower learner's steps, each ``lr (k+1)^-decay``.

    Attributes
    ----------
    batch : int
        Episodes per step.
    actor_lr, actor_decay : float
        The actor's Adam step size and its decay exponent.
    critic_lr, critic_decay : float
        The critic's step size and its decay exponent.
    critic_hidden : tuple of int
        Hidden tanh layers of the critic (``()``: linear).
    """

    batch: int = 256
    actor_lr: float = 0.05
    actor_decay: float = 0.4
    critic_lr: float = 0.1
    critic_decay: float = 0.3
    critic_hidden: tuple[int, ...] = ()

    section = "follower"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), positive=("actor_lr", "critic_lr"),
                     non_negative=("actor_decay", "critic_decay"))

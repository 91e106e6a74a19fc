"""The happy-text learners' config dataclasses, apart from their torch code (as
:mod:`agents.neural.configs` for the simulator learners): the agents registry reads them without
importing torch, which :mod:`agents.neural.happy` loads when a match builds a learner."""

from __future__ import annotations

from dataclasses import dataclass

from stackelberg.validation import check_fields

__all__ = ["AlternatingConfig", "KLFollowerConfig", "RACHappyConfig"]


@dataclass(frozen=True)
class KLFollowerConfig:
    """The follower's policy-gradient steps (``kl-policy-gradient``).

    Attributes
    ----------
    batch : int
        Generations per step.
    lr, decay : float
        Adam step size ``lr (k+1)^-decay``.
    """

    batch: int = 64
    lr: float = 0.003
    decay: float = 0.0

    section = "follower"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), positive=("lr",), non_negative=("decay",))


@dataclass(frozen=True)
class AlternatingConfig:
    """The alternating loop's reward-model step.

    Attributes
    ----------
    batch : int
        Labelled pairs per iteration (from as many generations of the follower).
    lr, decay : float
        Adam step size of ``x``, ``lr (k+1)^-decay``.
    """

    batch: int = 64
    lr: float = 0.05
    decay: float = 0.3

    section = "leader"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), positive=("lr",), non_negative=("decay",))


@dataclass(frozen=True)
class RACHappyConfig:
    """RAC's schedules on happy text, each ``base (k+1)^-exponent`` (:mod:`agents.neural.happy`).

    Attributes
    ----------
    batch : int
        Generations per actor per iteration (and labelled pairs).
    xi, xi_decay : float
        The reward model's Adam step size and its decay (the slowest time scale).
    alpha, alpha_decay : float
        The penalized actor's Adam step size and its decay.
    w0, w_growth, w_max : float
        The penalty weight ``w_k = min(w_max, w0 (k+1)^w_growth)``.
    """

    batch: int = 64
    xi: float = 0.05
    xi_decay: float = 0.3
    alpha: float = 0.003
    alpha_decay: float = 0.0
    w0: float = 1.0
    w_growth: float = 0.3
    w_max: float = 3.0

    section = "leader"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), positive=("xi", "alpha", "w0", "w_max"),
                     non_negative=("xi_decay", "alpha_decay", "w_growth"))

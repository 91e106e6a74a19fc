"""The bilevel problem: a parameterization, a lower level and an upper objective (docs/theory.md
§1-3, §12).

:class:`BilevelProblem` composes the three objects of :mod:`stackelberg.bilevel`: how ``x``
reaches the follower (:class:`stackelberg.bilevel.Parameterization`), the follower's soft best
response and penalties (:class:`stackelberg.lower_level.SoftFollower`), and what the leader
minimizes (:mod:`stackelberg.upper_level`). Leaders, follower learners and the metrics talk to
it only; its hyper-objective is ``Phi(x) = f(x, pi*_x)``.

:class:`StackelbergProblem` is the composition for a finite Stackelberg Markov game. The
leader's variable ``x`` holds one logit per (state, leader action); the leader commits to
``mu_x(b|s) = softmax(x[s])``. The follower does not see the realized leader action, so it faces
the MDP (docs/theory.md §1, "Stackelberg Markov game reduction")

    r_x(s, a)     = sum_b mu_x(b|s) r_F(s, b, a)
    P_x(s'|s, a)  = sum_b mu_x(b|s) P(s'|s, b, a)

with entropy weight ``tau``. The upper objective is ``f(x, pi) = -V_L(mu_x, pi)``.

Follower policies appear in two parameterizations: as matrices ``pi[s, a]``, and, for the
gradients a leader follows, through softmax logits ``theta`` with ``pi = softmax(theta)``.
Every gradient is closed form and vectorized; tests check each against central finite
differences and against torch autograd.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from stackelberg.bilevel import (
    BackupParameterization,
    BackupWeights,
    Gradient,
    Parameterization,
    pull_back,
)
from stackelberg.evaluation import JointEvaluation
from stackelberg.lower_level import FollowerMDP, SoftFollower, follower_logit_gradient
from stackelberg.model import GameModel
from stackelberg.parameterizations import CommitmentLogits, LeaderRewards, leader_logit_gradient
from stackelberg.tabular import MDPSolution, check_tau, solve_mdp
from stackelberg.upper_level import UpperObjective, ValueObjective

__all__ = [
    "BilevelProblem", "FollowerMDP", "Gradient", "HyperGradient", "JointEvaluation",
    "StackelbergProblem", "follower_logit_gradient", "leader_logit_gradient",
]


@dataclass(frozen=True)
class HyperGradient:
    """The hyper-objective ``Phi(x) = f(x, pi*_x)``, its exact gradient, and ``pi*_x``."""

    value: float
    grad: np.ndarray
    best_response: np.ndarray


class BilevelProblem:
    """``min_x f(x, pi*_x)``, ``pi*_x`` the soft best response of one follower.

    Parameters
    ----------
    parameterization : Parameterization
        How ``x`` reaches the follower (its model at ``x`` must have one follower).
    upper : UpperObjective
        ``f(x, pi)``; a :class:`stackelberg.upper_level.ValueObjective` also gives the
        closed-form :meth:`penalized_response`.
    tau : float
        Entropy weight of the follower (``tau > 0`` makes ``pi*_x`` unique and smooth in ``x``).
    lower : SoftFollower, optional
        The lower level (one soft follower, the default).
    model : GameModel, optional
        The game the problem comes from, if any: sample-based learners draw from it, and
        game-level metrics read it.
    """

    #: How many recent follower MDPs, best responses and policy evaluations are remembered.
    MEMORY = 4
    #: The geometry of ``x``: softmax ``"logits"`` (a commitment, an incentive share), or
    #: ``"euclidean"`` (e.g. a reward model): leaders then step along the plain gradient.
    leader_geometry = "logits"

    def __init__(self, parameterization: Parameterization, upper: UpperObjective, tau: float,
                 lower: SoftFollower | None = None, model: GameModel | None = None):
        self.parameterization = parameterization
        self.upper = upper
        self.lower = SoftFollower() if lower is None else lower
        self.model = model
        # The lower level reads tau from each FollowerMDP (explicit per model); the problem still
        # holds the current tau_k because the coordinator sets it for everyone (set_tau). Passing
        # tau_k explicitly through leaders and learners is the refactor DESIGN asks for next.
        self.tau = check_tau(tau)
        # checked once: a runtime protocol check costs microseconds on every call
        self._factored = isinstance(parameterization, BackupParameterization)
        # In a match the follower solves best_response(x_k), then the leader evaluates the same
        # policy at the same x, and the metrics solve best_response again: remembering the last
        # few answers (keyed by the arrays' bytes) saves those factorizations; likewise the
        # follower's MDP at x_k, which the follower and the leader both need. Pure functions of
        # their arguments, so remembering them changes no result.
        self._mdps: dict[bytes, FollowerMDP] = {}
        self._best_responses: dict[bytes, tuple[float, MDPSolution]] = {}
        self._evaluations: dict[tuple[bytes, bytes], MDPSolution] = {}

    @property
    def n_followers(self) -> int:
        return self.lower.n_followers

    def metrics_observer(self):
        """The coordinator's observer of this problem's matches if it needs its own (extra
        metrics, a lower level that is a game), else None for the default
        (:func:`stackelberg.metrics.metrics_for`)."""
        return None

    # -- what a leader reads of the problem, with or without a game model --------------------
    def _neutral_model(self):
        return self.parameterization.followers(self.parameterization.initial_x())

    @property
    def gamma(self) -> float:
        """The discount factor (the game's, or the followers' model's: it does not depend on
        ``x``)."""
        return self.model.gamma if self.model is not None else self._neutral_model().gamma

    @property
    def initial(self) -> np.ndarray:
        """The initial state distribution ``rho`` (likewise independent of ``x``)."""
        return self.model.initial if self.model is not None else self._neutral_model().rho

    @property
    def follower_reward_range(self) -> float:
        """The spread of the follower's own rewards (the game's, or at the neutral ``x``): the
        scale an entropy weight is measured against."""
        if self.model is not None:
            return float(np.ptp(self.model.follower_rewards))
        return float(np.ptp(self._neutral_model().r))

    def set_tau(self, tau: float) -> None:
        """Change the follower's entropy weight (a leader with a decaying schedule, Zeng et al.
        2026, RAC); forgets the remembered answers, which belong to the old weight."""
        tau = check_tau(tau)
        if tau != self.tau:
            self.tau = tau
            self.forget()

    def forget(self) -> None:
        """Drop every remembered answer.

        A remembered best response is not a pure function of its ``x``: it carries the warm
        start and the predicted stop of the call that made it, and a later call at the same
        ``x`` returns it as it is. So a match starts with an empty memory (what ran on this
        problem before must not change its numbers), and an observer works on a
        :meth:`detached` copy.
        """
        self._mdps.clear()
        self._best_responses.clear()
        self._evaluations.clear()

    def detached(self) -> BilevelProblem:
        """The same problem (objects, ``tau``) with its own, empty memory.

        What is computed on the copy never reaches this problem's remembered answers (warm
        starts, predicted stops, evaluations): the exact metrics of a match solve on a detached
        copy, so that watching a match cannot change what its leader and followers see.
        """
        twin = copy.copy(self)
        twin._mdps, twin._best_responses, twin._evaluations = {}, {}, {}
        return twin

    def _remember(self, table: dict, key, value) -> None:
        if len(table) >= self.MEMORY:
            table.pop(next(iter(table)))
        table[key] = value

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self.parameterization.x_shape)

    @property
    def policy_shape(self) -> tuple[int, int]:
        """``(S, A)`` of the follower's policy."""
        return tuple(self.parameterization.followers(self.initial_x()).r.shape[1:])

    def initial_x(self) -> np.ndarray:
        """The parameterization's neutral start."""
        return self.parameterization.initial_x()

    def commitment(self, x: np.ndarray) -> np.ndarray | None:
        """The leader's policy ``mu_x`` when ``x`` is a commitment to one, else None (game-level
        metrics need it)."""
        return None

    def pull_back(self, x: np.ndarray, cotangent: BackupWeights,
                  mirror: bool = False) -> np.ndarray:
        """The gradient in ``x`` of weights on the follower's model
        (:func:`stackelberg.bilevel.pull_back`)."""
        if self._factored:
            return self.parameterization.backup_vjp(x, cotangent, mirror)
        return pull_back(self.parameterization, x, cotangent, self.follower_mdp(x).gamma, mirror)

    def follower_mdp(self, x: np.ndarray) -> FollowerMDP:
        """The follower's MDP ``M_tau(x)``.

        Remembered for the last few ``x`` (by value); its arrays are read-only, since callers
        share them.
        """
        key = x.tobytes()
        known = self._mdps.get(key)
        if known is not None:
            return known
        model = self.parameterization.followers(x)
        mdp = FollowerMDP.of(model, self.tau, self.commitment(x))
        self._remember(self._mdps, key, mdp)
        return mdp

    def evaluate(
        self, x: np.ndarray, pi: np.ndarray, mdp: FollowerMDP | None = None
    ) -> JointEvaluation:
        """Exact evaluation of ``(x, pi)``; see :class:`JointEvaluation`. Pass ``mdp`` (the
        result of :meth:`follower_mdp` for this ``x``) to share it between evaluations."""
        known = self._evaluations.get((x.tobytes(), pi.tobytes()))
        follower = None if known is None else known.evaluation
        return JointEvaluation(self, x, pi, mdp, follower=follower)

    def best_response(
        self, x: np.ndarray, pi0: np.ndarray | None = None, tol: float = 1e-12
    ) -> MDPSolution:
        """The follower's exact (soft) best response ``pi*_x`` by policy iteration.

        A best response to the same ``x`` found recently to the same or a finer tolerance is
        returned as it is. A warm start ``pi0`` that is (the very array of) a remembered best
        response to another ``x`` starts from that answer's values instead (``V0`` of
        :func:`solve_mdp`: one evaluation fewer), and policy iteration stops on its prediction
        of the next policy change (``predict``): the returned policy is evaluated only when
        asked for (the Bellman-penalty leader never asks).
        """
        key = x.tobytes()
        known = self._best_responses.get(key)
        if known is not None and known[0] <= tol:
            return known[1]
        # identity, not equality: a follower passes back the array it was given, and a stale
        # warm start would only cost iterations
        V0 = next((s.last.V for _, s in self._best_responses.values() if s.pi is pi0), None)
        solution = self.lower.best_response(self.follower_mdp(x), pi0=pi0, tol=tol, V0=V0)
        self._remember(self._best_responses, key, (tol, solution))
        self._remember(self._evaluations, (key, solution.pi.tobytes()), solution)
        return solution

    def value_penalty(self, x: np.ndarray, pi: np.ndarray) -> float:
        """``p(x, pi) = V*(x) - V(x, pi) >= 0`` (docs/theory.md §2)."""
        star = self.best_response(x, pi0=pi)
        rho = self.follower_mdp(x).rho
        return float(rho @ (star.V - self.evaluate(x, pi).follower.V))

    def penalized_response(
        self, x: np.ndarray, lam: float, pi0: np.ndarray | None = None, tol: float = 1e-10
    ) -> MDPSolution:
        """``argmin_pi f(x, pi) + lam * p(x, pi)`` for the value penalty, exactly.

        For ``f = -V_u`` (a :class:`stackelberg.upper_level.ValueObjective`),
        ``F_lam = -V_u(pi) + lam V*(x) - lam V(x, pi)``, and ``V(x, pi) + V_u(pi) / lam`` is the
        soft value of ``pi`` in the follower's MDP with reward ``r_x + u_x / lam`` (both values
        are linear in the same discounted occupancy). So the penalized policy that minimizes
        ``F_lam(x, .)`` is the soft-optimal policy of that MDP: one policy-iteration solve.
        """
        if not lam > 0:
            raise ValueError(f"the penalty weight must be > 0, got {lam!r}")
        if not isinstance(self.upper, ValueObjective):
            raise TypeError("the closed-form penalized response needs an upper objective that "
                            "is a value (ValueObjective)")
        m = self.follower_mdp(x)
        u = self.upper.reward.rewards(x)
        return solve_mdp(m.P, m.r + u / lam, m.gamma, m.tau, pi0=pi0, tol=tol)

    def hyper_objective(self, x: np.ndarray, pi0: np.ndarray | None = None) -> float:
        """``Phi(x) = f(x, pi*_x)``."""
        pi_star = self.best_response(x, pi0=pi0).pi
        return self.evaluate(x, pi_star).upper_objective

    def hypergradient(self, x: np.ndarray, pi_star: np.ndarray | None = None) -> HyperGradient:
        """Exact ``grad Phi(x)`` by implicit differentiation of the soft Bellman fixed point.

        docs/theory.md §3, §12: the lower level turns ``grad_theta f`` at ``pi*`` into weights
        on the follower's model by one adjoint solve
        (:meth:`stackelberg.lower_level.SoftFollower.hypergradient_weights`), and the
        parameterization's vjp carries them to ``x``: ``grad Phi = grad_x f + vjp(u)``.

        Parameters
        ----------
        x : array
        pi_star : array (S, A), optional
            A best response to use (e.g. a follower's estimate); computed exactly if omitted.
        """
        if self.tau <= 0:
            raise ValueError(
                "the exact hypergradient needs tau > 0 (a unique, differentiable best response)"
            )
        if pi_star is None:
            pi_star = self.best_response(x).pi
        ev = self.evaluate(x, pi_star)
        f = ev.grad_upper_objective()
        u = self.lower.hypergradient_weights(ev, f.theta)
        grad = f.x + self.pull_back(x, u)
        return HyperGradient(value=ev.upper_objective, grad=grad, best_response=pi_star)


class StackelbergProblem(BilevelProblem):
    """The bilevel problem ``min_x f(x, pi*_x)`` of a finite Stackelberg Markov game: the
    commitment logits (:class:`stackelberg.parameterizations.CommitmentLogits`), one soft
    follower, and ``f = -V_L`` (a :class:`stackelberg.upper_level.ValueObjective` of the leader's
    reward under the commitment).

    Parameters
    ----------
    model : GameModel
        The exact game.
    tau : float
        Entropy weight of the follower (``tau > 0`` makes ``pi*_x`` unique and smooth in ``x``).
    """

    n_followers = 1

    def __init__(self, model: GameModel, tau: float):
        commitment = CommitmentLogits(model)
        super().__init__(commitment, ValueObjective(LeaderRewards(commitment)), tau,
                         model=model)
        self.commitment_logits = commitment

    @property
    def x_shape(self) -> tuple[int, int]:
        """``(S, B)``, or ``(1, B)`` when the game has a shared commitment."""
        return self.commitment_logits.x_shape

    @property
    def policy_shape(self) -> tuple[int, int]:
        return (self.model.n_states, self.model.n_follower_actions)

    def initial_x(self) -> np.ndarray:
        """Zero logits: the uniform leader policy."""
        return self.commitment_logits.initial_x()

    def leader_policy(self, x: np.ndarray) -> np.ndarray:
        """``mu_x = softmax(x)`` row by row, as a read-only ``(S, B)`` array (a shared
        commitment's one row is repeated for every state); the last answer is remembered
        (:meth:`stackelberg.parameterizations.CommitmentLogits.policy`)."""
        return self.commitment_logits.policy(x)

    def commitment(self, x: np.ndarray) -> np.ndarray:
        """``mu_x``: every ``x`` of a Stackelberg problem is a commitment."""
        return self.leader_policy(x)

    def reduce_x(self, per_state: np.ndarray) -> np.ndarray:
        """Map a per-state quantity on ``x``'s rows (shape ``(S, ...)``) to ``x``'s shape: the
        identity, or the sum over states for a shared commitment (the chain rule, since every
        state's row is the same variable)."""
        return self.commitment_logits.reduce_x(per_state)

    def mean_reward_gradient(
        self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """Sample mean of ``grad_x sum_b mu_x(b|s) R(s, b, a)`` over pairs ``(s, a)``.

        For a reward tensor ``R[s, b, a]`` (the follower's or the leader's), the gradient of the
        induced reward in the softmax logits of row ``s`` is
        ``mu(c|s) (R(s, c, a) - sum_b mu(b|s) R(s, b, a))``. With ``(s, a)`` drawn from a
        policy's discounted visitation, the mean divided by ``1 - gamma`` is an unbiased estimate
        of ``grad_x`` of that policy's value when the transitions do not depend on ``x``
        (docs/theory.md §4, RAC's Hessian-free estimate).
        """
        total = np.zeros((self.model.n_states, self.model.n_leader_actions))
        np.add.at(total, states, self.reward_gradients(x, rewards, states, actions))
        return self.reduce_x(total) / len(states)

    def reward_gradients(
        self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """``grad sum_b mu_x(b|s) R(s, b, a)`` in the logits of ``s``'s row, for every pair:
        ``mu(c|s) (R(s, c, a) - sum_b mu(b|s) R(s, b, a))``, shape ``(n, B)``."""
        mu = self.leader_policy(x)[states]  # (n, B)
        r = rewards[states, :, actions]  # (n, B)
        return mu * (r - (mu * r).sum(axis=1, keepdims=True))

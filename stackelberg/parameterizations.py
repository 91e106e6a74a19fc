"""How the leader's variable ``x`` reaches the followers (docs/theory.md §12).

Two parameterizations (:class:`stackelberg.bilevel.Parameterization`):

- :class:`CommitmentLogits`: a Stackelberg game's leader commits to ``mu_x = softmax(x[s])`` and
  the follower faces the mixture of the game's kernel and reward over the leader's actions
  (docs/theory.md §1). Forward map and vector-Jacobian product in closed form (numpy).
- :class:`TorchParameterization`: any user function ``x -> (P_x, r_x)`` written in torch; its
  vector-Jacobian product comes from ``torch.func.vjp``. torch is imported when one is built,
  never when this module is imported.

:class:`LeaderRewards` and :class:`TorchRewardMap` are the matching
:class:`stackelberg.bilevel.RewardMap` s: an ``x``-dependent reward on the followers' pairs
``(s, a)`` that an upper objective evaluates (the leader's own reward under its commitment).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stackelberg.bilevel import BackupWeights, FollowerModel
from stackelberg.model import GameModel
from stackelberg.tabular import row_sum, softmax


def leader_logit_gradient(
    mu: np.ndarray, U: np.ndarray, weights: np.ndarray, mirror: bool = False
) -> np.ndarray:
    """Contract ``sum_{s,a} weights[s,a] d/dx (sum_b mu_x(b|s) U[s,b,a])`` for softmax logits.

    With ``q[s,b] = sum_a weights[s,a] U[s,b,a]`` (the gradient in the direct parameters
    ``mu[s,b]``) the result is ``mu[s,c] (q[s,c] - sum_b mu[s,b] q[s,b])``: the softmax
    Jacobian of each state's row. With ``mirror=True`` the factor ``mu[s,c]`` is left out: the
    centred direct gradient, which is the mirror-descent (KL geometry) step on the logits.
    """
    q = np.einsum("sa,sba->sb", weights, U)
    centred = q - row_sum(mu * q)[:, None]
    return centred if mirror else mu * centred


class CommitmentLogits:
    """A Stackelberg game's leader commitment, one logit per (state, leader action).

    ``mu_x(b|s) = softmax(x[s])`` (one row shared by every state when the game has a shared
    commitment); the follower, who does not see the realized leader action, faces
    ``P_x = sum_b mu_x(b|s) P(.|s, b, a)`` and ``r_x = sum_b mu_x(b|s) r_F(s, b, a)``
    (docs/theory.md §1). A :class:`stackelberg.bilevel.BackupParameterization`.
    """

    def __init__(self, model: GameModel):
        self.model = model
        rows = 1 if model.shared_commitment else model.n_states
        self._x_shape = (rows, model.n_leader_actions)
        self._last_policy: tuple[tuple[str, bytes], np.ndarray] | None = None

    @property
    def x_shape(self) -> tuple[int, int]:
        """``(S, B)``, or ``(1, B)`` when the game has a shared commitment."""
        return self._x_shape

    def initial_x(self) -> np.ndarray:
        """Zero logits: the uniform leader policy."""
        return np.zeros(self.x_shape)

    def policy(self, x: np.ndarray) -> np.ndarray:
        """``mu_x = softmax(x)`` row by row, as a read-only ``(S, B)`` array (a shared
        commitment's one row is repeated for every state).

        The last answer is remembered (by ``x``'s value): a sample-based match asks for the
        same commitment several times per iteration. A pure function of ``x``, so remembering it
        changes no number.
        """
        if x.shape != self._x_shape:
            raise ValueError(f"leader variable x must have shape {self._x_shape}, got {x.shape}")
        key = (x.dtype.str, x.tobytes())
        if self._last_policy is not None and self._last_policy[0] == key:
            return self._last_policy[1]
        mu = softmax(x, axis=1)
        if self.model.shared_commitment:
            mu = np.repeat(mu, self.model.n_states, axis=0)
        mu.flags.writeable = False
        self._last_policy = (key, mu)
        return mu

    def reduce_x(self, per_state: np.ndarray) -> np.ndarray:
        """Map a per-state quantity on ``x``'s rows (shape ``(S, ...)``) to ``x``'s shape: the
        identity, or the sum over states for a shared commitment (the chain rule, since every
        state's row is the same variable)."""
        if self.model.shared_commitment:
            return per_state.sum(axis=0, keepdims=True)
        return per_state

    def mix(self, mu: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """``sum_b mu[s,b] rewards[s,b,a]``: a game reward as the follower sees it."""
        return np.einsum("sb,sba->sa", mu, rewards)

    def followers(self, x: np.ndarray) -> FollowerModel:
        """The follower's model under ``mu_x``; its arrays are read-only (callers share them)."""
        mu = self.policy(x)
        m = self.model
        S, B, A = m.leader_rewards.shape
        # sum_b mu[s,b] P[s,b,a,s'] as S batched (1 x B) @ (B x A S) products (BLAS, not einsum)
        P_x = np.matmul(mu[:, None, :], m.transitions.reshape(S, B, A * S)).reshape(S, A, S)
        r_x = self.mix(mu, m.follower_rewards)
        for array in (P_x, r_x):
            array.flags.writeable = False
        return FollowerModel(P=P_x, r=r_x[None], rho=m.initial, gamma=m.gamma,
                             action_sizes=(A,))

    def backup(self, rewards: np.ndarray | None, values: np.ndarray) -> np.ndarray:
        """``rewards + gamma P values`` on ``(s, b, a)`` (``rewards=None``: zero): one
        ``(S B A) x S`` matrix-vector product (OpenBLAS runs one two-column product for both
        players at about half the speed of two matrix-vector products once ``S`` is 100 or
        more)."""
        m = self.model
        flat = (m.transitions.reshape(-1, m.n_states) @ values).reshape(m.leader_rewards.shape)
        if rewards is None:
            flat *= m.gamma
            return flat
        return rewards + m.gamma * flat

    def backup_vjp(self, x: np.ndarray, cotangent: BackupWeights,
                   mirror: bool = False) -> np.ndarray:
        """The cotangent's gradient in ``x``: :func:`leader_logit_gradient` of the game's backup
        ``U = c r_F + gamma P V`` (``c = cotangent.rewards[0]``), summed over states for a
        shared commitment."""
        (coefficient,) = cotangent.rewards
        rewards = self.model.follower_rewards
        if coefficient == 0.0:
            rewards = None
        elif coefficient != 1.0:
            rewards = coefficient * rewards
        U = self.backup(rewards, cotangent.values)
        return self.reduce_x(leader_logit_gradient(self.policy(x), U, cotangent.weights, mirror))

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        """``sum dP * dP_x/dx + sum dr * dr_x/dx``: the direct gradient
        ``q[s,b] = sum_a dr[s,a] r_F(s,b,a) + sum_{a,s'} dP[s,a,s'] P(s'|s,b,a)`` through the
        softmax Jacobian of each row."""
        m = self.model
        S, B, A = m.leader_rewards.shape
        q = np.zeros((S, B))
        if dr is not None:
            q += np.einsum("sa,sba->sb", dr[0], m.follower_rewards)
        if dP is not None:
            q += np.matmul(m.transitions.reshape(S, B, A * S),
                           dP.reshape(S, A * S, 1))[:, :, 0]
        mu = self.policy(x)
        return self.reduce_x(mu * (q - row_sum(mu * q)[:, None]))


class LeaderRewards:
    """The leader's reward as the follower's pairs ``(s, a)`` see it under the commitment:
    ``u_x(s, a) = sum_b mu_x(b|s) r_L(s, b, a)`` (a
    :class:`stackelberg.bilevel.CoupledRewardMap`: mixed by the same commitment as the
    follower's reward and kernel)."""

    def __init__(self, commitment: CommitmentLogits):
        self.commitment = commitment
        self._last_rewards: tuple[bytes, np.ndarray] | None = None

    def rewards(self, x: np.ndarray) -> np.ndarray:
        """``u_x`` as a read-only ``(S, A)`` array. The last answer is remembered (by ``x``'s
        value): an inner minimization over the follower's policy evaluates many policies at
        one ``x``. A pure function of ``x``, so remembering it changes no number."""
        key = x.tobytes()
        if self._last_rewards is not None and self._last_rewards[0] == key:
            return self._last_rewards[1]
        c = self.commitment
        u = c.mix(c.policy(x), c.model.leader_rewards)
        u.flags.writeable = False
        self._last_rewards = (key, u)
        return u

    def vjp(self, x: np.ndarray, weights: np.ndarray, mirror: bool = False) -> np.ndarray:
        c = self.commitment
        return c.reduce_x(leader_logit_gradient(c.policy(x), c.model.leader_rewards, weights,
                                                mirror))

    def _game_backup(self, values: np.ndarray, coefficient: float,
                     follower: float) -> np.ndarray:
        """``U = coefficient r_L + follower r_F + gamma P values`` on ``(s, b, a)``."""
        m = self.commitment.model
        rewards = None if coefficient == 0.0 else coefficient * m.leader_rewards
        if follower != 0.0:
            scaled = m.follower_rewards if follower == 1.0 else follower * m.follower_rewards
            rewards = scaled if rewards is None else rewards + scaled
        return self.commitment.backup(rewards, values)

    def backup_gradient(self, x: np.ndarray, cotangent: BackupWeights, coefficient: float,
                        mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One backup of the game on ``(s, b, a)`` for both players,
        ``U = coefficient r_L + c r_F + gamma P V``: its :func:`leader_logit_gradient` and its
        mixture ``sum_b mu U`` (the combined Q-function on the follower's pairs)."""
        c = self.commitment
        (follower,) = cotangent.rewards
        U = self._game_backup(cotangent.values, coefficient, follower)
        mu = c.policy(x)
        return c.reduce_x(leader_logit_gradient(mu, U, cotangent.weights, mirror)), c.mix(mu, U)

    def mixed_backup(self, x: np.ndarray, values: np.ndarray, coefficient: float,
                     follower: float) -> np.ndarray:
        """The mixture ``sum_b mu U`` of :meth:`backup_gradient` alone (no gradient in ``x``)."""
        c = self.commitment
        return c.mix(c.policy(x), self._game_backup(values, coefficient, follower))


class TorchParameterization:
    """A parameterization written as one torch function (docs/theory.md §12).

    Parameters
    ----------
    fn : callable
        ``fn(x) -> (P_x, r_x)`` on a float64 tensor ``x`` of shape ``x_shape``: ``P_x`` a tensor
        ``(S, A, S)`` (``A`` the number of joint follower actions; rows on the simplex) or
        ``None`` when the kernel does not depend on ``x``; ``r_x`` a tensor ``(n, S, A)``, one
        reward per follower. It must be differentiable by ``torch.func`` (no in-place
        operations on ``x``, no numpy round trips).
    x_shape : tuple of int
    rho : array (S,)
        Initial distribution.
    gamma : float
    action_sizes : tuple of int
        Actions of each follower (their product is ``A``).
    P : array (S, A, S), optional
        The kernel, required when ``fn`` returns ``None`` for it.
    x0 : array, optional
        The neutral start (zeros by default).
    """

    def __init__(self, fn: Callable, x_shape: tuple[int, ...], rho: np.ndarray, gamma: float,
                 action_sizes: tuple[int, ...], P: np.ndarray | None = None,
                 x0: np.ndarray | None = None):
        import torch  # noqa: F401  (fails early, with torch's own message, if it is missing)

        self.fn = fn
        self._x_shape = tuple(x_shape)
        self.rho = np.asarray(rho, dtype=float)
        self.gamma = float(gamma)
        self.action_sizes = tuple(action_sizes)
        self.P = None if P is None else np.asarray(P, dtype=float)
        self._x0 = np.zeros(self._x_shape) if x0 is None else np.asarray(x0, dtype=float)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return self._x_shape

    def initial_x(self) -> np.ndarray:
        return self._x0.copy()

    def _call(self, x: np.ndarray):
        import torch

        if x.shape != self._x_shape:
            raise ValueError(f"leader variable x must have shape {self._x_shape}, got {x.shape}")
        with torch.no_grad():
            return self.fn(torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64))

    def followers(self, x: np.ndarray) -> FollowerModel:
        P_x, r_x = self._call(x)
        if P_x is None:
            if self.P is None:
                raise ValueError("fn returned no kernel and the parameterization has no fixed P")
            P = self.P
        else:
            P = P_x.detach().numpy().astype(float)
        r = r_x.detach().numpy().astype(float)
        for array in (P, r):
            array.flags.writeable = False
        return FollowerModel(P=P, r=r, rho=self.rho, gamma=self.gamma,
                             action_sizes=self.action_sizes)

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        import torch

        def outputs(z: torch.Tensor) -> tuple:
            # torch.func.vjp takes tensors only: a kernel that does not depend on x is left out
            P_x, r_x = self.fn(z)
            return (r_x,) if P_x is None else (P_x, r_x)

        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        primal, pull = torch.func.vjp(outputs, xt)
        weights = (dr,) if len(primal) == 1 else (dP, dr)
        cotangents = tuple(torch.zeros_like(out) if w is None
                           else torch.as_tensor(w, dtype=torch.float64)
                           for out, w in zip(primal, weights, strict=True))
        return pull(cotangents)[0].detach().numpy()


class TorchRewardMap:
    """An upper objective's ``x``-dependent reward written in torch (a
    :class:`stackelberg.bilevel.RewardMap`): ``fn(x) -> u_x`` of shape ``(S, A)``, float64,
    differentiable by ``torch.func``. ``mirror`` geometry is not defined for it."""

    def __init__(self, fn: Callable):
        import torch  # noqa: F401

        self.fn = fn

    def rewards(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            u = self.fn(torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64))
        return u.detach().numpy().astype(float)

    def vjp(self, x: np.ndarray, weights: np.ndarray, mirror: bool = False) -> np.ndarray:
        import torch

        if mirror:
            raise ValueError("a torch reward map has no mirror geometry: use the euclidean one")
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        _, pull = torch.func.vjp(self.fn, xt)
        return pull(torch.as_tensor(weights, dtype=torch.float64))[0].detach().numpy()

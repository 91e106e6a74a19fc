"""RAC's samples on an RLHF problem: labelled pairs of the policies' own segments
(docs/theory.md §4 "RAC", §8.1).

On a Stackelberg game RAC samples transitions, and its penalized actor maximizes the value of
``r_F + r_L / w`` (``f = -V_L``). RLHF's upper objective is not a value but the preference NLL
``f = q^T L q``; at the current policy its derivative in the occupancy is the frozen reward
``c = 2 L q`` (§8.1), so near the current policy ``F_w = f - w V`` is minimized by maximizing
the value of ``r_x - (1 - gamma) c / w``: RAC's actor with the "leader reward"
``r_L = -(1 - gamma) c``. Both ``c`` and ``grad_x f`` have unbiased estimates from labelled pairs:

- every iteration moves ``n`` chains of the penalized policy one step (each restarts from
  ``rho`` with probability ``1 - gamma``, so its state is distributed as ``d_pi``); segment ``i``
  is paired with segment ``i + k`` (mod ``n``, ``k`` random in ``1..n-1``, an independent
  chain) and the annotator labels the pair;
- ``r_L(z_i) = -(1 - gamma) (l_i + l_j)``, the losses of the two pairs segment ``i`` is in
  (first in its own, second in that of ``j = i - k``): each has mean ``(L q)(z_i)``;
- ``grad_x f`` is the mean gradient of the pairs' NLL (:func:`stackelberg.preferences.
  sampled_loss`), and the Hessian-free term is ``w (mean phi(z') - mean phi(z)) / (1 - gamma)``
  with ``z'`` from the auxiliary policy's chains (valid: ``P`` does not depend on ``x``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.preferences import PreferenceObjective, PreferencePairs, sampled_loss, softplus
from stackelberg.sampling import TransitionBatch, sample_categorical


class SegmentChains:
    """``n`` parallel chains of a policy in the RLHF task's MDP, each state distributed as the
    policy's discounted visitation (restart from ``rho`` with probability ``1 - gamma``)."""

    def __init__(self, objective: PreferenceObjective, n: int, rng: np.random.Generator):
        self.model, self.rng = objective.model, rng
        self.states = self._starts(n)

    def _starts(self, n: int) -> np.ndarray:
        return sample_categorical(np.broadcast_to(self.model.rho, (n, self.model.rho.size)),
                                  self.rng)

    def step(self, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every chain: ``(states, actions, next_states)``; the chains move on."""
        m, s = self.model, self.states
        a = sample_categorical(pi[s], self.rng)
        s_next = sample_categorical(m.P[s, a], self.rng)
        restart = self.rng.random(s.size) >= m.gamma
        self.states = np.where(restart, self._starts(s.size), s_next)
        return s, a, s_next


@dataclass(frozen=True)
class PreferenceStep:
    """What one RAC iteration draws on an RLHF problem: the penalized actor's batch (its
    ``leader_rewards`` the pair-loss reward of the module docstring), the Hessian-free
    ``g_x``, and the number of labelled pairs."""

    batch: TransitionBatch
    g_x: np.ndarray
    labels: int


def preference_step(objective: PreferenceObjective, x: np.ndarray, w: float,
                    penalized: tuple[np.ndarray, np.ndarray, np.ndarray],
                    auxiliary: tuple[np.ndarray, np.ndarray, np.ndarray],
                    rng: np.random.Generator) -> PreferenceStep:
    """Label pairs of the penalized chains' segments and form the actor's batch and ``g_x``
    (module docstring)."""
    model = objective.model
    s, a, s_next = penalized
    A = model.P.shape[1]
    n = s.size
    z = s * A + a
    shift = int(rng.integers(1, n)) if n > 1 else 0
    partner = np.roll(z, -shift)  # segment i is paired with segment i + shift
    label = (rng.random(n) < objective.preference[z, partner]).astype(float)
    pairs = PreferencePairs(z, partner, label)
    r = model.reward(x)
    b = objective.model_beta
    bD = b * (r.reshape(-1)[partner] - r.reshape(-1)[z])
    losses = label * softplus(-bD) + (1.0 - label) * softplus(bD)
    if objective.excess:
        losses = losses - objective.entropy[z, partner]
    # segment i is first in pair i and second in pair i - shift
    leader_rewards = -(1.0 - model.gamma) * (losses + np.roll(losses, shift))
    batch = TransitionBatch(states=s, leader_actions=np.zeros_like(s), follower_actions=a,
                            leader_rewards=leader_rewards, follower_rewards=r[s, a],
                            next_states=s_next)
    grad_f = sampled_loss(objective, x, pairs).grad_x
    aux_s, aux_a, _ = auxiliary
    S = model.P.shape[0]
    visits = (np.bincount(aux_s * A + aux_a, minlength=S * A) / aux_s.size
              - np.bincount(z, minlength=S * A) / n).reshape(S, A)
    g_x = grad_f + w * model.reward_vjp(visits) / (1.0 - model.gamma)
    return PreferenceStep(batch, g_x, n)

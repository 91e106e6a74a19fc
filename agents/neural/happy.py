"""RLHF on happy text (docs/theory.md §8.2): the reward model (the leader's variable), the
KL-regularized follower, and the two leaders, ``rac-neural`` and the alternating loop.

- :class:`BagOfWordsReward`: ``r_x(y) = x . phi(y)``, ``phi(y)`` the counts of the vocabulary's
  tokens in the generation ``y``; ``x`` starts at zero (no preference).
- :func:`preference_nll`: the Bradley-Terry negative log-likelihood of labelled pairs
  ``(y_0, y_1, label)``, ``l = label softplus(-D) + (1 - label) softplus(D)``, ``D = r_x(y_1) -
  r_x(y_0)``; its gradient in ``x`` is ``mean((sigmoid(D) - label)(phi(y_1) - phi(y_0)))``
  (:func:`preference_gradient`, checked against autograd and finite differences in the tests).
- :class:`KLFollower`: the follower, the language model fine-tuned to maximize
  ``V(x, theta) = E_{y ~ pi_theta}[r_x(y)] - tau KL(pi_theta || pi_0)``, ``pi_0`` the pre-trained
  model, by the score-function gradient of the sequence-level return ``r_x(y) - tau log(pi_theta(y)
  / pi_0(y))`` with a leave-one-out baseline (:func:`policy_step`). ``tau`` is RLHF's KL weight,
  a part of the problem, not a vanishing regularizer: it stays fixed [ours].
- :class:`AlternatingLeader`: standard RLHF, the partial gradient: each iteration labels pairs of
  the follower's current generations and takes one Adam step of ``x`` on their NLL, treating the
  follower as fixed.
- :class:`RACHappyLeader`: RAC (Zeng et al.) on sequences, as :mod:`agents.leaders.rac_rlhf`
  does on tabular RLHF. The upper objective is ``f(x, theta) = E_{y_0, y_1 ~ pi_theta}[l_x]``,
  a quadratic form ``q^T L_x q`` in the generation distribution ``q``, whose derivative in ``q``
  is the frozen reward ``2 L_x q``. Per iteration, with ``w_k = min(w_max, w0 (k+1)^w_growth)``:

  1. the penalized actor ``theta`` and the follower's policy ``theta'`` generate from the same
     uniform numbers (:func:`games.happy_text_lm.sample`);
  2. ``theta``'s generation ``i`` is paired with generation ``i + shift`` (``shift`` random), the
     annotator labels the pairs, and generation ``i`` gets ``c_i = l_i + l_{i - shift}``, the
     losses of the two pairs it is in (each has mean ``(L_x q)(y_i)``);
  3. ``theta`` takes a KL-regularized policy-gradient step (step ``alpha_k``) on the reward
     ``r_x(y) - c(y) / w_k``, i.e. on ``V(x, theta) - f(x, theta) / w_k``;
  4. ``x`` takes an Adam step (step ``xi_k``) along the Hessian-free direction
     ``g_x = grad_x f + w_k (mean phi(y') - mean phi(y))``, ``y'`` from ``theta'`` and ``y`` from
     ``theta`` (``grad_x V(x, .) = E[phi]``: the KL term does not depend on ``x``).

The follower learner (``theta'``) steps as in the alternating loop; a run's sentiment is that of
the follower's policy, the policy RLHF delivers, for both leaders.

They implement the coordinator's protocols (:mod:`stackelberg.protocols`) on a
:class:`games.happy_text_problem.HappyTextProblem`: the leader's ``x`` is the reward model's weight
vector, the follower's ``policy`` its language model (a :class:`~games.happy_text_lm.WordLM`,
which the leader samples from); each draws its torch generator's seed, then its numpy draws,
from the stream ``reset`` gives it. Their configs live in :mod:`agents.neural.happy_configs`
(no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.neural.common import Adam, power
from agents.neural.happy_configs import AlternatingConfig, KLFollowerConfig, RACHappyConfig
from games.happy_text import label_pairs, pair_up
from games.happy_text_lm import DTYPE, Generations, WordLM, sample, sequence_kl, token_counts
from games.happy_text_problem import HappyTextProblem
from stackelberg.preferences import PreferencePairs

__all__ = ["AlternatingConfig", "AlternatingLeader", "BagOfWordsReward", "KLFollower",
           "KLFollowerConfig", "RACHappyConfig", "RACHappyLeader", "StepStats", "policy_step",
           "preference_gradient", "preference_nll"]


class BagOfWordsReward(nn.Module):
    """``r_x(y) = x . phi(y)`` (module docstring); ``x`` is ``self.x``, starting at zero."""

    def __init__(self, vocab_size: int, dtype: torch.dtype = DTYPE):
        super().__init__()
        self.x = nn.Parameter(torch.zeros(vocab_size, dtype=dtype))

    def features(self, generations: Generations) -> torch.Tensor:
        """``phi(y)`` ``(n, V)`` (:func:`games.happy_text_lm.token_counts`)."""
        return token_counts(generations, self.x.numel(), self.x.dtype)

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return phi @ self.x


def _difference(x: torch.Tensor, phi: torch.Tensor, pairs: PreferencePairs) -> torch.Tensor:
    first, second = torch.as_tensor(pairs.first), torch.as_tensor(pairs.second)
    return phi[second] @ x - phi[first] @ x


def preference_nll(x: torch.Tensor, phi: torch.Tensor, pairs: PreferencePairs) -> torch.Tensor:
    """The mean Bradley-Terry NLL of ``r_x`` on labelled pairs (module docstring)."""
    D = _difference(x, phi, pairs)
    label = torch.as_tensor(pairs.label, dtype=x.dtype)
    return (label * F.softplus(-D) + (1.0 - label) * F.softplus(D)).mean()


def pair_losses(x: torch.Tensor, phi: torch.Tensor, pairs: PreferencePairs) -> torch.Tensor:
    """Each pair's NLL ``(n,)`` (no gradient)."""
    with torch.no_grad():
        D = _difference(x, phi, pairs)
        label = torch.as_tensor(pairs.label, dtype=x.dtype)
        return label * F.softplus(-D) + (1.0 - label) * F.softplus(D)


def preference_gradient(x: torch.Tensor, phi: torch.Tensor, pairs: PreferencePairs
                        ) -> torch.Tensor:
    """``grad_x`` of :func:`preference_nll`, in closed form."""
    first, second = torch.as_tensor(pairs.first), torch.as_tensor(pairs.second)
    D = _difference(x, phi, pairs)
    label = torch.as_tensor(pairs.label, dtype=x.dtype)
    return ((torch.sigmoid(D) - label)[:, None] * (phi[second] - phi[first])).mean(0)


@dataclass(frozen=True)
class StepStats:
    """What one policy step measured: the mean reward it climbed (before the KL term) and the
    mean sequence KL to the reference, summed exactly over each step's vocabulary."""

    reward: float
    kl: float


def policy_step(policy: WordLM, reference: WordLM, optimizer: Adam, generations: Generations,
                reward: torch.Tensor, tau: float, lr: float) -> StepStats:
    """One score-function step of ``E[reward] - tau KL(pi || pi_0)`` (module docstring)."""
    tokens, mask = generations.tokens, generations.mask
    logp = (policy.log_probs(tokens).gather(-1, tokens[..., None])[..., 0] * mask).sum(1)
    with torch.no_grad():
        ref = (reference.log_probs(tokens).gather(-1, tokens[..., None])[..., 0] * mask).sum(1)
        ret = reward.to(DTYPE) - tau * (logp - ref)
        n = ret.numel()
        baseline = (ret.sum() - ret) / max(n - 1, 1)  # leave-one-out: no bias
    optimizer.step(-((ret - baseline) * logp).mean(), lr)
    return StepStats(float(reward.mean()), float(sequence_kl(policy, reference,
                                                             generations).mean()))


def _uniforms(n: int, T: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, T, generator=generator, dtype=DTYPE)



def _require_text(problem: object, name: str) -> HappyTextProblem:
    if not isinstance(problem, HappyTextProblem):
        raise ValueError(f"{name} plays happy text (stackelberg/happy-text-v0), not "
                         f"{type(problem).__name__}")
    return problem


def _torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded by the first draw of ``rng`` (module docstring)."""
    generator = torch.Generator()
    generator.manual_seed(int(rng.integers(2**62)))
    return generator


class KLFollower:
    """``kl-policy-gradient``: the language model fine-tuned on ``r_x`` with a KL term to
    ``pi_0`` (module docstring); a :class:`~stackelberg.protocols.FollowerLearner`."""

    def __init__(self, config: KLFollowerConfig):
        self.config = config
        self.samples = 0

    def reset(self, problem: HappyTextProblem, rng: np.random.Generator) -> None:
        self.problem = _require_text(problem, "kl-policy-gradient")
        self.reference = problem.reference()
        self.generator = _torch_generator(rng)
        self._policy = self.reference.copy()
        self.optimizer = Adam(self._policy)
        self.k, self.samples, self.last = 0, 0, StepStats(0.0, 0.0)

    @property
    def policy(self) -> WordLM:
        """The fine-tuned language model (the best-response estimate)."""
        return self._policy

    def step(self, x: np.ndarray) -> None:
        """One policy-gradient step on the reward model of weights ``x``."""
        c = self.config
        generations = sample(self._policy, _uniforms(c.batch, self.problem.max_length,
                                                     self.generator))
        weights = torch.as_tensor(np.asarray(x, dtype=np.float32))
        reward = token_counts(generations, weights.numel()) @ weights
        self.last = policy_step(self._policy, self.reference, self.optimizer, generations,
                                reward, self.problem.tau, power(c.lr, c.decay, self.k))
        self.k += 1
        self.samples += c.batch


class _Leader:
    """What both leaders share: the reward model (``x``), its optimizer, the counters; a
    :class:`~stackelberg.protocols.Leader`."""

    name = ""

    def __init__(self, config: AlternatingConfig | RACHappyConfig):
        self.config = config
        self.samples = self.labels = 0

    def reset(self, problem: HappyTextProblem, rng: np.random.Generator) -> None:
        self.problem = _require_text(problem, self.name)
        self.generator = _torch_generator(rng)
        self.rng = rng
        self.reward_model = BagOfWordsReward(len(problem.vocab))
        self.optimizer = Adam(self.reward_model)
        self.k, self.samples, self.labels = 0, 0, 0

    @property
    def x(self) -> np.ndarray:
        """The reward model's weights, one per vocabulary entry (float32)."""
        return self.reward_model.x.detach().numpy()

    @property
    def penalized_policy(self) -> WordLM | None:
        return None

    def _label(self, generations: Generations) -> tuple[torch.Tensor, PreferencePairs, int]:
        """The features of a batch and its pairs, labelled (:func:`pair_up`)."""
        n = generations.tokens.shape[0]
        partner, shift = pair_up(n, self.rng)
        scores = self.problem.annotator.score(generations.texts(self.problem.vocab))
        pairs = label_pairs(scores, np.arange(n), partner, self.problem.beta, self.rng)
        self.labels += n
        return self.reward_model.features(generations), pairs, shift


class AlternatingLeader(_Leader):
    """Standard RLHF, the partial gradient (module docstring)."""

    name = "alternating"

    def step(self, responses: Sequence[WordLM]) -> dict[str, float]:
        """Label pairs of the follower's (``responses[0]``) generations and take one step of
        ``x`` on their NLL."""
        c = self.config
        generations = sample(responses[0],
                             _uniforms(c.batch, self.problem.max_length, self.generator))
        self.samples += c.batch
        phi, pairs, _ = self._label(generations)
        loss = preference_nll(self.reward_model.x, phi, pairs)
        value = float(loss.detach())
        self.optimizer.step(loss, power(c.lr, c.decay, self.k))
        self.k += 1
        return {"batch_nll": value, "labels": float(self.labels)}


class RACHappyLeader(_Leader):
    """``rac-neural`` on happy text (module docstring)."""

    name = "rac-neural"

    def reset(self, problem: HappyTextProblem, rng: np.random.Generator) -> None:
        super().reset(problem, rng)
        self.actor = problem.reference().copy()              # theta, the penalized actor
        self.actor_optimizer = Adam(self.actor)

    @property
    def penalized_policy(self) -> WordLM:
        return self.actor

    def penalty_weight(self, k: int) -> float:
        c = self.config
        return min(c.w_max, power(c.w0, -c.w_growth, k))

    def step(self, responses: Sequence[WordLM]) -> dict[str, float]:
        """One RAC iteration (module docstring) against the follower's policy
        ``responses[0]`` (``theta'``)."""
        c, k = self.config, self.k
        w = self.penalty_weight(k)
        uniforms = _uniforms(c.batch, self.problem.max_length, self.generator)
        mine, theirs = sample(self.actor, uniforms), sample(responses[0], uniforms)
        self.samples += 2 * c.batch
        phi, pairs, shift = self._label(mine)
        x = self.reward_model.x
        losses = pair_losses(x, phi, pairs)
        # generation i is first in pair i and second in pair i - shift
        frozen = losses + torch.roll(losses, shift)
        with torch.no_grad():
            reward = self.reward_model(phi) - frozen / w
        policy_step(self.actor, self.problem.reference(), self.actor_optimizer, mine, reward,
                    self.problem.tau, power(c.alpha, c.alpha_decay, k))
        # g_x = grad f + w (E_theta' phi - E_theta phi): a surrogate with that gradient
        gap = (self.reward_model.features(theirs).mean(0) - phi.mean(0)).detach()
        surrogate = preference_nll(x, phi, pairs) + w * (gap @ x)
        value = float(losses.mean())
        self.optimizer.step(surrogate, power(c.xi, c.xi_decay, k))
        self.k += 1
        return {"batch_nll": value, "penalty_weight": w, "labels": float(self.labels)}

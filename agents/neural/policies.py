"""Torch policies and critics of the neural learners (CPU, float64, seeded).

- :class:`GaussianPolicy` for a ``Box`` action: a pre-action ``u ~ N(mu(obs), sigma^2)`` in
  *normalized units* (``u = -1`` is the Box's low end, ``u = +1`` its high end), mapped
  affinely onto the Box and **clipped** to it. The log-probability is the Gaussian one of ``u``
  (the clipping is the environment's rule, not part of the density; with an optimum inside the
  Box the clipped mass vanishes as ``sigma`` shrinks) [ours]. ``sigma`` is a state-independent
  learned parameter ``log_std`` kept at or above ``log(min_std)``.
- :class:`CategoricalPolicy` for a ``Discrete`` action: softmax of a network's logits.
- :class:`Critic`: a state-value network ``V(obs)``.

Networks are multilayer perceptrons with ``hidden`` tanh layers (``()`` gives a linear map).
Weights are drawn from a ``torch.Generator`` (no global random state) and output layers start
at zero, so a new policy's mean is the Box's centre (or ``init_mean``) and a new critic says 0.
A policy's parameters flatten to a numpy vector (:func:`flat_parameters`): the leader's is
her *commitment* ``x``, what the follower observes in the Parallel duopoly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from stackelberg.simulated import PolicySpec

DTYPE = torch.float64

__all__ = ["Critic", "CategoricalPolicy", "GaussianPolicy", "PolicySpec", "flat_parameters",
           "load_parameters", "make_policy", "torch_generator"]


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``rng`` (same ``rng`` state, same numbers)."""
    generator = torch.Generator()
    generator.manual_seed(int(rng.integers(0, 2**62)))
    return generator


def _mlp(inputs: int, hidden: tuple[int, ...], outputs: int, generator: torch.Generator
         ) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for h in hidden:
        linear = nn.Linear(width, h, dtype=DTYPE)
        bound = 1.0 / math.sqrt(width)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.zero_()
        layers += [linear, nn.Tanh()]
        width = h
    last = nn.Linear(width, outputs, dtype=DTYPE)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    layers.append(last)
    return nn.Sequential(*layers)


class GaussianPolicy(nn.Module):
    """Clipped Gaussian over a ``Box`` (module docstring)."""

    def __init__(self, spec: PolicySpec, generator: torch.Generator):
        super().__init__()
        box = spec.action_space
        self.low = torch.as_tensor(box.low, dtype=DTYPE).reshape(-1)
        self.high = torch.as_tensor(box.high, dtype=DTYPE).reshape(-1)
        self.action_shape = box.shape
        size = self.low.numel()
        self.mean_net = _mlp(spec.observation_size, spec.hidden, size, generator)
        with torch.no_grad():
            self.mean_net[-1].bias.fill_(spec.init_mean)
        log_std = torch.full((size,), math.log(spec.init_std), dtype=DTYPE)
        if spec.learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)
        self.min_log_std = math.log(spec.min_std)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        std = self.log_std.clamp(min=self.min_log_std).exp()
        return torch.distributions.Normal(self.mean_net(obs), std)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Pre-actions ``u = mu + sigma * noise`` for standard normal ``noise`` (no gradient)."""
        with torch.no_grad():
            d = self.distribution(obs)
            return d.loc + d.scale * noise

    def log_prob(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).log_prob(u).sum(-1)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).entropy().sum(-1)

    def to_env(self, u: torch.Tensor) -> np.ndarray:
        """Environment actions: ``u`` mapped onto the Box and clipped to it."""
        q = self.low + (self.high - self.low) * (u + 1.0) / 2.0
        return torch.minimum(torch.maximum(q, self.low), self.high).numpy()

    def mean_action(self, obs: torch.Tensor) -> np.ndarray:
        """The environment action of the mean pre-action (what a firm "plans" to sell)."""
        with torch.no_grad():
            return self.to_env(self.mean_net(obs))

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return (n, self.low.numel())


class CategoricalPolicy(nn.Module):
    """Softmax policy over a ``Discrete`` action (module docstring)."""

    def __init__(self, spec: PolicySpec, generator: torch.Generator):
        super().__init__()
        self.n = int(spec.action_space.n)
        self.logits = _mlp(spec.observation_size, spec.hidden, self.n, generator)
        self.explore = 0.0   # share of uniform actions in what :meth:`sample` draws

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.logits(obs))

    def behaviour(self, obs: torch.Tensor) -> torch.Tensor:
        """The probabilities :meth:`sample` draws from: the policy's, mixed with the uniform
        distribution in the share ``explore`` (a learner that must see every action; the
        policy itself, its log-probabilities and entropy are unchanged)."""
        with torch.no_grad():
            probs = torch.softmax(self.logits(obs), -1)
            return probs if not self.explore else \
                (1.0 - self.explore) * probs + self.explore / self.n

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Actions by inverse CDF of uniform ``noise`` (so two policies can share the noise),
        from :meth:`behaviour`."""
        with torch.no_grad():  # softmax directly: a Distribution's checks cost more than it
            cdf = self.behaviour(obs).cumsum(-1)
            return (noise[:, :1] > cdf).sum(-1).clamp(max=self.n - 1).to(DTYPE)

    def log_prob(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        # u holds one action index per observation row: (T, n) for a batch of episodes
        return self.distribution(obs).log_prob(u.reshape(obs.shape[:-1]).long())

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).entropy()

    def to_env(self, u: torch.Tensor) -> np.ndarray:
        return u.reshape(-1).long().numpy()

    def mean_action(self, obs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.distribution(obs).probs.numpy()

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return (n, 1)


class Critic(nn.Module):
    """State-value network ``V(obs)`` (module docstring)."""

    def __init__(self, observation_size: int, hidden: tuple[int, ...],
                 generator: torch.Generator):
        super().__init__()
        self.net = _mlp(observation_size, hidden, 1, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


Policy = GaussianPolicy | CategoricalPolicy


def make_policy(spec: PolicySpec, generator: torch.Generator) -> Policy:
    """The policy class that fits ``spec.action_space``."""
    if isinstance(spec.action_space, spaces.Box):
        return GaussianPolicy(spec, generator)
    return CategoricalPolicy(spec, generator)


def draw_noise(policy: Policy, n: int, generator: torch.Generator) -> torch.Tensor:
    """The noise a policy turns into ``n`` actions: standard normal (Gaussian) or uniform."""
    if isinstance(policy, CategoricalPolicy):
        return torch.rand(policy.noise_shape(n), generator=generator, dtype=DTYPE)
    return torch.randn(policy.noise_shape(n), generator=generator, dtype=DTYPE)


def flat_parameters(module: nn.Module) -> np.ndarray:
    """The module's parameters as one numpy vector (a copy)."""
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().numpy().copy()


def load_parameters(module: nn.Module, vector: np.ndarray) -> None:
    """Set the module's parameters from a vector made by :func:`flat_parameters`."""
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.as_tensor(vector, dtype=DTYPE),
                                            module.parameters())

"""What a happy-text match records (docs/theory.md §8.2): the follower's policy measured on fresh
generations, with standard errors, and the run directory's ``samples.txt``.

:class:`HappyTextMetrics` is the observer :meth:`games.happy_text_problem.HappyTextProblem.
metrics_observer` gives the coordinator (DESIGN, "Exact or sampled"). Each recorded row draws
``eval_samples`` generations of the follower's policy from the problem's own seed (the same
uniform numbers at every row, so two rows differ by the policy alone, as in common random
numbers) and records, with the standard error of each mean:

- ``upper_objective``: ``f``, the expected Bradley-Terry NLL of the reward model on pairs of
  these generations, the annotator's label probabilities in place of sampled labels;
  ``leader_value = -f``;
- ``follower_value``: ``E[r_x(y) - tau KL_t(y)]``, the follower's objective, ``KL_t(y)`` the
  chain-rule sequence KL of each generation (:func:`games.happy_text_lm.sequence_kl`);
- ``sentiment``: the mean VADER compound score, what RLHF is for; ``kl``: the mean sequence KL
  to the pre-trained model; ``accuracy``: how often the reward model orders a pair as VADER
  does (VADER ties left out).

The row is a function of ``x`` and the follower's policy alone, so recording changes no number
of the match. The pre-trained model measured the same way at ``x = 0`` goes to the summary as
``*_before``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

from games.happy_text import pair_up
from games.happy_text_lm import DTYPE, WordLM, sample, sequence_kl, token_counts
from games.happy_text_problem import HappyTextProblem
from stackelberg.preferences import softplus

__all__ = ["HappyTextMetrics", "Measurement", "measure", "samples_text"]


@dataclass(frozen=True)
class Measurement:
    """One measurement of a policy: the metrics row and the texts it generated."""

    row: dict[str, float]
    texts: tuple[str, ...]


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def measure(problem: HappyTextProblem, x: np.ndarray, policy: WordLM) -> Measurement:
    """The follower's ``policy`` and the reward model ``x`` on fresh generations (module
    docstring)."""
    n = problem.eval_samples
    generator = torch.Generator()
    generator.manual_seed(problem.eval_seed)
    generations = sample(policy, torch.rand(n, problem.max_length, generator=generator,
                                            dtype=DTYPE))
    texts = generations.texts(problem.vocab)
    scores = problem.annotator.score(texts)
    kl = sequence_kl(policy, problem.reference(), generations).numpy().astype(float)
    partner, _ = pair_up(n, np.random.default_rng(problem.eval_seed))
    weights = torch.as_tensor(np.asarray(x, dtype=np.float32))
    r = (token_counts(generations, weights.numel()) @ weights).numpy().astype(float)
    truth, guess = np.sign(scores[partner] - scores), np.sign(r[partner] - r)
    kept = truth != 0
    accuracy = float(np.where(guess == 0, 0.5, guess == truth)[kept].mean()) if kept.any() \
        else float("nan")
    p = expit(problem.beta * (scores[partner] - scores))
    D = r[partner] - r
    f, f_se = _mean_se(p * softplus(-D) + (1.0 - p) * softplus(D))
    v, v_se = _mean_se(r - problem.tau * kl)
    s, s_se = _mean_se(scores)
    k, k_se = _mean_se(kl)
    row = {"upper_objective": f, "upper_objective_se": f_se, "leader_value": -f,
           "leader_value_se": f_se, "follower_value": v, "follower_value_se": v_se,
           "sentiment": s, "sentiment_se": s_se, "kl": k, "kl_se": k_se, "accuracy": accuracy}
    return Measurement(row, tuple(texts))


class HappyTextMetrics:
    """The coordinator's observer of a happy-text match (module docstring)."""

    #: No two-player game whose leader policy a match result keeps.
    game = None

    def __init__(self, problem: HappyTextProblem):
        self.problem = problem
        zero = np.zeros(len(problem.vocab), dtype=np.float32)
        self.before = measure(problem, zero, problem.reference()).row

    def __call__(self, x: np.ndarray, played: object | None,
                 profile: Sequence[WordLM]) -> dict[str, float]:
        """The row of ``x`` and the follower learner's policy (``profile[0]``; ``played``, a
        leader's penalized actor, is not the policy RLHF delivers and is not measured)."""
        return measure(self.problem, x, profile[0]).row

    def summarize(self, final: dict[str, float]) -> dict[str, float | str]:
        """The last row's measurements, marked sampled, and the pre-trained model's."""
        skip = {"iteration", "tau", "samples", "wall_seconds"}
        before = {f"{key}_before{se}": self.before[key + se]
                  for key, se in (("sentiment", ""), ("sentiment", "_se"), ("kl", ""),
                                  ("upper_objective", ""))}
        return {"metrics": f"sampled ({self.problem.eval_samples} generations per row; *_se: "
                           "standard errors)",
                **{k: v for k, v in final.items() if k not in skip}, **before}


#: Generations and reward-model weights ``samples.txt`` shows.
SHOWN = 20


def samples_text(problem: HappyTextProblem, x: np.ndarray, policy: WordLM) -> str:
    """The pre-trained model's and ``policy``'s first :data:`SHOWN` generations of the metrics'
    random numbers (each pair from the same numbers), then the reward model's highest and
    lowest weights."""
    zero = np.zeros(len(problem.vocab), dtype=np.float32)
    before = measure(problem, zero, problem.reference()).texts[:SHOWN]
    after = measure(problem, x, policy).texts[:SHOWN]
    order = np.argsort(-np.asarray(x, dtype=float), kind="stable")
    words = problem.vocab.words

    def weights(indices: np.ndarray) -> str:
        return ", ".join(f"{words[i]!r} {float(x[i]):+.3f}" for i in indices)

    return ("before:\n  " + "\n  ".join(before) + "\nafter:\n  " + "\n  ".join(after)
            + f"\nreward model, highest weights: {weights(order[:10])}"
            + f"\nreward model, lowest weights: {weights(order[::-1][:10])}\n")

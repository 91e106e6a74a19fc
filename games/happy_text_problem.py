"""Happy text as a bilevel problem (`stackelberg/happy-text-v0`, docs/theory.md §8.2): what the
registry's builder :func:`happy_text_problem` returns (kind ``"text"``) and a match plays through
the coordinator, as every game.

The reward model's weights are the leader's ``x``, the fine-tuned language model is the
follower's policy, and the metrics are sampled (:mod:`games.happy_text_metrics`). The corpus,
the vocabulary and the annotator are :mod:`games.happy_text`'s; the language model is
:mod:`games.happy_text_lm`'s, loaded on first use, so that the registry imports this module
without torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from games.happy_text import (
    GAME_ID,
    Annotator,
    CorpusSettings,
    LMSettings,
    vocabulary,
)
from stackelberg.validation import finite_float, nonnegative_int, positive_int, probability

__all__ = ["HappyTextProblem", "happy_text_problem"]


class HappyTextProblem:
    """`stackelberg/happy-text-v0` as a bilevel problem (docs/theory.md §8.2), known through
    samples only (no exact model: ``model`` is None).

    The leader's variable ``x`` is a bag-of-words reward model, ``r_x(y) = x . phi(y)`` with
    ``phi(y)`` the token counts of a generation (one weight per vocabulary entry, starting at
    zero); the lower level is the language model fine-tuned to maximize ``E[r_x(y)] - tau
    KL(pi || pi_0)``, ``pi_0`` the pre-trained model; the upper objective ``f`` is the expected
    Bradley-Terry NLL of ``r_x`` on pairs of the follower's own generations, labelled by the
    annotator (:class:`~games.happy_text.Annotator`, :func:`games.happy_text.label_pairs`).

    Everything torch is loaded on first use: the pre-trained model by :meth:`reference` (from
    its cache file, trained first if missing, :func:`games.happy_text_lm.pretrained`), the
    metrics observer by :meth:`metrics_observer` (:mod:`games.happy_text_metrics`), so that the
    registry imports this module without torch.

    Attributes
    ----------
    lm : LMSettings
        The language model, its corpus and its pre-training.
    beta : float
        The annotator's Bradley-Terry inverse temperature on VADER scores.
    tau : float
        The follower's KL weight (``[follower] tau``); fixed, a part of the problem.
    eval_samples : int
        Fresh generations per recorded metrics row.
    cache : path, optional
        Where the pre-trained model is kept (default ``runs/happy_text``, relative to the
        current directory).
    eval_seed : int
        Seed of the metrics' own generations (:meth:`seed`; the same numbers at every row).
    """

    #: No exact model: the metrics are sampled, with standard errors.
    model = None
    n_followers = 1

    def __init__(self, lm: LMSettings, beta: float, tau: float, eval_samples: int = 256,
                 cache: str | Path | None = None):
        self.lm, self.beta, self.eval_samples, self.cache = lm, float(beta), eval_samples, cache
        self.tau = _check_tau(tau)
        self.eval_seed = 0
        self.vocab = vocabulary()
        self._annotator: Annotator | None = None
        self._reference = None

    @property
    def max_length(self) -> int:
        """Longest generation in tokens (the end token included)."""
        return self.lm.max_length

    @property
    def annotator(self) -> Annotator:
        """The VADER annotator, made on first use and shared (its scores are memoized)."""
        if self._annotator is None:
            self._annotator = Annotator()
        return self._annotator

    def reference(self):
        """The pre-trained language model ``pi_0`` (a ``games.happy_text_lm.WordLM``, no
        gradients), loaded once; trained first, with a note on stderr, if its cache file is
        missing."""
        if self._reference is None:
            from games.happy_text_lm import DEFAULT_CACHE, pretrained

            def note(line: str) -> None:
                print(f"{GAME_ID}: {line}", file=sys.stderr)

            model = pretrained(self.lm, DEFAULT_CACHE if self.cache is None else self.cache,
                               log=note)
            for p in model.parameters():
                p.requires_grad_(False)
            self._reference = model
        return self._reference

    def set_tau(self, tau: float) -> None:
        self.tau = _check_tau(tau)

    def forget(self) -> None:
        """Nothing about a match is remembered (the exact problem's interface); the
        pre-trained model is the game's, not the match's."""

    def seed(self, rng: np.random.Generator) -> None:
        """Draw the metrics' own seed from ``rng`` (the run's environment stream)."""
        self.eval_seed = int(rng.integers(2**62))

    def metrics_observer(self):
        """What the coordinator records: sampled metrics with standard errors
        (:class:`games.happy_text_metrics.HappyTextMetrics`)."""
        from games.happy_text_metrics import HappyTextMetrics

        return HappyTextMetrics(self)

    def run_files(self, result) -> dict[str, str]:
        """The run directory's ``samples.txt``: generations before and after, from the same
        random numbers, and the reward model's strongest weights
        (:func:`games.happy_text_metrics.samples_text`)."""
        from games.happy_text_metrics import samples_text

        return {"samples.txt": samples_text(self, result.x, result.follower_policies[0])}


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau >= 0:
        raise ValueError(f"tau must be a number >= 0, got {tau!r}")
    return float(tau)


def happy_text_problem(tau: float, *, beta: float = 5.0, embed: int = 32, hidden: int = 64,
                       max_length: int = 12, pretrain_steps: int = 600, pretrain_batch: int = 64,
                       pretrain_lr: float = 0.01, pretrain_seed: int = 0,
                       corpus_size: int = 2000, corpus_positive: float = 0.25,
                       corpus_negative: float = 0.40, corpus_seed: int = 0,
                       eval_samples: int = 256) -> HappyTextProblem:
    """The registry's builder of ``stackelberg/happy-text-v0`` (``[game]`` keys of a config;
    ``tau`` is ``[follower] tau``, the KL weight to the pre-trained model; ``eval_samples`` the
    generations of each recorded metrics row). Builds no model: the problem loads it on first
    use (:meth:`HappyTextProblem.reference`)."""
    # checked here under their [game] names (the settings' own checks name their fields)
    for name, value in (("embed", embed), ("hidden", hidden), ("max_length", max_length),
                        ("pretrain_steps", pretrain_steps), ("pretrain_batch", pretrain_batch),
                        ("corpus_size", corpus_size), ("eval_samples", eval_samples)):
        positive_int(name, value)
    for name, value in (("pretrain_seed", pretrain_seed), ("corpus_seed", corpus_seed)):
        nonnegative_int(name, value)
    for name, value in (("beta", beta), ("pretrain_lr", pretrain_lr)):
        if finite_float(name, value) <= 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if eval_samples < 2:
        raise ValueError(f"eval_samples must be an integer >= 2, got {eval_samples!r}")
    if probability("corpus_positive", corpus_positive) + probability(
            "corpus_negative", corpus_negative) > 1:
        raise ValueError(f"corpus_positive + corpus_negative must be <= 1, got "
                         f"{corpus_positive!r} + {corpus_negative!r}")
    corpus = CorpusSettings(size=corpus_size, positive=corpus_positive,
                            negative=corpus_negative, seed=corpus_seed)
    lm = LMSettings(embed=embed, hidden=hidden, max_length=max_length, steps=pretrain_steps,
                    batch=pretrain_batch, lr=pretrain_lr, seed=pretrain_seed, corpus=corpus)
    return HappyTextProblem(lm, beta, tau, eval_samples)

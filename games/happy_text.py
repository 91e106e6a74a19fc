"""Happy text (`stackelberg/happy-text-v0`): text generation as a token-level MDP, its generated
corpus and its annotator (docs/theory.md §8.2).

Everything is shipped or generated, nothing is downloaded:

- :func:`generate_corpus` draws short English sentences from a few templates over a small
  vocabulary (:data:`WORDS`) of positive, negative and neutral words, more negative than
  positive by default, so that the pre-trained language model's text is mildly negative and
  there is room for RLHF to make it happier;
- :class:`Vocabulary` maps words to token ids; id 0 is the end token ``"."``, which is also what
  the language model reads before the first word (as GPT's end-of-text token is);
- :class:`Annotator` scores a text by VADER's compound score (Hutto & Gilbert, ICWSM 2014), from
  the ``vaderSentiment`` package, whose lexicon ships inside its wheel; the package is imported
  only when an annotator is made, with a clear message if it is missing. Pairs of generations
  are labelled by Bradley-Terry on that score: ``P(y_1 preferred to y_0) = sigmoid(beta (s(y_1) -
  s(y_0)))``, the same preference model as the tabular half (:mod:`stackelberg.preferences`).

The MDP: a state is the prefix generated so far, an action the next token, and an episode ends
with the end token or after ``max_length`` tokens. The language model (:mod:`games.
happy_text_lm`, torch) is the pre-trained policy; this module needs no torch.

The bilevel problem a match plays is :mod:`games.happy_text_problem`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.preferences import PreferencePairs
from stackelberg.scipy_functions import scipy_functions as sf
from stackelberg.validation import check_fields

__all__ = ["END", "GAME_ID", "WORDS", "Annotator", "CorpusSettings", "LMSettings", "Vocabulary",
           "generate_corpus", "label_pairs", "pair_up", "vocabulary"]

GAME_ID = "stackelberg/happy-text-v0"

#: The end token: what ends a sentence, and what the language model reads first.
END = "."

#: The generated corpus's words by role (sentiment of adjectives as VADER's lexicon has it:
#: positive ones score above 0, negative below, neutral ones are not in the lexicon).
WORDS: dict[str, tuple[str, ...]] = {
    "noun": ("movie", "food", "weather", "music", "book", "game", "trip", "party", "coffee",
             "team", "city", "room", "show", "class", "song", "day"),
    "be": ("is", "was"),
    "positive": ("good", "great", "lovely", "wonderful", "nice", "fun", "sweet", "bright"),
    "negative": ("bad", "awful", "terrible", "horrible", "boring", "dull", "ugly", "broken"),
    "neutral": ("long", "new", "old", "quiet", "big", "small", "red", "loud"),
    "feeling_positive": ("happy", "calm", "fine"),
    "feeling_negative": ("sad", "tired", "lonely", "angry"),
    "feeling_neutral": ("hungry", "busy", "awake"),
    "intensifier": ("very", "really", "so"),
    "other": ("the", "my", "i", "feel", "today", "and", "but", "what", "a"),
}

#: Sentence templates; ``{adj}`` and ``{feeling}`` draw a sentiment class each time.
TEMPLATES: tuple[str, ...] = (
    "the {noun} {be} {adj}",
    "the {noun} {be} {intensifier} {adj}",
    "the {noun} {be} {adj} and {adj}",
    "the {noun} {be} {adj} but the {noun} {be} {adj}",
    "my {noun} {be} {adj}",
    "i feel {feeling} today",
    "i feel {intensifier} {feeling}",
    "what a {adj} {noun}",
)


@dataclass(frozen=True)
class CorpusSettings:
    """The generated corpus.

    Attributes
    ----------
    size : int
        Number of sentences.
    positive, negative : float
        Probabilities that an adjective slot draws a positive or a negative word (the rest are
        neutral).
    seed : int
        The corpus's own seed (the corpus is part of the game, the same for every run seed).
    """

    size: int = 2000
    positive: float = 0.25
    negative: float = 0.40
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("size",), unit_interval=("positive", "negative"),
                     non_negative_int=("seed",))
        if self.positive + self.negative > 1:
            raise ValueError(f"positive + negative must be <= 1, got {self.positive!r} + "
                             f"{self.negative!r}")


@dataclass(frozen=True)
class LMSettings:
    """The language model, its corpus and its pre-training; all of it keys the cache file.

    Attributes
    ----------
    embed, hidden : int
        Word embedding and GRU state sizes.
    max_length : int
        Longest generation in tokens (the end token included).
    steps, batch, lr : int, int, float
        Pre-training: Adam steps on minibatches of ``batch`` corpus sentences.
    seed : int
        Weights and minibatches.
    corpus : CorpusSettings
    """

    embed: int = 32
    hidden: int = 64
    max_length: int = 12
    steps: int = 600
    batch: int = 64
    lr: float = 0.01
    seed: int = 0
    corpus: CorpusSettings = CorpusSettings()

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("embed", "hidden", "max_length", "steps", "batch"),
                     positive=("lr",), non_negative_int=("seed",))

    def key(self) -> str:
        """A short hash of every setting (the cache file's name)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Vocabulary:
    """Words and their token ids; id 0 is :data:`END`."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.words or self.words[0] != END or len(set(self.words)) != len(self.words):
            raise ValueError("a vocabulary starts with the end token and has no repeats")

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentence: str) -> list[int]:
        """Token ids of a sentence's words (the end token not appended)."""
        index = {w: i for i, w in enumerate(self.words)}
        try:
            return [index[w] for w in sentence.split()]
        except KeyError as err:
            raise ValueError(f"word {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of a generation: its words up to the first end token."""
        words = []
        for t in tokens:
            if int(t) == 0:
                break
            words.append(self.words[int(t)])
        return " ".join(words)


def vocabulary() -> Vocabulary:
    """The game's vocabulary: the end token, then every word of :data:`WORDS` once."""
    words = [END]
    for group in WORDS.values():
        words += [w for w in group if w not in words]
    return Vocabulary(tuple(words))


def generate_corpus(settings: CorpusSettings = CorpusSettings()) -> list[str]:
    """``settings.size`` sentences from :data:`TEMPLATES`, drawn with
    ``numpy.random.default_rng(settings.seed)``."""
    rng = np.random.default_rng(settings.seed)
    weights = np.array([settings.positive, settings.negative,
                        1.0 - settings.positive - settings.negative])
    classes = ("positive", "negative", "neutral")

    def pick(group: str) -> str:
        words = WORDS[group]
        return words[int(rng.integers(len(words)))]

    def slot(name: str) -> str:
        if name in ("adj", "feeling"):
            kind = classes[int(rng.choice(3, p=weights))]
            return pick(kind if name == "adj" else f"feeling_{kind}")
        return pick(name)

    sentences = []
    for _ in range(settings.size):
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        words = [slot(part[1:-1]) if part.startswith("{") else part for part in template.split()]
        sentences.append(" ".join(words))
    return sentences


class Annotator:
    """VADER's compound score of a text, in ``[-1, 1]``, and Bradley-Terry labels on it
    (module docstring)."""

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError:  # pragma: no cover - the dependency is declared in setup.cfg
            raise ImportError("stackelberg/happy-text-v0 scores text with VADER: install the "
                              "vaderSentiment package (pip install vaderSentiment; it is in "
                              "stackelberg's install_requires)") from None
        self._analyzer = SentimentIntensityAnalyzer()
        self._cache: dict[str, float] = {}

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """The compound score of each text (an empty text scores 0); memoized, since a small
        vocabulary repeats its sentences."""
        out = np.empty(len(texts))
        for i, text in enumerate(texts):
            value = self._cache.get(text)
            if value is None:
                value = self._analyzer.polarity_scores(text)["compound"] if text else 0.0
                self._cache[text] = value
            out[i] = value
        return out


def label_pairs(scores: np.ndarray, first: np.ndarray, second: np.ndarray, beta: float,
                rng: np.random.Generator) -> PreferencePairs:
    """Bradley-Terry labels on pairs of scored generations: ``label[i] = 1`` (``second[i]``
    preferred) with probability ``sigmoid(beta (scores[second[i]] - scores[first[i]]))``."""
    p = sf.expit(beta * (scores[second] - scores[first]))
    return PreferencePairs(np.asarray(first), np.asarray(second),
                           (rng.random(len(p)) < p).astype(float))


def pair_up(n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Generation ``i`` against generation ``i + shift`` (mod ``n``), ``shift`` in ``1..n-1``:
    two independent draws of the policy in each pair. Returns the partners and the shift."""
    shift = int(rng.integers(1, n)) if n > 1 else 0
    return np.roll(np.arange(n), -shift), shift

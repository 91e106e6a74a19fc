"""The happy-text game's language model: a word-level GRU pre-trained on the generated corpus,
cached in ``runs/`` (docs/theory.md §8.2).

:class:`WordLM` is a policy of the token-level MDP of :mod:`games.happy_text`: it reads the end
token, then the words so far, and gives the next token's distribution. :func:`sample` draws
generations from given uniform numbers (inverse-CDF sampling), so that two policies fed the same
numbers draw the same text wherever they agree: common random numbers, as
:mod:`agents.neural.rollout` uses for RAC's two actors. :func:`pretrained` loads the model of
given :class:`LMSettings` from its cache file, training it first if the file is missing; the
file's name is a hash of the settings, so other settings never read a stale model.

Pre-train it from the command line (about 15 CPU seconds at the default settings)::

    python -m games.happy_text_lm pretrain [--cache runs/happy_text] [--steps N] ...

The model runs in float32 (a recurrent network over a batch of sentences: twice as fast as
float64, and nothing here needs exact arithmetic); every weight is drawn from a seeded
``torch.Generator``, never from torch's global random state.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from games.happy_text import (
    CorpusSettings,
    LMSettings,
    Vocabulary,
    generate_corpus,
    vocabulary,
)

__all__ = ["DEFAULT_CACHE", "Generations", "LMSettings", "WordLM", "pretrained", "sample",
           "sequence_kl", "token_counts"]

DTYPE = torch.float32
#: Where :func:`pretrained` keeps its models unless told otherwise.
DEFAULT_CACHE = Path("runs") / "happy_text"


class WordLM(nn.Module):
    """Embedding, one GRU layer, a linear head over the vocabulary."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, generator: torch.Generator):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, dtype=DTYPE)
        self.gru = nn.GRU(embed, hidden, batch_first=True, dtype=DTYPE)
        self.head = nn.Linear(hidden, vocab_size, dtype=DTYPE)
        with torch.no_grad():  # torch's own init draws from the global generator
            for name, p in self.named_parameters():
                bound = 1.0 if name.startswith("embedding") else 1.0 / math.sqrt(hidden)
                p.uniform_(-bound, bound, generator=generator)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits ``(n, T, V)`` after each input token ``(n, T)``, and the state."""
        out, state = self.gru(self.embedding(inputs), state)
        return self.head(out), state

    def log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """``log pi(. | prefix)`` ``(n, T, V)`` before each token of ``tokens`` ``(n, T)``
        (teacher forcing: the end token, then the tokens but the last)."""
        inputs = torch.cat([torch.zeros_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
        return torch.log_softmax(self(inputs)[0], dim=-1)

    def copy(self) -> WordLM:
        """An independent copy (same weights)."""
        twin = WordLM(self.embedding.num_embeddings, self.embedding.embedding_dim,
                      self.gru.hidden_size, torch.Generator())
        twin.load_state_dict(self.state_dict())
        return twin


@dataclass(frozen=True)
class Generations:
    """A batch of generations: ``tokens`` ``(n, T)`` (end tokens after the first), ``mask``
    ``(n, T)`` (1 on the tokens the policy chose: the words and the first end token)."""

    tokens: torch.Tensor
    mask: torch.Tensor

    def texts(self, vocab: Vocabulary) -> list[str]:
        return [vocab.decode(row) for row in self.tokens.tolist()]


def sample(model: WordLM, uniforms: torch.Tensor) -> Generations:
    """Generations by inverse-CDF sampling, one row of ``uniforms`` ``(n, T)`` per generation
    (module docstring): token ``t`` is the first whose cumulative probability exceeds
    ``uniforms[:, t]``."""
    n, T = uniforms.shape
    tokens = torch.zeros(n, T, dtype=torch.long)
    mask = torch.zeros(n, T, dtype=DTYPE)
    alive = torch.ones(n, dtype=torch.bool)
    current, state = torch.zeros(n, 1, dtype=torch.long), None
    with torch.no_grad():
        for t in range(T):
            logits, state = model(current, state)
            cdf = torch.cumsum(torch.softmax(logits[:, 0], dim=-1), dim=-1)
            choice = (uniforms[:, t:t + 1] > cdf).sum(dim=1).clamp(max=cdf.shape[1] - 1)
            choice = torch.where(alive, choice, torch.zeros_like(choice))
            tokens[:, t] = choice
            mask[:, t] = alive.to(DTYPE)
            alive = alive & (choice != 0)
            current = choice.unsqueeze(1)
    return Generations(tokens, mask)


def token_counts(generations: Generations, size: int, dtype: torch.dtype = DTYPE
                 ) -> torch.Tensor:
    """``phi(y)`` ``(n, size)``: how often each token occurs among the chosen ones of each
    generation (the features of the bag-of-words reward model ``r_x(y) = x . phi(y)``,
    :class:`games.happy_text_problem.HappyTextProblem`)."""
    counts = torch.zeros(generations.tokens.shape[0], size, dtype=dtype)
    return counts.scatter_add_(1, generations.tokens, generations.mask.to(dtype))


def sequence_kl(policy: WordLM, reference: WordLM, generations: Generations) -> torch.Tensor:
    """``sum_t KL(pi(.|y_<t) || pi_0(.|y_<t))`` along each generation ``(n,)``: an unbiased
    estimate of the sequence-level KL (chain rule), with no sampling noise within a step."""
    with torch.no_grad():
        logp = policy.log_probs(generations.tokens)
        ref = reference.log_probs(generations.tokens)
        per_step = (logp.exp() * (logp - ref)).sum(-1)
        return (per_step * generations.mask).sum(1)


def encode_corpus(sentences: list[str], vocab: Vocabulary, max_length: int) -> Generations:
    """The corpus as generations: each sentence's words then the end token (cut to
    ``max_length``)."""
    tokens = torch.zeros(len(sentences), max_length, dtype=torch.long)
    mask = torch.zeros(len(sentences), max_length, dtype=DTYPE)
    for i, sentence in enumerate(sentences):
        ids = (vocab.encode(sentence) + [0])[:max_length]
        tokens[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1.0
    return Generations(tokens, mask)


def train(settings: LMSettings) -> tuple[WordLM, float]:
    """Pre-train a model on the corpus by maximum likelihood; returns it and the mean
    per-token negative log-likelihood of the whole corpus at the end."""
    vocab = vocabulary()
    data = encode_corpus(generate_corpus(settings.corpus), vocab, settings.max_length)
    generator = torch.Generator()
    generator.manual_seed(settings.seed)
    model = WordLM(len(vocab), settings.embed, settings.hidden, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    n = data.tokens.shape[0]

    def nll(rows: torch.Tensor) -> torch.Tensor:
        logp = model.log_probs(data.tokens[rows]).gather(-1, data.tokens[rows, :, None])[..., 0]
        return -(logp * data.mask[rows]).sum() / data.mask[rows].sum()

    for _ in range(settings.steps):
        rows = torch.randint(n, (min(settings.batch, n),), generator=generator)
        optimizer.zero_grad()
        nll(rows).backward()
        optimizer.step()
    with torch.no_grad():
        final = float(nll(torch.arange(n)))
    return model, final


def cache_file(settings: LMSettings, cache: str | Path = DEFAULT_CACHE) -> Path:
    return Path(cache) / f"lm-{settings.key()}.pt"


def pretrained(settings: LMSettings, cache: str | Path = DEFAULT_CACHE,
               log=None) -> WordLM:
    """The pre-trained model of ``settings``: read from its cache file, or trained and written
    there first (module docstring). ``log`` receives one line when it trains."""
    path = cache_file(settings, cache)
    vocab = vocabulary()
    model = WordLM(len(vocab), settings.embed, settings.hidden, torch.Generator())
    if path.exists():
        stored = torch.load(path, weights_only=True)
        model.load_state_dict(stored["weights"])
        return model
    model, nll = train(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    torch.save({"weights": model.state_dict(), "settings": json.dumps(dataclasses.asdict(settings)),
                "corpus_nll": nll}, partial)
    partial.replace(path)  # never a half-written model under the final name
    if log is not None:
        log(f"pre-trained the language model ({sum(p.numel() for p in model.parameters())} "
            f"parameters, corpus NLL {nll:.3f} nats/token) into {path}")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m games.happy_text_lm",
                                     description="pre-train the happy-text language model")
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("pretrain", help="train the model (or find it cached) and show text")
    pre.add_argument("--cache", default=str(DEFAULT_CACHE))
    defaults = LMSettings()
    for name in ("embed", "hidden", "max_length", "steps", "batch", "seed"):
        pre.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    pre.add_argument("--lr", type=float, default=defaults.lr)
    pre.add_argument("--corpus-size", type=int, default=defaults.corpus.size)
    args = parser.parse_args(argv)
    try:
        settings = LMSettings(embed=args.embed, hidden=args.hidden, max_length=args.max_length,
                              steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                              corpus=CorpusSettings(size=args.corpus_size))
    except ValueError as err:
        print(f"python -m games.happy_text_lm: error: {err}", file=sys.stderr)
        return 2
    model = pretrained(settings, args.cache, log=print)
    print(f"model: {cache_file(settings, args.cache)}")
    generator = torch.Generator()
    generator.manual_seed(0)
    texts = sample(model, torch.rand(8, settings.max_length, generator=generator)
                   ).texts(vocabulary())
    print("samples:\n  " + "\n  ".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

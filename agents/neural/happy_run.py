"""Run one happy-text RLHF match from a TOML config (docs/theory.md §8.2)::

    python -m agents.neural.happy_run configs/happy_text.toml [section.key=value ...] [--out DIR]

The config has the sections of every ``stackelberg run`` config: ``[game]`` (the id
``stackelberg/happy-text-v0``, the annotator's ``beta`` and the language model's settings,
:func:`games.happy_text.happy_text_problem`), ``[leader]`` (``algorithm = "rac-neural"`` or
``"alternating"`` and its :mod:`agents.neural.happy` config), ``[follower]`` (``learner =
"kl-policy-gradient"``, the KL weight ``tau`` and :class:`~agents.neural.happy.KLFollowerConfig`),
``[run]`` (:class:`RunSettings`). A bad file, section or key exits 2 with a message naming them.
``stackelberg run`` hands such a config to :func:`main`.

Each iteration: the leader's step (labels pairs, moves the reward model), then
``follower_steps`` steps of the follower. Every ``eval_every`` iterations, and at the start and
the end, the follower's policy is measured on ``eval_samples`` fresh generations drawn from a
stream of their own (the same numbers at every evaluation): mean VADER sentiment, sequence KL to
the pre-trained model, and on their pairs the reward model's accuracy and the upper objective
``f`` (the expected Bradley-Terry NLL, the annotator's probabilities in place of sampled labels)
(:class:`Evaluation`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from agents.neural.happy import (
    AlternatingConfig,
    AlternatingLeader,
    KLFollower,
    KLFollowerConfig,
    RACHappyConfig,
    RACHappyLeader,
    pair_up,
    sequence_kl,
)
from games.happy_text import (
    GAME_ID,
    Annotator,
    HappyTextGame,
    LMSettings,
    happy_text_problem,
    vocabulary,
)
from games.happy_text_lm import DEFAULT_CACHE, DTYPE, pretrained, sample
from stackelberg.preferences import softplus
from stackelberg.seeding import run_streams
from stackelberg.validation import check_types

__all__ = ["GAME_ID", "HappyConfig", "HappyRun", "load_config", "run"]

LEADERS = {"rac-neural": RACHappyConfig, "alternating": AlternatingConfig}
FOLLOWER = "kl-policy-gradient"


class HappyConfigError(ValueError):
    """A happy-text config names a wrong file, section, key or value."""


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: iterations, seed, follower steps per iteration, evaluation cadence and size."""

    iterations: int = 200
    seed: int = 0
    follower_steps: int = 1
    eval_every: int = 10
    eval_samples: int = 256

    def __post_init__(self) -> None:
        for name in ("iterations", "follower_steps", "eval_every", "eval_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"run.{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"run.seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class HappyConfig:
    """A resolved happy-text config."""

    lm: LMSettings
    beta: float
    leader: str
    leader_config: RACHappyConfig | AlternatingConfig
    tau: float
    follower_config: KLFollowerConfig
    run: RunSettings


def _game(table: dict[str, Any], tau: float) -> HappyTextGame:
    accepted = [name for name in inspect.signature(happy_text_problem).parameters
                if name != "tau"]
    unknown = sorted(set(table) - set(accepted))
    if unknown:
        raise HappyConfigError(f"game.{unknown[0]}: unknown key; accepted: id, "
                               f"{', '.join(accepted)}")
    try:
        check_types("game", table, happy_text_problem)
        return happy_text_problem(tau, **table)
    except (TypeError, ValueError) as err:
        message = str(err)
        raise HappyConfigError(message if message.startswith("game.") else f"game.{message}"
                               ) from None


def _agent(section: str, table: dict[str, Any], config_class: type) -> Any:
    accepted = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(table) - accepted)
    if unknown:
        raise HappyConfigError(f"{section}.{unknown[0]}: unknown key; accepted: "
                               f"{', '.join(sorted(accepted))}")
    try:
        check_types(section, table, config_class)
        return config_class(**table)
    except (TypeError, ValueError) as err:
        raise HappyConfigError(f"{section}: {err}") from None


def parse(data: dict[str, Any]) -> HappyConfig:
    """Validate raw config data (module docstring)."""
    unknown = sorted(set(data) - {"game", "leader", "follower", "run"})
    if unknown:
        raise HappyConfigError(f"unknown section [{unknown[0]}]; sections are [game], [leader], "
                               "[follower], [run]")
    for name in ("game", "leader", "follower", "run"):
        if not isinstance(data.get(name, {}), dict):
            raise HappyConfigError(f"[{name}] must be a table of key = value pairs")
    game = dict(data.get("game", {}))
    if game.pop("id", GAME_ID) != GAME_ID:
        raise HappyConfigError(f"game.id must be {GAME_ID!r}")
    leader = dict(data.get("leader", {}))
    name = leader.pop("algorithm", "rac-neural")
    if name not in LEADERS:
        raise HappyConfigError(f"leader.algorithm: unknown {name!r}; known: "
                               f"{', '.join(LEADERS)}")
    follower = dict(data.get("follower", {}))
    if follower.pop("learner", FOLLOWER) != FOLLOWER:
        raise HappyConfigError(f"follower.learner must be {FOLLOWER!r}")
    tau = follower.pop("tau", 0.5)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau >= 0:
        raise HappyConfigError(f"follower.tau must be a number >= 0, got {tau!r}")
    game_settings = _game(game, tau)
    return HappyConfig(lm=game_settings.lm, beta=game_settings.beta, leader=name,
                       leader_config=_agent("leader", leader, LEADERS[name]), tau=float(tau),
                       follower_config=_agent("follower", follower, KLFollowerConfig),
                       run=_agent("run", dict(data.get("run", {})), RunSettings))


def load_config(path: str | Path, overrides: list[str] = ()) -> HappyConfig:
    """Read a TOML file, apply ``section.key=value`` overrides, validate; every message names
    the file."""
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
        for item in overrides:
            key, sep, value = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise HappyConfigError(f"override {item!r} is not section.key=value")
            try:
                parsed = tomllib.loads(f"v = {value.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                parsed = value.strip()
            data.setdefault(section, {})[name] = parsed
        return parse(data)
    except (OSError, tomllib.TOMLDecodeError, HappyConfigError) as err:
        raise HappyConfigError(f"{path}: {err}") from None


@dataclass(frozen=True)
class Evaluation:
    """The follower's policy measured on fresh generations (module docstring)."""

    iteration: int
    samples: int          # generations drawn by the learners so far
    labels: int           # pairs the annotator labelled so far
    sentiment: float      # mean VADER compound score
    sentiment_se: float
    kl: float             # mean sequence KL(pi || pi_0), nats
    accuracy: float       # reward model orders pairs as VADER does (VADER ties left out)
    preference_nll: float  # f: the expected NLL of the reward model on these pairs


@dataclass(frozen=True)
class HappyRun:
    """A finished match: the evaluations, the texts before and after, CPU seconds."""

    config: HappyConfig
    evaluations: tuple[Evaluation, ...]
    before: tuple[str, ...]
    after: tuple[str, ...]
    cpu_seconds: float
    reward_weights: dict[str, float]


def evaluate(follower: KLFollower, leader, annotator: Annotator, vocab, n: int, k: int,
             seed: int) -> tuple[Evaluation, list[str]]:
    generator = torch.Generator()
    generator.manual_seed(seed)
    generations = sample(follower.policy, torch.rand(n, follower.max_length,
                                                     generator=generator, dtype=DTYPE))
    texts = generations.texts(vocab)
    scores = annotator.score(texts)
    kl = sequence_kl(follower.policy, follower.reference, generations)
    partner, _ = pair_up(n, np.random.default_rng(seed))
    with torch.no_grad():
        r = leader.reward_model(leader.reward_model.features(generations)).numpy().astype(float)
    truth, guess = np.sign(scores[partner] - scores), np.sign(r[partner] - r)
    kept = truth != 0
    accuracy = float(np.where(guess == 0, 0.5, guess == truth)[kept].mean()) if kept.any() \
        else float("nan")
    # the upper objective with the annotator's label probabilities in place of labels
    p = expit(leader.beta * (scores[partner] - scores))
    D = r[partner] - r
    nll = float(np.mean(p * softplus(-D) + (1.0 - p) * softplus(D)))
    return Evaluation(k, follower.samples + leader.samples, leader.labels, float(scores.mean()),
                      float(scores.std(ddof=1) / np.sqrt(n)), float(kl.mean()), accuracy,
                      nll), texts


def run(config: HappyConfig, cache: str | Path = DEFAULT_CACHE, log=None) -> HappyRun:
    """Play one match (module docstring)."""
    start = time.process_time()
    vocab, annotator = vocabulary(), Annotator()
    reference = pretrained(config.lm, cache, log=log)
    for p in reference.parameters():
        p.requires_grad_(False)
    streams = run_streams(config.run.seed)
    leader_torch = torch.Generator()
    leader_torch.manual_seed(int(streams.leader.integers(2**62)))
    follower_torch = torch.Generator()
    follower_torch.manual_seed(int(streams.followers[0].integers(2**62)))
    eval_seed = int(streams.environment.integers(2**62))
    follower = KLFollower(reference, config.tau, config.lm.max_length, config.follower_config,
                          follower_torch)
    if config.leader == "rac-neural":
        leader = RACHappyLeader(config.leader_config, vocab, annotator, config.beta,
                                streams.leader, leader_torch, reference, config.tau)
    else:
        leader = AlternatingLeader(config.leader_config, vocab, annotator, config.beta,
                                   streams.leader, leader_torch)
    r = config.run
    first, before = evaluate(follower, leader, annotator, vocab, r.eval_samples, 0, eval_seed)
    evaluations = [first]
    after = before
    for k in range(1, r.iterations + 1):
        leader.step(follower)
        for _ in range(r.follower_steps):
            follower.step(leader.reward_model)
        if k % r.eval_every == 0 or k == r.iterations:
            ev, after = evaluate(follower, leader, annotator, vocab, r.eval_samples, k,
                                 eval_seed)
            evaluations.append(ev)
    weights = leader.reward_model.x.detach().numpy()
    return HappyRun(config, tuple(evaluations), tuple(before), tuple(after),
                    time.process_time() - start,
                    {w: float(v) for w, v in zip(vocab.words, weights, strict=True)})


def write(result: HappyRun, out: Path) -> None:
    """``metrics.csv``, ``summary.json`` and ``samples.txt`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    fields = [f.name for f in dataclasses.fields(Evaluation)]
    rows = [",".join(fields)] + [",".join(repr(getattr(e, f)) for f in fields)
                                 for e in result.evaluations]
    (out / "metrics.csv").write_text("\n".join(rows) + "\n")
    first, last = result.evaluations[0], result.evaluations[-1]
    summary = {"game": GAME_ID, "leader": result.config.leader, "seed": result.config.run.seed,
               "sentiment_before": first.sentiment, "sentiment_after": last.sentiment,
               "kl_after": last.kl, "accuracy_after": last.accuracy, "samples": last.samples,
               "labels": last.labels, "cpu_seconds": result.cpu_seconds,
               "reward_weights": result.reward_weights,
               "config": json.loads(json.dumps(dataclasses.asdict(result.config)))}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "samples.txt").write_text("before:\n  " + "\n  ".join(result.before[:20])
                                     + "\nafter:\n  " + "\n  ".join(result.after[:20]) + "\n")


def main(argv: list[str] | None = None, prog: str = "python -m agents.neural.happy_run") -> int:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="one happy-text RLHF match from a TOML config")
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument("--out", help="run directory (default runs/<config>-<leader>-seed<N>)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE),
                        help="where the pre-trained language model is kept")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except HappyConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (
        Path("runs") / f"{Path(args.config).stem}-{config.leader}-seed{config.run.seed}")
    result = run(config, args.cache, log=print)
    write(result, out)
    first, last = result.evaluations[0], result.evaluations[-1]
    print(f"run directory: {out}\nmean sentiment {first.sentiment:+.3f} -> {last.sentiment:+.3f}"
          f"  KL to the pre-trained model {last.kl:.3f} nats  reward-model accuracy "
          f"{last.accuracy:.3f}  {result.cpu_seconds:.1f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of vectorized trajectory sampling against stepping the PettingZoo environment.

What is measured
----------------
For each game (default: ``stackelberg/random-markov-v0`` with 10 and 100 states and 3 x 3
actions, and ``stackelberg/patrol-v0`` with its defaults) and one fixed pair of random policies
(every row drawn from a flat Dirichlet: the leader's commitment ``mu`` and the follower's
policy ``pi``), we count transitions per second, from the same model and the same policies, of

1. ``stackelberg.sampling.sample_trajectories``: one call draws ``--episodes`` (default 1000)
   parallel episodes of ``--horizon`` (default 100) rounds;
2. the PettingZoo parallel environment (``games.make_env(game_id, kind="parallel",
   max_cycles=horizon)``) stepped in a Python loop, as a sample-based learner would: seeded
   once, then ``reset()`` and ``step({"leader": b, "follower": a})`` until the episode ends,
   drawing the two actions each round from ``mu(.|s)`` and ``pi(.|s)`` of the observed state
   with a ``numpy.random.Generator``. Two ways of drawing are timed: inverse CDF, one
   ``Generator.random()`` per action against precomputed cumulative sums (the faster, and the
   baseline of the speed-up), and ``Generator.choice(n, p=row)`` (the obvious code, which is
   also how the environment draws its next state).

A transition is one round: both actions, both rewards and the next state. The speed-up is
vectorized / loop throughput; the issue's target is at least 50.

Timing follows ``bench_pbrl_iteration.py`` (whose helpers this script imports): the number of
calls per repeat is chosen so that a repeat takes about ``--seconds``, the repeats of the three
measurements of a game take turns, the median over ``--repeats`` repeats is reported, the garbage
collector is off while timing and the clock is the CPU time of the process by default.

Usage
-----
    .venv/bin/python benchmarks/bench_sampling.py          # all defaults, about 40 s
    .venv/bin/python benchmarks/bench_sampling.py --states 10 --no-patrol --no-write

The markdown table is printed and written to ``BENCHMARKS.md`` (section
``## Vectorized sampling throughput``, replaced if present; other sections are kept).
"""

from __future__ import annotations

# First: it pins the BLAS threads before numpy loads, like that benchmark (sampling uses no
# BLAS, but the machine description then tells the truth).
import _common as shared  # isort: skip

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import games
from stackelberg.model import GameModel
from stackelberg.sampling import sample_trajectories

REPO_ROOT = shared.REPO_ROOT
SECTION_HEADING = "## Vectorized sampling throughput"
TARGET_SPEEDUP = 50.0
RANDOM_GAME = "stackelberg/random-markov-v0"
PATROL_GAME = "stackelberg/patrol-v0"
N_LEADER_ACTIONS = 3
N_FOLLOWER_ACTIONS = 3


@dataclass(frozen=True)
class Game:
    game_id: str
    params: dict

    def label(self) -> str:
        if self.game_id == RANDOM_GAME:
            return f"random-markov, S={self.params['n_states']}"
        return self.game_id.removeprefix("stackelberg/")


def random_policies(model: GameModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` (S, B) and ``pi`` (S, A), every row from a flat Dirichlet."""
    mu = rng.dirichlet(np.ones(model.n_leader_actions), size=model.n_states)
    pi = rng.dirichlet(np.ones(model.n_follower_actions), size=model.n_states)
    return mu, pi


# -- the two ways of sampling ----------------------------------------------------------------


class Vectorized:
    """``sample_trajectories``: ``episodes`` x ``horizon`` transitions per call."""

    def __init__(self, model, mu, pi, episodes, horizon, rng, clock):
        self.args = (model, mu, pi, episodes, horizon, rng)
        self.transitions_per_call = episodes * horizon
        self.clock = clock

    def run(self, n: int) -> float:
        """Seconds taken by ``n`` calls."""
        args, clock = self.args, self.clock
        start = clock()
        for _ in range(n):
            sample_trajectories(*args)
        return clock() - start


class EnvironmentLoop:
    """Whole episodes of the parallel environment, actions drawn every round from mu and pi."""

    def __init__(self, game: Game, mu, pi, horizon, actions, rng, clock):
        self.env = games.make_env(game.game_id, kind="parallel", max_cycles=horizon,
                                  observation="index", **game.params)
        self.env.reset(seed=int(rng.integers(2**31)))  # seeded once; then reset() continues
        self.draw = self._drawer(mu, pi, actions, rng)
        self.transitions_per_call = horizon
        self.clock = clock

    @staticmethod
    def _drawer(mu, pi, actions, rng) -> Callable[[int], dict[str, int]]:
        if actions == "choice":
            B, A = mu.shape[1], pi.shape[1]

            def draw(s: int) -> dict[str, int]:
                return {
                    games.LEADER: int(rng.choice(B, p=mu[s])),
                    games.FOLLOWER: int(rng.choice(A, p=pi[s])),
                }

            return draw
        # Inverse CDF: one uniform per action against the row's cumulative sums; the last
        # entries are set to exactly 1 so that the count stays below the number of actions.
        cdf_mu, cdf_pi = np.cumsum(mu, axis=1), np.cumsum(pi, axis=1)
        cdf_mu[:, -1] = cdf_pi[:, -1] = 1.0
        mu_rows, pi_rows = list(cdf_mu), list(cdf_pi)  # row lookups without numpy indexing
        random = rng.random

        def draw(s: int) -> dict[str, int]:
            return {
                games.LEADER: int(mu_rows[s].searchsorted(random(), side="right")),
                games.FOLLOWER: int(pi_rows[s].searchsorted(random(), side="right")),
            }

        return draw

    def run(self, n: int) -> float:
        """Seconds taken by ``n`` episodes."""
        env, draw, clock = self.env, self.draw, self.clock
        start = clock()
        for _ in range(n):
            observations, _ = env.reset()
            while env.agents:
                actions = draw(int(observations[games.LEADER]))
                observations, _, _, _, _ = env.step(actions)
        return clock() - start


# -- measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One game: the throughput of the vectorized sampler and of the two environment loops."""

    game: Game
    shape: tuple[int, int, int]
    vectorized: shared.Timing  # per call
    loop: shared.Timing  # per episode, inverse-CDF actions
    loop_choice: shared.Timing  # per episode, Generator.choice actions
    transitions_per_call: int
    horizon: int

    @property
    def vectorized_rate(self) -> float:
        return self.transitions_per_call / self.vectorized.seconds

    @property
    def loop_rate(self) -> float:
        return self.horizon / self.loop.seconds

    @property
    def loop_choice_rate(self) -> float:
        return self.horizon / self.loop_choice.seconds

    @property
    def speedup(self) -> float:
        return self.vectorized_rate / self.loop_rate

    @property
    def speedup_choice(self) -> float:
        return self.vectorized_rate / self.loop_choice_rate

    @property
    def meets_target(self) -> bool:
        return self.speedup >= TARGET_SPEEDUP


def measure_game(game: Game, args: argparse.Namespace, seed: np.random.SeedSequence) -> Row:
    clock = shared.CLOCKS[args.clock]
    model = games.make_model(game.game_id, **game.params)
    policy_seed, vector_seed, loop_seed, choice_seed = seed.spawn(4)
    mu, pi = random_policies(model, np.random.default_rng(policy_seed))
    vectorized = Vectorized(model, mu, pi, args.episodes, args.horizon,
                            np.random.default_rng(vector_seed), clock)
    loop = EnvironmentLoop(game, mu, pi, args.horizon, "inverse-cdf",
                           np.random.default_rng(loop_seed), clock)
    loop_choice = EnvironmentLoop(game, mu, pi, args.horizon, "choice",
                                  np.random.default_rng(choice_seed), clock)
    runs = [vectorized.run, loop.run, loop_choice.run]
    calls = [shared.calls_for(run, args.seconds) for run in runs]
    samples = shared.interleaved_repeats(runs, calls, args.repeats)
    timings = [shared.Timing.of(per_call, n) for per_call, n in zip(samples, calls, strict=True)]
    return Row(
        game=game,
        shape=(model.n_states, model.n_leader_actions, model.n_follower_actions),
        vectorized=timings[0],
        loop=timings[1],
        loop_choice=timings[2],
        transitions_per_call=vectorized.transitions_per_call,
        horizon=args.horizon,
    )


def measure(args: argparse.Namespace) -> list[Row]:
    configured = [
        Game(RANDOM_GAME, {"n_states": n, "n_leader_actions": N_LEADER_ACTIONS,
                           "n_follower_actions": N_FOLLOWER_ACTIONS, "seed": args.seed})
        for n in args.states
    ]
    if args.patrol:
        configured.append(Game(PATROL_GAME, {}))
    seeds = np.random.SeedSequence(args.seed).spawn(len(configured))
    rows = []
    for game, seed in zip(configured, seeds, strict=True):
        row = measure_game(game, args, seed)
        rows.append(row)
        print(
            f"{game.label():<24} vectorized {row.vectorized_rate:.3g}/s, loop "
            f"{row.loop_rate:.3g}/s (choice {row.loop_choice_rate:.3g}/s), "
            f"speed-up {row.speedup:.0f}x",
            file=sys.stderr,
            flush=True,
        )
    return rows


# -- report --------------------------------------------------------------------------------


def _rate(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


def markdown_table(rows: Sequence[Row]) -> str:
    header = (
        "| game | S, B, A | vectorized | PettingZoo loop | speed-up "
        f"| target ≥ {TARGET_SPEEDUP:g}x | loop with `choice` | speed-up vs `choice` "
        "| spread (vec / loop / choice) |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for row in rows:
        lines.append(
            f"| {row.game.label()} | {', '.join(map(str, row.shape))} "
            f"| {_rate(row.vectorized_rate)}/s | {_rate(row.loop_rate)}/s "
            f"| {row.speedup:.0f}x | {'yes' if row.meets_target else '**no**'} "
            f"| {_rate(row.loop_choice_rate)}/s | {row.speedup_choice:.0f}x "
            f"| {row.vectorized.spread:.0%} / {row.loop.spread:.0%} "
            f"/ {row.loop_choice.spread:.0%} |"
        )
    return "\n".join(lines)


def report(rows: Sequence[Row], args: argparse.Namespace, machine: list[str]) -> str:
    failing = [r for r in rows if not r.meets_target]
    verdict = (
        f"All {len(rows)} games meet the target (speed-up {min(r.speedup for r in rows):.0f}x "
        f"to {max(r.speedup for r in rows):.0f}x)."
        if not failing
        else f"{len(failing)} of {len(rows)} games miss the target."
    )
    clock = {"cpu": "CPU time of the process (`time.process_time`)",
             "wall": "wall time (`time.perf_counter`)"}[args.clock]
    return "\n".join(
        [
            SECTION_HEADING,
            "",
            "Transitions per second (a transition: both actions, both rewards and the next "
            "state) drawn from a game's exact model by "
            f"`stackelberg.sampling.sample_trajectories` ({args.episodes} parallel episodes of "
            f"{args.horizon} rounds per call) and by stepping the PettingZoo parallel "
            "environment of the same game in a Python loop (`games.make_env(..., "
            f'kind="parallel", max_cycles={args.horizon})`, seeded once, then `reset()` and '
            "`step()` until the episode ends), with the same leader commitment `mu` and "
            "follower policy `pi` (rows drawn from a flat Dirichlet; the loop draws both "
            "actions every round with a `numpy.random.Generator`). Random Markov games "
            f"(`random_markov_game`, seed {args.seed}) have {N_LEADER_ACTIONS} leader and "
            f"{N_FOLLOWER_ACTIONS} follower actions; patrol has its defaults. Median over "
            f"{args.repeats} repeats of about {args.seconds:g} s each, the three measurements "
            f"of a game taking turns; clock: {clock}. Target (issue 3): at least "
            f"{TARGET_SPEEDUP:g}x. {verdict}",
            "",
            markdown_table(rows),
            "",
            "Columns: *vectorized* and *PettingZoo loop* are median transitions per second; the "
            "loop draws each action by inverse CDF (one `Generator.random()` against "
            "precomputed cumulative sums), the faster of the two ways timed, and is the "
            "baseline of *speed-up* = vectorized / loop; *loop with `choice`* draws them with "
            "`Generator.choice(n, p=row)` instead; *spread* is (max − min) / median over the "
            "repeats.",
            "",
            *shared.provenance(machine, args.argv, Path(__file__)),
        ]
    )


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Transitions per second of sample_trajectories vs. stepping the PettingZoo "
        "environment in a Python loop.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--states", type=int, nargs="*", default=[10, 100],
                        help="numbers of states S of the random Markov games")
    parser.add_argument("--patrol", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure stackelberg/patrol-v0")
    parser.add_argument("--episodes", type=int, default=1000,
                        help="parallel episodes per sample_trajectories call")
    parser.add_argument("--horizon", type=int, default=100, help="rounds per episode")
    parser.add_argument("--seconds", type=float, default=0.6,
                        help="approximate duration of one timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is kept")
    parser.add_argument("--clock", choices=sorted(shared.CLOCKS), default="cpu",
                        help="cpu: process CPU time; wall: elapsed time")
    parser.add_argument("--seed", type=int, default=0, help="seed of the games and policies")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.states):
        parser.error("--states must be positive")
    if not args.states and not args.patrol:
        parser.error("nothing to measure: give --states or --patrol")
    if min(args.episodes, args.horizon, args.repeats) < 1 or args.seconds <= 0:
        parser.error("--episodes, --horizon and --repeats must be >= 1 and --seconds > 0")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    args.argv = list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = shared.machine_info()  # before measuring: records the load the run started under
    rows = measure(args)
    section = report(rows, args, machine)
    shared.publish(section, args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())

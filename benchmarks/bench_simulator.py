"""Environment throughput through the batched simulator (issue 14, done-means 4).

What is measured
----------------
Samples (environment transitions: one round of both firms) per CPU second on
``stackelberg/duopoly-v0`` and ``stackelberg/duopoly-dynamic-v0`` (8 periods), with random
quantities drawn by numpy:

- ``loop``: a plain Python loop over one PettingZoo environment (``reset``, ``step`` with a dict
  of actions, until the episode ends), the baseline;
- ``batched``: :class:`stackelberg.simulator.ParallelSimulator` with ``--copies`` copies stepped
  in lockstep (one Python call per copy and step, arrays in and out);
- ``fast``: the same with ``fast=True``, the duopoly's vectorized ``fast_round`` (one numpy
  call per batch; one-round games only);
- ``aec loop`` / ``aec batched``: the AEC duopoly (leader, then follower) by hand and through
  :class:`stackelberg.simulator.AECSimulator`.

Then the share of a neural match's CPU time spent outside the environment: one
``rac-neural`` vs ``actor-critic`` match (``--match-iterations``) on the duopoly, generic and
fast path, timing the simulator's ``episode`` calls (environment stepping and the policies'
sampling inside them) against the whole match.

Each figure is the best of ``--repeats`` repeats (``time.process_time``, one thread).

Usage
-----
    .venv/bin/python benchmarks/bench_simulator.py
    .venv/bin/python benchmarks/bench_simulator.py --no-write
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from agents.registry import FOLLOWERS, LEADERS
from games.duopoly import FOLLOWER, LEADER, duopoly_env
from games.duopoly_dynamic import duopoly_dynamic_env
from games.duopoly_problems import duopoly_problem
from stackelberg import metrics as metrics_module
from stackelberg import simulator as simulator_module
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.seeding import run_streams
from stackelberg.simulator import AECSimulator, ParallelSimulator

SECTION_HEADING = "## Environment throughput through the simulator"


def best_rate(run: Callable[[], int], repeats: int) -> float:
    """Samples per CPU second, best of ``repeats``."""
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        samples = run()
        rates.append(samples / (time.process_time() - start))
    return max(rates)


def loop(make: Callable[[], object], episodes: int, rng: np.random.Generator) -> int:
    env, samples = make(), 0
    for e in range(episodes):
        env.reset(seed=e)
        while env.agents:
            env.step({LEADER: rng.uniform(0, 10, 1), FOLLOWER: rng.uniform(0, 10, 1)})
            samples += 1
    return samples


def batched(sim: ParallelSimulator, episodes: int, rng: np.random.Generator) -> int:
    def act(t, observations):
        return {a: rng.uniform(0, 10, (sim.n, 1)) for a in sim.agents}
    samples = 0
    for e in range(episodes):
        samples += sim.episode(act, list(range(e * sim.n, (e + 1) * sim.n))).samples
    return samples


def aec_loop(episodes: int, rng: np.random.Generator) -> int:
    env, samples = duopoly_env("aec"), 0
    for e in range(episodes):
        env.reset(seed=e)
        for _ in env.agent_iter():
            _, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else rng.uniform(0, 10, 1))
        samples += 1
    return samples


def aec_batched(sim: AECSimulator, episodes: int, rng: np.random.Generator) -> int:
    for e in range(episodes):
        sim.episode(lambda agent, obs: rng.uniform(0, 10, (sim.n, 1)),
                    list(range(e * sim.n, (e + 1) * sim.n)))
    return episodes * sim.n


def match_share(fast: bool, iterations: int) -> tuple[float, float, float]:
    """(CPU seconds of the match, share inside the simulator's episodes, share in the sampled
    metrics' rows)."""
    spent = {"episode": 0.0, "metrics": 0.0}
    originals = (simulator_module.ParallelSimulator.episode, metrics_module.SampledMetrics.__call__)

    inside_metrics = [False]

    def timing(key, function):
        def timed(self, *args, **kwargs):
            if key == "episode" and inside_metrics[0]:
                return function(self, *args, **kwargs)  # the metrics' own episodes
            inside_metrics[0] = key == "metrics"
            start = time.process_time()
            try:
                return function(self, *args, **kwargs)
            finally:
                spent[key] += time.process_time() - start
                inside_metrics[0] = False
        return timed

    simulator_module.ParallelSimulator.episode = timing("episode", originals[0])
    metrics_module.SampledMetrics.__call__ = timing("metrics", originals[1])
    try:
        problem = duopoly_problem(fast=fast)
        lead, follow = LEADERS["rac-neural"], FOLLOWERS["actor-critic"]
        start = time.process_time()
        run_match(problem, lead.factory(lead.make_config()),
                  [follow.factory(follow.make_config())],
                  MatchConfig(iterations=iterations, metrics_every=iterations, progress=False),
                  run_streams(0))
        total = time.process_time() - start
    finally:
        simulator_module.ParallelSimulator.episode = originals[0]
        metrics_module.SampledMetrics.__call__ = originals[1]
    return total, spent["episode"] / total, spent["metrics"] / total


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--match-iterations", type=int, default=100)
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, r = args.copies, args.repeats
    static = lambda: duopoly_env("parallel")  # noqa: E731
    dynamic = lambda: duopoly_dynamic_env("parallel", 8)  # noqa: E731
    rates = {
        ("duopoly-v0", "loop"): best_rate(lambda: loop(static, 4 * n, rng), r),
        ("duopoly-v0", "batched"): best_rate(lambda: batched(ParallelSimulator(static, n), 4, rng),
                                             r),
        ("duopoly-v0", "fast"): best_rate(
            lambda: batched(ParallelSimulator(static, n, fast=True), 400, rng), r),
        ("duopoly-v0 (AEC)", "loop"): best_rate(lambda: aec_loop(4 * n, rng), r),
        ("duopoly-v0 (AEC)", "batched"): best_rate(
            lambda: aec_batched(AECSimulator(lambda: duopoly_env("aec"), n), 4, rng), r),
        ("duopoly-dynamic-v0", "loop"): best_rate(lambda: loop(dynamic, n, rng), r),
        ("duopoly-dynamic-v0", "batched"): best_rate(
            lambda: batched(ParallelSimulator(dynamic, n), 1, rng), r),
    }
    shares = {fast: match_share(fast, args.match_iterations) for fast in (False, True)}
    lines = [SECTION_HEADING, "",
             f"Samples (rounds) per CPU second, best of {r} repeats, {n} copies per batch, "
             "random quantities.", "",
             "| game | loop over one env | simulator (per-copy) | fast path |", "|---|---|---|---|"]
    for game in ("duopoly-v0", "duopoly-v0 (AEC)", "duopoly-dynamic-v0"):
        fast = rates.get((game, "fast"))
        lines.append(f"| {game} | {rates[(game, 'loop')]:,.0f} | {rates[(game, 'batched')]:,.0f} "
                     f"| {'-' if fast is None else f'{fast:,.0f}'} |")
    lines += ["", f"A `rac-neural` vs `actor-critic` match on duopoly-v0 "
              f"({args.match_iterations} iterations, batch 256; CPU seconds, share inside the "
              "learners' simulator episodes, i.e. environment stepping plus the policies' "
              "sampling):",
              ""]
    for fast, (total, episodes, metrics) in shares.items():
        learners = episodes
        lines.append(f"- {'fast path' if fast else 'per-copy path'}: {total:.1f} s; the "
                     f"learners' episodes {learners:.0%}, the sampled metrics (2 rows of 2000 "
                     f"episodes) {metrics:.0%}, the rest {1 - learners - metrics:.0%} (learning "
                     "updates, building simulators): outside the environment "
                     f"{1 - learners - metrics:.0%}")
    lines.append("")
    lines += shared.provenance(shared.machine_info(), argv, Path(__file__))
    shared.publish("\n".join(lines), args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

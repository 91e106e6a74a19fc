"""Happy text (issue 15): RLHF's mean VADER sentiment before and after, ``rac-neural`` against the
standard alternating loop, over seeds (docs/theory.md §8.2).

What is measured
----------------
Each leader plays ``configs/happy_text.toml`` once per seed, as ``stackelberg run`` plays it
(the coordinator), against the same pre-trained language model (built once, cached in the
repository's ``runs/happy_text``; the benchmark works from the repository's root). Per run, at
the start (the pre-trained model) and every ``run.metrics_every`` iterations: the follower's
mean VADER compound score on 256 fresh generations, its sequence KL to the pre-trained model
(nats), the reward model's pair accuracy and ``f`` (:mod:`games.happy_text_metrics`). The
table gives, per leader, the mean over seeds of the sentiment before and after, with a 95%
t-interval over seeds, the change, the final KL (mean and largest) and the CPU seconds of a run
(``time.process_time``, the match and its metrics). The figure (``docs/happy_text.png``) shows
the mean sentiment against iterations and against generations drawn, the band a 95% t-interval
of the mean over seeds, and the KL against iterations. Settings were tuned on seeds 0-1; the table
reports seeds 100-104 (``--seeds``).

Usage
-----
    .venv/bin/python benchmarks/bench_happy_text.py                    # seeds 100-104
    .venv/bin/python benchmarks/bench_happy_text.py --seeds 0-1 --no-write   # tuning
"""

from __future__ import annotations

# First: it pins the BLAS threads before numpy loads (the worker processes inherit them).
import _common as shared  # isort: skip

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from scipy import stats

HEADING = "## Happy text (RLHF on generated text, issue 15)"
LEADERS = ("rac-neural", "alternating")
CONFIG = shared.REPO_ROOT / "configs" / "happy_text.toml"


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = map(int, text.split("-"))
        return list(range(low, high + 1))
    return [int(s) for s in text.split(",")]


def play(job: tuple[str, int]) -> dict:
    from stackelberg.app.config import build_experiment, load_config
    from stackelberg.coordinator import run_match

    leader, seed = job
    start = time.process_time()
    config = load_config(CONFIG, [f'leader.algorithm="{leader}"', f"run.seed={seed}",
                                  "run.progress=false"])
    experiment = build_experiment(config)
    result = run_match(experiment.problem, experiment.leader, experiment.followers,
                       config.run, experiment.streams)
    cpu = time.process_time() - start
    s = result.summary
    # the start: the pre-trained model, before any step (the summary's *_before)
    evaluations = [{"iteration": 0, "samples": 0, "labels": 0,
                    "sentiment": s["sentiment_before"], "kl": s["kl_before"],
                    "upper_objective": s["upper_objective_before"]}, *result.metrics]
    samples = experiment.problem.run_files(result)["samples.txt"]
    before, after = samples.split("\nafter:\n")
    return {"leader": leader, "seed": seed, "cpu_seconds": cpu, "evaluations": evaluations,
            "before": [t.strip() for t in before.splitlines()[1:9]],
            "after": [t.strip() for t in after.splitlines()[:8]]}


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval over seeds."""
    n = len(values)
    if n < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return float(values.mean()), float(half)


def draw(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for leader, color in zip(LEADERS, ("tab:red", "tab:blue"), strict=True):
        mine = [r for r in runs if r["leader"] == leader]
        if not mine:
            continue
        curves = {key: np.array([[e[key] for e in r["evaluations"]] for r in mine])
                  for key in ("iteration", "samples", "sentiment", "kl")}
        n = len(mine)
        t = stats.t.ppf(0.975, n - 1) if n > 1 else 0.0
        for ax, x_key, y_key in ((axes[0], "iteration", "sentiment"),
                                 (axes[1], "samples", "sentiment"),
                                 (axes[2], "iteration", "kl")):
            x = curves[x_key].mean(0)
            y = curves[y_key]
            mean = y.mean(0)
            half = t * y.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
            ax.plot(x, mean, color=color, label=f"{leader} ({n} seeds)")
            ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.25)
    axes[0].set(xlabel="iteration", ylabel="mean VADER compound of the follower's text")
    axes[1].set(xlabel="generations drawn", ylabel="mean VADER compound")
    axes[2].set(xlabel="iteration", ylabel="KL(pi || pi_0), nats")
    axes[0].legend(loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("Happy text: RLHF with a KL term (configs/happy_text.toml); bands: 95% CI of "
                 "the mean over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="100-104")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--figure", type=Path, default=shared.REPO_ROOT / "docs" / "happy_text.png")
    parser.add_argument("--json", type=Path,
                        default=shared.REPO_ROOT / "runs" / "happy_text" / "bench.json")
    shared.add_output_arguments(parser)
    args = parser.parse_args()
    seeds = _seeds(args.seeds)
    machine = shared.machine_info()
    os.chdir(shared.REPO_ROOT)  # the model's default cache, runs/happy_text (workers inherit it)
    # the model once, before the workers read it
    from stackelberg.app.config import build_experiment, load_config

    build_experiment(load_config(CONFIG))
    jobs = [(leader, seed) for seed in seeds for leader in LEADERS]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(play, jobs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(runs, indent=1))
    draw(runs, args.figure)
    lines = [HEADING, "",
             f"`benchmarks/bench_happy_text.py`: both leaders on `configs/happy_text.toml` "
             f"(200 iterations, batch 64, KL weight tau = 0.5, annotator beta = 5), seeds "
             f"{args.seeds} (settings tuned on seeds 0-1). Sentiment: the follower's mean VADER "
             "compound score on 256 fresh generations; mean over seeds with a 95% t-interval. "
             "KL: the follower's sequence KL to the pre-trained model (nats). f: the upper "
             "objective, the expected preference NLL of the reward model on pairs of the "
             "follower's generations (what the bilevel leader minimizes). Figure: "
             "`docs/happy_text.png`. Each run is the match `stackelberg run` plays (the "
             "coordinator: each iteration the follower learner steps, then the leader).", "",
             "| leader | sentiment before | sentiment after | change | KL after (mean / max) "
             "| f after | reward-model pair accuracy | generations | labels | CPU s per run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for leader in LEADERS:
        mine = [r for r in runs if r["leader"] == leader]
        first = np.array([r["evaluations"][0]["sentiment"] for r in mine])
        last = np.array([r["evaluations"][-1]["sentiment"] for r in mine])
        kl = np.array([r["evaluations"][-1]["kl"] for r in mine])
        acc = np.array([r["evaluations"][-1]["accuracy"] for r in mine])
        f = np.array([r["evaluations"][-1]["upper_objective"] for r in mine])
        cpu = np.array([r["cpu_seconds"] for r in mine])
        (b, bh), (a, ah), (d, dh) = interval(first), interval(last), interval(last - first)
        lines.append(f"| {leader} | {b:+.3f} ± {bh:.3f} | {a:+.3f} ± {ah:.3f} | "
                     f"{d:+.3f} ± {dh:.3f} | {kl.mean():.2f} / {kl.max():.2f} | "
                     f"{f.mean():.3f} | {acc.mean():.3f} | "
                     f"{mine[0]['evaluations'][-1]['samples']} | "
                     f"{int(mine[0]['evaluations'][-1]['labels'])} | {cpu.mean():.0f} |")
    rac = {r["seed"]: r["evaluations"][-1]["sentiment"] for r in runs
           if r["leader"] == "rac-neural"}
    alt = {r["seed"]: r["evaluations"][-1]["sentiment"] for r in runs
           if r["leader"] == "alternating"}
    diff = np.array([rac[s] - alt[s] for s in seeds])
    m, h = interval(diff)
    lines += ["", f"Paired difference of the final sentiment, rac-neural - alternating: "
              f"{m:+.3f} ± {h:.3f} (95% t-interval over {len(seeds)} seeds).", "",
              "Sample generations of seed " f"{seeds[0]} (rac-neural), before and after:", "",
              "```", *[f"before: {t}" for t in runs[0]["before"][:4]],
              *[f"after:  {t}" for t in runs[0]["after"][:4]], "```", ""]
    lines += shared.provenance(machine, [f"--seeds={args.seeds}"], Path(__file__))
    shared.publish("\n".join(lines), args, HEADING)


if __name__ == "__main__":
    main()

"""Independent PPO (SuperSuit + Stable-Baselines3) against a penalty-based leader, textbook game.

What is measured
----------------
The textbook commitment game (``stackelberg/matrix-v0``: leader payoffs ``[[2, 4], [1, 3]]``,
follower ``[[1, 0], [0, 1]]``), whose strong Stackelberg value is 3.5 and Nash value 2
(Conitzer & Sandholm, "Computing the optimal strategy to commit to", EC 2006).

1. **Independent PPO**, the README's recipe: the parallel environment (one-hot observations
   with the agent indicator), ``pettingzoo_env_to_vec_env_v1``, ``concat_vec_envs_v1`` with
   ``--copies`` copies, one PPO policy shared by both agents (parameter sharing), trained for
   ``--steps`` agent steps. The leader's value is computed exactly from the learned *stochastic*
   policies: ``mu^T R_L pi`` with ``mu``, ``pi`` the action probabilities the policy gives the
   leader's and the follower's observation (no sampling noise in the evaluation).
2. **pbrl-value**: ``configs/demo.toml`` (PBRL with the value penalty against the exact best
   response), the same seeds; its leader value is the run summary's ``leader_value``.

Seeds: ``--seeds`` (default 1-5); the tests use seed 0 (tune on one set, report on another).
PPO's hyperparameters are the test's (``n_steps=128``, ``batch_size=256``,
``learning_rate=3e-3``, other SB3 defaults); they are not tuned for this comparison, and more
steps only sharpen the same answer: row 0 strictly dominates for a leader who cannot commit.

Usage
-----
    .venv/bin/python benchmarks/bench_independent_ppo.py              # about 3 CPU minutes
    .venv/bin/python benchmarks/bench_independent_ppo.py --seeds 1 --steps 8192 --no-write

The markdown table is printed and written to ``BENCHMARKS.md`` (section ``## Independent PPO on
the textbook game``, replaced if present; other sections are kept).
"""

from __future__ import annotations

import _common as shared  # isort: skip  (first: pins BLAS threads before numpy loads)

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import games
from games import FOLLOWER, LEADER
from stackelberg.app.config import build_experiment, load_config
from stackelberg.coordinator import run_match
from stackelberg.equilibrium import matrix_payoffs, strong_stackelberg

GAME = "stackelberg/matrix-v0"
SECTION_HEADING = "## Independent PPO on the textbook game"


@dataclass(frozen=True)
class PPOOutcome:
    """What independent PPO learned with one seed."""

    seed: int
    leader_probabilities: tuple[float, ...]
    follower_probabilities: tuple[float, ...]
    leader_value: float
    cpu_seconds: float


def independent_ppo(seed: int, steps: int, copies: int) -> PPOOutcome:
    """Train one shared PPO policy for both agents (the README recipe) and evaluate it."""
    import supersuit
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(1)
    start = time.process_time()
    markov = supersuit.pettingzoo_env_to_vec_env_v1(games.make_env(GAME))
    vec_env = supersuit.concat_vec_envs_v1(markov, copies, base_class="stable_baselines3")
    set_random_seed(seed)  # SB3's seeding; SuperSuit's vector env has no seed() for PPO(seed=)
    vec_env.venv.reset(seed=seed)  # copy i gets seed + i
    model = PPO("MlpPolicy", vec_env, n_steps=128, batch_size=256, learning_rate=3e-3)
    model.learn(total_timesteps=steps)
    observations, _ = games.make_env(GAME).reset(seed=seed)
    probabilities = {}
    for agent in (LEADER, FOLLOWER):
        tensor = torch.as_tensor(observations[agent][None])
        with torch.no_grad():
            distribution = model.policy.get_distribution(tensor).distribution
        probabilities[agent] = distribution.probs.numpy()[0].astype(float)
    leader_payoffs, _ = matrix_payoffs(games.make_model(GAME))
    value = float(probabilities[LEADER] @ leader_payoffs @ probabilities[FOLLOWER])
    return PPOOutcome(
        seed=seed,
        leader_probabilities=tuple(probabilities[LEADER]),
        follower_probabilities=tuple(probabilities[FOLLOWER]),
        leader_value=value,
        cpu_seconds=time.process_time() - start,
    )


def pbrl_value(seed: int) -> float:
    """The leader value of ``configs/demo.toml`` (pbrl-value, best response) with ``seed``."""
    config = load_config(shared.REPO_ROOT / "configs" / "demo.toml", [f"run.seed={seed}"])
    experiment = build_experiment(config)
    run = dataclasses.replace(config.run, progress=False)
    result = run_match(experiment.problem, experiment.leader, experiment.followers, run,
                       experiment.streams)
    return float(result.summary["leader_value"])


def report(outcomes: Sequence[PPOOutcome], pbrl: Sequence[float], args: argparse.Namespace,
           machine: Sequence[str]) -> str:
    model = games.make_model(GAME)
    leader_payoffs, follower_payoffs = matrix_payoffs(model)
    sse = strong_stackelberg(leader_payoffs, follower_payoffs).leader_value
    ppo_values = [o.leader_value for o in outcomes]
    lines = [
        SECTION_HEADING,
        "",
        f"`{' '.join(['benchmarks/bench_independent_ppo.py', *args.argv])}`; "
        f"{args.steps} agent steps, {args.copies} copies, seeds {list(args.seeds)}. "
        "Leader value of the textbook game (strong Stackelberg 3.5, Nash 2).",
        "",
        "| leader | leader value (mean over seeds) | per seed |",
        "|---|---|---|",
        f"| exact strong Stackelberg equilibrium | {sse:.4f} | |",
        f"| `pbrl-value` (`configs/demo.toml`) | {statistics.mean(pbrl):.4f} | "
        f"{', '.join(f'{v:.4f}' for v in pbrl)} |",
        f"| independent PPO, shared policy (SB3 + SuperSuit) | {statistics.mean(ppo_values):.4f} | "
        f"{', '.join(f'{v:.4f}' for v in ppo_values)} |",
        "",
        "PPO's learned policies (probability of row 0 / column 0): "
        + "; ".join(
            f"seed {o.seed}: {o.leader_probabilities[0]:.3f} / {o.follower_probabilities[0]:.3f}"
            for o in outcomes
        )
        + f". PPO CPU seconds per seed: {statistics.mean(o.cpu_seconds for o in outcomes):.1f}.",
        "",
        *machine,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Independent PPO vs pbrl-value on the textbook commitment game.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--steps", type=int, default=20480, help="PPO agent steps per seed")
    parser.add_argument("--copies", type=int, default=4, help="vectorized copies of the game")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.steps, args.copies) < 1:
        parser.error("--steps and --copies must be >= 1")
    args.argv = list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = shared.machine_info()
    outcomes = [independent_ppo(seed, args.steps, args.copies) for seed in args.seeds]
    pbrl = [pbrl_value(seed) for seed in args.seeds]
    shared.publish(report(outcomes, pbrl, args, machine), args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``rac-neural`` vs ``actor-critic`` on the dynamic duopoly, and its convergence figure
(issue 14, done-means 3, in part: from this script, not yet from a ``stackelberg run`` config).

What is measured
----------------
One match on ``stackelberg/duopoly-dynamic-v0`` (defaults: ``a = 10``, 8 periods,
``gamma = 0.9``, demand ``a_t`` drifting around ``a``) through the per-copy simulator; every
``--every`` iterations the sampled metrics record both players' discounted values and the
firms' planned quantities in a period at the mean demand level, against the static Stackelberg
answer there (the quantities do not move the state, so each period's answer is the static one at
``a_t``; docs/theory.md §9). The figure (``docs/duopoly_dynamic.png``) plots those quantities
over the iterations with the Stackelberg and Cournot levels.

Usage
-----
    .venv/bin/python benchmarks/bench_duopoly_dynamic.py --iterations 400 --seed 100
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import sys
import time
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from agents.neural.problems import duopoly_problem  # noqa: E402
from agents.registry import FOLLOWERS, LEADERS  # noqa: E402
from games.duopoly import DuopolyMarket  # noqa: E402
from stackelberg.coordinator import MatchConfig, run_match  # noqa: E402
from stackelberg.seeding import run_streams  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--every", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--figure", default=str(shared.REPO_ROOT / "docs" / "duopoly_dynamic.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    problem = duopoly_problem(dynamic=True)
    lead, follow = LEADERS["rac-neural"], FOLLOWERS["actor-critic"]
    start = time.process_time()
    result = run_match(problem, lead.factory(lead.make_config(batch=args.batch)),
                       [follow.factory(follow.make_config(batch=args.batch))],
                       MatchConfig(iterations=args.iterations, metrics_every=args.every,
                                   progress=False), run_streams(args.seed))
    cpu = time.process_time() - start
    rows = result.metrics
    for row in rows:
        print(f"{row['iteration']:5d} q_L {row['leader_quantity']:.3f} q_F "
              f"{row['follower_quantity']:.3f} V_L {row['leader_value']:.2f} "
              f"({row['leader_value_se']:.2f})")
    market = DuopolyMarket()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    its = [r["iteration"] for r in rows]
    axis.plot(its, [r["leader_quantity"] for r in rows], "o-", label="leader (planned)")
    axis.plot(its, [r["follower_quantity"] for r in rows], "s-", label="follower (planned)")
    s, c = market.stackelberg(), market.cournot()
    axis.axhline(s.q_leader, ls="--", color="C0", lw=0.8, label="Stackelberg")
    axis.axhline(s.q_follower, ls="--", color="C1", lw=0.8)
    axis.axhline(c.q_leader, ls=":", color="grey", lw=0.8, label="Cournot")
    axis.set_xlabel("iteration")
    axis.set_ylabel("quantity at mean demand")
    axis.set_title(f"duopoly-dynamic-v0, rac-neural vs actor-critic (seed {args.seed})")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.figure, dpi=110)
    print(f"CPU {cpu:.0f} s; wrote {args.figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The commons: n harvesters share a stock that regrows at random, and a planner prices effort.

docs/theory.md §7.5. States are stock levels ``0 .. L-1``. Each round every follower chooses an
effort level ``e_i in 0 .. E-1``; follower ``i`` earns ``price * (e_i / (E-1)) * (s / (L-1)) -
effort_cost * e_i / (E-1)`` (what it catches grows with its effort and with the stock). Each unit
of the total effort ``sum_i e_i`` removes one stock level with probability ``catch``
(binomially), then the stock regrows one level with probability ``regrowth`` (``regrowth *
recovery`` from an empty stock: a collapsed commons recovers slowly).

A harvester gains the whole of its catch but bears only its share of the depletion, so the
equilibrium overuses the stock (the tragedy of the commons): the default economy's equilibrium
welfare is below that of a cooperative policy, which the tests check.

The planner's instruments are one transfer per effort level: a subsidy for resting (level 0)
and a tax on each positive level, paid per follower and round. Their levels lie under a budget
(``budget * softmax([w, 0])[:-1]``: non-negative, summing to at most ``budget``) or each in the
box ``[0, budget]``. The planner maximizes welfare minus ``payment_cost`` times the subsidies it
pays (:mod:`stackelberg.economy`). Taxes are Pigouvian and revenue-neutral: what they raise is
rebated lump-sum (a payment that depends on no action changes no incentive, so the followers'
game leaves it out), so tax revenue is no gain to the planner, and raising net welfare means
raising the welfare ``W`` itself.
"""

from __future__ import annotations

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.economy import IncentiveEconomy
from stackelberg.incentives import Box, Budget, LinearIncentives
from stackelberg.validation import discount, finite_float, positive_int, probability

RANGES = ("budget", "box")


def _at_least(name: str, value: object, smallest: int) -> int:
    number = positive_int(name, value)
    if number < smallest:
        raise ValueError(f"{name} must be an integer >= {smallest}, got {value!r}")
    return number


def commons_economy(
    n_followers: int = 2,
    stock_levels: int = 5,
    effort_levels: int = 3,
    gamma: float = 0.9,
    catch: float = 0.5,
    regrowth: float = 0.6,
    recovery: float = 0.2,
    price: float = 1.0,
    effort_cost: float = 0.1,
    budget: float = 0.5,
    payment_cost: float = 1.0,
    incentive_range: str = "budget",
) -> IncentiveEconomy:
    """Build the commons economy (module docstring for the meaning of every parameter).

    Raises
    ------
    ValueError
        Naming the parameter: fewer than 2 followers, fewer than 2 stock or effort levels,
        probabilities outside [0, 1], a negative price, cost or budget, an unknown range.
    """
    n = _at_least("n_followers", n_followers, 2)
    L = _at_least("stock_levels", stock_levels, 2)
    E = _at_least("effort_levels", effort_levels, 2)
    gamma = discount("gamma", gamma)
    catch, regrowth = probability("catch", catch), probability("regrowth", regrowth)
    recovery = probability("recovery", recovery)
    price = finite_float("price", price, nonnegative=True)
    effort_cost = finite_float("effort_cost", effort_cost, nonnegative=True)
    budget = finite_float("budget", budget, nonnegative=True)
    if incentive_range not in RANGES:
        raise ValueError(f"incentive_range must be one of {RANGES}, got {incentive_range!r}")
    sizes = (E,) * n
    A = E**n
    efforts = np.array(np.unravel_index(np.arange(A), sizes))  # (n, A): e_i of each joint action
    share = efforts / (E - 1)
    stock = np.arange(L) / (L - 1)
    r = price * share[:, None, :] * stock[None, :, None] - effort_cost * share[:, None, :]

    # depletion: Binomial(total effort, catch) levels, then +1 level with the regrowth chance
    total = efforts.sum(axis=0)
    removed = np.arange(n * (E - 1) + 1)
    # imported here: scipy.stats costs about a CPU second, which every `stackelberg` command
    # and test process paid on `import games` while only this builder uses it
    import scipy.stats

    p_removed = scipy.stats.binom.pmf(removed[None, :], total[:, None], catch)  # (A, D)
    after = np.maximum(np.arange(L)[:, None] - removed[None, :], 0)  # (L, D)
    grow = np.where(after > 0, regrowth, regrowth * recovery)
    P = np.zeros((L, A, L))
    s_idx = np.arange(L)[:, None, None]
    a_idx = np.arange(A)[None, :, None]
    weight = p_removed[None, :, :]  # (1, A, D)
    for up, chance in ((0, 1.0 - grow), (1, grow)):
        target = np.minimum(after + up, L - 1)[:, None, :]  # (L, 1, D)
        np.add.at(P, (s_idx, a_idx, np.broadcast_to(target, (L, A, removed.size))),
                  weight * chance[:, None, :])
    base = FollowerModel(P=P, r=r, rho=np.full(L, 1.0 / L), gamma=gamma, action_sizes=sizes)

    # instrument k pays follower i when it plays level k: +1 (subsidy) at rest, -1 (tax) above
    sign = np.where(np.arange(E) == 0, 1.0, -1.0)
    features = np.zeros((n, L, A, E))
    for i in range(n):
        features[i][:, np.arange(A), efforts[i]] = sign[efforts[i]]
    payment_features = features * (np.arange(E) == 0)  # subsidies only: taxes are rebated
    levels = Budget(budget, E) if incentive_range == "budget" else Box(np.zeros(E),
                                                                        np.full(E, budget))
    names = ("subsidy_rest", *(f"tax_effort_{k}" for k in range(1, E)))
    return IncentiveEconomy(
        name=f"commons-{n}x{E}-L{L}",
        incentives=LinearIncentives(base, features, levels, payment_features),
        payment_cost=payment_cost,
        instrument_names=names,
        state_names=tuple(f"stock {s}" for s in range(L)),
        action_names=tuple(f"effort {k}" for k in range(E)),
    )


def commons_instance(seed: int) -> IncentiveEconomy:
    """A seeded random commons: 2 or 3 followers, 4-6 stock levels, 3 effort levels, catch in
    [0.35, 0.65], regrowth in [0.45, 0.75], effort cost in [0, 0.2], budget in [0.3, 0.8]
    (the instances the pbrl-nash benchmark and test report on)."""
    rng = np.random.default_rng(seed)
    return commons_economy(
        n_followers=int(rng.integers(2, 4)),
        stock_levels=int(rng.integers(4, 7)),
        catch=float(rng.uniform(0.35, 0.65)),
        regrowth=float(rng.uniform(0.45, 0.75)),
        effort_cost=float(rng.uniform(0.0, 0.2)),
        budget=float(rng.uniform(0.3, 0.8)),
    )

"""A Markov security game: a defender patrols the sites of a graph, an attacker roams them.

The story
---------
A museum (or a power grid, or a harbour) has a few **sites** joined by corridors, a small
undirected graph; each site ``s`` holds loot worth ``site_values[s]``. An **attacker** (the
follower) wanders from site to site; the **state** is the site the attacker is at. Every round the
**defender** (the leader) sees where the attacker is and sends her single patrol to one site
``b``; the attacker then chooses to

- **attack** the site he stands on: if it is the patrolled site he is caught (he pays
  ``catch_penalty``, the defender earns ``catch_reward``); otherwise the attack succeeds (he
  gains ``site_values[s]``, the defender loses as much). Either way the episode of this attacker
  ends and a new one appears at a uniformly random site;
- **move to his i-th neighbour** (neighbours of a site sorted by index). If the patrol is at the
  site he is moving into, he is caught on the way, with the same payoffs and restart as a caught
  attack. Otherwise he arrives there, except that with probability ``slip`` the move fails and he
  stays where he was. Moving earns nothing; the discount makes waiting costly. On a graph whose
  sites have different degrees, "move to neighbour i" at a site with fewer than ``i + 1``
  neighbours means **stay** (no reward, no risk).

So at each site the defender must split her patrol between guarding the attacker's site (stops
an attack) and guarding the sites he could move into (stops an approach to a richer site): a small
Stackelberg security game in every state, linked through the attacker's movement. The attacker
has no "wait" action (except where a move does not exist), so always guarding his site makes him
roam forever and gives both sides 0; a defender who commits to a *mixed* patrol over his site and
its neighbours makes every choice risky and, with the default parameters, does strictly better
against a best-responding attacker. This is the setting in which commitment pays.

Sizes: ``S = n_sites`` states, ``B = n_sites`` leader actions (patrol site ``b``), and
``A = 1 + max degree`` follower actions (action 0 = attack, action ``1 + i`` = move to neighbour
``i``). The default (a cycle of 4 sites) has S = 4, B = 4, A = 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from games._validate import discount, finite_float, probability
from stackelberg.model import GameModel, check_finite

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    import networkx as nx  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

#: Follower action index of "attack the current site"; action ``1 + i`` moves to neighbour ``i``.
ATTACK = 0


def site_graph(n_sites: int, edges: Sequence[Sequence[int]] | None = None) -> nx.Graph:
    """The graph of sites: ``edges`` between sites ``0..n_sites-1``, or a cycle if ``None``.

    Parameters
    ----------
    n_sites : int
        Number of sites (nodes ``0 .. n_sites - 1``).
    edges : sequence of (int, int) pairs, optional
        Undirected corridors between distinct sites. Default: the cycle
        ``0 - 1 - ... - (n_sites - 1) - 0``.

    Returns
    -------
    networkx.Graph
        A connected simple graph on the sites.

    Raises
    ------
    ValueError
        If an edge is not a pair of distinct valid site indices, or the graph is not connected.
    """
    import networkx as nx  # on use: see the module's imports
    if edges is None:
        return nx.cycle_graph(n_sites)
    graph = nx.Graph()
    graph.add_nodes_from(range(n_sites))
    for edge in edges:
        pair = tuple(edge)
        valid = len(pair) == 2 and all(
            isinstance(i, int | np.integer) and 0 <= i < n_sites for i in pair
        )
        if not valid or pair[0] == pair[1]:
            raise ValueError(
                f"edges must be pairs of distinct site indices in 0..{n_sites - 1}, got {edge!r}"
            )
        graph.add_edge(int(pair[0]), int(pair[1]))
    if not nx.is_connected(graph):
        raise ValueError(f"edges must connect all {n_sites} sites, got {list(edges)!r}")
    return graph


def patrol_game(
    site_values: Sequence[float] = (1.0, 0.5, 0.8, 0.3),
    edges: Sequence[Sequence[int]] | None = None,
    catch_penalty: float = 1.0,
    catch_reward: float = 0.5,
    slip: float = 0.1,
    gamma: float = 0.9,
) -> GameModel:
    """Build the patrol game (the story is in the module docstring).

    Parameters
    ----------
    site_values : sequence of float, default (1.0, 0.5, 0.8, 0.3)
        Value of the loot at each site (non-negative); its length is the number of sites (>= 2).
        A successful attack on site ``s`` pays the attacker ``site_values[s]`` and costs the
        defender the same.
    edges : sequence of (int, int) pairs, optional
        Corridors between sites (undirected, the graph must be connected). Default: a cycle
        through the sites in index order.
    catch_penalty : float, default 1.0
        What a caught attacker pays (non-negative; his reward is ``-catch_penalty``).
    catch_reward : float, default 0.5
        What the defender earns for a catch (non-negative).
    slip : float, default 0.1
        Probability that an uncaught move fails and the attacker stays at his site.
    gamma : float, default 0.9
        Discount factor in [0, 1).

    Returns
    -------
    GameModel
        ``S = B = len(site_values)``, ``A = 1 + max degree``; uniform initial distribution.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.
    """
    try:
        values = np.array(site_values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"site_values must be a list of numbers, got {site_values!r}") from None
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"site_values must list at least 2 site values, got {site_values!r}")
    check_finite("site_values", values)
    if (values < 0).any():
        raise ValueError(f"site_values must be non-negative, got {site_values!r}")
    penalty = finite_float("catch_penalty", catch_penalty, nonnegative=True)
    reward = finite_float("catch_reward", catch_reward, nonnegative=True)
    slip = probability("slip", slip)
    gamma = discount("gamma", gamma)

    n = values.size
    graph = site_graph(n, edges)
    neighbours = [sorted(graph.neighbors(s)) for s in range(n)]
    n_moves = max(len(nb) for nb in neighbours)
    A = 1 + n_moves
    restart = np.full(n, 1.0 / n)

    transitions = np.zeros((n, n, A, n))
    leader_rewards = np.zeros((n, n, A))
    follower_rewards = np.zeros((n, n, A))
    for s in range(n):
        for b in range(n):
            transitions[s, b, ATTACK] = restart
            caught = b == s
            leader_rewards[s, b, ATTACK] = reward if caught else -values[s]
            follower_rewards[s, b, ATTACK] = -penalty if caught else values[s]
            for i in range(n_moves):
                a = 1 + i
                if i >= len(neighbours[s]):  # no such neighbour: stay
                    transitions[s, b, a, s] = 1.0
                elif neighbours[s][i] == b:  # caught entering the patrolled site
                    transitions[s, b, a] = restart
                    leader_rewards[s, b, a] = reward
                    follower_rewards[s, b, a] = -penalty
                else:
                    transitions[s, b, a, neighbours[s][i]] += 1.0 - slip
                    transitions[s, b, a, s] += slip
    return GameModel(
        transitions=transitions,
        leader_rewards=leader_rewards,
        follower_rewards=follower_rewards,
        initial=restart,
        gamma=gamma,
        name="patrol",
        state_names=tuple(f"site{s}" for s in range(n)),
        leader_action_names=tuple(f"patrol site{b}" for b in range(n)),
        follower_action_names=("attack",) + tuple(f"move to neighbour {i}" for i in range(n_moves)),
    )

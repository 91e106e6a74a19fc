"""Pictures and text of a game in progress, for the environments' ``render()``.

Only the :class:`~stackelberg.model.GameModel` is known here, so the picture is chosen from what
the model shows:

- one state (a bimatrix game): the payoff matrix, ``leader, follower`` in each cell, the last
  round's cell framed and a pending leader row shaded;
- states named ``r{row}c{col}`` (the grid world): the grid, walls (cells that are not states)
  dark, the walker's cell marked;
- any other game (the patrol graph, a random game): the states on a circle, an edge ``s - s'``
  drawn with opacity ``max_{b,a} P(s' | s, b, a)`` (so the patrol's corridors, taken with
  probability ``1 - slip``, stand out from the uniform restart), the current state filled.

Drawing uses matplotlib's object API on an Agg canvas: no window, no pyplot global state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from stackelberg.model import GameModel

#: Width and height of an ``rgb_array`` frame in inches, and its resolution.
FIGURE_INCHES = (4.0, 4.0)
DPI = 80
_CELL_NAME = re.compile(r"r(\d+)c(\d+)")


@dataclass(frozen=True)
class Frame:
    """What a picture shows: the current round and the last completed one.

    ``pending`` is the leader's move in the current round that the follower has been shown (an
    action name or a commitment), ``None`` when she has not moved or the follower sees nothing.
    """

    model: GameModel
    state: int
    cycle: int
    max_cycles: int
    last: object | None  # games.env.Round; typed loosely to keep this module free of env
    pending_row: int | None
    pending_text: str | None


def describe(frame: Frame) -> str:
    """A few lines of text: the round, the state, the last round's moves and rewards."""
    m = frame.model
    lines = [
        f"{m.name}: round {frame.cycle}/{frame.max_cycles}, state {m.state_names[frame.state]}"
    ]
    last = frame.last
    if last is not None:
        lines.append(
            f"  last round: in {m.state_names[last.state]} leader "
            f"{m.leader_action_names[last.leader_action]}, follower "
            f"{m.follower_action_names[last.follower_action]}; rewards leader "
            f"{last.leader_reward:g}, follower {last.follower_reward:g}"
        )
    if frame.pending_text is not None:
        lines.append(f"  leader chose {frame.pending_text}; follower to move")
    return "\n".join(lines)


def draw(frame: Frame) -> np.ndarray:
    """An RGB picture of ``frame`` as a ``(height, width, 3)`` ``uint8`` array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.84))
    axes.set_axis_off()
    model = frame.model
    cells = [_CELL_NAME.fullmatch(name) for name in model.state_names]
    if model.n_states == 1:
        _draw_matrix(axes, frame)
    elif all(cells):
        _draw_grid(axes, frame, [(int(c.group(1)), int(c.group(2))) for c in cells])
    else:
        _draw_graph(axes, frame)
    figure.suptitle(describe(frame).replace("; ", "\n"), fontsize=6, x=0.02, ha="left")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_matrix(axes, frame: Frame) -> None:
    model = frame.model
    B, A = model.n_leader_actions, model.n_follower_actions
    axes.set_xlim(-1.05, A + 0.05)
    axes.set_ylim(B + 0.05, -1.05)
    last = frame.last
    for b in range(B):
        axes.text(-0.5, b + 0.5, model.leader_action_names[b], ha="center", va="center",
                  fontsize=7)
        for a in range(A):
            played = last is not None and (last.leader_action, last.follower_action) == (b, a)
            shaded = frame.pending_row == b
            axes.add_patch(_rectangle((a, b), 1, 1, "lightyellow" if shaded else "white",
                                      edgecolor="red" if played else "black",
                                      linewidth=2.5 if played else 0.8))
            axes.text(a + 0.5, b + 0.5,
                      f"{model.leader_rewards[0, b, a]:g}, {model.follower_rewards[0, b, a]:g}",
                      ha="center", va="center", fontsize=8)
    for a in range(A):
        axes.text(a + 0.5, -0.5, model.follower_action_names[a], ha="center", va="center",
                  fontsize=7)


def _draw_grid(axes, frame: Frame, cells: list[tuple[int, int]]) -> None:
    rows = 1 + max(r for r, _ in cells)
    cols = 1 + max(c for _, c in cells)
    shade = np.full((rows, cols), 0.4)  # walls (cells that are not states) dark grey
    shade[tuple(np.array(cells).T)] = 1.0  # free cells white
    axes.imshow(shade, cmap="gray", vmin=0.0, vmax=1.0, extent=(0, cols, rows, 0),
                interpolation="nearest")
    axes.set_xlim(-0.05, cols + 0.05)
    axes.set_ylim(rows + 0.05, -0.05)
    row, col = cells[frame.state]
    axes.add_patch(_circle((col + 0.5, row + 0.5), 0.35, "tab:blue"))


def _draw_graph(axes, frame: Frame) -> None:
    model = frame.model
    S = model.n_states
    angles = np.pi / 2 - 2 * np.pi * np.arange(S) / S
    xy = np.column_stack([np.cos(angles), np.sin(angles)])
    axes.set_xlim(-1.3, 1.3)
    axes.set_ylim(-1.3, 1.3)
    axes.set_aspect("equal")
    reach = model.transitions.max(axis=(1, 2))  # (S, S): the likeliest move s -> s'
    for s in range(S):
        for t in range(s + 1, S):
            weight = max(reach[s, t], reach[t, s])
            if weight > 0:
                axes.plot(*xy[[s, t]].T, color="black", alpha=float(weight), linewidth=1.2)
    for s in range(S):
        current = s == frame.state
        axes.add_patch(_circle(xy[s], 0.12, "tab:blue" if current else "white"))
        axes.text(*xy[s], model.state_names[s], ha="center", va="center", fontsize=6,
                  color="white" if current else "black")


def _rectangle(corner, width, height, facecolor, **style):
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, facecolor=facecolor, **style)


def _circle(centre, radius, facecolor):
    from matplotlib.patches import Circle

    return Circle(centre, radius, facecolor=facecolor, edgecolor="black", zorder=3)

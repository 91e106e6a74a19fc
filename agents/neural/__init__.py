"""Torch learners for games with no exact model (docs/theory.md §9, §13).

Same seed, same numbers to the last bit, in any process (README, "Continuous actions and no
exact model"): every random number comes from a seeded ``torch.Generator``, the learners run
torch on one thread (:func:`agents.neural.common.require_simulated`), and the leader's baseline
fit avoids a least-squares driver that varies from call to call
(:func:`agents.neural.rac._residual`).
"""

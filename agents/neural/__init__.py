"""Torch learners for games with no exact model (docs/theory.md §9, §13).

Same seed, same numbers to the last bit, in any process: every random number comes from a
seeded ``torch.Generator``, and nothing here calls a kernel whose result varies from call to
call (torch's default CPU least-squares driver does: :func:`agents.neural.rac._residual` asks for
another).
"""

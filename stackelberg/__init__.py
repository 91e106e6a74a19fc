"""Leader-follower games and bilevel reinforcement learning (README)."""

#: The one place the version is written: setup.cfg reads it (``version = attr: ...``).
__version__ = "0.1.0"

"""Parameter checks of the game builders: they live in :mod:`stackelberg.validation`, the
project's one validation module (one message style everywhere); imported here under the names
the builders use."""

from stackelberg.validation import (
    discount,
    finite_float,
    nonnegative_int,
    positive_int,
    probability,
)

__all__ = ["discount", "finite_float", "nonnegative_int", "positive_int", "probability"]

"""The scipy functions the exact mathematics calls, imported on their first use.

Every ``stackelberg`` command imports the game and algorithm registries, and with them these
modules; importing ``scipy.special`` and ``scipy.linalg`` costs about 0.25 CPU s per process,
which a command that refuses its config or lists the games never needs (issue 10: the test
suite starts such processes). After its first use a function is a plain attribute of
:data:`scipy_functions`, as quick to reach as a module's, so the hot loops pay nothing.
"""

from __future__ import annotations

from typing import Any


class _ScipyFunctions:
    """``scipy_functions.NAME``: ``NAME`` from ``scipy.special`` or ``scipy.linalg.lapack``."""

    def __getattr__(self, name: str) -> Any:  # called only while NAME is not set yet
        import scipy.linalg.lapack
        import scipy.special

        for module in (scipy.special, scipy.linalg.lapack):
            if hasattr(module, name):
                value = getattr(module, name)
                setattr(self, name, value)
                return value
        raise AttributeError(f"neither scipy.special nor scipy.linalg.lapack has {name!r}")


scipy_functions = _ScipyFunctions()

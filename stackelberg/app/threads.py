"""One BLAS thread per process, for the processes that play matches, the test suite and the
benchmarks.

The matrices of a match are small (tens to hundreds of states): the threads that OpenBLAS and
OpenMP start per process by default only contend with each other and with the other processes
for the cores. Issue 10 measured the test suite on 2 busy cores at 650 s with them and 163 s
with one thread per process.

Two ways, for two moments:

- :func:`pin_environment`, *before numpy is imported*: the variables OpenBLAS, OpenMP and MKL
  read when they load (an explicit setting in the environment wins). Child processes inherit
  them. This module imports nothing heavy, so it can come first.
- :func:`pin_threads`, *any time*: ``threadpoolctl`` sets the limit of every BLAS and OpenMP
  library already loaded (numpy's OpenBLAS, torch's OpenMP), e.g. in a worker forked from a
  fork server that imported numpy long before.
"""

from __future__ import annotations

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_environment() -> None:
    """Set each of :data:`BLAS_THREAD_VARIABLES` to 1 unless it is set already."""
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")


def pin_threads() -> None:
    """Limit every BLAS and OpenMP library loaded in this process to one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


__all__ = ["BLAS_THREAD_VARIABLES", "pin_environment", "pin_threads"]

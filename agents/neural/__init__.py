"""Torch learners for games with no exact model (docs/theory.md §9, §13).

MKL, torch's CPU BLAS here, may choose its kernels by the memory alignment of the operands, so
the last bit of a product could depend on where the allocator put an array (two same-seed
matches once differed by one ulp inside a long test session, never in a fresh process). Strict
conditional numerical reproducibility removes that dependence; MKL reads the setting when it
initializes, i.e. at the first product, after this package is imported.
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

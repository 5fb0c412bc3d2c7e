"""Full float32 precision for the analyses' matrix products, on every backend.

On GPUs (Ampere and later) and TPUs, JAX's default precision for a float32 ``dot`` lets the
backend use reduced-precision units (TF32 on an H100: a 10-bit mantissa, relative error
~1e-3). That is harmless for training but not for the analyses, whose tolerances sit far
below it: Levenberg–Marquardt fixed points accept ``q = ½‖F(x)‖² < 1e-8``, and SVCCA's
principal-angle cosines are differences of numbers close to 1. Measured on one H100
(``benchmarks/results/gpu-analysis.json``): with the default precision only 32 % of the
1,228,800 fixed-point searches of 1,920 networks reached ``q < 1e-8``, against 74 % on the CPU
for the same kind of networks. :func:`full_precision` traces a function under
``jax.default_matmul_precision("highest")`` (true float32 products; a no-op on CPU, whose
float32 products are already exact float32).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax


def full_precision(fn: Callable) -> Callable:
    """``fn`` with every matrix product it traces at ``Precision.HIGHEST`` (wrap inside ``jax.jit``)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)

    return wrapped

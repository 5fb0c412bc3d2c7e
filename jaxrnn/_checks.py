"""Eager validation helpers: bad input fails before compilation with a clear message.

Every message names the field, the value it got and what is allowed, e.g.
``ValueError: task.noise_std = -0.1 is not allowed: must be >= 0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def fail(field: str, value: Any, allowed: str, hint: str = "") -> None:
    """Raise the house-style ``ValueError`` for ``field``."""
    message = f"{field} = {value!r} is not allowed: must be {allowed}"
    if hint:
        message += f" ({hint})"
    raise ValueError(message)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bool))


def check_range(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Check ``low (<|<=) value (<|<=) high`` elementwise for scalars or arrays."""
    import numpy as np

    if not all(_is_number(v) for v in np.ravel(np.asarray(value, dtype=object))):
        fail(field, value, "an integer" if integer else "a number")
    if integer and not all(float(v).is_integer() for v in np.ravel(np.asarray(value, dtype=float))):
        fail(field, value, "an integer")
    array = np.asarray(value, dtype=float)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.all(np.isfinite(array)):
        fail(field, value, f"finite and {interval}")
    if low is not None and np.any(array <= low if low_open else array < low):
        fail(field, value, interval)
    if high is not None and np.any(array >= high if high_open else array > high):
        fail(field, value, interval)


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> None:
    """Check ``value`` is one of ``choices``; the message lists them."""
    choices = list(choices)
    if value not in choices:
        fail(field, value, "one of " + ", ".join(repr(c) for c in choices))

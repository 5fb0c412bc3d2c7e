"""Unrolling a cell over time with ``lax.scan``."""

from __future__ import annotations

from typing import Any

import jax
from flax import linen as nn


def rollout(
    cell: nn.Module, params: Any, carry0: Any, xs: jax.Array, *, remat: bool = False
) -> tuple[Any, jax.Array]:
    """Run ``cell`` over the inputs of one trial.

    ``carry_t, y_t = cell(carry_{t−1}, x_t)`` for ``t = 0 … T−1``.

    Args:
      cell: a flax cell with the ``RNNCellBase`` contract.
      params: its parameters.
      carry0: initial carry (``[N]`` for jaxrnn cells).
      xs: ``[T, M]`` inputs.
      remat: wrap the step in ``jax.checkpoint`` (recompute activations in the backward pass
        instead of storing them; trades FLOPs for memory in long BPTT).

    Returns:
      ``(carries, ys)``: the carry after each step (``[T, N]``) and the outputs (``[T, ·]``).
      Batch over trials with ``jax.vmap(rollout, in_axes=(None, None, 0, 0))``.
    """

    def step(carry, x):
        carry, y = cell.apply(params, carry, x)
        return carry, (carry, y)

    if remat:
        step = jax.checkpoint(step)
    _, (carries, ys) = jax.lax.scan(step, carry0, xs)
    return carries, ys

"""Shared types of supervised tasks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Trials:
    """A batch of supervised trials.

    Attributes:
      inputs: ``[B, T, M]`` float32 inputs fed to the network at each step.
      targets: ``[B, T, O]`` float32 desired outputs (only read where ``mask`` is non-zero).
      mask: ``[B, T]`` float32 weight of each step in the loss.
    """

    inputs: jax.Array
    targets: jax.Array
    mask: jax.Array


def masked_squared_error(outputs: jax.Array, trials: Trials) -> jax.Array:
    """Per-trial loss ``Σ_t mask[t] · ‖y[t] − target[t]‖²``.

    Args:
      outputs: ``[B, T, O]`` network outputs.
      trials: the trials the outputs answer.

    Returns:
      ``[B]`` per-trial loss.
    """
    error = jnp.sum((outputs - trials.targets) ** 2, axis=-1)
    return jnp.sum(trials.mask * error, axis=-1)


def cast_like(params, reference):
    """Cast every leaf of ``params`` to the dtype of the matching leaf of ``reference``.

    Keeps sweepable params strongly typed (``jnp.float32`` / ``jnp.int32``) after a
    ``.replace(noise_std=0.1)`` with a Python number, so ``lax.cond`` and stacking work.
    """
    return jax.tree.map(lambda x, ref: jnp.asarray(x, dtype=jnp.asarray(ref).dtype), params, reference)

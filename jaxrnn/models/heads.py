"""Output heads: linear readout (supervised tasks); actor-critic heads live with the RL rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


class LinearReadout(nn.Module):
    """``y = W_out h (+ b_out)`` with ``W_out ~ scale·N(0, 1)`` (McMahan et al.: scale 0.1).

    Attributes (static):
      features: output size O.
      scale: std of the initial ``W_out`` entries.
      use_bias: include ``b_out`` (initialised at 0; McMahan et al. have none).
    """

    features: int = 1
    scale: float = 0.1
    use_bias: bool = False

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        w = self.param(
            "W_out", lambda k, s, d=jnp.float32: self.scale * jax.random.normal(k, s, d), (self.features, h.shape[-1])
        )
        y = w @ h
        if self.use_bias:
            y = y + self.param("b_out", nn.initializers.zeros, (self.features,))
        return y

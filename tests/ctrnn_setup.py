"""Shared set-up of the CTRNN + linear read-out tests (the fast BPTT paths and the fused kernel)."""

import jax
import jax.numpy as jnp

from jaxrnn.models import init_params


def perturbed(tree, key, scale=0.1):
    """Non-trivial values for every leaf (biases start at zero)."""
    leaves, structure = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(structure, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def setup(cell, readout, batch=5, steps=20, inputs=3):
    """``(params, readout_params, x0[B, N], xs[B, T, M])`` with fixed keys, gain 1.3."""
    key = jax.random.PRNGKey(0)
    params = perturbed(init_params(cell, key, inputs, 1.3), jax.random.PRNGKey(1))
    readout_params = perturbed(readout.init(key, jnp.zeros(cell.hidden)), jax.random.PRNGKey(2))
    x0 = jax.random.normal(jax.random.PRNGKey(3), (batch, cell.hidden))
    xs = jax.random.normal(jax.random.PRNGKey(4), (batch, steps, inputs))
    return params, readout_params, x0, xs

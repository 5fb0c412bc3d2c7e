"""jaxrnn.rules.training: masks, clipping and the optimiser step against NumPy and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn.rules.training import (clip_by_global_norm, descend, mask_gradients, masked_value_and_grad,
                                   optimizer_step, trainable_mask)

PARAMS = {"cell": {"params": {"W_rec": jnp.arange(4.0).reshape(2, 2), "W_in": jnp.ones((2, 1))}},
          "readout": {"params": {"W_out": jnp.full((1, 2), 2.0)}}}


def test_trainable_mask_selects_leaves_by_name():
    assert trainable_mask(PARAMS, ("W_rec", "W_out")) == {
        "cell": {"params": {"W_rec": True, "W_in": False}}, "readout": {"params": {"W_out": True}}}
    assert all(jax.tree.leaves(trainable_mask(PARAMS, None)))


def test_masked_value_and_grad_is_the_gradient_with_frozen_leaves_zero():
    mask = trainable_mask(PARAMS, ("W_rec",))

    def loss(p):  # Σ W_rec² + 3 Σ W_in + Σ W_out, gradient by hand: 2 W_rec, 3, 1
        return (jnp.sum(p["cell"]["params"]["W_rec"] ** 2) + 3 * jnp.sum(p["cell"]["params"]["W_in"])
                + jnp.sum(p["readout"]["params"]["W_out"]))

    value, grads = masked_value_and_grad(loss, PARAMS, mask)
    np.testing.assert_allclose(value, 14.0 + 6.0 + 4.0)
    np.testing.assert_array_equal(grads["cell"]["params"]["W_rec"], 2 * np.arange(4.0).reshape(2, 2))
    np.testing.assert_array_equal(grads["cell"]["params"]["W_in"], np.zeros((2, 1)))
    np.testing.assert_array_equal(grads["readout"]["params"]["W_out"], np.zeros((1, 2)))
    np.testing.assert_array_equal(mask_gradients({"a": jnp.ones(2)}, {"a": False})["a"], np.zeros(2))


def test_clip_by_global_norm_against_numpy_and_optax():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    grads = {"a": 3 * jax.random.normal(keys[0], (5, 4)), "b": jax.random.normal(keys[1], (3,))}
    norm = np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(grads)))
    ours = jax.jit(jax.vmap(clip_by_global_norm, in_axes=(None, 0)))  # c is a swept (traced) leaf
    theirs = jax.jit(jax.vmap(lambda g, c: optax.clip_by_global_norm(c).update(g, optax.EmptyState())[0],
                              in_axes=(None, 0)))
    cs = jnp.asarray((0.5, 2.0, 1e9, np.inf), jnp.float32)
    clipped, optax_clipped = ours(grads, cs), theirs(grads, cs)
    for i, c in enumerate(np.asarray(cs, np.float64)):
        for k in grads:
            np.testing.assert_allclose(clipped[k][i], np.asarray(grads[k]) * min(1.0, c / norm), rtol=1e-6)
            # optax computes (g / ‖g‖)·c, we g·(c / ‖g‖): equal up to float32 rounding
            np.testing.assert_allclose(clipped[k][i], optax_clipped[k][i], rtol=1e-6)
    zero = {"a": jnp.zeros(3)}
    np.testing.assert_array_equal(clip_by_global_norm(zero, jnp.float32(1.0))["a"], np.zeros(3))


def test_masked_adam_step_against_a_hand_written_adam():
    """Two steps of ``optimizer_step(scale_by_adam)``: trainable leaves follow Adam (Kingma & Ba,
    bias-corrected, ε outside the root), frozen leaves do not move."""
    mask = trainable_mask(PARAMS, ("W_rec", "W_out"))
    adam = optax.scale_by_adam()
    grads = [jax.tree.map(lambda p, s=s: jnp.sin(p + s), PARAMS) for s in (0.3, 1.1)]

    @jax.jit
    def two_steps(params, lr):
        state = adam.init(params)
        for g in grads:
            params, state = optimizer_step(adam, mask_gradients(g, mask), state, params, lr, mask)
        return params

    params = two_steps(PARAMS, jnp.float32(0.01))
    for path, leaf in (("cell", "W_rec"), ("readout", "W_out")):
        theta = np.asarray(PARAMS[path]["params"][leaf], np.float64)
        m = v = np.zeros_like(theta)
        for t, g in enumerate(grads, start=1):
            gt = np.asarray(g[path]["params"][leaf], np.float64)
            m = 0.9 * m + 0.1 * gt
            v = 0.999 * v + 0.001 * gt**2
            theta = theta - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(params[path]["params"][leaf], theta, rtol=1e-5)
    np.testing.assert_array_equal(params["cell"]["params"]["W_in"], PARAMS["cell"]["params"]["W_in"])
    np.testing.assert_array_equal(descend({"a": jnp.ones(2)}, {"a": jnp.ones(2)}, 0.5)["a"], [0.5, 0.5])

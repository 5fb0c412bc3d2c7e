"""The fast BPTT paths against the plain ones: batched rollout, hand-written CTRNN backward pass,
chunked gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from ctrnn_setup import setup
from jaxrnn.models import CTRNN, LinearReadout, VanillaRNN, rollout
from jaxrnn.models.rollout import ctrnn_readout_trials, rollout_trials
from jaxrnn.rules import bptt
from jaxrnn.rules.bptt import default_trials_per_chunk


@pytest.mark.parametrize("cell", [CTRNN(6, activation="tanh"), VanillaRNN(6)], ids=["ctrnn", "vanilla"])
def test_rollout_trials_equals_vmapped_rollout(cell):
    readout = LinearReadout(2)
    params, readout_params, x0, xs = setup(cell, readout)
    _, hidden = jax.vmap(rollout, in_axes=(None, None, 0, 0))(cell, params, x0, xs)
    expected = jax.vmap(jax.vmap(lambda h: readout.apply(readout_params, h)))(hidden)
    head = lambda h: readout.apply(readout_params, h)  # noqa: E731
    np.testing.assert_allclose(rollout_trials(cell, params, x0, xs, readout=head), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rollout_trials(cell, params, x0, xs, readout=head, remat=True), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rollout_trials(cell, params, x0, xs), hidden, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["shifted_tanh", "tanh", "relu", "linear"])
@pytest.mark.parametrize("biases", [(True, False), (False, True)], ids=["b", "b_out"])
def test_ctrnn_backward_pass_equals_autodiff(activation, biases):
    """Outputs and every gradient (weights, biases, initial state, inputs) against autodiff."""
    cell, readout = CTRNN(6, activation=activation, use_bias=biases[0]), LinearReadout(2, use_bias=biases[1])
    args = setup(cell, readout)
    weights = jnp.linspace(-1.0, 1.0, 5 * 20 * 2).reshape(5, 20, 2)

    def loss(fn):
        return lambda *a: jnp.sum(weights * jnp.sin(fn(*a)))

    fast = lambda p, q, x0, xs: ctrnn_readout_trials(cell, p, q, x0, xs)  # noqa: E731
    plain = lambda p, q, x0, xs: rollout_trials(cell, p, x0, xs, readout=lambda h: readout.apply(q, h))  # noqa: E731
    np.testing.assert_allclose(fast(*args), plain(*args), rtol=1e-5, atol=1e-6)
    fast_grads = jax.grad(loss(fast), argnums=(0, 1, 2, 3))(*args)
    plain_grads = jax.grad(loss(plain), argnums=(0, 1, 2, 3))(*args)
    for got, want in zip(jax.tree.leaves(fast_grads), jax.tree.leaves(plain_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_ctrnn_backward_pass_under_vmap_with_frozen_weights():
    """A population (vmap) differentiating W_rec only, as the BPTT rule does."""
    cell, readout = CTRNN(6), LinearReadout(1)
    params, readout_params, x0, xs = setup(cell, readout)
    population = jax.tree.map(lambda p: jnp.stack([p, 1.1 * p, 0.9 * p]), params)

    def grad_w_rec(fn):
        def one(p):
            def loss(w):
                q = {"params": {**p["params"], "W_rec": w}}
                return jnp.sum(fn(jax.lax.stop_gradient(q), q["params"]["W_rec"]) ** 2)

            return jax.grad(loss)(p["params"]["W_rec"])

        return jax.vmap(one)(population)

    def fast(q, w):
        return ctrnn_readout_trials(cell, {"params": {**q["params"], "W_rec": w}}, readout_params, x0, xs)

    def plain(q, w):
        head = lambda h: readout.apply(readout_params, h)  # noqa: E731
        return rollout_trials(cell, {"params": {**q["params"], "W_rec": w}}, x0, xs, readout=head)

    np.testing.assert_allclose(grad_w_rec(fast), grad_w_rec(plain), rtol=1e-4, atol=1e-6)


class _GenericReadout(LinearReadout):
    """Same head; a subclass, so the rule takes the autodiff path."""


@pytest.mark.parametrize("trainable", [("W_rec",), None], ids=["w_rec", "all"])
def test_bptt_update_same_on_every_path(trainable):
    """Hand-written backward pass and chunked gradients against the plain autodiff update."""
    task, task_params = jaxrnn.make("cdi", num_steps=12)
    common = dict(batch=12, num_validation_trials=8, trainable=trainable)
    plain = bptt(CTRNN(8), task, readout=_GenericReadout(1, scale=0.1), trials_per_chunk=12, **common)
    variants = [bptt(CTRNN(8), task, trials_per_chunk=12, **common)]
    if trainable is not None:  # chunking and remat do not depend on which weights learn: checked once
        variants += [
            bptt(CTRNN(8), task, trials_per_chunk=4, **common),
            bptt(CTRNN(8), task, readout=_GenericReadout(1, scale=0.1), trials_per_chunk=3, remat=True, **common),
        ]
    hp = plain.default_hparams.replace(task=task_params, learning_rate=jnp.float32(1e-2))
    state = plain.init(jax.random.PRNGKey(0), hp)
    key = jax.random.PRNGKey(7)
    want_state, want = jax.jit(plain.update)(key, state, hp)
    want_eval = jax.jit(plain.evaluate)(key, state, hp)["loss"]
    for rule in variants:
        got_state, got = jax.jit(rule.update)(key, state, hp)
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
        np.testing.assert_allclose(got["grad_norm"], want["grad_norm"], rtol=1e-4)
        for a, b in zip(jax.tree.leaves(got_state.params), jax.tree.leaves(want_state.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(jax.jit(rule.evaluate)(key, state, hp)["loss"], want_eval, rtol=1e-5)


def test_trials_per_chunk_default_and_validation():
    assert default_trials_per_chunk(500) == 125
    assert default_trials_per_chunk(100) == 100
    assert default_trials_per_chunk(1024) == 128
    assert default_trials_per_chunk(1000) == 125
    assert default_trials_per_chunk(2 * 131) == 262  # no divisor in [32, 128]: one chunk
    task, _ = jaxrnn.make("rdm", num_steps=5)
    with pytest.raises(ValueError, match="rule.trials_per_chunk = 7 .* divisor of batch = 20"):
        bptt(CTRNN(4), task, batch=20, trials_per_chunk=7)

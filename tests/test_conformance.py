"""One conformance suite over every registered task and every cell (STYLE.md rule 11).

jit equals no-jit, shapes and dtypes are stable, outputs are finite, vmap over keys and over
params matches per-element calls, and a second jitted call with new values does not recompile.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.models import CTRNN, GRUCell, LowRankRNN, OptimizedLSTMCell, VanillaRNN, init_params

SMALL = {"num_steps": 12}


def _make(name):
    task, params = jaxrnn.make(name)
    if hasattr(task, "sample"):
        task, params = jaxrnn.make(name, **SMALL)
    return task, params


def _leaves_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **kw)


def _perturbed(params):
    """Params with every float leaf nudged (a new value, same structure and dtype)."""
    return jax.tree.map(lambda x: x * 1.01 if jnp.issubdtype(x.dtype, jnp.floating) else x, params)


@pytest.mark.parametrize("name", jaxrnn.registered())
def test_task_conformance(name):
    task, params = _make(name)
    key = jax.random.PRNGKey(0)
    if hasattr(task, "sample"):
        fn = lambda k, p: task.sample(k, p, 3)  # noqa: E731
    else:  # gymnax environment: reset then one step
        def fn(k, p):
            k1, k2 = jax.random.split(k)
            obs, state = task.reset(k1, p)
            space = task.action_space(p)  # plants have unbounded actions: draw inside [-1, 1]
            action = jax.random.uniform(k2, space.shape, minval=-1.0, maxval=1.0)
            return task.step(k2, state, action, p)[:4]
    jitted = jax.jit(fn)
    out = jitted(key, params)
    _leaves_close(out, fn(key, params), rtol=1e-5, atol=1e-6)
    for leaf in jax.tree.leaves(out):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32
            assert np.all(np.isfinite(leaf))
    # vmap over keys equals per-key calls (the jitted fn, just shown equal to the eager one: an
    # eager call dispatches every op of the trial loop one by one and was most of this test's time)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(fn, in_axes=(0, None))(keys, params)
    for i in range(3):
        _leaves_close(jax.tree.map(lambda x: x[i], batched), jitted(keys[i], params), rtol=1e-5, atol=1e-6)
    # vmap over params
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, _perturbed(params))
    by_params = jax.vmap(fn, in_axes=(None, 0))(key, stacked)
    _leaves_close(jax.tree.map(lambda x: x[1], by_params), jitted(key, _perturbed(params)), rtol=1e-5, atol=1e-6)
    # the calls with other keys and values above reused the compiled program
    assert jitted._cache_size() == 1


CELLS = {
    "ctrnn": CTRNN(6),
    "ctrnn-tanh-rate": CTRNN(6, activation="tanh", output="rate", alpha=0.3),
    "vanilla": VanillaRNN(6),
    "lowrank": LowRankRNN(6, rank=2),
    "gru": GRUCell(6),
    "lstm": OptimizedLSTMCell(6),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_conformance(name):
    cell = CELLS[name]
    params = init_params(cell, jax.random.PRNGKey(0), 3)
    carry = cell.initialize_carry(jax.random.PRNGKey(0), (3,))
    step = lambda p, c, x: cell.apply(p, c, x)  # noqa: E731
    x = jnp.linspace(-1, 1, 3)
    jitted = jax.jit(step)
    out = jitted(params, carry, x)
    _leaves_close(out, step(params, carry, x), rtol=1e-5, atol=1e-6)
    for leaf in jax.tree.leaves(out):
        assert leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf))
    # vmap over a batch of inputs equals per-input calls
    xs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    batched = jax.vmap(step, in_axes=(None, None, 0))(params, carry, xs)
    _leaves_close(jax.tree.map(lambda a: a[2], batched), step(params, carry, xs[2]), rtol=1e-5, atol=1e-6)
    # vmap over params (a population of cells) equals per-member calls
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    population = jax.vmap(lambda k: init_params(cell, k, 3))(keys)
    by_member = jax.vmap(step, in_axes=(0, None, None))(population, carry, x)
    alone = step(init_params(cell, keys[1], 3), carry, x)
    _leaves_close(jax.tree.map(lambda a: a[1], by_member), alone, rtol=1e-5, atol=1e-6)
    jitted(_perturbed(params), carry, x + 1)
    assert jitted._cache_size() == 1

"""The integrator closed loop's fast path (jaxrnn.rules.integrator_loop) against the general path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.models import CTRNN
from jaxrnn.rules import closed_loop
from jaxrnn.rules import integrator_loop as il
from jaxrnn.rules.training import trainable_mask
from jaxrnn.rules.controller import ControllerReadout, closed_loop_cost, default_readout, has_fast_loop, \
    sample_episodes


class GeneralReadout(ControllerReadout):
    """The default read-out under another type: ``closed_loop_cost`` takes the general path."""


CELLS = {
    "paper": CTRNN(6, alpha=1.0, activation="tanh", output="rate", use_bias=False, weight_init="ger_barak"),
    "leaky_state_bias": CTRNN(6, alpha=0.3, activation="shifted_tanh", output="state", use_bias=True,
                              weight_init="normal"),
    "relu": CTRNN(6, alpha=0.5, activation="relu", output="rate", use_bias=True),
    "linear": CTRNN(6, alpha=1.0, activation="linear", output="rate", use_bias=False, weight_init="ger_barak"),
}
TASKS = {  # (noise_std, clamp, T) with S = 8 steps
    "default": (0.0, np.inf, 8),
    "noise_clamp_short": (0.3, 1.2, 5),
}


def _setup(cell, noise_std, clamp, limit, gain=1.3, batch=4, order=2):
    plant, tp = jaxrnn.make("double-integrator", order=order, control_size=1, observation_size=1)
    tp = tp.replace(noise_std=jnp.float32(noise_std), clamp=jnp.float32(clamp),
                    max_steps_in_episode=jnp.int32(limit), init_half_width=2.0 * tp.init_half_width)
    rule = closed_loop(cell, plant, batch=batch, num_steps=8)
    params = rule.init(jax.random.PRNGKey(0), rule.default_hparams.replace(gain=jnp.float32(gain))).params
    params = jax.tree.map(lambda w: w + 0.05, params)  # bias ≠ 0, a readout that acts
    episodes = sample_episodes(jax.random.PRNGKey(3), plant, tp, batch)
    return plant, tp, params, episodes


def _close(a, b, rtol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * float(np.max(np.abs(y)) + 1e-12))


@pytest.mark.parametrize("name, task, all_args", [("paper", "default", True),
                                                  ("leaky_state_bias", "noise_clamp_short", True),
                                                  ("relu", "noise_clamp_short", False),
                                                  ("linear", "default", False)])
def test_cost_and_gradients_match_the_general_path(name, task, all_args):
    """One compiled program per path and argnums (value and pullback together). Every activation
    takes the weights' hand-written backward pass; the autodiff of x0, dt and reg_u through the
    same forward pass is checked once per task (it does not depend on the activation)."""
    cell = CELLS[name]
    plant, tp, params, episodes = _setup(cell, *TASKS[task])
    fast, general = default_readout(cell, 1), GeneralReadout(1, "normal")
    assert has_fast_loop(cell, fast, plant) and not has_fast_loop(cell, general, plant)

    def cost(head, p, x0, dt, reg_u):
        return closed_loop_cost(cell, head, plant, p, episodes._replace(x0=x0), tp.replace(dt=dt), reg_u, 8)

    args = (params, episodes.x0, tp.dt, jnp.float32(0.02))
    # cotangents on L and on its state part; the weights alone take the hand-written backward
    # pass, with x0, dt and reg_u autodiff of the same forward pass
    cotangent = (jnp.float32(1.0), jnp.float32(0.7))
    for argnums in ((0,), (0, 1, 2, 3)) if all_args else ((0,),):
        def pullback(head):
            def value_and_grads(*a):
                value, vjp = jax.vjp(lambda *d: cost(head, *(d + a[len(d):])), *a[:len(argnums)])
                return value, vjp(cotangent)
            return jax.jit(value_and_grads)(*args)
        (value, grads), (value_general, grads_general) = pullback(fast), pullback(general)
        _close(value, value_general)
        assert float(value[0]) > float(value[1]) > 0
        _close(grads, grads_general)


def test_value_and_grad_in_groups_equals_each_member_and_the_cost_gradient(monkeypatch):
    cell = CELLS["leaky_state_bias"]
    plant, tp, params, episodes = _setup(cell, 0.0, 1.5, 6)
    size = 5
    # three members to a group: groups of 3 then a remainder of 2, under vmap
    monkeypatch.setattr(il, "GROUP_BYTES", 3 * 4 * 8 * 6 * 4)
    assert il.group_size(size, 8, 6, 4) == 3
    keys = jax.random.split(jax.random.PRNGKey(5), size)
    members = jax.vmap(lambda k: jax.tree.map(lambda w: w * (1 + 0.1 * jax.random.normal(k, w.shape)), params))(keys)
    noise = jnp.array([0.0, 0.0, 0.0, 0.4, 0.0])  # one group draws no noise, one does
    tps = jax.tree.map(lambda x: jnp.broadcast_to(x, (size,) + jnp.shape(x)), tp).replace(noise_std=noise)
    episodes = jax.vmap(lambda k, t: sample_episodes(k, plant, t, 4))(keys, tps)
    mask = trainable_mask(params, ("W_rec", "b", "W_out"))  # W_in frozen

    def value_and_grad(p, e, t):
        return il.integrator_ctrnn_value_and_grad(cell, plant, p, e.x0, e.noise_keys, t, jnp.float32(0.02), 8, mask)

    batched = jax.jit(jax.vmap(value_and_grad))(members, episodes, tps)
    head = default_readout(cell, 1)
    alone = jax.jit(value_and_grad)
    by_autodiff = jax.jit(jax.value_and_grad(lambda p, e, t: closed_loop_cost(cell, head, plant, p, e, t, 0.02, 8)[0]))
    for i in range(size):
        member, ep, t = (jax.tree.map(lambda a: a[i], tree) for tree in (members, episodes, tps))  # noqa: B023
        (loss, state), grads = alone(member, ep, t)
        _close(jax.tree.map(lambda a: a[i], batched), ((loss, state), grads), rtol=1e-6)  # noqa: B023
        reference = by_autodiff(member, ep, t)
        _close((loss, grads["cell"]["params"]["W_rec"]), (reference[0], reference[1]["cell"]["params"]["W_rec"]))
        _close(grads["readout"], reference[1]["readout"])
        _close(grads["cell"]["params"]["b"], reference[1]["cell"]["params"]["b"])
        np.testing.assert_array_equal(grads["cell"]["params"]["W_in"], 0.0)
    assert not np.allclose(batched[0][0][3], batched[0][0][0])  # the noisy member differs


def test_training_updates_match_the_general_path():
    """Four closed-loop updates of a small population: the fast path's numbers are the general
    path's up to float32 rounding (SGD, clip active, member-specific episode lengths)."""
    cell = CELLS["paper"]
    plant, tp = jaxrnn.make("double-integrator")
    results = []
    for readout in (None, GeneralReadout(1, "normal")):
        rule = closed_loop(cell, plant, batch=6, num_steps=10, readout=readout)
        hp = rule.default_hparams.replace(gain=jnp.float32(1.2), reg_u=jnp.float32(0.01))
        hps = jax.tree.map(lambda x: jnp.broadcast_to(x, (3,) + jnp.shape(x)), hp)
        hps = hps.replace(task=hps.task.replace(max_steps_in_episode=jnp.array([10, 4, 7], jnp.int32)))
        state = jax.jit(jax.vmap(rule.init))(jax.random.split(jax.random.PRNGKey(0), 3), hps)
        update = jax.jit(jax.vmap(rule.update))
        for u in range(4):
            state, metrics = update(jax.random.split(jax.random.PRNGKey(u), 3), state, hps)
        results.append((state.params, metrics))
    _close(results[0], results[1], rtol=1e-4)


def test_group_size_is_cache_sized_on_cpu_and_large_on_accelerators(monkeypatch):
    """The paper's sizes (N = 100, B = 100, S = 50: 2 MB of stored rates per member): groups of
    4 within the 8 MiB CPU budget, of 2,048 within the 4 GiB accelerator budget."""
    from jaxrnn.rules import integrator_loop

    per_member = 4 * 50 * 100 * 100
    monkeypatch.setattr(integrator_loop.jax, "default_backend", lambda: "cpu")
    assert integrator_loop.group_size(4096, 50, 100, 100) == 8 * 2**20 // per_member == 4
    monkeypatch.setattr(integrator_loop.jax, "default_backend", lambda: "gpu")
    assert integrator_loop.group_size(4096, 50, 100, 100) == 4 * 2**30 // per_member == 2147
    assert integrator_loop.group_size(64, 50, 100, 100) == 64

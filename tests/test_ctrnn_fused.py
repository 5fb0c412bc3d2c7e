"""The fused CTRNN kernel (Pallas, interpreted on CPU) against autodiff of the plain time loop,
and its Triton lowering for CUDA (no GPU needed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from ctrnn_setup import setup
from jaxrnn.models import CTRNN, LinearReadout, VanillaRNN
from jaxrnn.models.ctrnn_fused import FusedKernel, ctrnn_readout_fused, padded_hidden
from jaxrnn.models.rollout import rollout_trials
from jaxrnn.population import from_dict
from jaxrnn.rules import bptt

KERNEL = FusedKernel(block_trials=16)


def _plain(cell, readout):
    return lambda p, q, x0, xs: rollout_trials(cell, p, x0, xs, readout=lambda h: readout.apply(q, h))


def test_padded_hidden():
    assert [padded_hidden(n) for n in (1, 16, 17, 50, 64, 65, 100)] == [16, 16, 32, 64, 64, 128, 128]


@pytest.mark.parametrize("activation, biases", [
    ("tanh", (True, False)), ("tanh", (False, True)), ("shifted_tanh", (True, False)), ("relu", (False, True)),
    ("linear", (True, False))], ids=["tanh-b", "tanh-b_out", "shifted_tanh-b", "relu-b_out", "linear-b"])
def test_fused_kernel_equals_autodiff_of_the_time_loop(activation, biases):
    """Outputs and the gradients the kernel forms (W_rec, W_in, b, b_out, x_0) against autodiff,
    with a hidden size that is padded (50 → 64) and a batch that is not a multiple of the tile.
    Every activation's derivative and both bias layouts (b in the cell, b_out in the read-out) are
    covered, not their full product; the gradients are jitted (eager Pallas-interpret dispatch
    was most of the cost)."""
    cell = CTRNN(50, activation=activation, use_bias=biases[0])
    readout = LinearReadout(2, use_bias=biases[1])
    args = setup(cell, readout, batch=37, steps=11, inputs=3)
    weights = jnp.linspace(-1.0, 1.0, 37 * 11 * 2).reshape(37, 11, 2)
    fused = lambda p, q, x0, xs: ctrnn_readout_fused(cell, p, q, x0, xs, kernel=KERNEL)  # noqa: E731
    plain = _plain(cell, readout)

    def loss(fn):
        def value(p, b_out, x0, xs):
            q = {"params": {**args[1]["params"], **({"b_out": b_out} if b_out is not None else {})}}
            return jnp.sum(weights * jnp.sin(fn(p, q, x0, xs)))

        return value

    b_out = args[1]["params"].get("b_out")
    np.testing.assert_allclose(fused(*args), plain(*args), rtol=1e-5, atol=1e-6)
    argnums = (0, 1, 2) if b_out is not None else (0, 2)
    got = jax.jit(jax.grad(loss(fused), argnums=argnums))(args[0], b_out, args[2], args[3])
    want = jax.jit(jax.grad(loss(plain), argnums=argnums))(args[0], b_out, args[2], args[3])
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_gradients_the_kernel_does_not_form_fall_back_to_xla():
    """Asking for W_out or the inputs' gradient takes the XLA path: still autodiff's numbers."""
    cell, readout = CTRNN(12), LinearReadout(2)
    args = setup(cell, readout, batch=5, steps=9, inputs=3)
    fused = lambda *a: jnp.sum(jnp.cos(ctrnn_readout_fused(cell, *a, kernel=KERNEL)))  # noqa: E731
    plain = lambda *a: jnp.sum(jnp.cos(_plain(cell, readout)(*a)))  # noqa: E731
    got = jax.jit(jax.grad(fused, argnums=(0, 1, 3)))(*args)
    want = jax.jit(jax.grad(plain, argnums=(0, 1, 3)))(*args)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_fused_kernel_under_vmap_equals_member_by_member():
    """A population (vmap adds the member axis to the kernel's grid), W_rec gradients only."""
    cell, readout = CTRNN(20), LinearReadout(1)
    params, readout_params, x0, xs = setup(cell, readout, batch=20, steps=8, inputs=4)
    population = jax.tree.map(lambda p: jnp.stack([p, 1.1 * p, 0.9 * p]), params)
    inputs = jnp.stack([xs, -xs, 0.5 * xs])

    def grad_w_rec(p, u):
        def loss(w):
            q = {"params": {**p["params"], "W_rec": w}}
            return jnp.sum(ctrnn_readout_fused(cell, q, readout_params, x0, u, kernel=KERNEL)[:, -1] ** 2)

        return jax.value_and_grad(loss)(p["params"]["W_rec"])

    batched = jax.jit(jax.vmap(grad_w_rec))(population, inputs)
    alone = jax.jit(grad_w_rec)
    for i in range(3):
        one = alone(jax.tree.map(lambda a: a[i], population), inputs[i])
        np.testing.assert_allclose(batched[0][i], one[0], rtol=1e-6)
        np.testing.assert_allclose(batched[1][i], one[1], rtol=1e-5, atol=1e-7)


def test_bptt_update_with_the_fused_kernel_equals_the_xla_path():
    task, task_params = jaxrnn.make("cdi", num_steps=12)
    common = dict(batch=20, num_validation_trials=24, trials_per_chunk=10)
    xla = bptt(CTRNN(10), task, **common)
    fused = bptt(CTRNN(10), task, kernel=KERNEL, **common)
    hp = xla.default_hparams.replace(task=task_params, learning_rate=jnp.float32(1e-2))
    state = xla.init(jax.random.PRNGKey(0), hp)
    key = jax.random.PRNGKey(3)
    want_state, want = jax.jit(xla.update)(key, state, hp)
    got_state, got = jax.jit(fused.update)(key, state, hp)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    np.testing.assert_allclose(got["grad_norm"], want["grad_norm"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(got_state.params), jax.tree.leaves(want_state.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    got_eval, want_eval = jax.jit(fused.evaluate)(key, state, hp), jax.jit(xla.evaluate)(key, state, hp)
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(got_eval[name], want_eval[name], rtol=1e-5)


def test_fused_kernel_lowers_to_triton_for_cuda():
    """The population gradient lowers to two Triton kernels for CUDA on a machine without a GPU
    (every primitive in the kernels has a Triton lowering; the tile grid carries the members)."""
    cell, readout = CTRNN(50), LinearReadout(1)
    kernel = FusedKernel(block_trials=64, interpret=False)
    params, readout_params, x0, xs = setup(cell, readout, batch=100, steps=30, inputs=4)

    def grad_w_rec(p, u):
        def loss(w):
            q = {"params": {**p["params"], "W_rec": w}}
            return jnp.sum(ctrnn_readout_fused(cell, q, readout_params, x0, u, kernel=kernel)[:, -1] ** 2)

        return jax.grad(loss)(p["params"]["W_rec"])

    population = jax.tree.map(lambda p: jnp.stack([p] * 3), params)
    lowered = jax.jit(jax.vmap(grad_w_rec)).trace(population, jnp.stack([xs] * 3))
    text = lowered.lower(lowering_platforms=("cuda",)).as_text()
    calls = [line for line in text.splitlines() if "custom_call @__gpu$xla.gpu.triton" in line]
    assert len(calls) == 2
    for line in calls:  # 2 tiles of 64 trials × 3 members
        assert "grid_x = 2" in line and "grid_y = 3" in line


def test_kernel_choice_errors():
    task, _ = jaxrnn.make("rdm", num_steps=5)
    with pytest.raises(ValueError, match=r"rule\.kernel = 'cuda' is not allowed: must be one of 'xla', 'pallas'"):
        bptt(CTRNN(4), task, kernel="cuda")
    with pytest.raises(ValueError, match=r"rule\.kernel = 'pallas' is not allowed: must be 'xla' for this model"):
        bptt(VanillaRNN(4), task, kernel="pallas")
    with pytest.warns(UserWarning, match="Pallas interpreter"):
        bptt(CTRNN(4), task, kernel="pallas")
    with pytest.raises(ValueError, match=r"kernel\.block_trials = 48 is not allowed: must be a power of two"):
        FusedKernel(block_trials=48)
    with pytest.raises(ValueError, match=r"kernel\.precision = 'tf32' is not allowed"):
        FusedKernel(precision="tf32")
    with pytest.raises(ValueError, match=r"rule\.kernel = 'triton' is not allowed"):
        from_dict({"task": {"name": "rdm"}, "rule": {"kernel": "triton"}})
    with pytest.raises(ValueError, match=r"rule\.kernel = 'pallas' is not allowed: must be 'xla' for this model"):
        from_dict({"task": {"name": "rdm"}, "model": {"cell": "vanilla"}, "rule": {"kernel": "pallas"}})

"""Cells and rollout against hand-written NumPy loops of their equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.models import CTRNN, LinearReadout, LowRankRNN, VanillaRNN, init_params, recurrent_matrix, rollout

F = {"tanh": np.tanh, "shifted_tanh": lambda x: 1 + np.tanh(x), "relu": lambda x: np.maximum(x, 0),
     "linear": lambda x: x}


def _numpy_loop(cell, p, x0, xs):
    x, states = np.asarray(x0, np.float64), []
    for u in np.asarray(xs, np.float64):
        if isinstance(cell, VanillaRNN):
            x = np.tanh(p["W_rec"] @ x + p["W_in"] @ u + p["b"])
        else:
            if isinstance(cell, LowRankRNN):
                w = p["U"] @ p["V"].T / (1 if cell.parametrization == "ger_barak" else cell.hidden)
            else:
                w = p["W_rec"]
            b = p.get("b", 0.0)
            x = (1 - cell.alpha) * x + cell.alpha * (w @ F[cell.activation](x) + p["W_in"] @ u + b)
        states.append(x)
    return np.stack(states)


CELLS = [CTRNN(7, alpha=0.1, activation=a) for a in F] + [
    CTRNN(7, alpha=1.0, activation="tanh", weight_init="normal"),
    VanillaRNN(7),
    LowRankRNN(7, rank=2, alpha=0.5, activation="tanh"),
    LowRankRNN(7, rank=2, alpha=1.0, activation="tanh", parametrization="ger_barak"),
]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{type(c).__name__}-{getattr(c, 'activation', '')}"
                         f"{'-' + c.parametrization if isinstance(c, LowRankRNN) else ''}")
def test_rollout_equals_python_loop(cell):
    key = jax.random.PRNGKey(3)
    params = init_params(cell, key, 3, gain=1.5)
    p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
    x0 = jax.random.normal(jax.random.PRNGKey(1), (7,))
    xs = jax.random.normal(jax.random.PRNGKey(2), (25, 3))
    states, ys = rollout(cell, params, x0, xs)
    expected = _numpy_loop(cell, p, x0, xs)
    np.testing.assert_allclose(states, expected, rtol=2e-5, atol=2e-5)
    remat_states, _ = rollout(cell, params, x0, xs, remat=True)
    np.testing.assert_allclose(remat_states, states, rtol=1e-6, atol=1e-6)
    if getattr(cell, "output", "state") == "state":
        np.testing.assert_allclose(ys, states, rtol=1e-6)


def test_ctrnn_rate_output():
    cell = CTRNN(5, activation="tanh", output="rate")
    params = init_params(cell, jax.random.PRNGKey(0), 2)
    carry, y = cell.apply(params, jnp.ones(5), jnp.ones(2))
    np.testing.assert_allclose(y, np.tanh(carry), rtol=1e-6)


@pytest.mark.parametrize("weight_init,exponent", [("mcmahan", 2), ("normal", 1)])
def test_gain_scaling_of_recurrent_init(weight_init, exponent):
    n, g = 200, 1.7
    cell = CTRNN(n, weight_init=weight_init)
    w1 = init_params(cell, jax.random.PRNGKey(0), 1, gain=1.0)["params"]["W_rec"]
    wg = init_params(cell, jax.random.PRNGKey(0), 1, gain=g)["params"]["W_rec"]
    np.testing.assert_allclose(wg, w1 * g**exponent, rtol=1e-6)
    expected_std = g**2 / n if weight_init == "mcmahan" else g / np.sqrt(n)
    np.testing.assert_allclose(np.std(wg), expected_std, rtol=0.02)
    w_in = init_params(cell, jax.random.PRNGKey(0), 50)["params"]["W_in"]
    np.testing.assert_allclose(np.std(w_in), 0.5, rtol=0.02)


def test_gain_is_traceable_under_vmap():
    cell = CTRNN(4)
    gains = jnp.array([0.5, 1.0, 2.0])
    ws = jax.vmap(lambda g: init_params(cell, jax.random.PRNGKey(0), 1, g)["params"]["W_rec"])(gains)
    np.testing.assert_allclose(ws[2], ws[1] * 4.0, rtol=1e-6)
    np.testing.assert_allclose(ws[0], ws[1] * 0.25, rtol=1e-6)


def test_low_rank_matrix_and_readout():
    cell = LowRankRNN(6, rank=2)
    params = init_params(cell, jax.random.PRNGKey(0), 1)
    u, v = params["params"]["U"], params["params"]["V"]
    np.testing.assert_allclose(recurrent_matrix(cell, params), u @ v.T / 6, rtol=1e-6)
    assert np.linalg.matrix_rank(np.asarray(recurrent_matrix(cell, params))) == 2
    head = LinearReadout(2, scale=0.1)
    hp = head.init(jax.random.PRNGKey(0), jnp.ones(6))
    h = jnp.arange(6.0)
    np.testing.assert_allclose(head.apply(hp, h), hp["params"]["W_out"] @ h, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,field",
    [({"hidden": 0}, "model.hidden"), ({"hidden": 3, "alpha": 0.0}, "model.alpha"),
     ({"hidden": 3, "alpha": 1.5}, "model.alpha"), ({"hidden": 3, "activation": "sigmoid"}, "model.activation"),
     ({"hidden": 3, "weight_init": "xavier"}, "model.weight_init")],
)
def test_cell_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CTRNN(**kwargs)

"""`load_network`: a stored member's network, rebuilt and run on new inputs.

Reference: the member's weights read straight from the Zarr store with xarray, run by a
hand-written NumPy loop of the CTRNN equation and by the model's own flax cell (`CTRNN.apply`),
one step at a time — the loop users had to write before.
"""

import numpy as np
import pytest
import xarray as xr

import jaxrnn
from jaxrnn.analysis import load_network
from jaxrnn.models import CTRNN

from toy_run import toy_run


def stored_weights(run_dir, member):
    ds = xr.open_zarr(run_dir / "results.zarr")
    take = lambda name: np.asarray(ds[name].values[member, -1], np.float64)  # noqa: E731
    return take("params.cell.W_in"), take("params.cell.W_rec"), take("params.cell.b"), take("params.readout.W_out")


def test_load_network_matches_a_numpy_loop_and_the_flax_cell():
    run_dir = toy_run()
    member = 4
    net = load_network(run_dir, member=member)
    W_in, W_rec, b, W_out = stored_weights(run_dir, member)
    assert net.spec.hidden == 6 and net.spec.inputs == 1 and net.update == 9
    task, params = jaxrnn.make("rdm", noise_std=0.3, num_steps=15)
    trials = task.sample(__import__("jax").random.PRNGKey(3), params, 5)
    u = np.asarray(trials.inputs, np.float64)
    x0 = np.random.default_rng(0).normal(0, 0.3, (5, 6))
    states, outputs = net.run(trials.inputs, x0)
    assert states.shape == (5, 15, 6) and outputs.shape == (5, 15, 1)
    # NumPy: x <- (1 - a) x + a (W_rec (1 + tanh x) + W_in u + b), y = W_out x   (BPTT: output = state)
    alpha = 0.1
    x = x0.copy()
    for t in range(15):
        x = (1 - alpha) * x + alpha * ((1 + np.tanh(x)) @ W_rec.T + u[:, t] @ W_in.T + b)
        np.testing.assert_allclose(states[:, t], x, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(outputs[:, t], x @ W_out.T, rtol=1e-4, atol=1e-5)
    # the model's own cell, stepped by hand
    cell = CTRNN(6)
    variables = {"params": {"W_in": W_in, "W_rec": W_rec, "b": b}}
    carry = x0[1]
    for t in range(15):
        carry, y = cell.apply(variables, carry, u[1, t])
    np.testing.assert_allclose(outputs[1, -1], W_out @ np.asarray(y), rtol=1e-4, atol=1e-5)
    # one trial, zero initial state by default
    single_states, _ = net.run(trials.inputs[0])
    assert single_states.shape == (15, 6)
    np.testing.assert_allclose(net.run(trials.inputs[:1], np.zeros((1, 6)))[0][0], single_states, atol=1e-6)


def test_load_network_refuses_bad_input():
    net = load_network(toy_run(), member=0, snapshot=0)
    assert net.snapshot == 0 and net.update == 0
    with pytest.raises(ValueError, match=r"inputs = .*\[T, 1\]"):
        net.run(np.zeros((15, 3)))
    with pytest.raises(ValueError, match="x0 = "):
        net.run(np.zeros((2, 15, 1)), np.zeros(6))
    with pytest.raises(ValueError, match="member = 6"):
        load_network(toy_run(), member=6)

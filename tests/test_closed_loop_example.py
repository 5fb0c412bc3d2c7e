"""The reusable pieces of examples/closed_loop_learning.py: the authors' rank-1 model and its rule."""

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import population
from jaxrnn.analysis import closed_loop as cl
from jaxrnn.models import LowRankRNN
from jaxrnn.rules.controller import sample_episodes

_PATH = Path(__file__).resolve().parents[1] / "examples" / "closed_loop_learning.py"
_SPEC = importlib.util.spec_from_file_location("closed_loop_learning", _PATH)
ex = sys.modules.setdefault(_SPEC.name, importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(ex)


def _authors_loss(trainable, m, x0, T):
    """SPECS §1.6 ``loss_function``: mean over (t < T, {pos, vel}, batch) of x² along s ← P s."""
    z, u, v = trainable
    A, B, C = (np.asarray(a) for a in ex.PLANT.matrices(ex.PLANT_PARAMS))
    P = cl.joint_matrix(A, B, C, m, u @ v.T, z)
    s0 = jnp.concatenate([x0, jnp.zeros((x0.shape[0], m.shape[0]))], axis=1)
    _, xs = jax.lax.scan(lambda s, _: (s @ P.T, s[:, :2]), s0, length=T)
    return jnp.mean(xs**2)


def test_rank1_rule_is_the_authors_sgd_step_and_spectrum_is_the_reduced_one():
    N, T, batch = 8, 6, 5
    plant, task_params = jaxrnn.make("double-integrator", init_half_width=2.0, max_steps_in_episode=T)
    rule = ex.closed_loop_rank1(LowRankRNN(N, rank=1, activation="linear"), plant, batch=batch, num_steps=T,
                                trainable=("U", "V", "W_out"))
    hp = rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(0.01 / T),
                                      max_grad_norm=jnp.float32(T), reg_u=jnp.float32(0.0))
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), hp)
    state = state.replace(params=jax.tree.map(lambda w: 4.0 * w, state.params))  # a loop that needs the clip
    key = jax.random.PRNGKey(1)
    new, metrics = jax.jit(rule.update)(key, state, hp)

    p = state.params
    m, u, v = (p["cell"]["params"][n] for n in ("W_in", "U", "V"))
    z = p["readout"]["params"]["W_out"]
    x0 = sample_episodes(key, plant, task_params, batch).x0
    loss, grads = jax.value_and_grad(_authors_loss)((z, u, v), m, x0, T)
    np.testing.assert_allclose(metrics["loss"], T * loss, rtol=1e-5)  # closed_loop sums over t
    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in grads))
    assert norm > 1.0  # the authors' clip at 1 is active
    expected = [w - 0.01 * g / norm for w, g in zip((z, u, v), grads)]
    cell_params = new.params["cell"]["params"]
    got = (new.params["readout"]["params"]["W_out"], cell_params["U"], cell_params["V"])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(new.params["cell"]["params"]["W_in"], m)  # m frozen

    # the 3 nonzero eigenvalues of the (2 + N)-dim joint map are those of the 4×4 reduced system
    A, B, C = ex.PLANT.matrices(ex.PLANT_PARAMS)
    full = np.sort_complex(np.asarray(cl.spectrum(cl.joint_matrix(A, B, C, m, u @ v.T, z)))[:3])
    sig = cl.overlaps(m, z, u, v)
    reduced = np.sort_complex(np.asarray(cl.spectrum(cl.reduced_system(*sig)))[:3])
    np.testing.assert_allclose(full, reduced, atol=1e-4)


def test_rank1_init_scales_and_population_run_stores_the_frozen_input():
    cell, readout = ex.rank1_network(400)
    params = cell.init(jax.random.PRNGKey(0), jnp.zeros(400), jnp.zeros(1))["params"]
    np.testing.assert_allclose([params["U"].std(), params["V"].std()], [0.05, 0.05], rtol=0.15)
    assert 0.048 < np.abs(params["W_in"]).max() <= 0.05
    z = readout.init(jax.random.PRNGKey(1), jnp.zeros(400))["params"]["W_out"]
    assert 0.048 < np.abs(z).max() <= 0.05

    raw = ex.rank1_config({"rank1_updates": 4, "seeds": [0, 1]}, T=5)
    raw["model"]["hidden"] = 6
    ds = population.run(population.from_dict(raw), quiet=True)
    assert ds.sizes["snapshot"] == 5 and not ds.diverged.any()
    params = ex.snapshot_params(ds, 1)
    np.testing.assert_array_equal(params["cell"]["params"]["W_in"][0], params["cell"]["params"]["W_in"][-1])
    assert not np.allclose(params["cell"]["params"]["U"][0], params["cell"]["params"]["U"][-1])
    analysis = ex.rank1_analysis(ds, 1)
    assert analysis["sig"].shape == (5, 4) and analysis["eigs"].shape == (5, 4)


def test_eigenvalue_pickers():
    eigs = np.array([[0.9 + 0.2j, 0.9 - 0.2j, 0.5, 0.0],     # pair dominant
                     [0.95, 0.8 + 0.3j, 0.8 - 0.3j, 0.0],     # real λ3 dominant
                     [1.2, 0.7, 0.3, 0.0]])                   # all real: λ3 nearest σ_vu
    lam3, lam1 = ex.third_eigenvalue(eigs, np.array([0.4, 0.9, 0.25]))
    np.testing.assert_allclose(lam3, [0.5, 0.95, 0.3])
    np.testing.assert_allclose(lam1, [abs(0.9 + 0.2j), abs(0.8 + 0.3j), 1.2])
    np.testing.assert_allclose(ex.pair_eigenvalue(eigs), [0.9 + 0.2j, 0.8 + 0.3j, 1.2])

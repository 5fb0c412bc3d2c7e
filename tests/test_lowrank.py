"""LowRankRNN's two parametrisations against independent references (SPECS §1.6–1.7).

``"ger_barak"`` is Ger & Barak's rank-1 ``P_Model``: ``W = u vᵀ``, ``u, v ~ N(0, 1/N)``,
``m ~ U(±1/√N)`` frozen, ``z ~ U(±1/√N)``. References: scipy's distributions (init), a NumPy
loop of the authors' closed loop with central finite differences (one SGD step), and NumPy
eigenvalues of the full joint matrix built from its blocks (reduced 4-D system).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxrnn
from jaxrnn import population
from jaxrnn.analysis import closed_loop as cl
from jaxrnn.models import LowRankRNN, init_params, low_rank_factors, recurrent_matrix
from jaxrnn.population.builders import build_cell
from jaxrnn.rules import closed_loop
from jaxrnn.rules.controller import default_readout, sample_episodes

A_DI = np.array([[1.0, 1.0], [0.0, 1.0]])
B_DI = np.array([[0.0], [1.0]])
C_DI = np.array([[1.0, 0.0]])


def _draws(cell, num_keys, gain=1.0):
    """Params of ``num_keys`` independent inits (cell and the rules' default readout), NumPy."""
    readout = default_readout(cell, 1)

    def one(key):
        key_cell, key_readout = jax.random.split(key)
        return init_params(cell, key_cell, 1, gain)["params"], readout.init(key_readout, jnp.zeros(cell.hidden))
    cells, readouts = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(0), num_keys))
    return jax.tree.map(np.asarray, cells), np.asarray(readouts["params"]["W_out"])


# ----------------------------------------------------------------------------- initialisation


def test_ger_barak_init_matches_the_stated_distributions():
    N, K = 64, 300  # 19 200 draws of each entry
    cell = LowRankRNN(N, parametrization="ger_barak")
    p, z = _draws(cell, K)
    u, v, m = p["U"] * np.sqrt(N), p["V"] * np.sqrt(N), p["W_in"] * np.sqrt(N)
    for x in (u, v):  # u·√N, v·√N ~ N(0, 1)
        assert stats.kstest(x.ravel(), "norm").pvalue > 1e-3
        np.testing.assert_allclose(x.var(), 1.0, rtol=0.04)
        assert abs(x.mean()) < 4 / np.sqrt(x.size)
    assert abs(np.corrcoef(u.ravel(), v.ravel())[0, 1]) < 4 / np.sqrt(u.size)  # drawn independently
    for x in (m, z * np.sqrt(N)):  # m·√N, z·√N ~ U(−1, 1): |·| ≤ 1/√N, variance 1/(3N)
        assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.999
        assert stats.kstest(x.ravel(), stats.uniform(-1, 2).cdf).pvalue > 1e-3
        np.testing.assert_allclose(x.var(), 1 / 3, rtol=0.04)
    assert z.shape == (K, 1, N)

    # the library's default parametrisation is unchanged: U, V ~ N(0, 1), readout N(0, 1/N²)
    p, z = _draws(LowRankRNN(N), K)
    np.testing.assert_allclose([p["U"].var(), p["V"].var(), z.var() * N**2], 1.0, rtol=0.04)


def test_gain_scales_u_only_and_rules_default_to_the_authors_gain():
    N = 16
    cell = LowRankRNN(N, parametrization="ger_barak")
    key = jax.random.PRNGKey(3)
    p1, pg = (init_params(cell, key, 1, g)["params"] for g in (1.0, 0.3))
    np.testing.assert_allclose(pg["U"], 0.3 * p1["U"], rtol=1e-6)
    np.testing.assert_array_equal(pg["V"], p1["V"])
    plant, _ = jaxrnn.make("double-integrator")
    assert float(closed_loop(cell, plant).default_hparams.gain) == 1.0  # u unscaled, as P_Model
    assert float(closed_loop(LowRankRNN(N), plant).default_hparams.gain) == pytest.approx(0.1)


def test_parametrization_is_validated_and_configurable():
    with pytest.raises(ValueError, match=r"model.parametrization = 'mean_field' is not allowed: must be one of "
                                         r"'normalized', 'ger_barak'"):
        LowRankRNN(8, parametrization="mean_field")
    raw = {"task": {"name": "double-integrator"}, "model": {"cell": "lowrank", "hidden": 8, "rank": 1,
                                                             "alpha": 1.0, "activation": "linear",
                                                             "parametrization": "ger_barak"},
           "rule": {"name": "closed_loop"}, "grid": {"seeds": 1}}
    config = population.from_dict(raw)
    cell = build_cell(config.members()[0].model)
    assert isinstance(cell, LowRankRNN) and cell.parametrization == "ger_barak"
    assert population.ModelConfig().parametrization == "normalized"
    assert "parametrization" in {f.name for f in dataclasses.fields(population.ModelConfig)}
    with pytest.raises(ValueError, match="model.parametrization = 'bad'"):
        population.from_dict({**raw, "model": {**raw["model"], "parametrization": "bad"}})


# ----------------------------------------------------------------------------- W and the step


@pytest.mark.parametrize("parametrization", ["ger_barak", "normalized"])
def test_recurrent_matrix_and_cell_step_against_numpy(parametrization):
    N, rank = 9, 2
    cell = LowRankRNN(N, rank=rank, alpha=0.6, activation="tanh", parametrization=parametrization)
    params = init_params(cell, jax.random.PRNGKey(1), 3, gain=1.3)
    U, V, W_in = (np.asarray(params["params"][k], np.float64) for k in ("U", "V", "W_in"))
    W = recurrent_matrix(cell, params)
    u, v = low_rank_factors(cell, params)
    if parametrization == "ger_barak":
        np.testing.assert_array_equal(W, params["params"]["U"] @ params["params"]["V"].T)  # W = u vᵀ exactly
        np.testing.assert_array_equal(u, params["params"]["U"])
        np.testing.assert_array_equal(v, params["params"]["V"])
        expected = sum(np.outer(U[:, k], V[:, k]) for k in range(rank))
    else:
        expected = U @ V.T / N
    np.testing.assert_allclose(W, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(u) @ np.asarray(v).T, expected, rtol=1e-5, atol=1e-7)
    assert np.linalg.matrix_rank(np.asarray(W)) == rank  # float32 tolerance

    x = np.random.default_rng(0).normal(size=N)
    y = np.array([0.3, -1.0, 2.0])
    new, out = cell.apply(params, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    reference = 0.4 * x + 0.6 * (expected @ np.tanh(x) + W_in @ y)
    np.testing.assert_allclose(new, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, new)


def _authors_loss(z, u, v, m, x0s, T):
    """The authors' closed loop in NumPy (SPECS §1.3/§1.6): mean over (t < T, {x, v}, batch) of x_t²,
    h_0 = 0, controller not called at t = 0, h ← u (v·h) + m y, control z·h."""
    total = 0.0
    for x0 in x0s:
        x, h = x0.copy(), np.zeros_like(m)
        for t in range(T):
            if t == 0:
                control = 0.0
            else:
                h = u * (v @ h) + m * (C_DI @ x)[0]
                control = z @ h
            total += np.mean(x**2)
            x = A_DI @ x + B_DI[:, 0] * control
    return total / (T * len(x0s))


def _finite_difference_grad(f, w, eps=1e-6):
    grad = np.zeros_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = eps
        grad[i] = (f(w + step) - f(w - step)) / (2 * eps)
    return grad


@functools.lru_cache(maxsize=None)
def _authors_rule():
    """The authors' rank-1 closed loop (N = T = 6, batch 5, u, v, z trained) and its compiled init and
    update, shared by the tests below so that it compiles once."""
    plant, task_params = jaxrnn.make("double-integrator", init_half_width=2.0, max_steps_in_episode=6)
    cell = LowRankRNN(6, rank=1, parametrization="ger_barak", use_bias=False)
    rule = closed_loop(cell, plant, batch=5, num_steps=6, trainable=("U", "V", "W_out"))
    return plant, task_params, cell, rule, jax.jit(rule.init), jax.jit(rule.update)


@functools.lru_cache(maxsize=None)
def _normalized_rule():
    """The same loop with the normalized parametrisation and the default ``trainable`` (all learn)."""
    plant = _authors_rule()[0]
    cell = LowRankRNN(6, rank=1, use_bias=False)
    rule = closed_loop(cell, plant, batch=5, num_steps=6)
    return cell, rule, jax.jit(rule.init), jax.jit(rule.update)


@pytest.mark.parametrize("scale,clipped", [(0.2, False), (1.0, True)])  # params × scale; is the clip active?
def test_one_closed_loop_step_equals_the_authors_sgd_step(scale, clipped):
    N, T, batch = 6, 6, 5
    plant, task_params, _, rule, init, update = _authors_rule()
    # The rule sums the per-step loss where the authors average it: lr 0.01/T, clip T = their SGD 0.01, clip 1.
    hp = rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(0.01 / T),
                                      max_grad_norm=jnp.float32(T), reg_u=jnp.float32(0.0))
    state = init(jax.random.PRNGKey(0), hp)
    state = state.replace(params=jax.tree.map(lambda w: scale * w, state.params))
    key = jax.random.PRNGKey(1)
    new, metrics = update(key, state, hp)

    cp = {k: np.asarray(w, np.float64)[:, 0] for k, w in state.params["cell"]["params"].items()}
    z = np.asarray(state.params["readout"]["params"]["W_out"], np.float64)[0]
    x0s = np.asarray(sample_episodes(key, plant, task_params, batch).x0, np.float64)
    flat = np.concatenate([z, cp["U"], cp["V"]])
    loss = lambda w: _authors_loss(w[:N], w[N:2 * N], w[2 * N:], cp["W_in"], x0s, T)  # noqa: E731
    grad = _finite_difference_grad(loss, flat)
    norm = np.linalg.norm(grad)
    assert (norm > 1.0) == clipped
    expected_delta = -0.01 * grad * min(1.0, 1.0 / norm)

    np.testing.assert_allclose(metrics["loss"], T * loss(flat), rtol=1e-5)
    np.testing.assert_allclose(metrics["grad_norm"], T * norm, rtol=1e-4)
    after = new.params["cell"]["params"]
    got = np.concatenate([np.asarray(new.params["readout"]["params"]["W_out"], np.float64)[0],
                          np.asarray(after["U"], np.float64)[:, 0], np.asarray(after["V"], np.float64)[:, 0]])
    resolution = 2 * np.finfo(np.float32).eps * np.abs(flat).max()  # of a difference of float32 params
    np.testing.assert_allclose(got - flat, expected_delta, rtol=1e-3, atol=resolution)
    np.testing.assert_array_equal(after["W_in"], state.params["cell"]["params"]["W_in"])  # m frozen


def test_normalized_parametrization_learns_u_v_n_times_slower():
    """Same W, same data: with ``U = √N u``, ``V = √N v`` the normalized parametrisation's SGD step
    in ``(u, v)`` is ``1/N`` of the authors' — why the example could not use it."""
    N = 6
    # the compiled loops shared with the tests above: the authors' one trains (u, v, z), the normalized
    # one everything; without a clip each parameter's SGD step is the same whichever others learn
    _, task_params, gb_cell, gb_rule, gb_init, gb_update = _authors_rule()
    n_cell, _, n_init, n_update = _normalized_rule()
    cells = {"ger_barak": gb_cell, "normalized": n_cell}
    # lr 1: steps well above float32 resolution of the params (no clip: it would rescale differently)
    hp = gb_rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(1.0),
                                         max_grad_norm=jnp.float32(np.inf))
    state = gb_init(jax.random.PRNGKey(0), hp)
    p = state.params
    scaled = {**p["cell"]["params"], "U": np.sqrt(N) * p["cell"]["params"]["U"],
              "V": np.sqrt(N) * p["cell"]["params"]["V"]}
    normalized = n_init(jax.random.PRNGKey(0), hp).replace(params={**p, "cell": {"params": scaled}})
    np.testing.assert_allclose(recurrent_matrix(cells["normalized"], normalized.params["cell"]),
                               recurrent_matrix(cells["ger_barak"], p["cell"]), rtol=1e-5, atol=1e-8)
    key = jax.random.PRNGKey(1)
    new_gb, metrics_gb = gb_update(key, state, hp)
    new_n, metrics_n = n_update(key, normalized, hp)
    np.testing.assert_allclose(metrics_n["loss"], metrics_gb["loss"], rtol=1e-5)
    for k in ("U", "V"):
        step_gb = new_gb.params["cell"]["params"][k] - p["cell"]["params"][k]
        step_n = (new_n.params["cell"]["params"][k] - scaled[k]) / np.sqrt(N)  # in u = U/√N
        assert np.linalg.norm(step_gb) > 0
        np.testing.assert_allclose(N * step_n, step_gb, rtol=1e-3, atol=1e-5 * np.abs(step_gb).max())


# ----------------------------------------------------------------------------- reduced system


def _numpy_joint(m, z, W):
    """The authors' ``create_p_matrix_from_low_rank`` (dt = 1): [[A, B zᵀ], [m C A, m C B zᵀ + W]]."""
    m, z = m[:, None], z[None, :]
    return np.block([[A_DI, B_DI @ z], [m @ C_DI @ A_DI, m @ C_DI @ B_DI @ z + W]])


@pytest.mark.parametrize("parametrization", ["ger_barak", "normalized"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reduced_system_spectrum_is_the_nonzero_spectrum_of_the_joint_matrix(parametrization, seed):
    N = 12
    cell = LowRankRNN(N, rank=1, parametrization=parametrization)
    with jax.enable_x64(True):
        key_cell, key_readout = jax.random.split(jax.random.PRNGKey(seed))
        params = init_params(cell, key_cell, 1)
        params = jax.tree.map(lambda w: 3.0 * w.astype(jnp.float64), params)  # order-one overlaps
        z = 3.0 * np.asarray(default_readout(cell, 1).init(key_readout, jnp.zeros(N))["params"]["W_out"])[0]
        U, V, m = (np.asarray(params["params"][k])[:, 0] for k in ("U", "V", "W_in"))
        W = np.outer(U, V) / (N if parametrization == "normalized" else 1)  # written out, not the library's
        full = np.linalg.eigvals(_numpy_joint(m, z, W))
        u, v = low_rank_factors(cell, params)
        sig = cl.overlaps(m, z, u[:, 0], v[:, 0])
        reduced = np.asarray(np.linalg.eigvals(np.asarray(cl.reduced_system(*sig))))
    nonzero = full[np.argsort(-np.abs(full))][:3]
    assert np.all(np.abs(full[np.argsort(-np.abs(full))][3:]) < 1e-9)  # the rest of P's spectrum is 0
    assert np.min(np.abs(nonzero)) > 1e-3
    np.testing.assert_allclose(np.sort_complex(reduced[np.argsort(-np.abs(reduced))][:3]), np.sort_complex(nonzero),
                               rtol=1e-8, atol=1e-10)
    assert np.min(np.abs(reduced)) < 1e-12  # det(λI − P_eff) = λ·p(λ)
    # the raw params are the right factors only in the authors' parametrisation
    raw = np.asarray(np.linalg.eigvals(np.asarray(cl.reduced_system(*cl.overlaps(m, z, U, V)))))
    assert np.allclose(np.sort_complex(raw), np.sort_complex(reduced)) == (parametrization == "ger_barak")


def test_rank_one_model_freezes_its_input_vector_by_default():
    """Ger & Barak's rank-1 model trains u, v and z; m stays frozen unless ``trainable`` says otherwise."""
    plant, task_params, cell, _, _, explicit_update = _authors_rule()  # trainable=("U", "V", "W_out")
    default = closed_loop(cell, plant, batch=5, num_steps=6)
    hp = default.default_hparams.replace(task=task_params)
    state = jax.jit(default.init)(jax.random.PRNGKey(0), hp)
    a, _ = jax.jit(default.update)(jax.random.PRNGKey(1), state, hp)
    b, _ = explicit_update(jax.random.PRNGKey(1), state, hp)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    np.testing.assert_array_equal(a.params["cell"]["params"]["W_in"], state.params["cell"]["params"]["W_in"])
    assert not np.array_equal(a.params["cell"]["params"]["U"], state.params["cell"]["params"]["U"])
    _, _, normalized_init, normalized_update = _normalized_rule()
    s = normalized_init(jax.random.PRNGKey(0), hp)
    n, _ = normalized_update(jax.random.PRNGKey(1), s, hp)
    assert not np.array_equal(n.params["cell"]["params"]["W_in"], s.params["cell"]["params"]["W_in"])  # all learn

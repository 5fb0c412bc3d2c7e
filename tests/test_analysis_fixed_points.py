"""Fixed-point finder against closed forms and scipy.optimize.root(method="lm")."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxrnn.analysis.fixed_point_inputs import probe_inputs, sample_states
from jaxrnn.analysis.fixed_points import FixedPoints, find_fixed_points, find_fixed_points_population
from jaxrnn.models.cells import CTRNN, init_params

METHODS = ["lm", "adam"]


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _tanh_corner() -> float:
    """The positive root of tanh(2a) = a (independent of the finder: Brent's method)."""
    return scipy.optimize.brentq(lambda a: np.tanh(2.0 * a) - a, 0.5, 1.0, xtol=1e-15)


def _grid_starts(dtype=jnp.float64):
    g = jnp.array([-1.5, -0.3, 0.0, 0.3, 1.5], dtype)
    return jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)


def _tanh_step(x, u):
    return jnp.tanh(2.0 * jnp.eye(2, dtype=x.dtype) @ x + u)


@pytest.mark.parametrize("method", METHODS)
def test_tanh_2i_has_nine_fixed_points_with_the_right_labels(method):
    # x <- tanh(2 x), coordinate-wise: x_i ∈ {−a, 0, a}; J = diag(2 (1 − x_i²)).
    fps = find_fixed_points(_tanh_step, _grid_starts(), jnp.zeros(2), method=method)
    assert isinstance(fps, FixedPoints)
    a = _tanh_corner()
    valid = np.asarray(fps.valid)
    assert valid.sum() == 9
    found = np.asarray(fps.x)[valid]
    expected = np.array([[i, j] for i in (-a, 0.0, a) for j in (-a, 0.0, a)])
    order = np.lexsort(np.round(found, 6).T[::-1])
    np.testing.assert_allclose(found[order], expected, atol=1e-5)
    zeros = np.sum(np.abs(found) < 1e-3, axis=1)  # 0: corner, 1: saddle, 2: origin
    np.testing.assert_array_equal(np.asarray(fps.num_unstable)[valid], zeros)
    np.testing.assert_array_equal(np.asarray(fps.stable)[valid], zeros == 0)
    assert np.sum(np.asarray(fps.stable)) == 4
    slopes = 2.0 * (1.0 - found**2)
    np.testing.assert_allclose(np.asarray(fps.eigvals)[valid], -np.sort(-slopes, axis=1), atol=1e-4)
    assert np.all(np.asarray(fps.q)[valid] < 1e-8)


def test_float32_starts_stay_float32():
    fps = find_fixed_points(_tanh_step, _grid_starts(jnp.float32), jnp.zeros(2), method="lm")
    assert fps.x.dtype == jnp.float32 and fps.q.dtype == jnp.float32
    assert fps.eigvals.dtype == jnp.complex64
    assert int(fps.num_valid) == 9 and int(jnp.sum(fps.stable)) == 4


def _random_network(seed: int, n: int = 4):
    rng = np.random.default_rng(seed)
    w = 2.0 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = 0.2 * rng.standard_normal(n)
    return w, b


def _ctrnn_step(params, x, u):
    w, b = params
    return 0.5 * x + 0.5 * (w @ jnp.tanh(x) + b + u[0])


@functools.lru_cache(maxsize=None)
def _ctrnn_finder(method: str):
    """One compiled per-network finder, reused across tests (params are arguments)."""

    @jax.jit
    def find(params, x0, u):
        return find_fixed_points(functools.partial(_ctrnn_step, params), x0, u, **_OPTIONS[method])

    return find


_OPTIONS = {"lm": dict(method="lm"), "adam": dict(method="adam", max_iters=1500)}


@pytest.mark.parametrize("seed", [1, 2])
def test_lm_agrees_with_scipy_root_lm(seed):
    w, b = _random_network(seed)
    x0 = np.random.default_rng(100 + seed).uniform(-3.0, 3.0, (40, 4))
    fps = _ctrnn_finder("lm")((jnp.asarray(w), jnp.asarray(b)), jnp.asarray(x0), jnp.zeros(1))

    def F(x):
        return 0.5 * x + 0.5 * (w @ np.tanh(x) + b) - x

    ref = [scipy.optimize.root(F, x0[k], method="lm", tol=1e-12) for k in range(len(x0))]
    ref_x = np.array([r.x for r in ref])
    ref_ok = np.array([r.success and 0.5 * np.sum(F(r.x) ** 2) < 1e-8 for r in ref])
    ours_x = np.asarray(fps.x)
    conv = np.asarray(fps.converged)
    # Same starts, same method: most candidates end at the same root ...
    both = ref_ok & conv
    assert both.sum() >= 30
    assert np.mean(np.linalg.norm(ours_x[both] - ref_x[both], axis=1) < 1e-6) >= 0.5
    # ... and the two sets of distinct roots are identical.
    ref_unique = []
    for p in ref_x[ref_ok]:
        if not any(np.linalg.norm(p - o) < 1e-4 for o in ref_unique):
            ref_unique.append(p)
    ours_unique = ours_x[np.asarray(fps.valid)]
    assert len(ref_unique) == len(ours_unique) == 3
    for p in ref_unique:
        assert np.min(np.linalg.norm(ours_unique - p, axis=1)) < 1e-6
    # Eigenvalues at each root equal those of a finite-difference Jacobian.
    for k in np.flatnonzero(np.asarray(fps.valid)):
        J_fd = scipy.optimize.approx_fprime(ours_x[k], lambda x: F(x) + x, 1e-7)
        ev = np.linalg.eigvals(J_fd)
        ours = np.asarray(fps.eigvals)[k]
        assert np.all(np.diff(np.abs(ours)) <= 1e-12)  # sorted by |λ|, descending
        np.testing.assert_allclose(np.sort_complex(ours), np.sort_complex(ev), atol=1e-5)
        assert bool(fps.stable[k]) == bool(np.max(np.abs(ev)) < 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_population_equals_per_network_loop(method):
    nets = [_random_network(seed) for seed in (1, 2, 3)]
    params = (jnp.asarray(np.stack([w for w, _ in nets])), jnp.asarray(np.stack([b for _, b in nets])))
    x0 = jnp.asarray(np.random.default_rng(7).uniform(-3.0, 3.0, (3, 40, 4)))
    u = jnp.zeros(1)
    pop = find_fixed_points_population(_ctrnn_step, params, x0, u, **_OPTIONS[method])
    assert pop.x.shape == (3, 40, 4) and pop.valid.shape == (3, 40) and pop.eigvals.shape == (3, 40, 4)
    for m in range(3):
        ref = _ctrnn_finder(method)((params[0][m], params[1][m]), x0[m], u)
        if method == "lm":  # members share one work queue: equal to float rounding (see helper)
            assert_same_fixed_points(pop, ref, m)
            continue
        np.testing.assert_allclose(pop.x[m], ref.x, atol=1e-9)
        np.testing.assert_allclose(pop.q[m], ref.q, rtol=1e-6, atol=1e-20)
        np.testing.assert_array_equal(pop.valid[m], ref.valid)
        np.testing.assert_array_equal(pop.stable[m], ref.stable)
    assert np.all(np.asarray(pop.num_valid) >= 1)


def assert_same_fixed_points(a: FixedPoints, b: FixedPoints, index=(), atol: float = 1e-9) -> None:
    """``a[index]`` and ``b`` found the same fixed points from the same starts, up to float rounding.

    Rows that converged (``q < tol``) agree to ``atol``; the distinct fixed points (valid rows)
    are the same points with the same stability. Which duplicate of a root is *kept* may differ:
    duplicates that reach ``q`` at the rounding floor (~1e-30 in float64) tie, and a one-ulp
    change in how a matrix–vector product is batched breaks the tie differently. Rows that did
    not converge stopped at a flat minimum of ``q`` whose location is only loosely determined.
    """
    a = jax.tree_util.tree_map(lambda v: np.asarray(v)[index], a)
    b = jax.tree_util.tree_map(np.asarray, b)
    np.testing.assert_array_equal(a.converged, b.converged)
    np.testing.assert_allclose(a.x[a.converged], b.x[b.converged], atol=atol)
    np.testing.assert_allclose(a.q[a.converged], b.q[b.converged], atol=atol**2)
    assert a.valid.sum() == b.valid.sum()
    radius = np.max(np.abs(a.eigvals), axis=-1)
    for point, stable, rho in zip(a.x[a.valid], a.stable[a.valid], radius[a.valid]):
        distance = np.linalg.norm(b.x[b.valid] - point, axis=1)
        assert distance.min() < atol
        if abs(rho - 1.0) > 1e-6:  # a marginal point's (max|λ| ≈ 1) stability is a coin flip
            assert b.stable[b.valid][distance.argmin()] == stable


def test_population_with_shared_starts_broadcasts():
    nets = [_random_network(seed) for seed in (1, 2)]
    params = (jnp.asarray(np.stack([w for w, _ in nets])), jnp.asarray(np.stack([b for _, b in nets])))
    x0 = jnp.asarray(np.random.default_rng(3).uniform(-3.0, 3.0, (40, 4)))
    pop = find_fixed_points_population(_ctrnn_step, params, x0, jnp.zeros((2, 1)), **_OPTIONS["adam"])
    for m in range(2):
        single = _ctrnn_finder("adam")((params[0][m], params[1][m]), x0, jnp.zeros(1))
        np.testing.assert_allclose(pop.x[m], single.x, atol=1e-9)
        np.testing.assert_array_equal(pop.valid[m], single.valid)


def test_ctrnn_cell_vmapped_over_probe_inputs_equals_loop():
    cell = CTRNN(hidden=8, alpha=0.1, activation="shifted_tanh")
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64),
                                    init_params(cell, jax.random.PRNGKey(0), 4, gain=1.5))
    step = lambda x, u: cell.apply(params, x, u)[0]  # noqa: E731
    inputs = probe_inputs("cdi", dtype=jnp.float64)[:3]
    x0 = sample_states(jax.random.PRNGKey(1), jnp.zeros((1, 8)), 16, noise_std=2.0)
    batched = jax.vmap(lambda u: find_fixed_points(step, x0, u))(inputs)
    for p, u in enumerate(inputs):
        ref = find_fixed_points(step, x0, u)
        np.testing.assert_allclose(batched.x[p], ref.x, atol=1e-9)
        np.testing.assert_array_equal(batched.valid[p], ref.valid)
        for k in np.flatnonzero(np.asarray(ref.valid)):  # genuine fixed points of the cell
            np.testing.assert_allclose(step(ref.x[k], u), ref.x[k], atol=1e-7)
    assert np.all(np.asarray(batched.num_valid) >= 1)


def test_duplicates_keep_the_lowest_q():
    # Every start lies in the basin of the (a, a) corner: one valid point, the best of them.
    starts = jnp.asarray(np.random.default_rng(0).uniform(0.6, 1.4, (12, 2)))
    options = dict(method="adam", max_iters=300, learning_rate=0.02, decay=0.995)
    first = find_fixed_points(_tanh_step, starts, jnp.zeros(2), **options)
    assert np.all(np.asarray(first.converged)) and int(first.num_valid) == 1
    # Reorder the starts so that the best candidate comes last: it must still be the one kept.
    order = np.argsort(-np.asarray(first.q))
    fps = find_fixed_points(_tanh_step, starts[order], jnp.zeros(2), **options)
    np.testing.assert_allclose(fps.q, first.q[order], rtol=1e-6)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(fps.valid)), [len(order) - 1])
    np.testing.assert_allclose(fps.x[-1], [_tanh_corner()] * 2, atol=1e-5)


def test_distance_outliers_are_excluded():
    # Linear contraction onto c = (20, 20): converged, but ~20 start-spreads from the centroid.
    centre = jnp.array([20.0, 20.0])
    step = lambda x, u: centre + 0.5 * (x - centre)  # noqa: E731
    starts = jnp.asarray(np.random.default_rng(0).standard_normal((8, 2)))
    fps = find_fixed_points(step, starts, jnp.zeros(1))
    assert np.all(np.asarray(fps.converged)) and int(fps.num_valid) == 0
    kept = find_fixed_points(step, starts, jnp.zeros(1), outlier_scale=None)
    assert int(kept.num_valid) == 1
    np.testing.assert_allclose(kept.x[np.flatnonzero(np.asarray(kept.valid))[0]], centre, atol=1e-8)


def test_sample_states_draws_visited_states_plus_noise():
    states = jnp.arange(2 * 5 * 3, dtype=jnp.float64).reshape(2, 5, 3)
    key = jax.random.PRNGKey(0)
    clean = np.asarray(sample_states(key, states, 50))
    rows = np.asarray(states).reshape(-1, 3)
    assert clean.shape == (50, 3)
    assert all(any(np.array_equal(s, r) for r in rows) for s in clean)
    assert len({tuple(s) for s in clean}) > 5
    constant = jnp.ones((4, 100, 3))
    noisy = np.asarray(sample_states(key, constant, 4000, noise_std=0.3))
    assert abs(np.std(noisy - 1.0) - 0.3) < 0.01 and abs(np.mean(noisy - 1.0)) < 0.01


def test_probe_inputs_match_mcmahan():
    rdm = np.asarray(probe_inputs("rdm"))
    levels = [0, .1, -.1, .2, -.2, .3, -.3, .4, -.4, .5, -.5, .6, -.6, .7, -.7, .8, -.8, .9, -.9, 1.0, -1.0]
    np.testing.assert_allclose(rdm[:, 0], 0.03 * np.array(levels), atol=1e-8)
    assert rdm.shape == (21, 1)
    for name, n in (("cdi", 2), ("ncdi-3", 3)):
        u = np.asarray(probe_inputs(name), np.float64)
        assert u.shape == (21 * n, 2 * n)
        sensory, cue = u[:, :n], u[:, n:]
        np.testing.assert_array_equal(cue.sum(1), 1.0)
        context = cue.argmax(1)
        np.testing.assert_array_equal(context, np.tile(np.arange(n), 21))
        others = sensory.copy()
        others[np.arange(len(u)), context] = 0.0
        assert np.all(others == 0.0)  # only the cued channel carries the value
        for c in range(n):
            values = sensory[context == c, c]
            assert np.all(np.diff(np.abs(values)) >= -1e-9)
            np.testing.assert_allclose(np.sort(values), np.linspace(-0.02, 0.02, 21), atol=1e-8)
    np.testing.assert_array_equal(probe_inputs("ncdi", 4), probe_inputs("ncdi-4"))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: find_fixed_points(_tanh_step, jnp.zeros(2), jnp.zeros(2)), "x0.shape"),
        (lambda: find_fixed_points(_tanh_step, jnp.zeros((3, 2)), jnp.zeros(2), method="newton"), "method"),
        (lambda: find_fixed_points(_tanh_step, jnp.zeros((3, 2)), jnp.zeros(2), tol=-1.0), "tol"),
        (lambda: find_fixed_points(lambda x, u: x[:1], jnp.zeros((3, 2)), jnp.zeros(2)), "step(x, u).shape"),
        (lambda: find_fixed_points(_tanh_step, jnp.zeros((3, 2), jnp.int32), jnp.zeros(2)), "x0.dtype"),
        (lambda: probe_inputs("ncdi"), "num_contexts"),
        (lambda: probe_inputs("cdi", 3), "num_contexts"),
        (lambda: probe_inputs("pendulum"), "task_name"),
        (lambda: sample_states(jax.random.PRNGKey(0), jnp.zeros(3), 2), "states.shape"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        call()

"""LM work queue against one-candidate-at-a-time iterations; closed-form (rate-map) path against jacfwd."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_analysis_fixed_points import _ctrnn_step, _random_network, assert_same_fixed_points

from jaxrnn.analysis import fixed_point_solvers as solvers
from jaxrnn.analysis.fixed_points import find_fixed_points, find_fixed_points_population
from jaxrnn.analysis.stored_networks import CTRNNStep
from jaxrnn.rules.hebbian import clamp_bias_units

XTOL = 1e-10  # the float64 default


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _reference_lm(F, x0, max_iters):
    """Levenberg–Marquardt for ONE candidate, written out from the spec (no vmap, no queue)."""

    def residual(x):
        return F(x) - x

    def body(carry):
        i, x, damping, _ = carry
        r = residual(x)
        J = jax.jacfwd(residual)(x)
        q = 0.5 * r @ r
        H = J.T @ J
        damping = jnp.where(i == 0, 1e-3 * jnp.max(jnp.diag(H)) + jnp.finfo(x.dtype).tiny, damping)
        delta = -jnp.linalg.solve(H + damping * jnp.eye(len(x)), J.T @ r)
        r_new = residual(x + delta)
        q_new = 0.5 * r_new @ r_new
        accept = jnp.isfinite(q_new) & (q_new < q)
        small = jnp.linalg.norm(delta) <= XTOL * (jnp.linalg.norm(x) + XTOL)
        x = jnp.where(accept, x + delta, x)
        damping = jnp.clip(jnp.where(accept, damping / 3, damping * 4), jnp.finfo(x.dtype).tiny, 1 / jnp.finfo(x.dtype).eps)
        q_now = jnp.where(accept, q_new, q)
        return i + 1, x, damping, (q_now == 0) | small | ~jnp.isfinite(q)

    carry = (0, x0, jnp.ones((), x0.dtype), False)
    return jax.lax.while_loop(lambda c: (c[0] < max_iters) & ~c[3], body, carry)[1]


@pytest.mark.parametrize("max_iters", [3, 200])
def test_queue_equals_one_candidate_at_a_time(max_iters):
    w, b = _random_network(7, n=6)  # 3 fixed points; 23 % of the starts end on no root
    params = (jnp.asarray(w), jnp.asarray(b))
    F = lambda x: _ctrnn_step(params, x, jnp.zeros(1))  # noqa: E731
    x0 = jnp.asarray(np.random.default_rng(0).uniform(-3.0, 3.0, (300, 6)))
    reference = jax.jit(lambda s: _reference_lm(F, s, max_iters))
    expected = np.stack([np.asarray(reference(s)) for s in x0])
    results = {lanes: find_fixed_points(lambda x, u: F(x), x0, jnp.zeros(1), max_iters=max_iters, lanes=lanes)
               for lanes in (7, 64, 4096)}  # 7 lanes: every lane is refilled ~40 times
    for fps in results.values():
        converged = np.asarray(fps.converged)
        # Each candidate took exactly its own iterations: the same x to float rounding (a
        # non-converged row sits on a flat minimum of q, where rounding moves it further).
        np.testing.assert_allclose(np.asarray(fps.x)[converged], expected[converged], atol=1e-12)
        np.testing.assert_allclose(np.asarray(fps.x), expected, atol=1e-6 if max_iters > 3 else 1e-12)
        assert_same_fixed_points(fps, results[4096])
    if max_iters == 3:  # 3 iterations end nowhere near a root: the queue did not cut any candidate short
        assert not np.any(np.asarray(results[7].converged))
    else:
        assert np.mean(np.asarray(results[7].converged)) > 0.7 and int(results[7].num_valid) == 3


def _ctrnn_params(seed: int, n: int, m: int = 2, gain: float = 1.5) -> dict:
    rng = np.random.default_rng(seed)
    return {"W_rec": jnp.asarray(gain * rng.standard_normal((n, n)) / np.sqrt(n)),
            "W_in": jnp.asarray(rng.standard_normal((n, m))), "b": jnp.asarray(0.1 * rng.standard_normal(n))}


STEPS = [CTRNNStep("tanh", 0.1), CTRNNStep("shifted_tanh", 0.2), CTRNNStep("tanh", 0.1, clamp=True)]


@pytest.mark.parametrize("step", STEPS, ids=["tanh", "shifted_tanh", "hebbian_clamp"])
def test_rate_map_is_the_step_and_one_iteration_matches_jacfwd(step):
    params = _ctrnn_params(0, 12)
    u = jnp.array([0.3, -0.2])
    rate = step.rate_map(params, u)
    xs = jnp.asarray(np.random.default_rng(1).uniform(-2.0, 2.0, (20, 12)))
    np.testing.assert_allclose(jax.vmap(rate)(xs), jax.vmap(lambda x: step(params, x, u))(xs), atol=1e-14)
    if step.clamp:
        np.testing.assert_array_equal(jax.vmap(rate)(xs), jax.vmap(clamp_bias_units)(jax.vmap(rate)(xs)))
    # J = A(WD − I), JᵀJ from WᵀA²W, Cholesky  vs  jacfwd, J.T @ J, LU: the same step.
    structured = jax.vmap(solvers.rate_lm_iteration(XTOL, 0.0), in_axes=(None, 0, None, None))
    generic = jax.vmap(solvers.lm_iteration(lambda _, x: step(params, x, u), XTOL, 0.0), in_axes=(None, 0, None, None))
    for damping, first in ((1e-2, False), (1.0, True), (1e-6, False)):
        x_s, d_s, done_s = structured(solvers.rate_problem(rate), xs, damping, first)
        x_g, d_g, done_g = generic(None, xs, damping, first)
        np.testing.assert_allclose(x_s, x_g, atol=1e-10)
        np.testing.assert_allclose(d_s, d_g, rtol=1e-10)
        np.testing.assert_array_equal(done_s, done_g)
        assert np.any(np.asarray(x_s) != np.asarray(xs))  # steps were taken


@pytest.mark.parametrize("step", STEPS, ids=["tanh", "shifted_tanh", "hebbian_clamp"])
def test_structured_population_equals_generic(step):
    members = [_ctrnn_params(seed, 12) for seed in (2, 3, 4)]
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *members)
    x0 = jnp.asarray(np.random.default_rng(5).uniform(-5.0, 5.0, (3, 60, 12)))
    u = jnp.array([[0.0, 0.0], [0.3, 0.0], [0.0, -0.3]])
    fast = find_fixed_points_population(step, params, x0, u, lanes=32)
    slow = find_fixed_points_population(step, params, x0, u, use_rate_map=False)
    assert np.sum(np.asarray(fast.valid)) >= 3
    for m in range(3):
        # Roots with a near-singular Jacobian converge linearly: x known to ~1e-8 there.
        assert_same_fixed_points(fast, jax.tree_util.tree_map(lambda a, m=m: a[m], slow), m, atol=1e-6)


@dataclasses.dataclass(frozen=True, eq=False)
class _Bound:
    """One member of a CTRNNStep population as a ``step(x, u)`` with the ``rate_map(u)`` hook."""

    step: CTRNNStep
    params: dict

    def __call__(self, x, u):
        return self.step(self.params, x, u)

    def rate_map(self, u):
        return self.step.rate_map(self.params, u)


def test_structured_population_queue_equals_per_network_loop():
    step = CTRNNStep("shifted_tanh", 0.1)
    members = [_ctrnn_params(seed, 10) for seed in (6, 7, 8, 9)]
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *members)
    x0 = jnp.asarray(np.random.default_rng(9).uniform(-5.0, 5.0, (50, 10)))  # shared starts
    u = jnp.array([0.2, 0.1])
    pop = find_fixed_points_population(step, params, x0, u, lanes=16, eigvals_of="valid")
    assert pop.x.shape == (4, 50, 10) and pop.eigvals.shape == (4, 50, 10)
    for m, member in enumerate(members):
        alone = find_fixed_points(_Bound(step, member), x0, u, eigvals_of="valid")
        assert_same_fixed_points(pop, alone, m)
    assert np.all(np.asarray(pop.num_valid) >= 1)


def test_eigvals_of_valid_rows_only():
    w, b = _random_network(1)
    step = lambda x, u: _ctrnn_step((jnp.asarray(w), jnp.asarray(b)), x, u)  # noqa: E731
    x0 = jnp.asarray(np.random.default_rng(2).uniform(-3.0, 3.0, (40, 4)))
    every = find_fixed_points(step, x0, jnp.zeros(1))
    valid_only = find_fixed_points(step, x0, jnp.zeros(1), eigvals_of="valid")
    valid = np.asarray(every.valid)
    assert valid.sum() == 3 and np.array_equal(np.asarray(valid_only.valid), valid)
    np.testing.assert_allclose(valid_only.eigvals[valid], every.eigvals[valid], atol=1e-12)
    assert np.all(np.isnan(np.asarray(valid_only.eigvals)[~valid]))
    np.testing.assert_array_equal(valid_only.stable, every.stable)
    np.testing.assert_array_equal(valid_only.num_unstable[valid], every.num_unstable[valid])


class _BadHook:
    def __call__(self, params, x, u):
        return CTRNNStep()(params, x, u)

    def rate_map(self, params, u):
        rate = CTRNNStep().rate_map(params, u)
        return dataclasses.replace(rate, alpha=jnp.asarray(0.1))  # scalar alpha: not allowed


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: find_fixed_points_population(_BadHook(), p, jnp.zeros((2, 3, 4)), jnp.zeros(2)),
         "step.rate_map(...).alpha.shape"),
        (lambda p: find_fixed_points_population(CTRNNStep(), p, jnp.zeros((2, 3, 4)), jnp.zeros(2), lanes=0), "lanes"),
        (lambda p: find_fixed_points_population(CTRNNStep(), p, jnp.zeros((2, 3, 4)), jnp.zeros(2), eigvals_of="some"),
         "eigvals_of"),
        (lambda p: find_fixed_points_population(CTRNNStep(), p, jnp.zeros((2, 3, 4)), jnp.zeros(2), lane=4), "options"),
        (lambda p: find_fixed_points_population(CTRNNStep(), p, jnp.zeros((3, 3, 4)), jnp.zeros(2)), "x0.shape"),
    ],
)
def test_bad_input_names_the_field(call, field):
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[_ctrnn_params(s, 4) for s in (0, 1)])
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        call(params)

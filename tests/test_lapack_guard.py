"""jaxrnn.lapack_guard: the HLO audit, the ordering helpers, and the analyses it keeps safe.

The hazard (two unordered heavy batched LAPACK calls deadlock XLA:CPU's 2-thread pool) was
measured on this machine; here the audit is checked against programs whose answer is known by
construction, the helpers against the plain computation, and the analyses that batch linear
algebra are audited at any size.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn import lapack_guard
from jaxrnn.lapack_guard import LapackCall, after, audit, concurrent_lapack_calls, ordered_map

N = 50


def _chol(x):
    return jnp.linalg.cholesky(x @ jnp.swapaxes(x, -1, -2) + N * jnp.eye(N))


def _pair(shape=(64, N, N)):
    a = jax.random.normal(jax.random.key(0), shape)
    return a, a + 1.0


@pytest.mark.parametrize("batch, cost, threads, expected", [
    (64, 125_000, 2, True),      # 50×50 Cholesky: chunk max(32, 2) = 32 < 64
    (1, 125_000, 2, False),      # one matrix never splits
    (64, 125_000, 1, False),     # a one-thread pool never splits
    (3125, 64, 2, False),        # 4×4: work 2e5 reached, but chunk max(1563, 3125) = batch
    (3126, 64, 2, True),         # chunk 3125 < 3126
    (8, 1000, 2, False),         # 10×10 × 8: work 8e3 < 2e5
])
def test_splits_follows_jaxlib_chunk_rule(batch, cost, threads, expected):
    assert LapackCall("c/x", "lapack_spotrf_ffi", batch, cost).splits(threads) is expected


def test_audit_finds_two_unordered_factorisations():
    a, b = _pair()
    pairs = audit(lambda a, b: _chol(a).sum() + _chol(b).sum(), a, b, threads=2)
    assert len(pairs) == 1
    first, second = pairs[0]
    assert first.target == second.target == "lapack_spotrf_ffi"
    assert (first.batch, first.cost) == (64, N * N * N)


def test_audit_accepts_ordered_and_small_calls():
    a, b = _pair()
    chained = lambda a, b: (lambda c: c.sum() + _chol(after(b, c)).sum())(_chol(a))  # noqa: E731
    assert audit(chained, a, b, threads=2) == []
    small_a, small_b = _pair((2, 8, 8))  # 2 × 512 FLOP: runs inline, never blocks
    assert audit(lambda a, b: jnp.linalg.qr(a)[0].sum() + jnp.linalg.qr(b)[0].sum(), small_a, small_b,
                 threads=2) == []
    hlo = jax.jit(lambda a, b: jnp.linalg.qr(a)[0].sum() + jnp.linalg.qr(b)[0].sum()).lower(
        small_a, small_b).compile().as_text()
    # each QR is geqrf then orgqr: 2 × 2 unordered cross pairs when size is ignored
    assert len(concurrent_lapack_calls(hlo, 2, any_size=True)) == 4


def test_audit_sees_calls_inside_loops():
    a, b = _pair()

    def loop(x):
        body = lambda c: (c[0] + 1, jnp.linalg.solve(c[1] + N * jnp.eye(N), c[1]))  # noqa: E731
        return jax.lax.while_loop(lambda c: c[0] < 2, body, (0, x))[1].sum()

    pairs = audit(lambda a, b: loop(a) + _chol(b).sum(), a, b, threads=2)
    assert {p.target for pair in pairs for p in pair} == {"lapack_sgetrf_ffi", "lapack_spotrf_ffi"}
    assert audit(lambda a, b: (lambda s: s + _chol(after(b, s)).sum())(loop(a)), a, b, threads=2) == []


def test_after_returns_value_unchanged_and_differentiates():
    value = {"x": jnp.array([1.5, -0.0, 3.0]), "n": jnp.array([2, 7]), "mask": jnp.array([True, False])}
    for dependency in (jnp.ones(3), jnp.array([jnp.nan]), jnp.array([jnp.inf, 1.0]), jnp.array([1 + 2j])):
        out = jax.jit(after)(value, dependency)
        np.testing.assert_array_equal(out["x"], [1.5, 0.0, 3.0])
        np.testing.assert_array_equal(out["n"], [2, 7])
        np.testing.assert_array_equal(out["mask"], [True, False])
        assert out["n"].dtype == value["n"].dtype and out["mask"].dtype == jnp.bool_
    grad_x, grad_d = jax.grad(lambda x, d: jnp.sum(after(x, d) ** 2), argnums=(0, 1))(jnp.arange(3.0), jnp.ones(2))
    np.testing.assert_array_equal(grad_x, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(grad_d, [0.0, 0.0])
    assert after(value["x"]) is value["x"]


@pytest.mark.parametrize("n, batch_size", [(10, 3), (9, 3), (2, 5), (7, None)])
def test_ordered_map_equals_lax_map(n, batch_size):
    xs = (jnp.arange(n * 2.0).reshape(n, 2), jnp.arange(n))
    fn = lambda x: (x[0] * 2.0 + x[1], x[1] - 1)  # noqa: E731
    ours = ordered_map(fn, xs, batch_size)
    ref = jax.lax.map(fn, xs, batch_size=batch_size)
    for o, r in zip(ours, ref):
        np.testing.assert_array_equal(o, r)


def test_ordered_map_has_no_concurrent_remainder():
    xs = jax.random.normal(jax.random.key(1), (10, 32, N, N))
    fn = lambda x: _chol(x).sum()  # noqa: E731
    plain = jax.jit(lambda xs: jax.lax.map(fn, xs, batch_size=3)).lower(xs).compile().as_text()
    assert concurrent_lapack_calls(plain, 2)  # the remainder's vmap runs beside the loop
    assert audit(lambda xs: ordered_map(fn, xs, batch_size=3), xs, threads=2) == []


def test_ordered_factorisations_do_not_hang():
    """The two-Cholesky program hangs within a few calls unordered; ordered, 300 calls finish."""
    script = textwrap.dedent(f"""
        import jax, jax.numpy as jnp
        from jaxrnn.lapack_guard import after
        def chol(x):
            return jnp.linalg.cholesky(x @ jnp.swapaxes(x, -1, -2) + {N} * jnp.eye({N}))
        g = jax.jit(lambda a, b: (lambda c: c.sum() + chol(after(b, c)).sum())(chol(a)))
        a = jax.random.normal(jax.random.key(0), (64, {N}, {N}))
        for i in range(300):
            g(a + i, a).block_until_ready()
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "done", result.stderr[-2000:]


# --- the analyses that batch linear algebra, audited at any size ---------------------------------


def test_similarity_programs_order_their_decompositions():
    from jaxrnn.analysis import similarity

    Xs = jax.random.normal(jax.random.key(2), (5, 40, 6))
    hlo = jax.jit(jax.vmap(similarity.svcca)).lower(Xs[:3], Xs[1:4]).compile().as_text()
    assert concurrent_lapack_calls(hlo, 2, any_size=True) == []
    rows, cols = np.triu_indices(5, k=1)
    prepare, compare = similarity._named_metric("svcca", (("epsilon", similarity.EPSILON),
                                                           ("num_components", None), ("variance", 0.95)))
    hlo = similarity._pairwise_upper.lower(prepare, compare, Xs, jnp.asarray(rows), jnp.asarray(cols),
                                           3).compile().as_text()
    assert concurrent_lapack_calls(hlo, 2, any_size=True) == []


def test_pairwise_svcca_at_population_scale_finishes():
    """40 networks × 50 units: before the fix its first call hung on 2 cores (eighs of 64 pairs
    in the loop beside the remainder's, and the two per pair unordered)."""
    script = textwrap.dedent("""
        import jax
        from jaxrnn.analysis import similarity
        Xs = jax.random.normal(jax.random.key(0), (40, 200, 50))
        for i in range(3):
            similarity.pairwise("svcca", Xs + i * 1e-3).block_until_ready()
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.stdout.strip() == "done", result.stderr[-2000:]


def test_fixed_point_spectra_wait_for_the_solver_on_linear_maps():
    from jaxrnn.analysis import find_fixed_points

    A = 0.5 * jnp.eye(4) + 0.1
    step = lambda x, u: A @ x + u  # noqa: E731  (its Jacobian does not depend on x)
    x0 = jax.random.normal(jax.random.key(3), (6, 4))
    fps = lambda x0: find_fixed_points(step, x0, jnp.zeros(4), method="lm").eigvals  # noqa: E731
    hlo = jax.jit(fps).lower(x0).compile().as_text()
    assert "geev" in hlo and "getrf" in hlo
    assert concurrent_lapack_calls(hlo, 2, any_size=True) == []


def test_policy_population_analysis_runs_its_linear_algebra_in_order():
    import jaxrnn
    from jaxrnn.analysis import policy
    from jaxrnn.models import VanillaRNN
    from jaxrnn.models.actor_critic import ActorCritic

    env, env_params = jaxrnn.make("pendulum-po")
    net = ActorCritic(VanillaRNN(3), env.observation_size, 1, features=4, num_layers=0)
    params = jax.tree.map(lambda x: jnp.stack([jnp.stack([x] * 3)] * 2), net.init(jax.random.key(0)))  # [P=2, S=3]
    keys = jax.random.split(jax.random.key(1), 2)
    analyze = lambda p, k: policy.analyze_population(  # noqa: E731
        net, env, p, k, env_params, snapshot_batch=2, num_episodes=2, num_steps=20, num_starts=4)
    hlo = jax.jit(analyze).lower(params, keys).compile().as_text()
    assert {"lapack_sgesdd_ffi", "lapack_sgeev_ffi"} <= set(lapack_guard._TARGET.findall(hlo))
    assert concurrent_lapack_calls(hlo, 2, any_size=True) == []


def test_module_docstring_names_the_threshold():
    assert lapack_guard.MIN_WORK_PER_TASK == 200_000
    assert "2·10⁵" in lapack_guard.__doc__

"""The analyses trace every matrix product at full float32 precision (no TF32 on GPUs)."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from jaxrnn.analysis import population_svcca
from jaxrnn.analysis.fixed_points import _find
from jaxrnn.analysis.stored_networks import CTRNNStep
from jaxrnn.analysis.precision import full_precision


def _dot_precisions(jaxpr) -> list:
    """The ``precision`` of every ``dot_general`` in ``jaxpr``, nested jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _dot_precisions(getattr(sub, "jaxpr", sub))
    return found


HIGHEST = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def test_full_precision_sets_highest_on_products_and_keeps_values():
    a, b = np.random.default_rng(0).normal(size=(2, 5, 5)).astype(np.float32)
    plain = jax.make_jaxpr(lambda x, y: x @ y)(a, b).jaxpr
    wrapped = jax.make_jaxpr(full_precision(lambda x, y: x @ y))(a, b).jaxpr
    assert _dot_precisions(plain) == [None]
    assert _dot_precisions(wrapped) == [HIGHEST]
    np.testing.assert_allclose(full_precision(jnp.matmul)(a, b), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


def test_fixed_point_finder_and_svcca_products_are_all_highest():
    rng = np.random.default_rng(1)
    N, P, K = 6, 2, 4
    params = {"W_rec": jnp.asarray(rng.normal(size=(P, N, N)) / np.sqrt(N), jnp.float32),
              "W_in": jnp.asarray(rng.normal(size=(P, N, 1)), jnp.float32),
              "b": jnp.zeros((P, N), jnp.float32)}
    x0 = jnp.asarray(rng.normal(size=(P, K, N)), jnp.float32)
    u = jnp.zeros((P, 1), jnp.float32)
    step = CTRNNStep("tanh", 0.1, False)
    options = dict(population=True, method="lm", tol=1e-8, max_iters=5, learning_rate=1e-2, decay=1.0,
                   stop_tol=1e-12, unique_tol=1e-2, outlier_scale=None, xtol=1e-10, lanes=8, use_rate_map=True,
                   eigvals_of="valid")
    finder = jax.make_jaxpr(lambda p, x, v: _find(step, p, x, v, **options))(params, x0, u).jaxpr
    Xs = jnp.asarray(rng.normal(size=(3, 20, N)), jnp.float32)
    U, s, kept, _ = population_svcca._reduce(Xs, 0.95)
    rows, cols = np.triu_indices(3, k=1)
    distances = jax.make_jaxpr(lambda *a: population_svcca._distances(*a, k_max=2, batch_size=2))(
        U, s, kept, rows, cols, jnp.float32(1e-10)).jaxpr
    for jaxpr in (finder, distances):
        precisions = _dot_precisions(jaxpr)
        assert precisions and all(p == HIGHEST for p in precisions), precisions

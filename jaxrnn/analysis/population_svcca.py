"""All-pairs SVCCA distances of a population in one Gram matrix (principal angles).

:func:`jaxrnn.analysis.similarity.svcca` per pair costs three ``[N, S] × [S, N]`` covariance
products. For the SVD-reduced activity the CCA has a closed form, so the ``[K, K]`` matrix
needs one SVD per network and one Gram matrix of the kept left singular vectors:

    per network (as svcca):  X − mean = U diag(s) Vᵀ,  k = smallest k with Σ_{i<k} s_i² ≥ variance·Σ s²
                             σ_i = s_i / s_1 (i < k)
    google/svcca cca_core on A = U_k diag(s_k) (columns orthonormal, centred):
        Σaa/max|Σaa| = diag(σ²),  Σab/√(max|Σaa| max|Σbb|) = diag(σ_a) U_aᵀU_b diag(σ_b)
        M = diag(σ_a/√(σ_a² + ε)) · U_aᵀ U_b · diag(σ_b/√(σ_b² + ε))       (dims with σ² < ε dropped)
    ρ = singular values of M (min(k_a, k_b) of them);    distance = 1 − mean ρ

i.e. the cosines of the principal angles between the kept subspaces, up to the ``ε = 1e-10``
ridge of ``cca_core`` (McMahan et al. 2021, ``svcca_analysis.py``). Equal to
``pairwise("svcca", Xs)`` to float32 rounding (tests/test_topology_probes.py); cost
``K`` SVDs + ``S·(K k_max)²`` for the Gram + ``K²/2`` SVDs of ``k_max × k_max`` blocks, where
``k_max`` is the largest kept rank (small: 95 % variance of decision-task activity is a few
dimensions), instead of ``K²/2 · 3 S N²``. Products run at full float32 precision on every
backend (:mod:`jaxrnn.analysis.precision`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.precision import full_precision
from jaxrnn.analysis.similarity import EPSILON
from jaxrnn.lapack_guard import ordered_map


@functools.partial(jax.jit, static_argnames=("variance",))
@full_precision
def _reduce(Xs: jax.Array, variance: float):
    """``U[K, S, r]``, ``s[K, r]`` of the centred activity, kept ranks ``k[K]``, finite mask ``[K]``."""
    finite = jnp.all(jnp.isfinite(Xs), axis=(1, 2))
    Xs = jnp.where(finite[:, None, None], Xs, 0.0)
    centred = Xs - jnp.mean(Xs, axis=1, keepdims=True)
    U, s, _ = jax.vmap(lambda X: jnp.linalg.svd(X, full_matrices=False))(centred)
    norm = jnp.sqrt(jnp.sum(s * s, axis=-1, keepdims=True))
    fraction = jnp.cumsum((s / jnp.where(norm > 0, norm, 1.0)) ** 2, axis=-1)
    kept = jnp.where(norm[:, 0] > 0, 1 + jnp.sum(fraction[:, :-1] < variance, axis=-1), 0)
    return U, s, kept, finite


@functools.partial(jax.jit, static_argnames=("k_max", "batch_size"))
@full_precision
def _distances(U, s, kept, rows, cols, epsilon, k_max, batch_size):
    U, s = U[..., :k_max], s[..., :k_max]
    K, S, k = U.shape
    sigma = s / jnp.where(s[:, :1] > 0, s[:, :1], 1.0)
    keep = jnp.arange(k)[None, :] < kept[:, None]
    weight = jnp.where(keep & (sigma * sigma >= epsilon), sigma / jnp.sqrt(sigma * sigma + epsilon), 0.0)
    flat = jnp.swapaxes(U, 0, 1).reshape(S, K * k)
    gram = (flat.T @ flat).reshape(K, k, K, k)
    count = jnp.sum(weight > 0, axis=-1)

    def pair(ij):
        i, j = ij[0], ij[1]
        M = weight[i][:, None] * gram[i, :, j, :] * weight[j][None, :]
        rho = jnp.linalg.svd(M, compute_uv=False)
        n = jnp.minimum(count[i], count[j])
        return jnp.where(n > 0, 1.0 - jnp.sum(rho) / jnp.maximum(n, 1), 1.0)

    return ordered_map(pair, jnp.stack([rows, cols], axis=-1), batch_size=batch_size)


def svcca_distances(Xs: jax.Array, variance: float = 0.95, epsilon: float = EPSILON, *,
                    batch_size: int = 1024) -> jax.Array:
    """``[K, K]`` SVCCA distances ``1 − mean ρ`` of the population ``Xs[K, S, N]``.

    Args:
      Xs: activity ``[K, samples, neurons]`` (networks zero-padded to a common ``N``).
      variance: fraction of ``Σ s²`` each network keeps (McMahan: 0.95).
      epsilon: ``cca_core``'s ridge / cut-off (1e-10).
      batch_size: pairs whose ``k_max × k_max`` SVDs run together.

    Returns:
      symmetric ``[K, K]`` distances with a zero diagonal (NaN rows for non-finite activity).

    Not jittable as a whole: ``k_max`` is read from the data between two compiled steps.
    """
    Xs = jnp.asarray(Xs)
    if Xs.ndim != 3 or Xs.shape[1] < 2:
        fail("Xs.shape", Xs.shape, "[K, samples, neurons] with at least 2 samples")
    check_range("variance", variance, 0.0, 1.0, low_open=True)
    check_range("epsilon", epsilon, 0.0)
    check_range("batch_size", batch_size, 1, integer=True)
    Xs = Xs.astype(jnp.result_type(Xs.dtype, jnp.float32))
    K = Xs.shape[0]
    U, s, kept, finite = _reduce(Xs, float(variance))
    kept, finite = np.asarray(kept), np.asarray(finite)
    rows, cols = np.triu_indices(K, k=1)
    D = np.zeros((K, K), np.float32)
    if rows.size:
        k_max = max(int(kept.max()), 1)
        d = np.asarray(_distances(U, s, jnp.asarray(kept), jnp.asarray(rows), jnp.asarray(cols),
                                  jnp.asarray(epsilon, s.dtype), k_max, min(int(batch_size), rows.size)))
        D[rows, cols] = d
        D[cols, rows] = d
    D[~finite, :] = np.nan
    D[:, ~finite] = np.nan
    return jnp.asarray(D)

"""Representational distances between activity matrices (0 = same representation).

Activity matrices are ``[samples, neurons]`` (the package's convention: rows are time steps ×
conditions, columns are units); two networks are compared on the same samples, and may have
different numbers of neurons. Every function is written for one pair, has fixed shapes (the
SVCCA rank varies per network through masks, not slicing), and so jits and vmaps;
:func:`pairwise` builds the ``[K, K]`` matrix of a population on device.

- :func:`svcca` — McMahan et al. (NeurIPS 2021, ``svcca_analysis.py``) after Raghu et al.
  (2017, google/svcca ``cca_core.get_cca_similarity``)::

      per network: centre each neuron; SVD  Xc = U diag(s) Vᵀ;
                   k = smallest k with Σ_{i<k} s_i² ≥ variance · Σ s_i²;   A = U[:, :k] diag(s[:k])
      CCA(A, B) as cca_core: Σ = cov([A, B]) (1/(S−1)); Σxx /= max|Σxx|, Σyy /= max|Σyy|,
                   Σxy /= √(max|Σxx| max|Σyy|); drop dims with diag < ε; Σxx += εI, Σyy += εI;
                   ρ = singular values of Σxx^{-1/2} Σxy Σyy^{-1/2}   (min(kx, ky) of them)
      distance = 1 − mean(ρ)       (mean of ALL canonical correlations, ε = 1e-10)

  ``variance = 1.0`` keeps every direction with non-negligible variance: plain mean-CCA,
  invariant to any invertible linear map of either side. ``num_components`` fixes ``k``
  instead (google's tutorial used 20; an earlier revision of McMahan's script used 2).
- :func:`cka` — linear CKA (Kornblith et al. 2019) on centred activity,
  ``CKA = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)``; distance ``1 − CKA``.
- :func:`procrustes` — angular Procrustes distance (Williams et al. 2021): centre, scale to
  unit Frobenius norm, zero-pad to equal widths, ``θ = arccos ‖XᵀY‖_*`` (nuclear norm),
  evaluated as ``2 arcsin(‖X − Y R*‖_F / 2)`` with the optimal rotation ``R*`` — the same
  angle, but accurate near 0 where ``arccos`` loses half the digits.

A representation with zero variance (constant activity) has no defined similarity; it gets
the maximal distance (1 for SVCCA and CKA — google's ``cca_core`` returns all-zero
correlations likewise — and π/2 for Procrustes), never a NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.lapack_guard import after, ordered_map

EPSILON = 1e-10


def _check_pair(X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    X = jnp.asarray(X)
    Y = jnp.asarray(Y)
    for name, A in (("X", X), ("Y", Y)):
        if A.ndim != 2:
            fail(f"{name}.shape", A.shape, "[samples, neurons]",
                 "for a population use pairwise or jax.vmap")
    if X.shape[0] != Y.shape[0]:
        fail("Y.shape", Y.shape, f"the same number of samples as X.shape = {X.shape}")
    if X.shape[0] < 2:
        fail("X.shape", X.shape, "[samples, neurons] with at least 2 samples")
    dtype = jnp.result_type(X.dtype, Y.dtype, jnp.float32)
    return X.astype(dtype), Y.astype(dtype)


def _centre(X: jax.Array) -> jax.Array:
    return X - jnp.mean(X, axis=0, keepdims=True)


def svd_reduce(X: jax.Array, variance: float = 0.95, num_components: int | None = None) -> tuple[jax.Array, jax.Array]:
    """The SV step of SVCCA for one network: ``(A[S, r], keep[r])``, ``r = min(S, N)``.

    ``A = U diag(s)`` are the centred activity's principal-component scores (McMahan's
    ``svacts = diag(s[:k]) V[:k]``, transposed to ``[samples, dims]``); ``keep`` masks the
    first ``k`` columns, ``k`` the smallest count whose ``Σ s_i² / Σ s²`` reaches ``variance``
    (``getNumSVs``), or ``num_components``. Columns past ``k`` are zeroed.
    """
    U, s, _ = jnp.linalg.svd(_centre(X), full_matrices=False)
    r = s.shape[0]
    if num_components is None:
        fraction = jnp.cumsum((s / jnp.linalg.norm(s)) ** 2)
        k = jnp.minimum(1 + jnp.sum(fraction[:-1] < variance), r)
    else:
        k = min(int(num_components), r)
    keep = jnp.arange(r) < k
    return U * (s * keep), keep


def _inv_sqrt_masked(C: jax.Array, keep: jax.Array, epsilon: float) -> jax.Array:
    """``C^{-1/2}`` on the kept block (with ``εI`` added), zero on dropped rows/columns."""
    outer = keep[:, None] & keep[None, :]
    eye = jnp.eye(C.shape[0], dtype=C.dtype)
    block = jnp.where(outer, C + epsilon * eye, eye)
    w, V = jnp.linalg.eigh(block)
    # The kept block is PSD + εI, so eigenvalues below ε are rounding error.
    inv_sqrt = (V / jnp.sqrt(jnp.maximum(w, epsilon))) @ V.T
    return jnp.where(outer, inv_sqrt, 0.0)


def cca_correlations(
    A: jax.Array, B: jax.Array, keep_a: jax.Array | None = None, keep_b: jax.Array | None = None,
    epsilon: float = EPSILON,
) -> tuple[jax.Array, jax.Array]:
    """Canonical correlations as google/svcca ``cca_core.get_cca_similarity``, fixed-shape.

    Args:
      A: ``[S, Na]``, B: ``[S, Nb]`` activity (columns are variables).
      keep_a, keep_b: optional bool masks of the columns taking part (default all).
      epsilon: ``cca_core``'s ε: drop dims whose rescaled variance is below it, then add
        ``εI`` to both covariance blocks.

    Returns:
      ``(rho[min(Na, Nb)], count)``: the singular values of ``Σaa^{-1/2} Σab Σbb^{-1/2}``
      sorted descending (entries past ``count`` are ≈ 0) and ``count = min(ka, kb)``, the
      number of genuine canonical correlations (``ka``, ``kb`` the kept dims).
    """
    keep_a = jnp.ones(A.shape[1], bool) if keep_a is None else keep_a
    keep_b = jnp.ones(B.shape[1], bool) if keep_b is None else keep_b
    A = _centre(A) * keep_a
    B = _centre(B) * keep_b
    denom = A.shape[0] - 1
    s_aa = A.T @ A / denom
    s_bb = B.T @ B / denom
    s_ab = A.T @ B / denom
    a_max = jnp.max(jnp.abs(s_aa))
    b_max = jnp.max(jnp.abs(s_bb))
    a_max_safe = jnp.where(a_max > 0, a_max, 1.0)
    b_max_safe = jnp.where(b_max > 0, b_max, 1.0)
    # after(): the two eighs below run after both SVDs of svcca and one after the other (lapack_guard).
    s_bb = after(s_bb / b_max_safe, A, B)
    s_aa = after(s_aa / a_max_safe, s_bb)
    s_ab = s_ab / jnp.sqrt(a_max_safe * b_max_safe)
    keep_a = keep_a & (jnp.abs(jnp.diagonal(s_aa)) >= epsilon)
    keep_b = keep_b & (jnp.abs(jnp.diagonal(s_bb)) >= epsilon)
    inv_a = _inv_sqrt_masked(s_aa, keep_a, epsilon)
    M = inv_a @ s_ab @ _inv_sqrt_masked(after(s_bb, inv_a), keep_b, epsilon)
    rho = jnp.abs(jnp.linalg.svd(M, compute_uv=False))
    count = jnp.minimum(jnp.sum(keep_a), jnp.sum(keep_b))
    return rho, count


def _mean_cca_distance(A, keep_a, B, keep_b, epsilon):
    rho, count = cca_correlations(A, B, keep_a, keep_b, epsilon)
    mean = jnp.sum(rho) / jnp.maximum(count, 1)
    return jnp.where(count > 0, 1.0 - mean, 1.0)


def _check_svcca_options(variance, epsilon, num_components):
    check_range("variance", variance, 0.0, 1.0, low_open=True)
    check_range("epsilon", epsilon, 0.0)
    if num_components is not None:
        check_range("num_components", num_components, 1, integer=True)


def svcca(
    X: jax.Array, Y: jax.Array, variance: float = 0.95, epsilon: float = EPSILON, *,
    num_components: int | None = None,
) -> jax.Array:
    """SVCCA distance ``1 − mean ρ`` between activity ``X[S, Nx]`` and ``Y[S, Ny]``.

    Args:
      X, Y: activity ``[samples, neurons]`` on the same samples.
      variance: fraction of ``Σ s²`` each network's SVD truncation keeps (McMahan: 0.95);
        1.0 keeps every non-degenerate direction (plain CCA).
      epsilon: ``cca_core`` regulariser / cut-off (McMahan: 1e-10).
      num_components: fixed number of SVD directions instead of ``variance``.

    Returns:
      scalar distance in ``[0, 1]``.
    """
    X, Y = _check_pair(X, Y)
    _check_svcca_options(variance, epsilon, num_components)
    A, keep_a = svd_reduce(X, variance, num_components)
    B, keep_b = svd_reduce(after(Y, A), variance, num_components)  # one SVD at a time (lapack_guard)
    return _mean_cca_distance(A, keep_a, B, keep_b, epsilon)


def cka(X: jax.Array, Y: jax.Array) -> jax.Array:
    """Linear-CKA distance ``1 − ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)`` of centred ``X``, ``Y``."""
    X, Y = _check_pair(X, Y)
    X = _centre(X)
    Y = _centre(Y)
    cross = jnp.sum((Y.T @ X) ** 2)
    norm = jnp.linalg.norm(X.T @ X) * jnp.linalg.norm(Y.T @ Y)
    return jnp.where(norm > 0, 1.0 - cross / jnp.where(norm > 0, norm, 1.0), 1.0)


def procrustes(X: jax.Array, Y: jax.Array) -> jax.Array:
    """Angular Procrustes distance ``arccos ‖XᵀY‖_*`` (radians, in ``[0, π/2]``).

    ``X``, ``Y`` are centred, scaled to unit Frobenius norm and zero-padded to a common
    number of neurons (Williams et al. 2021, ``netrep``'s ``LinearMetric(alpha=1)``).
    """
    X, Y = _check_pair(X, Y)
    width = max(X.shape[1], Y.shape[1])
    X = jnp.pad(_centre(X), ((0, 0), (0, width - X.shape[1])))
    Y = jnp.pad(_centre(Y), ((0, 0), (0, width - Y.shape[1])))
    nx = jnp.linalg.norm(X)
    ny = jnp.linalg.norm(Y)
    X = X / jnp.where(nx > 0, nx, 1.0)
    Y = Y / jnp.where(ny > 0, ny, 1.0)
    U, _, Vt = jnp.linalg.svd(Y.T @ X)
    chord = jnp.linalg.norm(X - Y @ (U @ Vt))
    angle = 2.0 * jnp.arcsin(jnp.minimum(chord / 2.0, 1.0))
    return jnp.where((nx > 0) & (ny > 0), angle, jnp.pi / 2)


def _prepare_svcca(X, variance=0.95, epsilon=EPSILON, num_components=None):
    return svd_reduce(X, variance, num_components)


def _compare_svcca(a, b, variance=0.95, epsilon=EPSILON, num_components=None):
    del variance, num_components
    return _mean_cca_distance(a[0], a[1], b[0], b[1], epsilon)


METRICS: dict[str, Callable[..., jax.Array]] = {"svcca": svcca, "cka": cka, "procrustes": procrustes}


@functools.partial(jax.jit, static_argnames=("prepare", "compare", "batch_size"))
def _pairwise_upper(prepare, compare, Xs, rows, cols, batch_size):
    prepared = jax.vmap(prepare)(Xs)
    take = lambda tree, i: jax.tree_util.tree_map(lambda leaf: leaf[i], tree)  # noqa: E731
    pairs = jnp.stack([rows, cols], axis=-1)
    return ordered_map(lambda ij: compare(take(prepared, ij[0]), take(prepared, ij[1])), pairs,
                       batch_size=batch_size)


def pairwise(metric: str | Callable[[jax.Array, jax.Array], jax.Array], Xs: jax.Array, *,
             batch_size: int = 64, **metric_options: Any) -> jax.Array:
    """Symmetric ``[K, K]`` distance matrix of the population ``Xs[K, S, N]``.

    Only the ``K(K−1)/2`` upper-triangle pairs are computed, on device, with ``lax.map`` over
    chunks of ``batch_size`` pairs vmapped together; the diagonal is 0 by definition. For
    ``"svcca"`` each network's SVD truncation is computed once, not once per pair. Networks
    with fewer units can be zero-padded to a common ``N`` (every metric here ignores
    all-zero neurons).

    Args:
      metric: ``"svcca"``, ``"cka"``, ``"procrustes"`` or a callable ``metric(X, Y)``.
      Xs: ``[K, S, N]`` activity matrices.
      batch_size: pairs evaluated together (memory ~ ``batch_size`` pairs).
      **metric_options: keyword options of a named metric (e.g. ``variance=0.99``).

    Returns:
      ``[K, K]`` symmetric distances.
    """
    Xs = jnp.asarray(Xs)
    if Xs.ndim != 3 or Xs.shape[1] < 2:
        fail("Xs.shape", Xs.shape, "[K, samples, neurons] with at least 2 samples")
    Xs = Xs.astype(jnp.result_type(Xs.dtype, jnp.float32))
    check_range("batch_size", batch_size, 1, integer=True)
    if isinstance(metric, str):
        check_choice("metric", metric, METRICS)
        if metric == "svcca":
            unknown = sorted(set(metric_options) - {"variance", "epsilon", "num_components"})
            if unknown:
                fail("metric_options", unknown, "among 'variance', 'epsilon', 'num_components' for 'svcca'")
            metric_options = {"variance": 0.95, "epsilon": EPSILON, "num_components": None, **metric_options}
            _check_svcca_options(**metric_options)
        elif metric_options:
            fail("metric_options", sorted(metric_options), f"empty for metric {metric!r} (it has no options)")
        prepare, compare = _named_metric(metric, tuple(sorted(metric_options.items())))
    elif callable(metric):
        if metric_options:
            fail("metric_options", sorted(metric_options), "empty for a callable metric",
                 "bind options with functools.partial")
        prepare, compare = _identity, metric
    else:
        fail("metric", metric, "one of " + ", ".join(repr(m) for m in METRICS) + " or a callable metric(X, Y)")
    K = Xs.shape[0]
    rows, cols = np.triu_indices(K, k=1)
    D = jnp.zeros((K, K), Xs.dtype)
    if rows.size == 0:
        return D
    d = _pairwise_upper(prepare, compare, Xs, jnp.asarray(rows), jnp.asarray(cols), int(batch_size))
    return D.at[rows, cols].set(d).at[cols, rows].set(d)


def _identity(X):
    return X


@functools.lru_cache(maxsize=None)
def _named_metric(metric: str, options: tuple) -> tuple[Callable, Callable]:
    """``(prepare, compare)`` of a named metric; cached so that jit reuses its compilation."""
    if metric == "svcca":
        return functools.partial(_prepare_svcca, **dict(options)), functools.partial(_compare_svcca, **dict(options))
    return _identity, METRICS[metric]

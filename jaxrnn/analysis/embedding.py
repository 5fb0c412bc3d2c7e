"""Embedding and clustering scores of a precomputed network–network distance matrix.

- :func:`mds` — classical (Torgerson) multidimensional scaling::

      B = −½ J D⊙D J,   J = I − 11ᵀ/K          (double centring of squared distances)
      Y = V_k diag(√max(λ_k, 0))               (top-k eigenpairs of B)

  For Euclidean ``D`` the embedding reproduces ``D`` exactly (up to rotation/reflection)
  when ``dims`` is at least the configuration's dimension; otherwise it is the PCA
  projection. Each axis's sign is fixed so that its largest-magnitude coordinate is
  positive (deterministic output).
- :func:`silhouette` — mean silhouette coefficient over samples on a precomputed distance
  matrix, equal to ``sklearn.metrics.silhouette_score(D, labels, metric="precomputed")``::

      a(i) = mean distance to the other members of i's cluster,
      b(i) = min over other clusters C of the mean distance from i to C,
      s(i) = (b − a) / max(a, b),   s(i) = 0 for a singleton cluster.

- :func:`silhouette_rows` — the convention of McMahan et al. (2021, ``svcca_analysis.py``;
  McMahan et al.'s code, ``svcca_analysis.py``): sklearn's ``silhouette_score(D, labels)`` with the rows of ``D`` taken as
  feature vectors, i.e. the silhouette of the Euclidean distances between rows::

      D'[i, j] = ‖D[i, :] − D[j, :]‖₂            (:func:`row_distances`)
      silhouette_rows(D, labels) = silhouette(D', labels)

  Two networks are then close when they are at similar distances from every network, not
  when their own distance is small. :func:`silhouette_score` picks either convention by name
  (``"rows"``, the authors', or ``"precomputed"``).

The authors also ran sklearn's (SMACOF) ``MDS()`` on the rows; :func:`mds` embeds the distances
as distances (classical MDS), which is what they mean; MDS only draws the figures, the scores
are computed on the high-dimensional matrices. Every function is fixed-shape (labels are
compared pairwise, no ``unique``), so they jit and vmap (a permutation null vmaps
:func:`silhouette` over label permutations, :func:`jaxrnn.analysis.stats.permutation_test`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import check_range, fail


def _check_square(D: jax.Array) -> jax.Array:
    D = jnp.asarray(D)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        fail("D.shape", D.shape, "[K, K] (a square distance matrix)")
    return D.astype(jnp.result_type(D.dtype, jnp.float32))


def mds(D: jax.Array, dims: int = 2) -> jax.Array:
    """Classical MDS of the distance matrix ``D[K, K]`` into ``dims`` dimensions -> ``[K, dims]``."""
    D = _check_square(D)
    check_range("dims", dims, 1, D.shape[0], integer=True)
    K = D.shape[0]
    J = jnp.eye(K, dtype=D.dtype) - 1.0 / K
    B = -0.5 * J @ (D * D) @ J
    B = 0.5 * (B + B.T)
    w, V = jnp.linalg.eigh(B)
    w = w[::-1][: int(dims)]
    V = V[:, ::-1][:, : int(dims)]
    Y = V * jnp.sqrt(jnp.maximum(w, 0.0))
    pivot = jnp.take_along_axis(Y, jnp.argmax(jnp.abs(Y), axis=0)[None], axis=0)
    return Y * jnp.where(pivot < 0, -1.0, 1.0)


def silhouette(D: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean silhouette coefficient of ``labels[K]`` on the distance matrix ``D[K, K]``.

    Raises:
      ValueError: (when ``labels`` is concrete) fewer than 2 or more than ``K − 1`` distinct
        labels, as sklearn.
    """
    D = _check_square(D)
    labels = jnp.asarray(labels)
    if labels.shape != D.shape[:1]:
        fail("labels.shape", labels.shape, f"[K] with K = {D.shape[0]} (one label per row of D)")
    if not isinstance(labels, jax.core.Tracer):
        num_labels = np.unique(np.asarray(labels)).size
        if not 2 <= num_labels <= D.shape[0] - 1:
            fail("labels", f"<{num_labels} distinct labels>", f"between 2 and K − 1 = {D.shape[0] - 1} distinct labels")
    same = labels[:, None] == labels[None, :]
    counts = jnp.sum(same, axis=1)
    # mean_to[i, j]: mean distance from sample i to the cluster of sample j's label.
    mean_to = (D @ same.astype(D.dtype)) / counts[None, :]
    a = jnp.sum(jnp.where(same, D, 0.0), axis=1) / jnp.maximum(counts - 1, 1)
    b = jnp.min(jnp.where(same, jnp.inf, mean_to), axis=1)
    scale = jnp.maximum(a, b)
    s = jnp.where(scale > 0, (b - a) / jnp.where(scale > 0, scale, 1.0), 0.0)
    return jnp.mean(jnp.where(counts > 1, s, 0.0))


SILHOUETTE_CONVENTIONS = ("rows", "precomputed")


def row_distances(D: jax.Array) -> jax.Array:
    """``[K, K]`` Euclidean distances between the rows of ``D[K, F]`` (exact differences, zero diagonal).

    ``row_distances(D)`` is ``sklearn.metrics.pairwise_distances(D)``: the distances sklearn's
    ``silhouette_score(D, labels)`` uses when ``D`` is passed as features.
    """
    D = jnp.asarray(D)
    if D.ndim != 2:
        fail("D.shape", D.shape, "[K, F] (one row per sample)")
    D = D.astype(jnp.result_type(D.dtype, jnp.float32))
    return jax.lax.map(lambda row: jnp.sqrt(jnp.sum((D - row) ** 2, axis=1)), D)


def silhouette_rows(D: jax.Array, labels: jax.Array) -> jax.Array:
    """McMahan et al.'s silhouette: ``sklearn.metrics.silhouette_score(D, labels)``, rows of ``D`` as features."""
    D = _check_square(D)
    return silhouette(row_distances(D), labels)


def silhouette_score(D: jax.Array, labels: jax.Array, convention: str = "rows") -> jax.Array:
    """Silhouette of ``labels`` on the distance matrix ``D`` under a named convention.

    Args:
      D: ``[K, K]`` distances.
      labels: ``[K]`` integer cluster labels.
      convention: ``"rows"`` (the authors': rows of ``D`` as feature vectors,
        :func:`silhouette_rows`) or ``"precomputed"`` (``D`` as distances, :func:`silhouette`).
    """
    if convention not in SILHOUETTE_CONVENTIONS:
        fail("convention", convention, "one of " + ", ".join(map(repr, SILHOUETTE_CONVENTIONS)))
    return silhouette_rows(D, labels) if convention == "rows" else silhouette(D, labels)

"""SVCCA / CKA / Procrustes against NumPy references; MDS and silhouette against sklearn."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.metrics import pairwise_distances
from sklearn.metrics import silhouette_score as silhouette_score_sklearn

from jaxrnn.analysis.embedding import mds, row_distances, silhouette, silhouette_rows, silhouette_score
from jaxrnn.analysis.similarity import cka, pairwise, procrustes, svcca

METRICS = {"svcca": svcca, "cka": cka, "procrustes": procrustes}


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------- independent NumPy references


def np_get_cca_similarity(acts1, acts2, epsilon):
    """google/svcca ``cca_core.get_cca_similarity`` (``cca_coef1``), acts as [neurons, data]."""
    numx = acts1.shape[0]
    cov = np.cov(acts1, acts2)
    sxx, sxy, syy = cov[:numx, :numx], cov[:numx, numx:], cov[numx:, numx:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    xi, yi = np.abs(np.diag(sxx)) >= epsilon, np.abs(np.diag(syy)) >= epsilon
    sxx, syy, sxy = sxx[xi][:, xi], syy[yi][:, yi], sxy[xi][:, yi]
    sxx = sxx + epsilon * np.eye(len(sxx))
    syy = syy + epsilon * np.eye(len(syy))

    def invsqrt(c):
        w, v = np.linalg.eigh(np.linalg.pinv(c))
        return v @ np.diag(np.sqrt(w)) @ v.T

    return np.abs(np.linalg.svd(invsqrt(sxx) @ sxy @ invsqrt(syy), compute_uv=False))


def np_svcca(X, Y, variance=0.95, epsilon=1e-10):
    """McMahan's ``svcca_analysis.py`` pipeline (getNumSVs, svacts, 1 − mean cca_coef1)."""
    svacts = []
    for A in (X, Y):
        acts = A.T - A.T.mean(axis=1, keepdims=True)
        _, s, V = np.linalg.svd(acts, full_matrices=False)
        count, explained, norm = 0, 0.0, np.linalg.norm(s)
        while explained < variance and count < len(s):
            explained += (s[count] / norm) ** 2
            count += 1
        svacts.append(np.dot(s[:count] * np.eye(count), V[:count]))
    return 1.0 - np.mean(np_get_cca_similarity(svacts[0], svacts[1], epsilon))


def np_cka(X, Y):
    """Linear CKA through centred n×n Gram matrices (HSIC form, Kornblith et al. 2019)."""
    n = X.shape[0]
    H = np.eye(n) - 1.0 / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return 1.0 - np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def np_procrustes(X, Y):
    """Williams et al. angular distance: arccos of the nuclear norm of XᵀY (normalised)."""
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    X, Y = X / np.linalg.norm(X), Y / np.linalg.norm(Y)
    nuclear = np.sum(np.linalg.svd(X.T @ Y, compute_uv=False))
    return np.arccos(np.clip(nuclear, -1.0, 1.0))


def _pair(seed=0, samples=300, nx=12, ny=9):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((samples, 5))
    X = Z @ rng.standard_normal((5, nx)) + 0.1 * rng.standard_normal((samples, nx))
    Y = np.tanh(Z[:, :3] @ rng.standard_normal((3, ny))) + 0.3 * rng.standard_normal((samples, ny))
    return X, Y


# ------------------------------------------------------------------------------ reference tests


@pytest.mark.parametrize("variance", [0.5, 0.8, 0.95, 0.99])
@pytest.mark.parametrize("seed", [0, 1])
def test_svcca_equals_numpy_reference(seed, variance):
    X, Y = _pair(seed)
    np.testing.assert_allclose(svcca(X, Y, variance), np_svcca(X, Y, variance), atol=1e-10)


def test_svcca_full_rank_equals_plain_cca_reference():
    X, Y = _pair(3, nx=6, ny=4)
    rho = np_get_cca_similarity(X.T, Y.T, 1e-10)
    np.testing.assert_allclose(svcca(X, Y, variance=1.0), 1.0 - rho.mean(), atol=1e-9)


def test_svcca_fixed_number_of_components():
    X, Y = _pair(4)
    acts = [A.T - A.T.mean(1, keepdims=True) for A in (X, Y)]
    sv = []
    for a in acts:
        _, s, V = np.linalg.svd(a, full_matrices=False)
        sv.append(np.diag(s[:2]) @ V[:2])
    expected = 1.0 - np.mean(np_get_cca_similarity(sv[0], sv[1], 1e-10))
    np.testing.assert_allclose(svcca(X, Y, num_components=2), expected, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_cka_and_procrustes_equal_numpy_references(seed):
    X, Y = _pair(seed, samples=120)
    np.testing.assert_allclose(cka(X, Y), np_cka(X, Y), atol=1e-12)
    np.testing.assert_allclose(procrustes(X, Y), np_procrustes(X, Y), atol=1e-9)


# --------------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", list(METRICS))
def test_distance_to_itself_is_zero(name):
    X, _ = _pair(5)
    assert abs(float(METRICS[name](X, X))) < 1e-8


@pytest.mark.parametrize("name", list(METRICS))
def test_invariant_to_rotation_scaling_and_shift_of_either_side(name):
    X, Y = _pair(6)
    metric = METRICS[name]
    base = float(metric(X, Y))
    assert base > 0.05
    Qx = ortho_group.rvs(X.shape[1], random_state=1)
    Qy = ortho_group.rvs(Y.shape[1], random_state=2)
    variants = [
        (X @ Qx, Y), (X, Y @ Qy),  # orthogonal maps
        (3.7 * X, Y), (X, 0.2 * Y),  # isotropic scaling
        (X + 5.0, Y), (X, Y - np.arange(Y.shape[1])),  # shifts
        (2.0 * X @ Qx + 1.0, 0.5 * Y @ Qy - 3.0),  # all at once, both sides
    ]
    for Xv, Yv in variants:
        np.testing.assert_allclose(metric(Xv, Yv), base, atol=1e-7)
        np.testing.assert_allclose(metric(Yv, Xv), base, atol=1e-7)  # symmetric


def test_cca_is_invariant_to_any_invertible_linear_map():
    X, Y = _pair(7, nx=6, ny=5)
    rng = np.random.default_rng(8)
    A, B = rng.standard_normal((6, 6)), rng.standard_normal((5, 5))
    base = float(svcca(X, Y, variance=1.0))
    np.testing.assert_allclose(svcca(X @ A, Y @ B, variance=1.0), base, atol=1e-6)
    # CKA and Procrustes are not: a non-orthogonal map changes them.
    assert abs(float(cka(X @ A, Y)) - float(cka(X, Y))) > 1e-3


def test_unrelated_activity_is_far():
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((400, 10)), rng.standard_normal((400, 10))
    assert float(svcca(X, Y)) > 0.7 and float(cka(X, Y)) > 0.8 and float(procrustes(X, Y)) > 1.0


def test_svcca_is_jit_and_vmap_safe_with_per_network_ranks():
    # Networks with different effective dimension get different k, inside one vmap.
    rng = np.random.default_rng(10)
    Z = rng.standard_normal((200, 8))
    Xs = np.stack([Z[:, :d] @ rng.standard_normal((d, 8)) + 1e-3 * rng.standard_normal((200, 8)) for d in (2, 5, 8)])
    Ys = Xs[::-1] + 0.1 * rng.standard_normal(Xs.shape)
    batched = jax.jit(jax.vmap(svcca))(jnp.asarray(Xs), jnp.asarray(Ys))
    for k in range(3):
        np.testing.assert_allclose(batched[k], np_svcca(Xs[k], Ys[k]), atol=1e-9)


# ------------------------------------------------------------------------------------ pairwise


@pytest.mark.parametrize("name", list(METRICS))
def test_pairwise_equals_loop(name):
    rng = np.random.default_rng(11)
    Xs = rng.standard_normal((5, 80, 6)) @ rng.standard_normal((5, 6, 6))
    D = np.asarray(pairwise(name, jnp.asarray(Xs), batch_size=3))  # 10 pairs: a ragged last chunk
    expected = np.array([[float(METRICS[name](a, b)) if i != j else 0.0 for j, b in enumerate(Xs)]
                         for i, a in enumerate(Xs)])
    np.testing.assert_allclose(D, expected, atol=1e-10)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)


def test_pairwise_with_callable_and_options():
    rng = np.random.default_rng(12)
    Xs = jnp.asarray(rng.standard_normal((4, 60, 5)))
    D = pairwise(functools.partial(svcca, variance=0.5), Xs)
    np.testing.assert_allclose(D, pairwise("svcca", Xs, variance=0.5), atol=1e-12)
    np.testing.assert_allclose(D[0, 1], np_svcca(np.asarray(Xs[0]), np.asarray(Xs[1]), 0.5), atol=1e-10)


# ---------------------------------------------------------------------------- MDS / silhouette


def _euclidean(P):
    return np.linalg.norm(P[:, None] - P[None], axis=-1)


@pytest.mark.parametrize("dims", [2, 3])
def test_mds_recovers_a_euclidean_configuration(dims):
    P = np.random.default_rng(13).standard_normal((15, dims))
    D = _euclidean(P)
    Y = np.asarray(mds(jnp.asarray(D), dims=dims))
    assert Y.shape == (15, dims)
    np.testing.assert_allclose(_euclidean(Y), D, atol=1e-9)


def test_mds_of_higher_dimensional_points_is_their_pca_projection():
    P = np.random.default_rng(14).standard_normal((20, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    Y = np.asarray(mds(jnp.asarray(_euclidean(P)), dims=2))
    Pc = P - P.mean(0)
    U, s, _ = np.linalg.svd(Pc, full_matrices=False)
    pcs = U[:, :2] * s[:2]
    np.testing.assert_allclose(np.abs(Y), np.abs(pcs), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((24, 3)) + np.repeat(np.eye(3) * 2.0, 8, axis=0)
    labels = np.repeat(np.arange(3), 8)
    labels[rng.choice(24, 5, replace=False)] = rng.integers(0, 4, 5)  # noisy labels, maybe a 4th
    D = _euclidean(P)
    np.testing.assert_allclose(silhouette(jnp.asarray(D), jnp.asarray(labels)),
                               silhouette_score_sklearn(D, labels, metric="precomputed"), atol=1e-12)


def test_silhouette_singleton_clusters_score_zero_as_sklearn():
    D = _euclidean(np.random.default_rng(3).standard_normal((6, 2)))
    labels = np.array([0, 0, 0, 1, 1, 2])
    np.testing.assert_allclose(silhouette(D, labels), silhouette_score_sklearn(D, labels, metric="precomputed"),
                               atol=1e-12)
    np.testing.assert_allclose(jax.jit(silhouette)(D, labels), silhouette_score_sklearn(D, labels, metric="precomputed"),
                               atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_authors_silhouette_convention_equals_sklearn_on_distance_rows(seed):
    """McMahan et al. passed the distance matrix to sklearn as features: silhouette_score(D, labels)."""
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((30, 4)) + np.repeat(np.eye(4)[:3] * 1.5, 10, axis=0)
    labels = np.repeat(np.arange(3), 10)
    D = _euclidean(P) + 0.05 * np.abs(rng.standard_normal((30, 30)))  # not Euclidean: rows != points
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    expected = silhouette_score_sklearn(D, labels)  # Euclidean distances between the rows of D
    np.testing.assert_allclose(silhouette_rows(jnp.asarray(D), jnp.asarray(labels)), expected, atol=1e-10)
    np.testing.assert_allclose(silhouette_score(D, labels, "rows"), expected, atol=1e-10)
    np.testing.assert_allclose(silhouette_score(D, labels, "precomputed"),
                               silhouette_score_sklearn(D, labels, metric="precomputed"), atol=1e-10)
    np.testing.assert_allclose(row_distances(jnp.asarray(D)), pairwise_distances(D), atol=1e-10)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: svcca(np.zeros((5, 3)), np.zeros((6, 3))), "Y.shape"),
        (lambda: svcca(np.zeros(5), np.zeros((5, 3))), "X.shape"),
        (lambda: svcca(np.ones((5, 3)), np.ones((5, 3)), variance=1.5), "variance"),
        (lambda: pairwise("svcca", np.zeros((5, 3))), "Xs.shape"),
        (lambda: pairwise("euclid", np.zeros((2, 5, 3))), "metric"),
        (lambda: pairwise("cka", np.zeros((2, 5, 3)), variance=0.9), "metric_options"),
        (lambda: pairwise("svcca", np.zeros((2, 5, 3)), varaince=0.9), "metric_options"),
        (lambda: mds(np.zeros((3, 4))), "D.shape"),
        (lambda: mds(np.zeros((3, 3)), dims=4), "dims"),
        (lambda: silhouette(np.zeros((3, 3)), np.zeros(3)), "labels"),
        (lambda: silhouette(np.zeros((3, 3)), np.zeros(4)), "labels.shape"),
        (lambda: silhouette_score(np.zeros((3, 3)), np.arange(3) % 2, "features"), "convention"),
        (lambda: row_distances(np.zeros(3)), "D.shape"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()

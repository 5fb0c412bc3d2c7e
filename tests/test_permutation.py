"""Rank statistics and label-permutation tests (jaxrnn.analysis.stats) against SciPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

from jaxrnn.analysis.embedding import silhouette
from jaxrnn.analysis.stats import permutation_test, permuted_labels, rank, spearman


def test_rank_and_spearman_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 40).astype(float)  # many ties
    y = x + rng.standard_normal(40)
    np.testing.assert_allclose(rank(jnp.asarray(x)), sps.rankdata(x), atol=1e-6)
    np.testing.assert_allclose(spearman(jnp.asarray(x), jnp.asarray(y)), sps.spearmanr(x, y)[0], atol=1e-6)


def test_permutations_stay_within_strata():
    labels = jnp.arange(12)
    strata = jnp.asarray([0, 1, 2] * 4)
    perms = np.asarray(permuted_labels(jax.random.key(0), labels, 200, strata))
    for row in perms:
        for s in range(3):
            assert sorted(row[np.asarray(strata) == s]) == sorted(np.arange(12)[np.asarray(strata) == s])
    assert len({tuple(r) for r in perms}) > 150  # they are random, not one permutation repeated


def test_difference_of_means_p_equals_scipy_exact_permutation_test():
    """Two samples of 5 and 6 (462 relabelings): Monte Carlo p vs SciPy's exact enumeration."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(5) + 0.9, rng.standard_normal(6)
    data = jnp.asarray(np.r_[a, b])
    labels = jnp.asarray([1] * 5 + [0] * 6)

    def stat(lab):
        w = lab.astype(jnp.float32)
        return jnp.sum(w * data) / jnp.sum(w) - jnp.sum((1 - w) * data) / jnp.sum(1 - w)

    ours = permutation_test(stat, labels, jax.random.key(2), num_permutations=4000)
    ref = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                               alternative="greater", n_resamples=10_000)
    np.testing.assert_allclose(float(ours.value), np.mean(a) - np.mean(b), rtol=1e-5)
    assert abs(float(ours.p_value) - ref.pvalue) < 0.02
    two = permutation_test(stat, labels, jax.random.key(2), num_permutations=4000, alternative="two-sided")
    ref2 = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                alternative="two-sided", n_resamples=10_000)
    assert abs(float(two.p_value) - ref2.pvalue) < 0.02


def _distances(points):
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def test_silhouette_null_clustered_vs_random():
    """Clustered by label: high silhouette, p = 1/(B+1); unrelated labels: ~0 and a large p."""
    rng = np.random.default_rng(3)
    labels = jnp.asarray(np.repeat(np.arange(3), 12))
    clustered = _distances(rng.standard_normal((36, 5)) + 6.0 * np.repeat(np.eye(5)[:3], 12, axis=0))
    random = _distances(rng.standard_normal((36, 5)))
    B = 199
    stat = lambda lab, D: silhouette(D, lab)  # noqa: E731  (the data as args: one compiled program)
    hit = permutation_test(stat, labels, jax.random.key(0), args=(jnp.asarray(clustered),), num_permutations=B)
    assert float(hit.value) > 0.5 and float(hit.p_value) == pytest.approx(1 / (B + 1))
    assert abs(float(hit.null_mean)) < 0.1  # chance is not exactly 0
    miss = permutation_test(stat, labels, jax.random.key(0), args=(jnp.asarray(random),), num_permutations=B)
    assert abs(float(miss.value)) < 0.1 and float(miss.p_value) > 0.05


@pytest.mark.parametrize(("kwargs", "field"), [({"alternative": "bigger"}, "alternative"),
                                                ({"num_permutations": 0}, "num_permutations"),
                                                ({"strata": jnp.zeros(3)}, "strata.shape")])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        permutation_test(lambda lab: jnp.sum(lab), jnp.arange(4), jax.random.key(0), **kwargs)

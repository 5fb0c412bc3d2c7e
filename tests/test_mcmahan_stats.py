"""McMahan et al. claim statistics on synthetic distance matrices whose answer is known.

Clustered by label -> high silhouette and a small permutation p; unrelated labels -> near 0 and a
large p. The silhouettes are checked against scikit-learn's silhouette_score (the authors' call).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import silhouette_score

from jaxrnn.studies import mcmahan_stats as st

B = 199


def _distances(points):
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def _clustered(rng, labels, shift):
    centres = shift * np.eye(4)[np.asarray(labels)]
    return _distances(rng.standard_normal((len(labels), 4)) + centres)


@pytest.mark.parametrize("convention", ["rows", "precomputed"])
def test_silhouette_test_clustered_and_random(convention):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["bptt", "ga", "hebbian"]), 8)
    D = _clustered(rng, st.encode(labels), 5.0)
    hit = st.silhouette_test(D, labels, jax.random.key(0), convention=convention, num_permutations=B)
    sk = silhouette_score(D, labels) if convention == "rows" else silhouette_score(D, labels, metric="precomputed")
    assert hit.value == pytest.approx(sk, abs=1e-5)
    assert hit.value > 0.4 and hit.p_value == pytest.approx(1 / (B + 1))
    R = _distances(rng.standard_normal((24, 4)))
    miss = st.silhouette_test(R, labels, jax.random.key(0), convention=convention, num_permutations=B)
    assert abs(miss.value) < 0.1 and miss.p_value > 0.05
    assert abs(miss.value - miss.null_mean) < 0.1


def test_silhouette_test_undefined_cases_say_why():
    D = _distances(np.random.default_rng(1).standard_normal((5, 2)))
    one = st.silhouette_test(D, ["a"] * 5, jax.random.key(0), num_permutations=B)
    assert one.value is None and "nothing to separate" in one.note
    single = st.silhouette_test(D, ["a"] * 4 + ["b"], jax.random.key(0), num_permutations=B)
    assert single.value is None and "single network" in single.note


def test_hebbian_gap_known_answer():
    rng = np.random.default_rng(2)
    rules = np.repeat(np.arange(4), 6)  # 2 = Hebbian, far from the other three
    points = rng.standard_normal((24, 3)) + 5.0 * (rules == 2)[:, None] * np.array([1.0, 0, 0])
    D = _distances(points)
    heb = rules == 2
    hit = st.group_gap_test(D, heb, jax.random.key(0), num_permutations=B)
    expected = D[np.ix_(heb, ~heb)].mean() - D[np.ix_(~heb, ~heb)][~np.eye((~heb).sum(), dtype=bool)].mean()
    assert hit.value == pytest.approx(expected, rel=1e-5) and hit.value > 2 and hit.p_value < 0.01
    miss = st.group_gap_test(_distances(rng.standard_normal((24, 3))), heb, jax.random.key(0), num_permutations=B)
    assert abs(miss.value) < 0.3 and miss.p_value > 0.05


def test_trend_of_silhouettes_across_blocks():
    """Separation growing with x: positive slope, small p; no structure anywhere: two-sided p large."""
    rng = np.random.default_rng(3)
    labels = [np.repeat([0, 1], 6)] * 4
    xs = [2, 3, 4, 5]
    growing = [_clustered(rng, lab, shift) for lab, shift in zip(labels, (0.0, 1.5, 3.0, 6.0))]
    hit = st.trend_test(growing, labels, xs, jax.random.key(0), num_permutations=B)
    sil = [silhouette_score(D, lab) for D, lab in zip(growing, labels)]
    assert hit.value == pytest.approx(sps.linregress(xs, sil).slope, abs=1e-5)
    assert hit.value > 0 and hit.p_value < 0.01
    flat = [_distances(rng.standard_normal((12, 4))) for _ in xs]
    miss = st.trend_test(flat, labels, xs, jax.random.key(0), num_permutations=B, alternative="two-sided")
    assert miss.p_value > 0.05
    few = st.trend_test(flat[:2], labels[:2], xs[:2], jax.random.key(0), num_permutations=B)
    assert few.value is None and ">= 3" in few.note


def test_spearman_test_known_answer():
    rng = np.random.default_rng(4)
    noise = np.repeat([0.1, 0.5, 1.0], 10)
    attractors = (noise > 0.3).astype(float) + (noise > 0.7) + rng.integers(0, 2, 30) * 0.5
    hit = st.spearman_test(noise, attractors, jax.random.key(0), num_permutations=B)
    assert hit.value == pytest.approx(sps.spearmanr(noise, attractors)[0], abs=1e-5)
    assert hit.value > 0.5 and hit.p_value < 0.01
    miss = st.spearman_test(noise, rng.standard_normal(30), jax.random.key(0), num_permutations=B)
    assert miss.p_value > 0.05 or abs(miss.value) < 0.3

"""The stage detector of jaxrnn.analysis.stages (Ger & Barak's three learning stages).

References: a brute-force search over every breakpoint with ``numpy.polyfit`` (the segmentation),
synthetic curves whose breakpoints are known by construction, and a stored closed-loop run
(``tests/data/ger_barak_short_run.npz``: the first 250 updates of the authors' tanh run, seed 0,
reg_u = 0.005, from ``jaxrnn reproduce ger-barak`` — its training loss and the spectral radius of
the joint map, ``ger_barak_analysis.joint_radii``, of the same snapshots).
"""

import itertools
from pathlib import Path

import numpy as np
import pytest

from jaxrnn.analysis import stages

DATA = Path(__file__).parent / "data" / "ger_barak_short_run.npz"


def _brute_force(y, K, min_length):
    E, best = len(y), (np.inf, None)
    t = np.arange(E)
    for breaks in itertools.combinations(range(min_length, E - min_length + 1), K - 1):
        edges = [0, *breaks, E]
        if min(np.diff(edges)) < min_length:
            continue
        sse = 0.0
        for a, b in zip(edges[:-1], edges[1:]):
            coef = np.polyfit(t[a:b], y[a:b], 1)
            sse += np.sum((np.polyval(coef, t[a:b]) - y[a:b]) ** 2)
        if sse < best[0] - 1e-12:
            best = (sse, breaks)
    return best


def test_segment_fit_equals_brute_force_search():
    rng = np.random.default_rng(0)
    for K in (2, 3):
        y = np.cumsum(rng.normal(size=24))
        fit = stages.segment_fit(y, K, min_length=3)
        sse, breaks = _brute_force(y, K, 3)
        np.testing.assert_array_equal(fit.breaks, breaks)
        np.testing.assert_allclose(fit.sse, sse, rtol=1e-9)


def _synthetic(b1=9, b2=120, E=300, seed=0):
    """log L: drop (slope −0.25) to b1, a zig-zagging plateau to b2, descent (−0.02) after; noise 0.03."""
    t = np.arange(E)
    log_loss = np.where(t < b1, -0.25 * t, -0.25 * b1 + 0.0005 * (t - b1))
    log_loss = np.where(t < b2, log_loss, log_loss[b2 - 1] - 0.02 * (t - b2 + 1))
    zigzag = 0.05 * np.where((t >= b1) & (t < b2), np.sign(np.sin(t * 0.9)), 0.0)
    noise = 0.03 * np.random.default_rng(seed).normal(size=E)
    radii = np.where(t < b2, 1.3 - 0.3 * t / b2 + 1e-3, 0.99 - 1e-4 * (t - b2))  # crosses 1 at b2
    return np.exp(log_loss + zigzag + noise), radii


@pytest.mark.parametrize("b1, b2, seed", [(9, 120, 0), (5, 60, 1), (12, 110, 2)])
def test_detector_finds_the_breakpoints_of_a_synthetic_curve(b1, b2, seed):
    losses, radii = _synthetic(b1, b2, seed=seed)
    st = stages.learning_stages(losses, radii)
    assert abs(st.stage1_end - b1) <= 2 and st.stage3_start == b2
    np.testing.assert_array_equal(np.bincount(st.labels)[1:], [st.stage1_end, b2 - st.stage1_end, 300 - b2])
    # The loss alone (three segments over the whole run) finds the knee as well, and the end of the
    # plateau to within the zig-zag's reach (±5): the detector takes that end from the spectrum.
    fit = stages.segment_fit(np.log(losses), 3)
    assert abs(fit.breaks[0] - b1) <= 2 and abs(fit.breaks[1] - b2) <= 5


def test_detector_edge_cases():
    never = stages.learning_stages(np.exp(-0.1 * np.arange(20)), np.full(20, 2.0))  # never stabilises
    assert never.stage3_start == -1 and 3 <= never.stage1_end <= 17 and 3 not in never.labels
    early = stages.learning_stages(np.ones(6), np.array([2.0, 0.5, 0.5, 0.5, 0.5, 0.5]))  # stable at 1
    assert (early.stage1_end, early.stage3_start, early.knee_fit) == (1, 1, None)
    np.testing.assert_array_equal(early.labels, [1, 3, 3, 3, 3, 3])
    diverged = stages.learning_stages(np.r_[np.exp(-np.arange(10.0)), 1.0, np.nan, np.nan], np.full(13, 2.0))
    assert diverged.stage1_end <= 11
    with pytest.raises(ValueError, match="losses"):
        stages.learning_stages(np.array([1.0, 0.0, 1.0]), np.ones(3))
    with pytest.raises(ValueError, match="radii.shape"):
        stages.learning_stages(np.ones(5), np.ones(4))


def test_stored_closed_loop_run_ends_stage1_after_the_fast_drop():
    run = np.load(DATA)
    losses, radii = run["loss"], run["radius"]
    st = stages.learning_stages(losses, radii)
    # Not at update <= 2, where the earlier "loss halved" criterion put it (this run: 2) ...
    assert st.stage1_end > 2
    # ... but at a genuine knee: a fast regime (stage 1) and a plateau at least 10x flatter, the
    # plateau the longer part of the unstable phase. Measured on this run: the knee is at update 6,
    # with 77% of the fall in log L to the early plateau (median of the next 20 updates) done; the
    # drop's slow tail (updates 6-14) counts as plateau.
    slope1, slope2 = st.knee_fit.slopes
    assert slope1 < 0 and abs(slope2) < abs(slope1) / 10
    assert st.stage3_start - st.stage1_end > 5 * st.stage1_end
    early = np.median(np.log(losses[st.stage1_end:st.stage1_end + 20]))
    fallen = (np.log(losses[0]) - np.log(losses[st.stage1_end])) / (np.log(losses[0]) - early)
    assert 0.7 < fallen < 1.0
    old = 2  # the old criterion's stage-1 end: there only 38% of that fall had happened
    assert (np.log(losses[0]) - np.log(losses[old])) / (np.log(losses[0]) - early) < 0.6

"""The Huang et al. reproduction's claim statistics on hand-made analysis results, and its input checks."""

import numpy as np
import pytest

from jaxrnn.studies import huang, huang_claims
from jaxrnn.studies.huang_figures import decisiveness, fp_distance_to_final


def test_bad_scale_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"scale = 'laptop' is not allowed"):
        huang.reproduce(tmp_path / "out", scale="laptop")
    assert not (tmp_path / "out").exists()


def test_every_algorithm_has_its_figures_captioned():
    for algo in huang.FIG_ALGOS:
        names = [f for f in huang.FIGURES if f.endswith(f"_{algo}.png")]
        assert len(names) == 5 and all(huang.ALGORITHM_NAMES[algo] in huang.FIGURES[f] for f in names)


def test_decisiveness_and_fp_distance_by_hand():
    mu = np.array([[[0.0, 4.0], [-1.0, 1.0]]])  # |clip μ|/2 = 0, 1, 0.5, 0.5
    np.testing.assert_allclose(decisiveness(mu), [0.5])
    a = {"goal_fp_found": np.array([[True, False, True]]),
         "goal_fp_x": np.array([[[3.0, 4.0], [9.0, 9.0], [0.0, 0.0]]])}
    np.testing.assert_allclose(fp_distance_to_final(a), [[5.0, np.nan, 0.0]])


def test_first_for_good():
    u = np.array([0.0, 10, 20, 30])
    assert huang_claims._first_for_good(np.array([True, False, True, True]), u) == 20
    assert huang_claims._first_for_good(np.array([True, True, True, True]), u) == 0
    assert np.isnan(huang_claims._first_for_good(np.array([True, True, True, False]), u))


def _tau_analysis(curves):
    curves = np.asarray(curves, float)
    return {"tau_mean": np.stack([curves, curves / 2], -1)}


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # three identical curvatures: t-test of no spread
def test_explore_then_compress_claim_on_synthetic_curves():
    updates = np.linspace(0, 100, 21)
    u = updates / 100
    rng = np.random.default_rng(0)
    bump = [4 + 6 * u * (1 - u) * 4 + rng.normal(0, 0.1, u.size) for _ in range(5)]  # peak at mid-training
    claim = huang_claims._tau_claim(_tau_analysis(bump), updates, "ppo", "recurrent PPO")
    assert claim.holds is True and claim.value < 0 and claim.p_value < 0.05
    rising = [2 + 5 * u + rng.normal(0, 0.1, u.size) for _ in range(5)]  # τ rises and never compresses
    claim = huang_claims._tau_claim(_tau_analysis(rising), updates, "ppo", "recurrent PPO")
    assert claim.holds is False
    # hand check of the curvature: exact parabola 1 + 2u − 3u² has c = −3, vertex at 1/3
    claim = huang_claims._tau_claim(_tau_analysis([1 + 2 * u - 3 * u**2] * 3), updates, "ppo", "recurrent PPO")
    assert claim.value == pytest.approx(-3.0, abs=1e-9)


def test_scales_shrink_the_packaged_configs_as_documented():
    # cpu = the packaged agents and recipe with 5 seeds (SAC: 60 of the 100 iterations); test = tiny;
    # full = the packaged 16 seeds × 100 iterations
    for algo, cpu_updates in (("ppo", 100), ("sac", 60)):
        full, cpu, test = (huang.study_config(algo, s) for s in ("full", "cpu", "test"))
        assert [len(c.members()) for c in (full, cpu, test)] == [32, 10, 4]
        assert (full.run.num_updates, cpu.run.num_updates, test.run.num_updates) == (100, cpu_updates, 3)
        assert cpu.members()[0].rule == full.members()[0].rule and cpu.members()[0].model == full.members()[0].model
        small = test.members()[0].rule
        assert small["name"] == full.members()[0].rule["name"] and small["num_envs"] * small["num_steps"] == 64
        assert sorted({m.task["name"] for m in test.members()}) == ["pendulum-fo", "pendulum-po"]

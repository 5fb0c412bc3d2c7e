"""The McMahan reproduction's scales and claim rules: one packaged config, thresholds as written."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

from jaxrnn import population
from jaxrnn.studies import mcmahan, mcmahan_claims
from jaxrnn.studies.mcmahan_analysis import member_table, zero_input_attractors
from jaxrnn.studies.mcmahan_config import SCALES, get_scale, packaged_text, study_config
from jaxrnn.studies.mcmahan_stats import StatResult


def _members(scale):
    raw, text = study_config(scale)
    return raw, text, population.from_dict(raw, source=text).members()


def test_full_scale_is_exactly_the_packaged_config():
    """--full trains the packaged file itself (its 1,920 members: tests/test_subgrids.py)."""
    raw, text = study_config("full")
    assert text == packaged_text() and raw == tomllib.loads(packaged_text())


def test_cpu_scale_is_the_packaged_config_scaled():
    raw, text, members = _members("cpu")
    assert tomllib.loads(text) == raw  # the stored config.toml says exactly what was trained
    full = {(r, t) for r in ("bptt", "ga") for t in ("rdm", "cdi", "ncdi-3", "ncdi-6")}  # N = 3, 6 of 3…6
    full |= {(r, t) for r in ("hebbian", "full_force") for t in ("rdm", "cdi")}
    assert {(m.rule["name"], m.task["name"]) for m in members} == full  # every rule x simple task
    scale = get_scale("cpu")
    factor = math.sqrt(150 / 750)
    stds = sorted({round(m.task["noise_std"] / factor, 4) for m in members})
    assert stds == [0.1, 0.5, 1.0] and all(m.task["num_steps"] == 150 for m in members)
    # each noise level keeps the study's ideal-observer accuracy on the validation grid
    mu = np.linspace(0, 0.1875, 20)
    for s in (0.1, 0.5, 1.0):
        np.testing.assert_allclose(norm.cdf(mu * np.sqrt(150) / (s * factor)).mean(),
                                   norm.cdf(mu * np.sqrt(750) / s).mean(), rtol=1e-12)
    hebbian = [m for m in members if m.rule["name"] == "hebbian"]
    assert all(m.rule["eval_window"] == 40 for m in hebbian)  # 200 of 750 steps -> 40 of 150
    assert {m.run.num_updates for m in members if m.rule["name"] == "bptt"} == {scale.updates["bptt"]}
    ga_ncdi = [m for m in members if m.rule["name"] == "ga" and m.task["name"].startswith("ncdi")]
    assert {round(m.task["noise_std"] / factor, 4) for m in ga_ncdi} == {0.5}


def test_bad_scale_is_one_line_value_error(tmp_path):
    with pytest.raises(ValueError, match="scale = 'laptop' is not allowed"):
        mcmahan.reproduce(tmp_path, scale="laptop")
    with pytest.raises(ValueError, match="convention"):
        mcmahan.reproduce(tmp_path, scale="test", convention="features")
    assert not any(tmp_path.iterdir())  # nothing written
    assert set(SCALES) == {"test", "cpu", "full"}


def _pair(value, p, untrained=0.0):
    return {"trained": StatResult(value, p, 0.0, n=20), "untrained": StatResult(untrained, 0.5, 0.0, n=20)}


@pytest.mark.parametrize(("value", "p", "holds"), [(0.03, 0.4, True), (0.03, 0.01, False), (0.2, 0.4, False),
                                                   (-0.05, 0.9, True)])
def test_near_zero_claim_needs_small_value_and_a_null_like_p(value, p, holds):
    row = mcmahan_claims._row("x", "3.1", "", "paper", "stat", _pair(value, p), "|s| < 0.1 and p >= 0.05",
                              lambda v, pv: abs(v) < mcmahan_claims.NEAR_ZERO and pv >= mcmahan_claims.ALPHA)
    assert row.holds is holds and row.baseline["untrained"] == 0.0


def test_uncomputable_statistic_is_reported_not_dropped():
    pair = {"trained": StatResult(None, n=3, note="1 label(s) among 3 networks"), "untrained": StatResult(None)}
    row = mcmahan_claims._row("x", "3.1", "", "paper", "stat", pair, "> 0", mcmahan_claims.significant_above)
    assert row.holds is None and row.value is None and "1 label(s)" in row.note


def test_learning_claim_fails_when_a_rule_does_not_learn():
    rules = np.repeat(["bptt", "ga", "hebbian", "full_force"], 6)
    table = {"rule": np.tile(rules, 2), "task": np.repeat(["rdm", "cdi"], 24), "noise": np.full(48, 0.5),
             "met": np.ones(48, bool)}
    assert mcmahan_claims.learning_claims(table)[0].holds is True
    table["met"] = (table["rule"] != "hebbian") | (np.arange(48) % 6 == 0)  # Hebbian: 1 of 6 met
    row = mcmahan_claims.learning_claims(table)[0]
    assert row.holds is False and row.value == pytest.approx(1 / 6) and "Hebbian" in row.note


def test_member_table_and_zero_input_attractors_by_hand(tmp_path):
    """Study noise = σ / √(T/750); met = converged and not diverged; zero-input attractors = stable
    valid fixed points at u = 0, averaged over contexts (counted here with a loop)."""
    factor = math.sqrt(150 / 750)
    ds = xr.Dataset(
        {"val_accuracy": (("member", "evaluation"), [[0.5, 0.95, np.nan], [0.4, 0.6, 0.7], [0.9, 0.95, 0.97]]),
         "converged_update": ("member", [20, -1, 30]), "diverged": ("member", [False, False, True])},
        coords={"rule.name": ("member", ["bptt", "ga", "hebbian"]), "task.name": ("member", ["rdm", "ncdi-4", "cdi"]),
                "task.noise_std": ("member", [0.1 * factor, 0.5 * factor, 1.0 * factor]), "seed": ("member", [0, 1, 2])})
    table = member_table(ds, get_scale("cpu"))
    np.testing.assert_allclose(table["noise"], [0.1, 0.5, 1.0])
    np.testing.assert_array_equal(table["contexts"], [1, 4, 2])
    np.testing.assert_allclose(table["final_accuracy"], [0.95, 0.7, 0.97])
    np.testing.assert_array_equal(table["met"], [True, False, False])
    mcmahan._write_members(tmp_path / "members.md", table)
    text = (tmp_path / "members.md").read_text()
    assert "| Hebbian | cdi | 1 | 1 | 0 | 1 |" in text and "| 2 | Hebbian | cdi | 1 | 2 | 0.970 | True |" in text

    rng = np.random.default_rng(0)
    value = np.array([[0.0, 0.0, 0.1, -0.1], [0.0, 0.2, 0.0, 0.0]])  # [K, P]
    context = np.array([[0, 1, 0, 1], [0, 0, -1, 1]])  # -1: not a context probe
    valid, stable = rng.random((2, 4, 5)) < 0.6, rng.random((2, 4, 5)) < 0.5  # [K, P, F]
    result = xr.Dataset({"probe_value": (("member", "probe"), value), "probe_context": (("member", "probe"), context),
                         "fp_valid": (("member", "probe", "fp"), valid), "fp_stable": (("member", "probe", "fp"), stable)})
    expected = []
    for k in range(2):
        counts = [sum(valid[k, p, f] and stable[k, p, f] for f in range(5))
                  for p in range(4) if value[k, p] == 0 and context[k, p] >= 0]
        expected.append(sum(counts) / len(counts))
    np.testing.assert_allclose(zero_input_attractors(result), expected)

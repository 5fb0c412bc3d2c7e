"""The reusable pieces of the Ger & Barak reproduction (jaxrnn.studies.ger_barak): configs, the
rank-1 runs and their analysis, the eigenvalue pickers, the episode-length sweep.

The rank-1 model itself (``LowRankRNN(parametrization="ger_barak")``) and one step of its rule
against the authors' equations are tested in tests/test_lowrank.py."""

import jax
import numpy as np
import pytest

from jaxrnn import population
from jaxrnn.models import LowRankRNN
from jaxrnn.studies import ger_barak as gb
from jaxrnn.studies import ger_barak_analysis as an


def test_rank1_config_builds_the_authors_model_and_population_run_stores_the_frozen_input():
    cell = an.model_cell(an.RANK1_MODEL)
    assert isinstance(cell, LowRankRNN) and cell.parametrization == "ger_barak" and cell.rank == 1
    raw = gb.rank1_config(gb.SCALES["cpu"], T=50)
    assert raw["rule"]["name"] == "closed_loop" and raw["rule"]["trainable"] == ["U", "V", "W_out"]
    assert raw["model"] is not an.RANK1_MODEL  # a copy: editing a config never edits the module's model

    raw = gb.rank1_config({"rank1_updates": 4, "seeds": [0, 1], "batch": 100}, T=5)
    raw["model"]["hidden"] = 6
    ds = population.run(population.from_dict(raw), quiet=True)
    assert ds.sizes["snapshot"] == 5 and not ds.diverged.any()
    params = an.snapshot_params(ds, 1)
    np.testing.assert_array_equal(params["cell"]["params"]["W_in"][0], params["cell"]["params"]["W_in"][-1])
    assert not np.allclose(params["cell"]["params"]["U"][0], params["cell"]["params"]["U"][-1])
    sig = an.rank1_overlaps(params)
    p = jax.tree.map(np.asarray, params)
    m, u, v = (p["cell"]["params"][k][:, :, 0] for k in ("W_in", "U", "V"))  # W = u vᵀ: the params themselves
    z = p["readout"]["params"]["W_out"][:, 0]
    assert np.abs(z[0]).max() <= 1 / np.sqrt(6) and np.abs(m[0]).max() <= 1 / np.sqrt(6)  # U(±1/√N) at init
    expected = np.stack([np.sum(z * m, 1), np.sum(z * u, 1), np.sum(v * m, 1), np.sum(v * u, 1)], 1)
    np.testing.assert_allclose(sig, expected, rtol=1e-5, atol=1e-7)
    # The reduced map's spectrum is the nonzero spectrum of the full joint map (NumPy eigenvalues).
    eigs = an.rank1_spectrum(sig)
    full = np.linalg.eigvals(np.block([[an.A, an.B @ z[-1][None]],
                                       [np.outer(m[-1], an.C @ an.A), np.outer(u[-1], v[-1])]]))
    full = full[np.argsort(-np.abs(full))][:3]
    np.testing.assert_allclose(np.sort_complex(eigs[-1, :3]), np.sort_complex(full), atol=1e-5)


def test_eigenvalue_pickers():
    eigs = np.array([[0.9 + 0.2j, 0.9 - 0.2j, 0.5, 0.0],     # pair dominant
                     [0.95, 0.8 + 0.3j, 0.8 - 0.3j, 0.0],     # real λ3 dominant
                     [1.2, 0.7, 0.3, 0.0]])                   # all real: λ3 nearest σ_vu
    lam3, lam1 = an.third_eigenvalue(eigs, np.array([0.4, 0.9, 0.25]))
    np.testing.assert_allclose(lam3, [0.5, 0.95, 0.3])
    np.testing.assert_allclose(lam1, [abs(0.9 + 0.2j), abs(0.8 + 0.3j), 1.2])
    np.testing.assert_allclose(an.pair_eigenvalue(eigs), [0.9 + 0.2j, 0.8 + 0.3j, 1.2])


def test_entry_update_and_acquisition_updates():
    gains = np.array([[0.1, 0.1], [-0.1, -0.2], [0.1, 0.0], [-0.1, -0.2], [-0.2, -0.3]])  # stable from index 3
    assert an.entry_update(gains) == 3 and an.entry_update(gains[:3]) == -1 and an.entry_update(gains[3:]) == 0
    errors = np.array([[1.0, 1.0], [0.4, 0.9], [0.6, 0.45], [0.3, 0.2]])
    np.testing.assert_array_equal(an.acquisition_updates([0, 10, 20, 30], errors), [10, 20])
    np.testing.assert_array_equal(an.acquisition_updates([0, 10], errors[:2, 1:]), [-1])


def test_reproduce_refuses_a_bad_scale_before_writing(tmp_path):
    with pytest.raises(ValueError, match="scale = 'big' is not allowed"):
        gb.reproduce(tmp_path / "x", scale="big")
    assert not (tmp_path / "x").exists()

"""The reusable pieces of examples/closed_loop_learning.py: the rank-1 runs and their analysis.

The rank-1 model itself (``LowRankRNN(parametrization="ger_barak")``) and one step of its rule
against the authors' equations are tested in tests/test_lowrank.py."""

import importlib.util
import sys
from pathlib import Path

import jax
import numpy as np

from jaxrnn import population
from jaxrnn.models import LowRankRNN

_PATH = Path(__file__).resolve().parents[1] / "examples" / "closed_loop_learning.py"
_SPEC = importlib.util.spec_from_file_location("closed_loop_learning", _PATH)
ex = sys.modules.setdefault(_SPEC.name, importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(ex)


def test_rank1_config_builds_the_authors_model_and_population_run_stores_the_frozen_input():
    cell = ex.model_cell(ex.RANK1_MODEL)
    assert isinstance(cell, LowRankRNN) and cell.parametrization == "ger_barak" and cell.rank == 1
    raw = ex.rank1_config(ex.SMALL, T=50)
    assert raw["rule"]["name"] == "closed_loop" and raw["rule"]["trainable"] == ["U", "V", "W_out"]
    assert raw["model"] is not ex.RANK1_MODEL  # a copy: editing a config never edits the module's model

    raw = ex.rank1_config({"rank1_updates": 4, "seeds": [0, 1]}, T=5)
    raw["model"]["hidden"] = 6
    ds = population.run(population.from_dict(raw), quiet=True)
    assert ds.sizes["snapshot"] == 5 and not ds.diverged.any()
    params = ex.snapshot_params(ds, 1)
    np.testing.assert_array_equal(params["cell"]["params"]["W_in"][0], params["cell"]["params"]["W_in"][-1])
    assert not np.allclose(params["cell"]["params"]["U"][0], params["cell"]["params"]["U"][-1])
    analysis = ex.rank1_analysis(ds, 1)
    assert analysis["sig"].shape == (5, 4) and analysis["eigs"].shape == (5, 4)
    p = jax.tree.map(np.asarray, params)
    m, u, v = (p["cell"]["params"][k][:, :, 0] for k in ("W_in", "U", "V"))  # W = u vᵀ: the params themselves
    z = p["readout"]["params"]["W_out"][:, 0]
    assert np.abs(z[0]).max() <= 1 / np.sqrt(6) and np.abs(m[0]).max() <= 1 / np.sqrt(6)  # U(±1/√N) at init
    expected = np.stack([np.sum(z * m, 1), np.sum(z * u, 1), np.sum(v * m, 1), np.sum(v * u, 1)], 1)
    np.testing.assert_allclose(analysis["sig"], expected, rtol=1e-5, atol=1e-7)


def test_eigenvalue_pickers():
    eigs = np.array([[0.9 + 0.2j, 0.9 - 0.2j, 0.5, 0.0],     # pair dominant
                     [0.95, 0.8 + 0.3j, 0.8 - 0.3j, 0.0],     # real λ3 dominant
                     [1.2, 0.7, 0.3, 0.0]])                   # all real: λ3 nearest σ_vu
    lam3, lam1 = ex.third_eigenvalue(eigs, np.array([0.4, 0.9, 0.25]))
    np.testing.assert_allclose(lam3, [0.5, 0.95, 0.3])
    np.testing.assert_allclose(lam1, [abs(0.9 + 0.2j), abs(0.8 + 0.3j), 1.2])
    np.testing.assert_allclose(ex.pair_eigenvalue(eigs), [0.9 + 0.2j, 0.8 + 0.3j, 1.2])

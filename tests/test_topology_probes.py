"""Topology signatures against scikit-learn, integration probes on hand-built networks, pipeline shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from jaxrnn import population
from jaxrnn.analysis.fixed_points import FixedPoints
from jaxrnn.analysis.pipeline import analyze, analyze_store, concat_runs, condition_inputs
from jaxrnn.analysis.stored_networks import CTRNNStep, LinearReadout
from jaxrnn.analysis.probes import STABLE, TRANSIENT, UNRESPONSIVE, integration_probe_population, pulse_inputs
from jaxrnn.analysis.similarity import svcca
from jaxrnn.analysis.topology import index_profile, topology_distances, topology_signature
from jaxrnn.models import CTRNN


def _fixed_points(x, valid, eigvals=None):
    P, K, N = x.shape
    eigvals = np.zeros((P, K, N), np.complex64) if eigvals is None else eigvals
    return FixedPoints(x=jnp.asarray(x, jnp.float32), q=jnp.zeros((P, K)), valid=jnp.asarray(valid),
                       eigvals=jnp.asarray(eigvals), stable=jnp.asarray(valid), converged=jnp.asarray(valid))


def _reference_signature(x, valid, tags):
    """McMahan's fixed_point_input_topology.py: sklearn ball-tree 3-NN on all FPs, first 10 rows."""
    points = x[valid]
    point_tags = np.broadcast_to(tags[:, None], valid.shape)[valid]
    _, index = NearestNeighbors(n_neighbors=3, algorithm="ball_tree").fit(points).kneighbors(points)
    return point_tags[index][:10].reshape(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topology_signature_equals_sklearn_nearest_neighbors(seed):
    rng = np.random.default_rng(seed)
    P, K, N = 7, 5, 4
    x = rng.normal(size=(P, K, N)).astype(np.float32)
    valid = rng.random((P, K)) < 0.6
    valid[:2] = True  # at least 10 valid fixed points
    tags = np.asarray([0.0, 0.1, -0.1, 0.2, -0.2, 0.3, -0.3], np.float32)
    signature, mask = topology_signature(_fixed_points(x, valid), jnp.asarray(tags))
    np.testing.assert_array_equal(np.asarray(signature), _reference_signature(x, valid, tags))
    assert bool(mask.all())
    # vmapped over networks = one at a time
    batch = jax.tree_util.tree_map(lambda a: jnp.stack([a, a[::-1]]), _fixed_points(x, valid))
    signatures, _ = jax.vmap(topology_signature, in_axes=(0, None))(batch, jnp.asarray(tags))
    np.testing.assert_array_equal(np.asarray(signatures[0]), np.asarray(signature))
    D = np.asarray(topology_distances(signatures))
    np.testing.assert_allclose(D[0, 1], np.linalg.norm(signatures[0] - signatures[1]), rtol=1e-6)
    assert D[0, 0] == 0 and D[0, 1] == D[1, 0]


def test_topology_signature_with_few_fixed_points_is_masked():
    x = np.asarray([[[0.0, 0.0], [5.0, 0.0]], [[0.1, 0.0], [9.0, 9.0]]], np.float32)  # 2 probes × 2 starts
    valid = np.asarray([[True, True], [True, False]])
    signature, mask = topology_signature(_fixed_points(x, valid), jnp.asarray([0.0, 0.5]))
    S, M = np.asarray(signature).reshape(10, 3), np.asarray(mask).reshape(10, 3)
    # rows: FP (0,0) tag 0 -> [itself 0, (0.1,0) tag .5, (5,0) tag 0]; FP (5,0); FP (0.1,0)
    np.testing.assert_allclose(S[:3], [[0.0, 0.5, 0.0], [0.0, 0.5, 0.0], [0.5, 0.0, 0.0]])
    assert M[:3].all() and not M[3:].any() and np.all(S[3:] == 0)


def test_index_profile_counts_fixed_points_by_unstable_directions():
    x = np.zeros((2, 3, 2), np.float32)
    valid = np.asarray([[True, True, True], [True, False, True]])
    eigvals = np.asarray([[[0.5, 0.2], [1.5, 0.3], [2.0, 1.2]],  # attractor, saddle, index 2
                          [[0.9, 0.1], [1.5, 0.3], [1.0005, 0.1]]], np.complex64)  # attractor, (invalid), marginal
    profile = np.asarray(index_profile(_fixed_points(x, valid, eigvals)))
    np.testing.assert_array_equal(profile, [[1, 1, 1], [2, 0, 0]])


def _linear_networks(gains, alpha=0.1):
    """2-unit linear CTRNNs with W_rec = g·v vᵀ: g = 1 is a line attractor along v, g < 1 leaks."""
    v = np.asarray([0.6, 0.8], np.float32)
    return {"W_rec": jnp.asarray([g * np.outer(v, v) for g in gains], jnp.float32),
            "W_in": jnp.asarray(np.tile(v[:, None], (len(gains), 1, 1))), "b": jnp.zeros((len(gains), 2)),
            "W_out": jnp.asarray(np.tile(v[None, :], (len(gains), 1, 1)))}


def test_line_attractor_is_stable_and_leaky_network_transient():
    step = CTRNNStep(activation="linear", alpha=0.1)
    readout = LinearReadout(activation="linear", output="state")
    params = _linear_networks([1.0, 0.5, 0.0])
    params["W_out"] = params["W_out"].at[2].set(0.0)  # third network reads nothing out
    T, pulse = 400, 80
    result = integration_probe_population(step, readout, params, jnp.zeros((3, 2)), pulse_inputs(0, T, pulse), pulse)
    assert result.label.tolist() == [STABLE, TRANSIENT, UNRESPONSIVE]
    np.testing.assert_allclose(float(result.retention[0]), 1.0, rtol=1e-4)
    # leaky mode: e(t) ∝ (1 − α(1 − g))^t after the pulse
    np.testing.assert_allclose(float(result.retention[1]), 0.95 ** (T - pulse), rtol=1e-2, atol=1e-7)
    # evidence at the end of the pulse: Σ_t (1)^{t} α μ for the perfect integrator
    np.testing.assert_allclose(float(result.response[0]), 0.1 * pulse * np.mean([0.05, 0.1, 0.1857]), rtol=1e-4)


def test_pulse_inputs_match_the_decision_task_pulse_variant():
    import jaxrnn

    task, params = jaxrnn.make("cdi", num_steps=30)
    params = params.replace(noise_std=jnp.float32(0.0), stimulus_end=jnp.int32(7), trial_length=jnp.int32(30))
    trial = task.trial(jax.random.key(3), params, jnp.float32(0.1))
    context = int(jnp.argmax(trial.inputs[0, 2:]))
    sign = float(jnp.sign(trial.inputs[0, context]))
    ours = pulse_inputs(2, 30, 7, coherences=(0.1,))[0 if sign > 0 else 1, context]
    np.testing.assert_allclose(ours[:, context], trial.inputs[:, context], atol=1e-7)
    np.testing.assert_array_equal(ours[:, 2:], trial.inputs[:, 2:])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "run"
    config = population.from_dict({
        "run": {"num_updates": 2, "eval_every": 1, "chunk_updates": 2, "snapshots": 2,
                "snapshot_spacing": "linear", "stop_threshold": 2.0},
        "task": {"name": "rdm", "num_steps": 20, "noise_std": 0.1},
        "model": {"hidden": 8},
        "rule": {"name": ["bptt", "ga"], "batch": 4, "num_validation_trials": 8},
        "grid": {"seeds": 2},
    })
    dataset = population.run(config, out=out, quiet=True)
    return out, dataset


def test_pipeline_on_a_tiny_population(tiny_run):
    out, dataset = tiny_run
    merged = analyze_store(out, num_starts=8, num_steps=40, max_fps=4, tol=1e-10)
    K, Q = 4, 21
    assert merged.sizes["member"] == K and merged.sizes["member_b"] == K and merged.sizes["probe"] == Q
    expected = {"fp_x": (K, Q, 4, 8), "fp_valid": (K, Q, 4), "fp_count": (K, Q), "probe_value": (K, Q),
                "topology_signature": (K, 30), "index_profile": (K, Q, 3), "svcca_distance": (K, K),
                "topology_distance": (K, K), "index_profile_distance": (K, K), "svcca_mds": (K, 2),
                "topology_mds": (K, 2), "svcca_silhouette": (1,), "integration_class": (K,)}
    for name, shape in expected.items():
        assert merged[name].shape == shape, name
    for name in ("svcca_distance", "topology_distance", "index_profile_distance"):
        D = merged[name].values
        np.testing.assert_array_equal(np.diag(D), 0.0)
        np.testing.assert_allclose(D, D.T, atol=1e-7)
        assert np.all(np.isfinite(D))
    reloaded = population.load(out)  # written into the run's store, next to the training results
    np.testing.assert_array_equal(reloaded.svcca_distance.values, merged.svcca_distance.values)
    assert "loss" in reloaded and reloaded.attrs["config"] == dataset.attrs["config"]

    # the rebuilt step is the trained cell: activity and fixed points checked with CTRNN.apply
    cell = CTRNN(8)
    inputs = jnp.asarray(condition_inputs(0, 40))

    def cell_params(m):
        snap = int(merged.analysis_snapshot[m])
        return {"params": {k: jnp.asarray(dataset[f"params.cell.{k}"].values[m, snap]) for k in ("W_in", "W_rec", "b")}}

    def activity(m):
        run = lambda us: jax.lax.scan(lambda x, u: (cell.apply(cell_params(m), x, u)[0],) * 2, jnp.zeros(8), us)[1]  # noqa: E731
        return jax.vmap(run)(inputs).reshape(-1, 8)

    np.testing.assert_allclose(merged.svcca_distance.values[0, 2], float(svcca(activity(0), activity(2))), atol=2e-4)
    valid = merged.fp_valid.values
    assert valid[:, 0].any(axis=-1).all()  # every member has a fixed point at zero input
    m, p, f = np.argwhere(valid)[0]
    x_star = jnp.asarray(merged.fp_x.values[m, p, f])
    u = jnp.asarray([merged.probe_value.values[m, p]])
    np.testing.assert_allclose(cell.apply(cell_params(m), x_star, u)[0], x_star, atol=1e-4)


def test_mixed_task_population_has_no_nan_and_matches_each_task_alone(tiny_run, tmp_path):
    """RDM (21 probes) beside 3-CDI (63): every within-task distance and silhouette is finite and
    equals the analysis of that task's members alone (the probe padding must not leak in)."""
    _, rdm = tiny_run
    config = population.from_dict({
        "run": {"num_updates": 1, "eval_every": 1, "chunk_updates": 1, "snapshots": 2,
                "snapshot_spacing": "linear", "stop_threshold": 2.0},
        "task": {"name": "ncdi-3", "num_steps": 20, "noise_std": 0.1},
        "model": {"hidden": 8},
        "rule": {"name": ["bptt", "ga"], "batch": 4, "num_validation_trials": 8},
        "grid": {"seeds": 2},
    })
    ncdi = population.run(config, out=tmp_path / "ncdi", quiet=True)
    options = dict(num_starts=6, num_steps=30, max_fps=4, tol=1e-10, max_iters=30)
    mixed = analyze(concat_runs([rdm, ncdi]), **options)
    alone = analyze(rdm, **options)
    K = rdm.sizes["member"]
    for name in ("svcca_distance", "topology_distance", "index_profile_distance"):
        for block in (slice(0, K), slice(K, None)):
            assert np.all(np.isfinite(mixed[name].values[block, block])), name
        np.testing.assert_allclose(mixed[name].values[:K, :K], alone[name].values, atol=1e-5, err_msg=name)
    for name in ("svcca_silhouette", "topology_silhouette", "index_profile_silhouette"):
        assert np.all(np.isfinite(mixed[name].values)), name

"""Population runner: vmapped members equal members trained alone; divergence is isolated."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from jaxrnn import population
from jaxrnn.models import CTRNN, LinearReadout
from jaxrnn.population.builders import member_hparams
from jaxrnn.rules import bptt

RUN = {"num_updates": 12, "eval_every": 3, "chunk_updates": 6, "snapshots": 3, "snapshot_spacing": "linear",
       "stop_threshold": 2.0}
TASK = {"name": "cdi", "num_steps": 20}
MODEL = {"hidden": 8}


def _config(rule, seeds=(0, 1), task=None, run=None):
    return population.from_dict({
        "run": {**RUN, **(run or {})},
        "task": {**TASK, **(task or {})},
        "model": MODEL,
        "rule": {"batch": 8, "num_validation_trials": 40, **rule},
        "grid": {"seeds": list(seeds)},
    })


def _train_alone(member, num_updates):
    """The reference: one member, a plain Python loop over un-vmapped rule.update calls."""
    task, _ = __import__("jaxrnn").make(member.task["name"], num_steps=member.task["num_steps"])
    rule = bptt(CTRNN(8), task, batch=8, readout=LinearReadout(1, scale=0.1), num_validation_trials=40)
    hp = member_hparams(rule, member.task, member.model, member.rule)
    init_key, train_key = population.member_keys(member.seed)
    state = rule.init(init_key, hp)
    update = jax.jit(rule.update)
    losses = []
    for u in range(num_updates):
        state, metrics = update(population.update_key(train_key, jnp.int32(u)), state, hp)
        losses.append(float(metrics["loss"]))
    return state, np.array(losses)


def test_population_equals_members_trained_alone():
    config = _config({"learning_rate": [1e-3, 3e-3]}, seeds=(0, 5), task={"noise_std": [0.1, 1.0]})
    ds = population.run(config, quiet=True)
    assert ds.sizes["member"] == 8
    for member in config.members()[::3]:
        state, losses = _train_alone(member, 12)
        np.testing.assert_allclose(ds.loss.values[member.index], losses, rtol=2e-5, atol=1e-6)
        final = ds["params.cell.W_rec"].values[member.index, -1]
        np.testing.assert_allclose(final, state.params["cell"]["params"]["W_rec"], rtol=2e-5, atol=1e-6)
        assert ds.seed.values[member.index] == member.seed
        assert ds["task.noise_std"].values[member.index] == member.task["noise_std"]
        assert ds["rule.learning_rate"].values[member.index] == member.rule["learning_rate"]


def test_diverging_member_is_flagged_frozen_and_isolated():
    healthy = population.run(_config({"learning_rate": [1e-3]}), quiet=True)
    mixed = population.run(_config({"learning_rate": [1e-3, 1e30]}), quiet=True)
    assert mixed.diverged.values.tolist() == [False, False, True, True]
    assert not healthy.diverged.any()
    for name in ("loss", "val_accuracy", "params.cell.W_rec"):
        np.testing.assert_array_equal(mixed[name].values[:2], healthy[name].values)
    bad = mixed.loss.values[2]
    first_bad = int(np.argmax(~np.isfinite(bad)))
    assert np.all(np.isnan(bad[first_bad + 1:]))  # frozen: no further updates
    # the stored params stay finite: the non-finite update was discarded
    assert np.all(np.isfinite(mixed["params.cell.W_rec"].values[2:]))


def test_member_blocks_equal_one_vmap_and_keep_divergence_isolated(monkeypatch):
    """On one CPU device members run in blocks (lax.map over vmapped blocks); numbers must not move."""
    from jaxrnn.population import mapping

    config = _config({"learning_rate": [1e-3, 1e30]}, seeds=(0, 1, 2, 3))  # 8 members, 4 diverge
    monkeypatch.setattr(mapping, "CPU_MEMBER_BLOCK", None)
    whole = population.run(config, quiet=True)
    monkeypatch.setattr(mapping, "CPU_MEMBER_BLOCK", 3)  # blocks 3 + 3 + remainder 2
    blocked = population.run(config, quiet=True)
    np.testing.assert_array_equal(blocked.diverged.values, whole.diverged.values)
    assert blocked.diverged.values.tolist() == [False] * 4 + [True] * 4
    for name in ("loss", "val_accuracy", "params.cell.W_rec"):
        np.testing.assert_allclose(blocked[name].values, whole[name].values, rtol=2e-5, atol=1e-6)


def test_converged_members_are_frozen_by_masking():
    ds = population.run(_config({"learning_rate": 1e-3}, run={"stop_threshold": 0.0, "stop_window": 2}), quiet=True)
    # criterion met at the second validation (update 6): later updates are masked
    np.testing.assert_array_equal(ds.converged_update.values, [6, 6])
    assert np.all(np.isfinite(ds.loss.values[:, :6])) and np.all(np.isnan(ds.loss.values[:, 6:]))
    np.testing.assert_array_equal(ds["params.cell.W_rec"].values[:, 1], ds["params.cell.W_rec"].values[:, 2])


def test_member_results_do_not_depend_on_grid_position_or_chunking():
    a = population.run(_config({"learning_rate": 1e-3}, seeds=(3, 4)), quiet=True)
    b = population.run(_config({"learning_rate": 1e-3}, seeds=(4,), run={"chunk_updates": 3}), quiet=True)
    np.testing.assert_allclose(b.loss.values[0], a.loss.values[1], rtol=2e-5, atol=1e-6)


def test_store_round_trips_and_opens_with_plain_xarray(tmp_path):
    ds = population.run(_config({"learning_rate": 1e-3}, task={"noise_std": [0.1, 0.5]}), out=tmp_path, quiet=True)
    loaded = population.load(tmp_path)
    xr.testing.assert_identical(loaded, ds)
    # a fresh interpreter that never imports jaxrnn opens it
    code = (
        "import sys, xarray as xr; ds = xr.open_zarr(sys.argv[1]);"
        "assert 'jaxrnn' not in sys.modules;"
        "print(ds.sizes['member'], list(ds['task.noise_std'].values), ds.loss.dims, ds.attrs['config'][:0]);"
        "print(ds.val_accuracy.sel(evaluation=6).shape, ds['params.cell.W_rec'].sel(snapshot=12).dims)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "results.zarr")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "4"
    assert out.stdout.splitlines()[1] == "(4,) ('member', 'neuron', 'neuron_pre')"  # indexed by update number
    for name in ("loss", "val_accuracy", "converged_update", "diverged", "params.cell.W_rec"):
        assert name in loaded
    assert loaded.loss.dims == ("member", "update")
    assert loaded.val_accuracy.dims == ("member", "evaluation")
    np.testing.assert_array_equal(loaded.snapshot_update.values, [0, 6, 12])
    np.testing.assert_array_equal(loaded.snapshot.values, [0, 6, 12])
    np.testing.assert_array_equal(loaded.evaluation.values, [3, 6, 9, 12])
    assert "jax" in loaded.attrs["versions"] and "cpu" in loaded.attrs["devices"].lower()


def test_stored_run_describes_itself(tmp_path):
    """Every variable and coordinate has long_name, units and a description; params have named axes;
    a run started from Python stores its config as TOML that parses back to the config."""
    import tomllib

    raw = {"run": {**RUN}, "task": {**TASK, "noise_std": [0.1, 0.5]}, "model": MODEL,
           "rule": {"batch": 8, "num_validation_trials": 40, "learning_rate": 1e-3}, "grid": {"seeds": [0]}}
    population.run(population.from_dict(raw), out=tmp_path, quiet=True)
    ds = xr.open_zarr(tmp_path / "results.zarr")
    for name, variable in {**ds.data_vars, **ds.coords}.items():
        assert {"long_name", "units", "description"} <= set(variable.attrs), name
        assert variable.attrs["long_name"] and variable.attrs["units"], name
    for name in ("loss", "val_accuracy", "params.cell.W_rec", "converged_time"):
        assert "NaN" in ds[name].attrs["nan_meaning"], name
    assert ds["params.cell.W_rec"].dims == ("member", "snapshot", "neuron", "neuron_pre")
    assert ds["params.cell.W_in"].dims == ("member", "snapshot", "neuron", "input")
    assert ds["params.readout.W_out"].dims == ("member", "snapshot", "output", "neuron")
    assert ds.sizes["neuron"] == 8 and ds.sizes["input"] == 4 and ds.sizes["output"] == 1
    assert ds["update"].attrs["units"] == ds["evaluation"].attrs["units"] == ds["snapshot"].attrs["units"] == "update"
    assert ds["task.noise_std"].attrs["units"] == "1"
    assert tomllib.loads(ds.attrs["config"]) == raw


def test_snapshot_updates_linear_and_log():
    run = population.RunConfig(num_updates=1000, eval_every=10, snapshots=5, snapshot_spacing="log")
    assert population.snapshot_updates(run) == [0, 10, 100, 1000] or population.snapshot_updates(run)[0] == 0
    updates = population.snapshot_updates(run)
    assert updates[0] == 0 and updates[-1] == 1000 and all(u % 10 == 0 for u in updates)
    assert np.all(np.diff(np.log(updates[1:])) > 0)
    run = population.RunConfig(num_updates=100, eval_every=10, snapshots=3, snapshot_spacing="linear")
    assert population.snapshot_updates(run) == [0, 50, 100]


def test_static_sweep_makes_groups_with_padded_params():
    config = population.from_dict({
        "run": RUN, "task": {"name": "rdm", "num_steps": 10},
        "model": {"hidden": [4, 6]}, "rule": {"batch": 4, "num_validation_trials": 8}, "grid": {"seeds": 1},
    })  # (groups split by task name: tests/test_cli.py's run of rdm and cdi compiles one program per task)
    assert len(population.group_members(config)) == 2
    ds = population.run(config, quiet=True)
    w = ds["params.cell.W_rec"].values
    assert w.shape[-2:] == (6, 6)
    assert np.all(np.isnan(w[0, :, 4:, :])) and np.all(np.isfinite(w[1]))  # hidden 4 padded
    np.testing.assert_array_equal(ds["model.hidden"].values, [4, 6])


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"task": {"name": "rdm", "noise_std": -0.1}}, "task.noise_std"),
        ({"task": {"name": "rdm", "noise_std": [0.1, -1.0]}}, "task.noise_std"),
        ({"task": {"name": "rdm"}, "model": {"alpha": 0.0}}, "model.alpha"),
        ({"task": {"name": "rdm"}, "model": {"alpha": 1.2}}, "model.alpha"),
        ({"task": {"name": "rdm"}, "model": {"hidden": 0}}, "model.hidden"),
        ({"task": {"name": "rdm"}, "model": {"activation": "softplus"}}, "model.activation"),
        ({"task": {"name": "nope"}}, "task.name"),
        ({"task": {"name": "rdm", "coherence": 0.2}}, "task.coherence"),
        ({"task": {"name": "rdm"}, "grid": {"seeds": 2, "lr": [1, 2]}}, "grid.lr"),
        ({"task": {"name": "rdm"}, "rule": {"learning_rate": 0.0}}, "rule.learning_rate"),
        ({"task": {"name": "rdm"}, "rule": {"name": "sgd"}}, "rule.name"),
        ({"task": {"name": "rdm"}, "rule": {"batch": 0}}, "rule.batch"),
        ({"task": {"name": "rdm"}, "rule": {"trainable": ["W_foo"]}}, "rule.trainable"),
        ({"task": {"name": "rdm"}, "run": {"num_updates": 15, "eval_every": 10}}, "run.num_updates"),
        ({"task": {"name": "rdm"}, "run": {"num_updates": [10, 20]}}, "run.num_updates"),
        ({"task": {"name": "rdm"}, "optimizer": {}}, "optimizer"),
        ({"task": {"name": "rdm"}, "model": {"gain": -1.0}}, "model.gain"),
    ],
)
def test_bad_config_values_raise_before_compiling(raw, field, monkeypatch):
    compiled = []
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as error:
        config = population.from_dict(raw)
        population.group_members(config)
        from jaxrnn.population.builders import build_rule
        for m in config.members():
            build_rule(m.task, m.model, m.rule)
    assert "must be" in str(error.value)
    assert not compiled


def test_unknown_task_lists_registered_names():
    with pytest.raises(ValueError) as error:
        population.from_dict({"task": {"name": "dms"}})
    for name in ("rdm", "cdi", "ncdi-4", "pendulum-po", "double-integrator"):
        assert name in str(error.value)


def test_prepare_equals_member_by_member_construction():
    """Batched keys and shared hparams give each member exactly its own member_keys / member_hparams
    (seeds up to 2**32 - 1 in one vmapped call, larger ones one by one)."""
    from jaxrnn.population.program import member_keys
    from jaxrnn.population.runner import prepare

    raw = {"run": {"num_updates": 2, "eval_every": 2, "chunk_updates": 2, "snapshots": 0},
           "task": {"name": "rdm", "num_steps": 20, "noise_std": [0.1, 0.5]},
           "model": {"hidden": 8}, "rule": {"batch": 4, "learning_rate": [1e-3, 1e-2]}}
    for seeds in ([0, 3, 2**31 + 5, 2**32 - 1], [1, 2**40]):
        members = population.from_dict({**raw, "grid": {"seeds": seeds}}).members()
        assert len({(m.task["noise_std"], m.rule["learning_rate"]) for m in members}) == 4
        rule, hparams, init_keys, train_keys = prepare(members)
        for i, m in enumerate(members):
            want_init, want_train = member_keys(m.seed)
            np.testing.assert_array_equal(init_keys[i], np.asarray(want_init))
            np.testing.assert_array_equal(train_keys[i], np.asarray(want_train))
            want = member_hparams(rule, m.task, m.model, m.rule)
            for got_leaf, want_leaf in zip(jax.tree.leaves(hparams), jax.tree.leaves(want)):
                np.testing.assert_array_equal(got_leaf[i], np.asarray(want_leaf))
                assert got_leaf.dtype == np.asarray(want_leaf).dtype

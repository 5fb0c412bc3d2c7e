"""Unions of grids (``[[subgrid]]``): merging, validation, grouping, training, store, resume."""

import collections
import json

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from jaxrnn import population
from jaxrnn.analysis.stored_networks import member_specs
from jaxrnn.population import checkpoint
from jaxrnn.population.builders import rule_values
from jaxrnn.rules.registry import rule_fields

BASE = {
    "run": {"num_updates": 12, "eval_every": 3, "chunk_updates": 6, "snapshots": 3, "snapshot_spacing": "linear",
            "stop_threshold": 2.0},
    "task": {"name": "cdi", "num_steps": 20, "noise_std": [0.1, 1.0]},
    "model": {"hidden": 6},
    "rule": {"name": "bptt", "batch": 8, "num_validation_trials": 40, "learning_rate": 1e-3},
    "grid": {"seeds": [0, 1]},
}
GA = {  # a different rule, budget, chunking, snapshot count, seeds; noise fixed where BPTT sweeps it
    "task": {"noise_std": 0.5},
    "rule": {"name": "ga", "population_size": 4, "num_parents": 2, "batch": 8, "num_validation_trials": 40,
             "mutation_std": [0.01, 0.05]},
    "run": {"num_updates": 6, "chunk_updates": 3, "snapshots": 2},
    "grid": {"seeds": [3]},
}
UNION = {**BASE, "subgrid": [GA]}
GA_ALONE = {"run": {**BASE["run"], **GA["run"]}, "task": {**BASE["task"], **GA["task"]}, "model": BASE["model"],
            "rule": GA["rule"], "grid": GA["grid"]}
COMPARED = ["loss", "val_accuracy", "val_loss", "converged_update", "diverged", "params.cell.W_rec",
            "params.cell.W_in", "params.readout.W_out"]


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def compile_once(tmp_path_factory):
    """A persistent compilation cache for this module: a sub-grid trained alone, its group in the
    union and the resumed group are the same program, so each compiles once (the test stays fast)."""
    settings = {"jax_compilation_cache_dir": str(tmp_path_factory.mktemp("xla-cache")),
                "jax_persistent_cache_min_compile_time_secs": 0.0}
    before = {name: getattr(jax.config, name) for name in settings}
    compilation_cache.reset_cache()
    for name, value in settings.items():
        jax.config.update(name, value)
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, compile_once):
    """The union trained with a crash in its second group (then resumed and re-loaded), and each
    sub-grid trained as a config of its own."""
    out = tmp_path_factory.mktemp("union") / "out"
    config = population.from_dict(UNION, name="union")
    save_state = checkpoint.PartCheckpoint.save_state

    def crashing(self, state):  # dies after GA's 2nd chunk outputs were written, before its state
        if self.folder.name == "g001-p000" and int(state["next_chunk"]) == 2:
            raise Crash
        save_state(self, state)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint.PartCheckpoint, "save_state", crashing)
        with pytest.raises(Crash):
            population.run(config, out=out, quiet=True)
    states = {p.name: int(np.load(p / "state.npz")["next_chunk"]) for p in (out / "checkpoint").iterdir()}
    resumed = population.run(config, out=out, quiet=True)
    loaded = population.run(config, out=out, quiet=True)
    alone = [population.run(population.from_dict(BASE), quiet=True),
             population.run(population.from_dict(GA_ALONE), quiet=True)]
    return config, states, resumed, loaded, alone


def test_union_members_equal_each_subgrid_trained_alone(runs):
    config, _, ds, _, (bptt, ga) = runs
    members = config.members()
    assert [m.subgrid for m in members] == [0, 0, 0, 0, 1, 1]
    assert [m.index for m in members] == list(range(6))
    for alone, rows, updates, evaluations, snaps in ((bptt, slice(0, 4), 12, 4, 3), (ga, slice(4, 6), 6, 2, 2)):
        assert alone.sizes["member"] == rows.stop - rows.start
        np.testing.assert_array_equal(ds.seed.values[rows], alone.seed.values)
        np.testing.assert_array_equal(ds["task.noise_std"].values[rows], alone["task.noise_std"].values
                                      if "task.noise_std" in alone.coords else 0.5)
        for name in COMPARED:
            mine, theirs = ds[name].values[rows], alone[name].values
            if name.startswith("params."):
                mine = mine[:, :snaps]
            elif mine.ndim == 2:
                mine = mine[:, : (updates if name == "loss" else evaluations)]
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
        np.testing.assert_array_equal(ds.snapshot_update.values[rows, :snaps],
                                      np.broadcast_to(alone.snapshot_update.values, (rows.stop - rows.start, snaps)))
    assert np.isfinite(ds.loss.values).sum() == 4 * 12 + 2 * 6  # nothing else finite: the rest is padding


def test_shorter_subgrid_is_nan_padded_and_coords_describe_the_union(runs):
    ds = runs[2]
    assert ds.sizes["update"] == 12 and ds.sizes["evaluation"] == 4 and ds.sizes["snapshot"] == 3
    np.testing.assert_array_equal(ds["update"].values, np.arange(1, 13))
    np.testing.assert_array_equal(ds.evaluation_update.values, [3, 6, 9, 12])
    assert np.isnan(ds.loss.values[4:, 6:]).all() and np.isfinite(ds.loss.values[4:, :6]).all()
    assert np.isnan(ds.val_accuracy.values[4:, 2:]).all() and np.isfinite(ds.val_accuracy.values[4:, :2]).all()
    assert np.isnan(ds["params.cell.W_rec"].values[4:, 2]).all()
    assert np.isfinite(ds["params.cell.W_rec"].values[:4]).all()
    assert ds.snapshot_update.dims == ("member", "snapshot")  # the sub-grids snapshot at different updates
    np.testing.assert_array_equal(ds.snapshot_update.values, [[0, 6, 12]] * 4 + [[0, 6, -1]] * 2)
    np.testing.assert_array_equal(ds.subgrid.values, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(ds["run.num_updates"].values, [12, 12, 12, 12, 6, 6])
    np.testing.assert_array_equal(ds.group.values, [0, 0, 0, 0, 1, 1])
    assert list(ds["rule.name"].values) == ["bptt"] * 4 + ["ga"] * 2
    # swept in one sub-grid, fixed in the other: still one coord for every member
    np.testing.assert_array_equal(ds["task.noise_std"].values, [0.1, 0.1, 1.0, 1.0, 0.5, 0.5])
    np.testing.assert_array_equal(ds["rule.mutation_std"].values, [np.nan] * 4 + [0.01, 0.05])
    assert "rule.learning_rate" not in ds.coords  # one value, and only BPTT has the field
    assert runs[0].sweep_axes() == {"task.noise_std": [0.1, 1.0, 0.5], "rule.name": ["bptt", "ga"],
                                    "rule.mutation_std": [0.01, 0.05]}


def test_analysis_counts_each_members_own_snapshots(runs):
    ds = runs[2]
    assert list(member_specs(ds, -1)[1]) == [2, 2, 2, 2, 1, 1]  # each member's last real snapshot
    assert list(member_specs(ds, -2)[1]) == [1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match=r"^snapshot = 2 .*for member 4"):
        member_specs(ds, 2)  # the GA members have only two snapshots


def test_interrupted_union_resumes_from_its_checkpoints(runs):
    _, states, resumed, loaded, _ = runs
    assert states == {"g000-p000": 2, "g001-p000": 1}  # BPTT done, GA's second chunk not recorded
    # the resumed run trained only what was left: no chunk of group 0 ran (nothing compiled)
    compile_time = json.loads(resumed.attrs["compile_time"])
    assert compile_time[0] == 0.0 and compile_time[1] > 0.0
    for name in COMPARED + ["grad_norm"]:
        np.testing.assert_array_equal(loaded[name].values, resumed[name].values, err_msg=name)
    np.testing.assert_array_equal(loaded.snapshot_update.values, resumed.snapshot_update.values)


def test_groups_never_mix_run_settings():
    raw = {**BASE, "subgrid": [{"grid": {"seeds": [5]}}, {"run": {"num_updates": 6}}]}
    config = population.from_dict(raw)
    groups = population.group_members(config)
    assert [[m.index for m in g] for g in groups] == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]]
    assert [g[0].run.num_updates for g in groups] == [12, 6]
    assert [m.subgrid for m in groups[0]] == [0, 0, 0, 0, 1, 1]  # same statics and run: one program


def test_merge_rules():
    raw = {**BASE, "rule": {"name": ["bptt", "ga"], "batch": 8, "num_validation_trials": 40}}
    raw["subgrid"] = [
        {"rule": {"name": "ga", "population_size": 4, "num_parents": 2}},  # a top-level rule: inherits batch
        {"rule": {"name": "hebbian"}, "model": {"activation": "tanh", "output": "rate"}},  # another: defaults
        {"task": {"name": "rdm"}},  # cdi's num_contexts would be dropped; noise_std is inherited
        {"model": {"alpha": 0.2}, "replace": ["model"]},
    ]
    raw["task"] = {**BASE["task"], "num_contexts": 2}
    config = population.from_dict(raw)
    grids = {g.subgrid: g for g in config.grids}
    assert grids[1].rule == {"name": "ga", "batch": 8, "num_validation_trials": 40, "population_size": 4,
                             "num_parents": 2}
    assert grids[2].rule == {"name": "hebbian"}
    assert grids[3].task == {"name": "rdm", "num_steps": 20, "noise_std": [0.1, 1.0]}
    assert grids[4].model == {"alpha": 0.2}  # what the config sets; members fill in the defaults
    assert config.members()[-1].model == {**population.config.MODEL_DEFAULTS, "alpha": 0.2}
    assert grids[2].model["hidden"] == 6 and grids[2].model["activation"] == "tanh"
    sizes = collections.Counter(m.subgrid for m in config.members())
    assert sizes == {0: 8, 1: 4, 2: 4, 3: 8, 4: 8}


def test_base_only_top_level_is_not_a_subpopulation():
    raw = {**BASE, "base_only": True, "subgrid": [{"model": {"alpha": 0.2}}, {"run": {"num_updates": 6}}]}
    config = population.from_dict(raw)
    assert [g.subgrid for g in config.grids] == [1, 2] and len(config.members()) == 8
    assert config.has_subgrids and config.num_updates == 12
    assert config.sweep_axes()["model.alpha"] == [0.2, 0.1]
    only = population.from_dict({**BASE, "base_only": True, "subgrid": [{"model": {"alpha": 0.2}}]})
    assert only.sweep_axes()["model.alpha"] == [0.2]  # differs from the top-level [model]: a coord


def test_mcmahan_config_is_the_study_population():
    config = population.load_config("mcmahan")
    members = config.members()
    assert len(members) == 1920
    count = collections.Counter((m.rule["name"], m.task["name"], m.task["noise_std"]) for m in members)
    expected = {}
    for noise in (0.1, 0.5, 1.0):
        for rule in ("bptt", "ga", "full_force", "hebbian"):
            for task in ("rdm", "cdi"):
                expected[(rule, task, noise)] = 50  # A, C, D: 50 seeds
        for rule in ("bptt", "ga"):
            for n in range(3, 7):
                expected[(rule, f"ncdi-{n}", noise)] = 30  # B: 30 seeds
    assert count == expected
    budget = {"bptt": 20000, "ga": 2000, "full_force": 5000, "hebbian": 5040}
    for m in members:
        rule, values = m.rule["name"], rule_values(m.rule)
        assert m.run.num_updates == budget[rule] and m.run.eval_every == 10
        assert (m.model["activation"], m.model["output"]) == (
            ("shifted_tanh", "state") if rule in ("bptt", "ga") else ("tanh", "rate"))
        if rule == "ga":
            assert values["population_size"] == (50 if m.task["name"] == "rdm" else 20)
            assert values["trainable"] == ["W_in", "W_rec", "W_out"]
        if rule == "bptt":
            assert values["learning_rate"] == 5e-4 and values["trainable"] == ["W_rec"] and values["batch"] == 500
        if rule == "hebbian":
            assert values["learning_rate"] == 0.01 and values["trials_per_update"] == 10
            assert (m.model["weight_init"], m.model["input_scale"], m.model["gain"]) == ("uniform", 1.0, 1.5)
    groups = population.group_members(config)
    assert sorted(m.index for g in groups for m in g) == list(range(1920))
    for group in groups:
        static, _ = rule_fields(group[0].rule["name"])
        assert len({(m.static_key(static), m.run) for m in group}) == 1
    assert len(groups) == 16  # 4 (A) + 8 (B) + 2 (C) + 2 (D): one per rule × task
    assert config.num_updates == 20000


def _raises(raw, match):
    with pytest.raises(ValueError, match=match):
        population.from_dict(raw)


@pytest.mark.parametrize("subgrid, match", [
    ({"rule": {"name": "ga", "population_size": 0}}, r"^subgrid\[2\]\.rule\.population_size = 0 "),
    ({"rule": {"name": "ga", "learning_rate": 1e-3}}, r"^subgrid\[2\]\.rule\.learning_rate = "),
    ({"run": {"eval_every": 2}}, r"^subgrid\[2\]\.run\.eval_every = 2 .*top-level run\.eval_every = 3"),
    ({"run": {"stop_threshold": 0.5}}, r"^subgrid\[2\]\.run\.stop_threshold"),
    ({"run": {"num_updates": 7}}, r"^subgrid\[2\]\.run\.num_updates = 7 .*multiple"),
    ({"run": {"snapshots": [2, 3]}}, r"^subgrid\[2\]\.run\.snapshots"),
    ({"task": {"noise_std": -1.0}}, r"^subgrid\[2\]\.task\.noise_std = -1\.0"),
    ({"task": {"name": "nope"}}, r"^subgrid\[2\]\.task\.name = 'nope'"),
    ({"grid": {"seeds": [1, 1]}}, r"^subgrid\[2\]\.grid\.seeds"),
    ({"rules": {"name": "ga"}}, r"^subgrid\[2\]\.rules = "),
    ({"replace": ["run"]}, r"^subgrid\[2\]\.replace = 'run'"),
    ({"rule": {"name": "hebbian"}, "model": {"activation": "shifted_tanh"}},
     r"^subgrid\[2\]\.model\.activation = 'shifted_tanh'"),
    ({"rule": {"name": "full_force"}, "model": {"activation": "tanh", "output": "state"}},
     r"^subgrid\[2\]\.model\.output = 'state'"),
])
def test_bad_subgrids_name_the_field(subgrid, match):
    _raises({**BASE, "subgrid": [{}, subgrid]}, match)  # named as the 2nd [[subgrid]]


def test_bad_union_structure_is_refused():
    _raises({**BASE, "subgrid": {"rule": {"name": "ga"}}}, r"^subgrid = .*\[\[subgrid\]\]")
    _raises({**BASE, "subgrid": [3]}, r"^subgrid\[1\] = 3")
    _raises({**BASE, "base_only": True}, r"^base_only = True")
    # with base_only, a top-level field no sub-grid takes is an error (a typo, or a rule's field
    # left where every sub-grid names another rule)
    _raises({**BASE, "base_only": True, "rule": {"learnin_rate": 1.0},
             "subgrid": [{"rule": {"name": "ga", "population_size": 4, "num_parents": 2}}]},
            r"^rule\.learnin_rate = 1\.0 .*at least one \[\[subgrid\]\]")
    _raises({**BASE, "base_only": True, "subgrid": [{"rule": {"learnin_rate": 1.0}}]},
            r"^subgrid\[1\]\.rule\.learnin_rate = 1\.0")
    # the model must suit the rule in a plain config too (item 4: checked before compiling); a field
    # the user left unset takes the rule's own default instead (tanh rates for Hebbian)
    _raises({**BASE, "model": {"activation": "shifted_tanh"}, "rule": {"name": "hebbian"}},
            r"^model\.activation = 'shifted_tanh'")
    hebbian = population.from_dict({**BASE, "rule": {"name": "hebbian"}}).members()[0].model
    assert (hebbian["activation"], hebbian["output"]) == ("tanh", "rate")

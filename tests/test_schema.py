"""The JAX-free config check agrees with the package's own checks and scales with distinct values."""

import dataclasses
import json
import subprocess
import sys
from importlib import resources

import pytest

from jaxrnn import population
from jaxrnn.population import parse, schema
from jaxrnn.population.builders import CELLS, check_member
from jaxrnn.population.config import MODEL_DEFAULTS, Member
from jaxrnn.rules.registry import get_rule


def test_schema_json_matches_the_live_registries():
    """Generated in a fresh interpreter: in the suite's process other tests register toy tasks
    and rules (and a registry-wide mutation there would compare against the wrong live state)."""
    packaged = resources.files("jaxrnn.configs").joinpath(schema.SCHEMA_FILE).read_text()
    code = "from jaxrnn.population import schema; print(schema.dumps(schema.generate()))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(packaged) == json.loads(fresh), \
        "jaxrnn/configs/schema.json is stale: run `python -m jaxrnn.population.schema`"


def test_choices_are_the_packages_own():
    from jaxrnn.models.cells import ACTIVATIONS, PARAMETRIZATIONS

    assert set(schema.CHOICES["model.cell"]) == set(CELLS)
    assert set(schema.CHOICES["model.activation"]) == set(ACTIVATIONS)
    assert set(schema.CHOICES["model.parametrization"]) == set(PARAMETRIZATIONS)


def _outside(bounds):
    low, high, low_open, integer = bounds
    values = []
    if low is not None:
        values.append(low if low_open else (low - 1 if integer else low - 0.1))
    if high is not None:
        values.append(high + (1 if integer else 0.1))
    if integer:
        values.append((low or 0) + 1.5)
    return values


def _live_refuses(field, value):
    """Whether the package's own checks (after JAX) refuse ``field = value`` on a default member."""
    table, key = field.split(".")
    cases = []
    if table == "task":
        cases = [n for n in schema.task_names() if key in schema.task_fields(n)]
    elif table == "rule":
        cases = [n for n in sorted(schema.schema()["rules"]) if key in set.union(*schema.rule_fields(n))
                 and n not in schema.BOUNDS_EXCEPT.get(field, ())]
    else:
        cases = ["model"]
    for case in cases:
        task = {"name": case if table == "task" else "rdm"}
        rule = {"name": case if table == "rule" else "bptt"}
        model = {**MODEL_DEFAULTS, **schema.model_defaults(rule["name"])}
        if rule["name"] == "open_loop":
            continue  # needs a teacher store on disk; its fields are the closed loop's
        if rule["name"] in ("closed_loop", "ppo"):
            task = {"name": "double-integrator" if rule["name"] == "closed_loop" else "pendulum-po"}
        {"task": task, "model": model, "rule": rule}[table][key] = value
        if table == "model" and key == "rank":
            model["cell"] = "lowrank"
        member = Member(0, 0, task, model, rule)
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            if table == "rule" and get_rule(rule["name"]).check is not None:
                get_rule(rule["name"]).check({**get_rule(rule["name"]).defaults, **rule})
            check_member(member)
    return True


@pytest.mark.parametrize("field", sorted(schema.BOUNDS))
def test_every_fast_refusal_is_a_refusal_of_the_package_too(field):
    """So the check before JAX never refuses a config the package would train."""
    for value in _outside(schema.BOUNDS[field]):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            schema.check_value(field, value, 1)
        assert _live_refuses(field, value)


def test_rule_model_defaults_fill_unset_fields_only():
    raw = {"task": {"name": "rdm", "num_steps": 250},
           "rule": {"name": ["bptt", "hebbian", "full_force", "ga"], "num_validation_trials": 40}}
    config = population.from_dict(raw)  # Hebbian / full-FORCE get tanh rates; BPTT / GA keep their defaults
    models = {m.rule["name"]: (m.model["activation"], m.model["output"]) for m in config.members()}
    assert models == {"bptt": ("shifted_tanh", "state"), "ga": ("shifted_tanh", "state"),
                      "hebbian": ("tanh", "rate"), "full_force": ("tanh", "rate")}
    with pytest.raises(ValueError, match=r"^model\.output = 'state'"):  # set by the user: kept, and refused
        population.from_dict({**raw, "model": {"output": "state"}})


def test_a_large_grid_is_checked_once_per_distinct_combination(monkeypatch):
    calls = []
    monkeypatch.setattr("jaxrnn.population.builders.check_member", lambda m, checked=None: calls.append(m))
    raw = {"task": {"name": "rdm", "noise_std": [0.1, 0.5]}, "model": {"hidden": [8, 16]},
           "rule": {"learning_rate": [1e-3, 1e-2]}, "grid": {"seeds": 12_500}}
    config = population.from_dict(raw)
    assert len(config.members()) == 100_000
    assert len(calls) == 8  # one per (noise, hidden, learning rate), not one per member
    assert [len(g) for g in population.group_members(config)] == [50_000] * 2  # one program per hidden size


def test_parse_config_does_not_import_jax(tmp_path):
    code = ("import sys; from jaxrnn.population import parse;"
            "c = parse.load_config('mcmahan', check=False, overrides=['grid.seeds=3']);"
            "print(len(c.members()), 'jax' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    members, jax_imported = result.stdout.split()
    assert jax_imported == "False" and int(members) > 100


def test_overrides_are_laid_over_the_file_and_stored():
    config = parse.load_config("default", overrides=["task.noise_std=[0.2,1.0]", "grid.seeds=2", "task.name=cdi",
                                                     "rule.learning_rate=[1e-3,1e-2]"])
    assert config.sweep_axes() == {"task.noise_std": [0.2, 1.0], "rule.learning_rate": [1e-3, 1e-2]}
    assert config.seeds == (0, 1) and len(config.members()) == 8
    import tomllib

    assert tomllib.loads(config.source)["task"] == {"name": "cdi", "noise_std": [0.2, 1.0]}
    assert dataclasses.asdict(config.run)["name"] == "default"

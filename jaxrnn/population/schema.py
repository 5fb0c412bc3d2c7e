"""The config schema without JAX: which fields each task and rule has, their kinds and defaults.

``jaxrnn run`` checks a config against this schema *before JAX is imported* (importing JAX,
flax and gymnax takes several seconds), so a typo, a wrong type, an empty sweep list or an
out-of-range value is refused in a fraction of a second, before anything is written:

- field names of every registered task (static and param fields) and rule (static and
  dynamic fields), rule defaults and the model fields a rule needs (``model_defaults``: a
  Hebbian member whose ``[model]`` leaves ``activation`` / ``output`` unset gets ``"tanh"`` /
  ``"rate"``) come from ``jaxrnn/configs/schema.json``, generated from the live registries
  (``python -m jaxrnn.population.schema`` rewrites it; a test fails when it is stale);
- the *kind* of each value (integer, number, boolean, string, list of strings, number or
  array) follows from the field's default;
- :data:`BOUNDS` and :data:`CHOICES` hold the ranges and choices of the common fields. Each is
  also enforced after JAX starts (by the cells, tasks and rules themselves), and a test checks
  that every value this module refuses is refused there too, so the fast check never refuses
  a config the package would accept.

A task or rule missing from ``schema.json`` (registered after it was generated) is looked up in
the live registries instead (importing JAX: slower, never wrong). Cross-field rules (a trial
length within ``num_steps``, a rule that needs a tanh CTRNN, ...) are checked after JAX starts,
once per distinct combination of values (:func:`jaxrnn.population.parse.check_config`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

from jaxrnn._checks import check_choice, check_range, fail

SCHEMA_FILE = "schema.json"

# (low, high, low_open, integer) per dotted field, for every task / rule that has the field.
BOUNDS: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "model.hidden": (1, None, False, True),
    "model.alpha": (0.0, 1.0, True, False),
    "model.gain": (0.0, None, False, False),
    "model.rank": (1, None, False, True),
    "model.readout_scale": (0.0, None, False, False),
    "task.noise_std": (0.0, None, False, False),
    "task.coherence_max": (0.0, None, False, False),
    "task.val_coherence_max": (0.0, None, False, False),
    "task.num_steps": (1, None, False, True),
    "rule.learning_rate": (0.0, None, True, False),
    "rule.batch": (1, None, False, True),
    "rule.num_validation_trials": (1, None, False, True),
    "rule.population_size": (1, None, False, True),
}
# Owners (rule or task names) a bound does not apply to: their own checks allow more
# (a Hebbian η = 0 is a legitimate no-learning control).
BOUNDS_EXCEPT: dict[str, tuple[str, ...]] = {"rule.learning_rate": ("hebbian",)}
CHOICES: dict[str, tuple[str, ...]] = {
    "model.cell": ("ctrnn", "vanilla", "lowrank", "gru", "lstm"),
    "model.activation": ("tanh", "shifted_tanh", "relu", "linear"),
    "model.output": ("state", "rate"),
    "model.parametrization": ("normalized", "ger_barak"),
}


@functools.cache
def schema() -> dict[str, Any]:
    """The packaged schema (``jaxrnn/configs/schema.json``)."""
    text = resources.files("jaxrnn.configs").joinpath(SCHEMA_FILE).read_text()
    return json.loads(text)


def _live_task(name: str) -> dict[str, Any]:
    from jaxrnn.tasks import registry

    return _task_entry(registry, name)


def _live_rule(name: str) -> dict[str, Any]:
    import jaxrnn.rules  # noqa: F401  (registers the rules)
    from jaxrnn.rules import registry

    return _rule_entry(registry.get_rule(name))


def task_names() -> list[str]:
    return sorted(schema()["tasks"])


def task(name: str) -> dict[str, Any]:
    """``{"static": {field: default}, "params": {field: default}}`` of task ``name``."""
    if name not in schema()["tasks"]:
        return _live_task(name)  # raises the registry's error for an unknown name
    return schema()["tasks"][name]


def rule(name: str) -> dict[str, Any]:
    """``{"static": [...], "dynamic": [...], "defaults": {...}, "model_defaults": {...}}`` of rule ``name``."""
    if not isinstance(name, str):
        fail("rule.name", name, "one of the registered rules: " + ", ".join(sorted(schema()["rules"])))
    if name not in schema()["rules"]:
        return _live_rule(name)
    return schema()["rules"][name]


def task_fields(name: str) -> set[str]:
    entry = task(name)
    return {"name", *entry["static"], *entry["params"]}


def rule_fields(name: str) -> tuple[set[str], set[str]]:
    """``(static, dynamic)`` field names a ``[rule]`` table may set for rule ``name``."""
    entry = rule(name)
    return set(entry["static"]), set(entry["dynamic"])


def rule_defaults(name: str) -> dict[str, Any]:
    return dict(rule(name)["defaults"])


def model_defaults(rule_name: str) -> dict[str, Any]:
    """``[model]`` values rule ``rule_name`` needs where the user set none (e.g. Hebbian: tanh rates)."""
    return dict(rule(rule_name).get("model_defaults", {}))


# ---- kinds of values ---------------------------------------------------------------------------------------


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "number"
    if isinstance(default, str):
        return "string"
    if isinstance(default, list):
        return "list of strings" if all(isinstance(v, str) for v in default) and default else "array"
    return "any"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _matches(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return _is_number(value) and float(value).is_integer()
    if kind == "number":
        return _is_number(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "list of strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "array":
        return _is_number(value) or (isinstance(value, list) and all(_matches("array", v) for v in value))
    return True


ALLOWED = {"boolean": "true or false", "integer": "an integer", "number": "a number", "string": "a string",
           "list of strings": "a list of strings", "array": "a number or a list of numbers"}


def check_value(field: str, value: Any, default: Any, owner: str = "") -> None:
    """Check one value of ``field`` (not a sweep list): its kind (from ``default``), bounds and choices.

    ``owner``: the rule or task whose field it is (some bounds exempt some owners).
    """
    kind = _kind(default)
    if not _matches(kind, value):
        fail(field, value, ALLOWED[kind], f"the default is {default!r}")
    if field in CHOICES:
        check_choice(field, value, CHOICES[field])
    if field in BOUNDS and _is_number(value) and owner not in BOUNDS_EXCEPT.get(field, ()):
        low, high, low_open, integer = BOUNDS[field]
        if isinstance(value, float) and not math.isfinite(value):
            fail(field, value, "a finite number")
        check_range(field, value, low, high, low_open=low_open, integer=integer)


def check_sweep(field: str, value: Any, default: Any, sequence: bool, owner: str = "") -> list[Any]:
    """The values a field takes (a list is a sweep axis; for ``sequence`` fields, a list of lists).

    An empty sweep list is refused: it would make a grid of no members.
    """
    if isinstance(value, list) and not value:
        fail(field, value, "a value or a non-empty list of values (a sweep axis)")
    swept = isinstance(value, list) and (not sequence or all(isinstance(v, list) for v in value))
    values = list(value) if swept else [value]
    for v in values:
        check_value(field, v, default, owner)
    return values


def model_field_defaults() -> dict[str, Any]:
    from jaxrnn.population.config import ModelConfig

    return dataclasses.asdict(ModelConfig())


# ---- generation from the live registries (imports JAX) --------------------------------------------------


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return array.astype(int).tolist()
    if array.dtype.kind == "b":
        return array.tolist()
    return array.astype(float).tolist()


def _task_entry(registry, name: str) -> dict[str, Any]:
    # raises on an unknown name, listing the registered ones
    static = {f: _jsonable(v) for f, v in registry.static_defaults(name).items()}
    task_obj, params = registry.make(name)
    return {"static": static, "params": {f.name: _jsonable(getattr(params, f.name))
                                         for f in dataclasses.fields(params)}}


def _rule_entry(entry) -> dict[str, Any]:
    dynamic = sorted({f.name for f in dataclasses.fields(entry.hparams_cls)} - {"task", "gain"})
    defaults = {k: _jsonable(v) for k, v in entry.defaults.items()}
    return {"static": sorted(entry.static), "dynamic": dynamic, "defaults": defaults,
            "model_defaults": {k: _jsonable(v) for k, v in getattr(entry, "model_defaults", {}).items()}}


def generate() -> dict[str, Any]:
    """The schema of the live registries (what ``schema.json`` must hold)."""
    import jaxrnn.rules  # noqa: F401  (registers the rules)
    from jaxrnn.rules import registry as rules
    from jaxrnn.tasks import registry as tasks

    return {"tasks": {name: _task_entry(tasks, name) for name in tasks.registered()},
            "rules": {name: _rule_entry(rules.get_rule(name)) for name in rules.registered_rules()}}


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "configs" / SCHEMA_FILE
    path.write_text(dumps(generate()))
    print(path)

"""Parsing run configs: TOML / dicts → a validated :class:`~jaxrnn.population.config.Config`.

The schema (tables, sweep axes, static vs dynamic fields) is described in
:mod:`jaxrnn.population.config`.

**Unions of grids: ``[[subgrid]]``.** One product cannot hold a population whose parts differ
in fields that depend on each other (a rule and the model it needs, a budget per rule, a seed
count per task family). Each ``[[subgrid]]`` (in Python: ``raw["subgrid"]``, a list of dicts)
is another Cartesian product, written as a *partial override* of the top-level tables; the
run's members are those of every product, appended in order (``Member.index`` counts across
the union)::

    [run]                      # sub-population 0: the top-level tables themselves
    num_updates = 20000
    eval_every = 10
    [task]
    name = ["rdm", "cdi"]
    noise_std = [0.1, 0.5, 1.0]
    [rule]
    name = "bptt"
    batch = 500
    [grid]
    seeds = 50

    [[subgrid]]                # sub-population 1: GA on the same tasks, its own budget
    rule = { name = "ga", population_size = 20 }     # the GA's defaults otherwise
    run = { num_updates = 2000 }

    [[subgrid]]                # sub-population 2: Hebbian, with the model it needs
    model = { activation = "tanh", output = "rate", weight_init = "uniform", gain = 1.5 }
    rule = { name = "hebbian" }

Merging, per table (``task``, ``model``, ``rule``, ``grid``): a subgrid's table is laid over
the top-level one key by key (a shallow merge: ``rule = {population_size = 20}`` sets that key
and keeps the others), with two exceptions:

- a subgrid whose ``rule`` names a rule the top-level ``[rule]`` does not name starts its rule
  table from that rule's registered defaults, not from the top level: rule fields are the
  algorithm's own (BPTT's Adam ``learning_rate`` is not the Hebbian η, BPTT's ``trainable =
  ["W_rec"]`` is not what GA evolves), so nothing is carried from one rule to another —
  restate shared values (``batch``, ``num_validation_trials``) in the subgrid. A subgrid that
  names one of the top-level rules (``name = "ga"`` under ``name = ["bptt", "ga"]``) inherits;
- a subgrid whose ``task`` sets ``name`` inherits only the top-level fields that the new task
  (every one of them, if ``name`` is a list) has: ``noise_std`` and ``num_steps`` mean the same
  for RDM, CDI and N-CDI and carry over, a field the new task lacks is dropped.

Fields the subgrid writes itself are never dropped, so a misspelt or misplaced one still fails.
``replace = ["model", ...]`` (any of ``task``, ``model``, ``rule``, ``grid``) starts those
tables from scratch (the defaults) instead of from the top level.

``run``: a subgrid may set ``num_updates``, ``chunk_updates`` and ``snapshots``. Every other
``[run]`` field (``eval_every``, ``stop_metric``, ``stop_threshold``, ``stop_window``,
``snapshot_spacing``, ``validation_seed``, ``name``) is shared by the whole run — the
evaluation axis of the results means the same update for every member — and a subgrid that
gives a different value is refused.

The top-level tables are sub-population 0. With the top-level key ``base_only = true`` (before
any table) they are only the base the subgrids inherit from, and every top-level ``[task]`` /
``[rule]`` field must reach at least one subgrid (catches typos).

Each product is validated as a config of its own; an error names the sub-grid, numbered as the
``subgrid`` coordinate of the results (0: the top-level tables, ``k``: the k-th ``[[subgrid]]``
in file order, from 1), e.g. ``subgrid[2].rule.population_size = 0 is not allowed: ...``.
Members of different sub-grids share a compiled group only if both their static fields and
their run settings are equal. :meth:`Config.sweep_axes` of a union lists every field swept in
some sub-grid or set to different values in different sub-grids (a member's value being the
rule's default when its table leaves the field out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.population import schema
from jaxrnn.population.config_text import apply_overrides, config_toml
from jaxrnn.population.config import (
    MODEL_DEFAULTS,
    MODEL_FIELDS,
    REPLACEABLE,
    RUN_FIELDS,
    SUBGRID_KEYS,
    SUBGRID_RUN_FIELDS,
    TABLES,
    Config,
    Grid,
    SEQUENCE_FIELDS,
    RunConfig,
    hashable,
    sweep_values,
)


def _check_table_fields(table: str, values: Mapping[str, Any], allowed: list[str]) -> None:
    for key, value in values.items():
        if key not in allowed:
            fail(f"{table}.{key}", value, f"a field of [{table}]: " + ", ".join(sorted(allowed)))


def _table(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        fail(name, value, f"a table ([{name}] or {name} = {{ ... }})")
    return dict(value)


@contextlib.contextmanager
def _naming(subgrid: int) -> Iterator[None]:
    """Prefix the field named by a ``ValueError`` raised inside with ``subgrid[k].``."""
    if not subgrid:
        yield
        return
    try:
        yield
    except ValueError as error:
        message = str(error)
        names_a_field = message.split(" ", 2)[1:2] == ["="]  # house style: "<field> = <value> is not ..."
        joined = f"subgrid[{subgrid}].{message}" if names_a_field else f"subgrid[{subgrid}]: {message}"
        raise ValueError(joined) from None


def _task_fields(name: str) -> set[str]:
    _check_name("task.name", name, schema.task_names(), "jaxrnn.tasks")
    return schema.task_fields(name)


def _rule_fields(name: str) -> set[str]:
    _check_name("rule.name", name, sorted(schema.schema()["rules"]), "jaxrnn.rules")
    static, dynamic = schema.rule_fields(name)
    return {"name"} | static | dynamic


def _check_name(field: str, name: Any, known: list[str], package: str) -> None:
    """Refuse a task / rule name the schema does not know (without importing JAX), unless it was
    registered at run time in this process (the live registry is then already imported)."""
    if isinstance(name, str) and name in known:
        return
    import sys

    if isinstance(name, str) and f"{package}.registry" in sys.modules:
        live = schema.task(name) if field == "task.name" else schema.rule(name)  # raises if unknown
        if live:
            return
    kind = "tasks" if field == "task.name" else "rules"
    fail(field, name, f"one of the registered {kind}: " + ", ".join(known))


def _check_values(table: str, values: Mapping[str, Any], defaults: Mapping[str, Any], owner: str = "") -> None:
    """Kind, bounds and choices of every value (each value of a sweep) of a table, by the field's default."""
    for key, value in values.items():
        if key == "name":
            continue
        field = f"{table}.{key}"
        schema.check_sweep(field, value, defaults.get(key, 0.0), field in SEQUENCE_FIELDS, owner)


def _run_config(run_raw: Mapping[str, Any], name: str) -> RunConfig:
    _check_table_fields("run", run_raw, RUN_FIELDS)
    for key, value in run_raw.items():
        if isinstance(value, list):
            fail(f"run.{key}", value, "a single value ([run] fields are not sweepable)")
    return RunConfig(**{"name": name, **run_raw})


def _subgrid_run(run: RunConfig, run_raw: Mapping[str, Any]) -> RunConfig:
    """The top-level run with a subgrid's ``run`` table laid over it (shared fields must agree)."""
    _check_table_fields("run", run_raw, RUN_FIELDS)
    for key, value in run_raw.items():
        if isinstance(value, list):
            fail(f"run.{key}", value, "a single value ([run] fields are not sweepable)")
        if key not in SUBGRID_RUN_FIELDS and value != getattr(run, key):
            fail(f"run.{key}", value, f"the top-level run.{key} = {getattr(run, key)!r}",
                 "only " + ", ".join(f"run.{f}" for f in SUBGRID_RUN_FIELDS) + " may differ between sub-grids: "
                 "every member is validated and stopped on one schedule, so an evaluation means the same update "
                 "for all")
    return dataclasses.replace(run, **run_raw)


def _seeds(grid: Mapping[str, Any]) -> tuple[int, ...]:
    _check_table_fields("grid", grid, ["seeds"])
    seeds = grid.get("seeds", 1)
    if isinstance(seeds, list):
        for s in seeds:
            check_range("grid.seeds", s, 0, integer=True)
        if len(set(seeds)) != len(seeds):
            fail("grid.seeds", seeds, "distinct seeds")
        return tuple(int(s) for s in seeds)
    check_range("grid.seeds", seeds, 1, integer=True)
    return tuple(range(int(seeds)))


def _grid(run: RunConfig, task: Mapping[str, Any], model: Mapping[str, Any], rule: Mapping[str, Any],
          grid: Mapping[str, Any], subgrid: int) -> Grid:
    """Validate one product's tables (field names and sweep structure) and build its :class:`Grid`."""
    task = dict(task)
    if "name" not in task:
        fail("task.name", None, "one of the registered tasks: " + ", ".join(schema.task_names()))
    for task_name in schema.check_sweep("task.name", task["name"], "", False):
        _check_table_fields("task", task, sorted(_task_fields(task_name)))
        entry = schema.task(task_name)
        _check_values("task", task, {**entry["static"], **entry["params"]}, task_name)

    _check_table_fields("model", model, MODEL_FIELDS)
    _check_values("model", model, MODEL_DEFAULTS)

    rule = dict(rule)
    rule.setdefault("name", "bptt")
    for rule_name in schema.check_sweep("rule.name", rule["name"], "", False):
        _check_table_fields("rule", rule, sorted(_rule_fields(rule_name)))
        _check_values("rule", rule, schema.rule_defaults(rule_name), rule_name)
    return Grid(run, task, dict(model), rule, _seeds(grid), subgrid)


def _inherit_task(merged: dict[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Drop inherited fields that the (renamed) task of a subgrid does not have."""
    if "name" not in own:
        return merged
    allowed = set.intersection(*(_task_fields(n) for n in sweep_values("task.name", own["name"])))
    return {k: v for k, v in merged.items() if k in own or k in allowed}


def _inherit_rule(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A subgrid's rule table: the top level's, unless it names a rule the top level does not."""
    if "name" not in own:
        return {**base, **own}
    names = sweep_values("rule.name", own["name"])
    for name in names:
        _rule_fields(name)  # raises on an unknown name, listing the registered ones
    base_names = sweep_values("rule.name", base.get("name", "bptt"))
    if all(any(hashable(n) == hashable(b) for b in base_names) for n in names):
        return {**base, **own}
    return dict(own)


def _subgrid(base: Mapping[str, dict], run: RunConfig, raw: Mapping[str, Any], k: int) -> Grid:
    """The ``k``-th ``[[subgrid]]``'s product: its tables laid over the top-level ones."""
    for key, value in raw.items():
        if key not in SUBGRID_KEYS:
            fail(key, value, "one of the keys of a [[subgrid]]: " + ", ".join(SUBGRID_KEYS))
    replace = raw.get("replace", [])
    replace = [replace] if isinstance(replace, str) else replace
    if not isinstance(replace, list):
        fail("replace", replace, "a list of table names: " + ", ".join(REPLACEABLE))
    for name in replace:
        check_choice("replace", name, REPLACEABLE)
    own = {t: _table(raw, t) for t in TABLES}
    tables = {t: own[t] if t in replace else {**base[t], **own[t]} for t in REPLACEABLE}
    if "task" not in replace:
        tables["task"] = _inherit_task(tables["task"], own["task"])
    if "rule" not in replace:
        tables["rule"] = _inherit_rule(base["rule"], own["rule"])
    return _grid(_subgrid_run(run, own["run"]), tables["task"], tables["model"], tables["rule"], tables["grid"], k)


def _subgrid_list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping) or not isinstance(value, list):
        fail("subgrid", value, "an array of tables: one [[subgrid]] (double brackets) per sub-grid")
    for k, entry in enumerate(value, 1):
        if not isinstance(entry, Mapping):
            fail(f"subgrid[{k}]", entry, "a table of partial [run], [task], [model], [rule], [grid] tables")
    return list(value)


def from_dict(raw: Mapping[str, Any], *, source: str = "", name: str = "run") -> Config:
    """Validate a config dict (the TOML's tables, ``"subgrid"`` a list of dicts) into a :class:`Config`.

    :func:`parse_config` (without JAX) then :func:`check_config` (the cells, tasks and rules
    themselves, once per distinct combination of values).
    """
    config = parse_config(raw, source=source, name=name)
    check_config(config)
    return config


def parse_config(raw: Mapping[str, Any], *, source: str = "", name: str = "run") -> Config:
    """Structure, field names, kinds, bounds and choices of a config dict, without importing JAX.

    Every value of every field is checked once (a sweep's values one by one), not once per
    member, so a grid of 100,000 members is parsed in well under a second. What needs the
    package itself (cross-field rules, a task's own limits) is left to :func:`check_config`.
    """
    if not isinstance(raw, Mapping):
        fail("config", raw, "a table of tables ([run], [task], [model], [rule], [grid])")
    for table in raw:
        if table not in TABLES + ("subgrid", "base_only"):
            fail(table, raw[table], "one of the tables " + ", ".join(f"[{t}]" for t in TABLES)
                 + ", [[subgrid]] or the key base_only")
    subgrids = _subgrid_list(raw.get("subgrid", []))
    base_only = raw.get("base_only", False)
    check_choice("base_only", base_only, (False, True))
    if base_only and not subgrids:
        fail("base_only", base_only, "false when the config has no [[subgrid]] (nothing would be trained)")
    base = {t: _table(raw, t) for t in TABLES}
    run = _run_config(base["run"], name)
    _check_table_fields("model", base["model"], MODEL_FIELDS)
    seeds = _seeds(base["grid"])

    grids = [] if base_only else [_grid(run, base["task"], base["model"], base["rule"], base["grid"], 0)]
    for k, sub in enumerate(subgrids, 1):
        with _naming(k):
            grids.append(_subgrid(base, run, sub, k))
    if base_only:
        for table in ("task", "rule"):
            for key, value in base[table].items():
                if not any(key in getattr(g, table) for g in grids):
                    fail(f"{table}.{key}", value, f"a field of the {table} of at least one [[subgrid]]",
                         "with base_only = true the top-level tables only hold what sub-grids inherit")
    top = Grid(run, base["task"], base["model"], base["rule"], seeds)
    top = top if base_only else grids[0]  # (the rule name defaulted, as a plain config's)
    config = Config(run=run, task=top.task, model=top.model, rule=top.rule, seeds=top.seeds, source=source,
                    raw=dict(raw), grids=tuple(grids))
    return config


def check_config(config: Config) -> None:
    """Validate every member with the package's own checks (imports JAX; compiles nothing).

    Once per distinct (task, model, rule) combination — members that differ only in their seed
    share their tables — and the rule is built once per combination of static fields.
    """
    from jaxrnn.population.builders import check_member  # also registers the rules

    checked: set = set()
    seen: set = set()
    for member in config.members():
        key = (id(member.task), id(member.model), id(member.rule))
        if key in seen:
            continue
        seen.add(key)
        with _naming(member.subgrid):
            check_member(member, checked)


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``jaxrnn/configs``."""
    files = resources.files("jaxrnn.configs").iterdir()
    return sorted(p.name[: -len(".toml")] for p in files if p.name.endswith(".toml"))


def load_config(path_or_name: str | Path = "default", *, check: bool = True,
                overrides: list[str] | None = None) -> Config:
    """Load a TOML config from a path, or a packaged config by name (``"default"``, ...).

    ``overrides``: ``["task.noise_std=[0.1,1.0]", "grid.seeds=8"]`` (:func:`apply_overrides`);
    the stored config text is then the merged config. With ``check=False`` only
    :func:`parse_config` runs (no JAX); call :func:`check_config` later.
    """
    path = Path(path_or_name)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            fail("config", str(path), "an existing TOML file or a packaged config: " + ", ".join(packaged_configs()))
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            fail("config", str(path), "a readable UTF-8 TOML file", getattr(error, "strerror", None) or str(error))
        name = path.stem
    else:
        name = str(path_or_name)
        if name not in packaged_configs():
            fail("config", name, "a TOML file or a packaged config: " + ", ".join(packaged_configs()))
        text = resources.files("jaxrnn.configs").joinpath(f"{name}.toml").read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config {str(path_or_name)!r} is not valid TOML: {error}") from None
    if overrides:
        raw = apply_overrides(raw, overrides)
        text = config_toml(raw)
    run_table = raw.get("run", {})
    name = run_table.get("name", name) if isinstance(run_table, Mapping) else name
    config = parse_config(raw, source=text, name=name)
    if check:
        check_config(config)
    return config

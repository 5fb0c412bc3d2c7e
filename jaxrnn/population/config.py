"""Run configuration: TOML / dataclasses → a validated grid of population members.

A run is one TOML file with tables ``[run]``, ``[task]``, ``[model]``, ``[rule]``, ``[grid]``
(see ``DESIGN.md``). Any ``[task]``, ``[model]`` or ``[rule]`` field given as a list is a sweep
axis; the grid is the Cartesian product of all axes times the seeds (``[grid] seeds = 8`` means
seeds ``0..7``; a list names them). Fields whose value is itself a list (``rule.trainable``) are
swept by giving a list of lists.

Each field is either **static** — it fixes shapes or program structure (task name and sizes,
cell type, hidden size, α, rule name, batch): members that differ in a static field are compiled
separately, one *group* each — or **dynamic** — a pytree leaf of the rule's hyper-parameters
(task noise, coherence, trial length, recurrent gain, learning rate, ...): members of a group are
vmapped together. Validation is eager: a bad value raises ``ValueError`` naming the field, the
value and what is allowed, before anything compiles.

Member order: sweep axes in the order the fields appear (task, model, rule), seeds innermost.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.tasks.registry import make, param_fields, registered, static_fields

TABLES = ("run", "task", "model", "rule", "grid")
SEQUENCE_FIELDS = {"rule.trainable"}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How long and how a population trains (not sweepable).

    Attributes:
      num_updates: training iterations per member (a multiple of ``eval_every``).
      eval_every: updates between validations.
      chunk_updates: updates per compiled chunk; progress is reported between chunks.
      stop_metric: the validation metric of the stopping criterion (``"accuracy"`` for the
        supervised rules); a rule whose ``evaluate`` does not report it never stops early.
      stop_threshold: a member stops when the min of its last ``stop_window`` values of
        ``stop_metric`` is ≥ this (McMahan et al.: accuracy 0.9); ``inf`` disables stopping.
      stop_window: number of validations in the stopping criterion.
      snapshots: number of params snapshots (update 0 and the last update included).
      snapshot_spacing: ``"linear"`` or ``"log"`` spacing of snapshot updates (rounded to
        multiples of ``eval_every``).
      validation_seed: seed of the validation set shared by every member.
      name: a label for the run (default: the config file's stem).
    """

    num_updates: int = 2000
    eval_every: int = 10
    chunk_updates: int = 100
    stop_metric: str = "accuracy"
    stop_threshold: float = 0.9
    stop_window: int = 10
    snapshots: int = 5
    snapshot_spacing: str = "log"
    validation_seed: int = 0
    name: str = "run"

    def __post_init__(self):
        check_range("run.num_updates", self.num_updates, 1, integer=True)
        check_range("run.eval_every", self.eval_every, 1, integer=True)
        if self.num_updates % self.eval_every:
            fail("run.num_updates", self.num_updates, f"a multiple of run.eval_every = {self.eval_every}")
        check_range("run.chunk_updates", self.chunk_updates, 1, integer=True)
        if self.stop_threshold != float("inf"):
            check_range("run.stop_threshold", self.stop_threshold)
        check_range("run.stop_window", self.stop_window, 1, integer=True)
        check_range("run.snapshots", self.snapshots, 0, integer=True)
        check_choice("run.snapshot_spacing", self.snapshot_spacing, ("linear", "log"))
        check_range("run.validation_seed", self.validation_seed, 0, integer=True)

    @property
    def num_evaluations(self) -> int:
        return self.num_updates // self.eval_every

    @property
    def evals_per_chunk(self) -> int:
        return max(1, min(self.num_evaluations, self.chunk_updates // self.eval_every))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: a cell and a linear readout.

    ``gain`` is dynamic (applied at init, vmapped); every other field is static.
    Cells: ``ctrnn``, ``vanilla``, ``lowrank``, ``gru``, ``lstm`` (see ``jaxrnn.models``).
    """

    cell: str = "ctrnn"
    hidden: int = 50
    activation: str = "shifted_tanh"
    alpha: float = 0.1
    weight_init: str = "mcmahan"
    input_scale: float = 0.5
    output: str = "state"
    use_bias: bool = True
    rank: int = 1
    parametrization: str = "normalized"  # lowrank only: "normalized" or "ger_barak"
    readout_scale: float = 0.1
    gain: float = 1.0


DYNAMIC_MODEL_FIELDS = {"gain"}
MODEL_FIELDS = [f.name for f in dataclasses.fields(ModelConfig)]


@dataclasses.dataclass(frozen=True)
class Member:
    """One population member: its seed and the full value of every field.

    Attributes:
      index: position in the grid (used only to place results, never for randomness).
      seed: the member's seed.
      task / model / rule: field → value (``task["name"]``, ``rule["name"]`` included).
    """

    index: int
    seed: int
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    rule: Mapping[str, Any]

    def static_key(self, rule_static: set[str]) -> tuple:
        """Hashable signature of the static fields (members with equal keys share a program)."""
        task_static = set(static_fields(self.task["name"])) | {"name"}
        return (
            tuple(sorted((k, _freeze(v)) for k, v in self.task.items() if k in task_static)),
            tuple(sorted((k, _freeze(v)) for k, v in self.model.items() if k not in DYNAMIC_MODEL_FIELDS)),
            tuple(sorted((k, _freeze(v)) for k, v in self.rule.items() if k in rule_static | {"name"})),
        )


@dataclasses.dataclass(frozen=True)
class Config:
    """A parsed run configuration.

    Attributes:
      run: the :class:`RunConfig`.
      task, model, rule: the raw tables (values may be lists = sweep axes).
      seeds: the member seeds.
      source: the TOML text it came from (stored in the results' attrs).
      raw: the tables as parsed (the run manifest compares them on resume).
    """

    run: RunConfig
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    rule: Mapping[str, Any]
    seeds: tuple[int, ...]
    source: str = ""
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def sweep_axes(self) -> dict[str, list[Any]]:
        """Dotted field name → list of values, for every swept field, in grid order."""
        axes = {}
        for table, values in (("task", self.task), ("model", self.model), ("rule", self.rule)):
            for key, value in values.items():
                if _is_sweep(f"{table}.{key}", value):
                    axes[f"{table}.{key}"] = list(value)
        return axes

    def members(self) -> list[Member]:
        """Expand the grid (sweep axes × seeds) into validated members."""
        axes = self.sweep_axes()
        names = list(axes)
        members = []
        for values in itertools.product(*(axes[n] for n in names)):
            chosen = dict(zip(names, values))
            tables = {}
            for table, raw in (("task", self.task), ("model", self.model), ("rule", self.rule)):
                tables[table] = {k: chosen.get(f"{table}.{k}", v) for k, v in raw.items()}
            for seed in self.seeds:
                members.append(Member(len(members), int(seed), tables["task"], tables["model"], tables["rule"]))
        return members


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _is_sweep(field: str, value: Any) -> bool:
    if field in SEQUENCE_FIELDS:
        return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)
    return isinstance(value, list)


def _check_table_fields(table: str, values: Mapping[str, Any], allowed: list[str]) -> None:
    for key, value in values.items():
        if key not in allowed:
            fail(f"{table}.{key}", value, f"a field of [{table}]: " + ", ".join(sorted(allowed)))


def _values(field: str, value: Any) -> list[Any]:
    return list(value) if _is_sweep(field, value) else [value]


def from_dict(raw: Mapping[str, Any], *, source: str = "", name: str = "run") -> Config:
    """Validate a config dict (the TOML's tables) and build a :class:`Config`."""
    from jaxrnn.population.builders import rule_fields  # noqa: F401  (registers rules)

    for table in raw:
        if table not in TABLES:
            fail(table, raw[table], "one of the tables " + ", ".join(f"[{t}]" for t in TABLES))
    run_raw = dict(raw.get("run", {}))
    _check_table_fields("run", run_raw, [f.name for f in dataclasses.fields(RunConfig)])
    for key, value in run_raw.items():
        if isinstance(value, list):
            fail(f"run.{key}", value, "a single value ([run] fields are not sweepable)")
    run = RunConfig(**{"name": name, **run_raw})

    task = dict(raw.get("task", {}))
    if "name" not in task:
        fail("task.name", None, "one of the registered tasks: " + ", ".join(registered()))
    for task_name in _values("task.name", task["name"]):
        make(task_name)  # raises on an unknown name, listing the registered ones
        allowed = ["name"] + static_fields(task_name) + param_fields(task_name)
        _check_table_fields("task", task, allowed)

    model = {**dataclasses.asdict(ModelConfig()), **raw.get("model", {})}
    _check_table_fields("model", raw.get("model", {}), MODEL_FIELDS)

    rule = dict(raw.get("rule", {}))
    rule.setdefault("name", "bptt")
    for rule_name in _values("rule.name", rule["name"]):
        static, dynamic = rule_fields(rule_name)
        _check_table_fields("rule", rule, ["name"] + sorted(static | dynamic))

    grid = dict(raw.get("grid", {}))
    _check_table_fields("grid", grid, ["seeds"])
    seeds = grid.get("seeds", 1)
    if isinstance(seeds, list):
        for s in seeds:
            check_range("grid.seeds", s, 0, integer=True)
        if len(set(seeds)) != len(seeds):
            fail("grid.seeds", seeds, "distinct seeds")
        seeds = tuple(int(s) for s in seeds)
    else:
        check_range("grid.seeds", seeds, 1, integer=True)
        seeds = tuple(range(int(seeds)))
    config = Config(run=run, task=task, model=model, rule=rule, seeds=seeds, source=source, raw=dict(raw))
    for member in config.members():  # validates every value of every member eagerly
        from jaxrnn.population.builders import check_member

        check_member(member)
    return config


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``jaxrnn/configs``."""
    files = resources.files("jaxrnn.configs").iterdir()
    return sorted(p.name[: -len(".toml")] for p in files if p.name.endswith(".toml"))


def load_config(path_or_name: str | Path = "default") -> Config:
    """Load a TOML config from a path, or a packaged config by name (``"default"``, ...)."""
    path = Path(path_or_name)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            fail("config", str(path), "an existing TOML file or a packaged config: " + ", ".join(packaged_configs()))
        text = path.read_text()
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
    return from_dict(raw, source=text, name=raw.get("run", {}).get("name", name))


def snapshot_updates(run: RunConfig) -> list[int]:
    """Updates at which params are snapshotted: 0, …, num_updates, multiples of eval_every."""
    if run.snapshots == 0:
        return []
    if run.snapshots == 1:
        return [run.num_updates]
    n_eval = run.num_evaluations
    if run.snapshot_spacing == "linear":
        points = [round(i * n_eval / (run.snapshots - 1)) for i in range(run.snapshots)]
    else:
        points = [0] + [
            round(math.exp(math.log(n_eval) * i / (run.snapshots - 2))) for i in range(run.snapshots - 1)
        ] if run.snapshots > 2 else [0, n_eval]
    return sorted({min(p, n_eval) * run.eval_every for p in points})

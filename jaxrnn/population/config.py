"""Run configuration: TOML / dataclasses → a validated grid of population members.

A run is one TOML file with tables ``[run]``, ``[task]``, ``[model]``, ``[rule]``, ``[grid]``
(reference: ``docs/config-reference.md``). Any ``[task]``, ``[model]`` or ``[rule]`` field given as a list is a sweep
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

Parsing and validation (TOML / dicts, unions of grids ``[[subgrid]]``) live in
:mod:`jaxrnn.population.parse`; ``from_dict`` and ``load_config`` are re-exported by
:mod:`jaxrnn.population`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.population import schema

TABLES = ("run", "task", "model", "rule", "grid")
SEQUENCE_FIELDS = {"rule.trainable"}
SUBGRID_KEYS = TABLES + ("replace",)
REPLACEABLE = ("task", "model", "rule", "grid")
SUBGRID_RUN_FIELDS = ("num_updates", "chunk_updates", "snapshots")
MISSING = object()  # a field a member's task / rule does not have (see Config.field_value)


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

    Attributes:
      cell: ``"ctrnn"``, ``"vanilla"``, ``"lowrank"``, ``"gru"`` or ``"lstm"``.
      hidden: number of units N.
      activation: rate function f of ``ctrnn`` / ``lowrank``: ``tanh``, ``shifted_tanh`` (1 + tanh),
        ``relu`` or ``linear``.
      alpha: ``dt/τ`` in ``(0, 1]`` of ``ctrnn`` / ``lowrank`` (1: a discrete-time RNN).
      weight_init: initialisation of ``ctrnn``: ``"mcmahan"``, ``"normal"``, ``"uniform"`` or ``"ger_barak"``.
      input_scale: scale of the initial ``W_in`` of ``ctrnn``.
      output: what the readout sees: ``"state"`` (x) or ``"rate"`` (f(x)).
      use_bias: include the bias ``b``.
      rank: rank of ``W_rec`` of ``lowrank``.
      parametrization: ``lowrank`` only: ``"normalized"`` (``W = U Vᵀ / N``) or ``"ger_barak"`` (``W = u vᵀ``).
      readout_scale: std of the initial readout weights ``W_out`` (supervised tasks).
      gain: recurrent gain g of the initial ``W_rec`` (sweepable).
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
MODEL_DEFAULTS = dataclasses.asdict(ModelConfig())
MODEL_FIELDS = [f.name for f in dataclasses.fields(ModelConfig)]
RUN_FIELDS = [f.name for f in dataclasses.fields(RunConfig)]


@dataclasses.dataclass(frozen=True)
class Member:
    """One population member: its seed and the full value of every field.

    Attributes:
      index: position in the grid (used only to place results, never for randomness).
      seed: the member's seed.
      task / model / rule: field → value (``task["name"]``, ``rule["name"]`` included).
      subgrid: the sub-grid it comes from (0: the top-level tables, k: the k-th ``[[subgrid]]``).
      run: its run settings (differ between sub-grids in ``num_updates``, ``chunk_updates``,
        ``snapshots`` only).
    """

    index: int
    seed: int
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    rule: Mapping[str, Any]
    subgrid: int = 0
    run: RunConfig = RunConfig()

    def static_key(self, rule_static: set[str]) -> tuple:
        """Hashable signature of the static fields (members with equal keys share a program)."""
        task_static = set(schema.task(self.task["name"])["static"]) | {"name"}
        return (
            tuple(sorted((k, hashable(v)) for k, v in self.task.items() if k in task_static)),
            tuple(sorted((k, hashable(v)) for k, v in self.model.items() if k not in DYNAMIC_MODEL_FIELDS)),
            tuple(sorted((k, hashable(v)) for k, v in self.rule.items() if k in rule_static | {"name"})),
        )


@dataclasses.dataclass(frozen=True)
class Grid:
    """One Cartesian product: the top-level tables, or one ``[[subgrid]]`` merged onto them.

    Attributes:
      run: its :class:`RunConfig`.
      task, model, rule: the merged tables (values may be lists = sweep axes). ``model`` holds
        the fields the config sets; a member's model is :class:`ModelConfig`'s defaults, then
        its rule's ``model_defaults`` (:mod:`jaxrnn.population.schema`), then these.
      seeds: the member seeds.
      subgrid: 0 for the top-level tables, k for the k-th ``[[subgrid]]`` (file order, from 1).
    """

    run: RunConfig
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    rule: Mapping[str, Any]
    seeds: tuple[int, ...]
    subgrid: int = 0

    def sweep_axes(self) -> dict[str, list[Any]]:
        """Dotted field name → list of values, for every swept field, in grid order."""
        axes = {}
        for table, values in (("task", self.task), ("model", self.model), ("rule", self.rule)):
            for key, value in values.items():
                if _is_sweep(f"{table}.{key}", value):
                    axes[f"{table}.{key}"] = list(value)
        return axes

    def members(self, start: int = 0) -> list[Member]:
        """Expand the product (sweep axes × seeds) into members numbered from ``start``."""
        axes = self.sweep_axes()
        names = list(axes)
        members = []
        for values in itertools.product(*(axes[n] for n in names)):
            chosen = dict(zip(names, values))
            tables = {}
            for table, raw in (("task", self.task), ("model", self.model), ("rule", self.rule)):
                tables[table] = {k: chosen.get(f"{table}.{k}", v) for k, v in raw.items()}
            tables["model"] = member_model(tables["model"], tables["rule"]["name"])
            for seed in self.seeds:
                members.append(Member(start + len(members), int(seed), tables["task"], tables["model"],
                                      tables["rule"], self.subgrid, self.run))
        return members


@dataclasses.dataclass(frozen=True)
class Config:
    """A parsed run configuration: one grid, or a union of grids (``[[subgrid]]``).

    Attributes:
      run: the top-level :class:`RunConfig` (its shared fields hold for every member; a
        member's own settings are ``Member.run``).
      task, model, rule: the top-level tables (values may be lists = sweep axes).
      seeds: the top-level member seeds.
      source: the TOML text it came from (stored in the results' attrs).
      raw: the tables as parsed (the run manifest compares them on resume).
      grids: the Cartesian products whose members make the run, in order; left empty, the one
        product of the fields above.
    """

    run: RunConfig
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    rule: Mapping[str, Any]
    seeds: tuple[int, ...]
    source: str = ""
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    grids: tuple[Grid, ...] = ()

    def __post_init__(self):
        if not self.grids:
            object.__setattr__(self, "grids", (Grid(self.run, self.task, self.model, self.rule, self.seeds),))

    @property
    def has_subgrids(self) -> bool:
        """Whether the config is a union of ``[[subgrid]]`` products (not one plain grid)."""
        return len(self.grids) > 1 or self.grids[0].subgrid != 0

    @property
    def num_updates(self) -> int:
        """Updates of the longest-running member (the length of the results' ``update`` axis)."""
        return max(grid.run.num_updates for grid in self.grids)

    @property
    def num_evaluations(self) -> int:
        """Validations of the longest-running member (the length of the ``evaluation`` axis)."""
        return max(grid.run.num_evaluations for grid in self.grids)

    def sweep_axes(self) -> dict[str, list[Any]]:
        """Dotted field name → list of values, for every swept field, in grid order.

        For a union: every field swept in some sub-grid, or with different values in different
        sub-grids (a rule field a table leaves out counts as the rule's default; a field a
        member's task or rule does not have is left out), values in order of first appearance.
        With ``base_only``, a field whose one value differs from the top-level table's counts
        too, so the results never leave a member's value to a misleading top-level table.
        """
        if not self.has_subgrids:
            return self.grids[0].sweep_axes()
        fields: dict[str, bool] = {}  # field → swept somewhere
        for grid in self.grids:
            for table, values in (("task", grid.task), ("model", grid.model), ("rule", grid.rule)):
                for key, value in values.items():
                    field = f"{table}.{key}"
                    fields[field] = fields.get(field, False) or _is_sweep(field, value)
        base_only = self.grids[0].subgrid != 0
        axes = {}
        for field, swept in fields.items():
            values = []
            for grid in self.grids:
                for value in _grid_field_values(grid, field):
                    if all(hashable(value) != hashable(v) for v in values):
                        values.append(value)
            table, key = field.split(".", 1)
            base = getattr(self, table)
            if table == "model":  # the top level's effective model: unset fields take their defaults
                base = {**MODEL_DEFAULTS, **base}
            differs_from_base = base_only and key in base and any(hashable(v) != hashable(base[key]) for v in values)
            if swept or len(values) > 1 or differs_from_base:
                axes[field] = values
        return axes

    def members(self) -> list[Member]:
        """Expand every grid (sweep axes × seeds) into members, in order (computed once per config)."""
        if "_members" not in self.__dict__:
            members = []
            for grid in self.grids:
                members.extend(grid.members(len(members)))
            object.__setattr__(self, "_members", members)
        return list(self.__dict__["_members"])


def member_model(model: Mapping[str, Any], rule_name: str) -> dict[str, Any]:
    """A member's full ``[model]``: defaults, then its rule's ``model_defaults``, then ``model``."""
    return {**MODEL_DEFAULTS, **schema.model_defaults(rule_name), **model}


def field_value(member: Member, field: str) -> Any:
    """A member's value of dotted ``field``: its table's, else its rule's default, else ``MISSING``."""
    table, key = field.split(".", 1)
    values = getattr(member, table)
    if key in values:
        return values[key]
    if table == "rule":
        return _rule_defaults(values["name"]).get(key, MISSING)
    return MISSING


def _rule_defaults(name: str) -> Mapping[str, Any]:
    return schema.rule_defaults(name)


def _grid_field_values(grid: Grid, field: str) -> list[Any]:
    """The values ``field`` takes in ``grid`` (rule defaults filled in; none if no member has it)."""
    table, key = field.split(".", 1)
    values = getattr(grid, table)
    if key in values:
        return sweep_values(field, values[key])
    if table == "rule":
        return [d[key] for d in (_rule_defaults(n) for n in sweep_values("rule.name", values["name"])) if key in d]
    if table == "model":
        return [member_model({}, n)[key] for n in sweep_values("rule.name", grid.rule["name"])]
    return []


def hashable(value: Any) -> Any:
    """``value`` with a list turned into a tuple, so config values can key dicts and sets."""
    return tuple(value) if isinstance(value, list) else value


def _is_sweep(field: str, value: Any) -> bool:
    if field in SEQUENCE_FIELDS:
        return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)
    return isinstance(value, list)


def sweep_values(field: str, value: Any) -> list[Any]:
    """The values a config entry ``field = value`` takes: the list of a sweep, else ``[value]``.

    For the fields whose single value is itself a list (``SEQUENCE_FIELDS``, e.g.
    ``rule.trainable``), a sweep is a list of lists.
    """
    return list(value) if _is_sweep(field, value) else [value]


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

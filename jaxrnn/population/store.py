"""The results store: one self-describing ``xarray.Dataset`` per run, written to Zarr.

Zarr format 2 with consolidated metadata: a fully specified format any Zarr reader opens
(format 3 has no specification yet for string coordinates or consolidated metadata).

Layout (opens with plain ``xarray.open_zarr`` — jaxrnn is not needed to read it):

- dims ``member``, ``update``, ``evaluation``, ``snapshot``, and the named axes of params
  (``neuron``, ``neuron_pre``, ``input``, ``output``, ``rank``, ...: see
  :mod:`jaxrnn.population.attributes`);
- coords ``seed[member]``, ``task.name[member]``, ``rule.name[member]``, one per swept field by
  its dotted path (``task.noise_std[member]``, ``rule.learning_rate[member]``), ``group[member]``
  (the compiled program that trained it), ``update[update]`` (1-based update count),
  ``evaluation[evaluation]`` (the update of each validation, an index: ``.sel(evaluation=500)``)
  and ``evaluation_update`` (the same numbers), ``snapshot[snapshot]`` (the update of each
  snapshot, an index) and ``snapshot_update[snapshot]``;
- for a union of grids (``[[subgrid]]``, see :mod:`jaxrnn.population.config`): ``update`` and
  ``evaluation`` are as long as the longest run, every variable of a shorter member is NaN past
  its own ``num_updates``; coords ``subgrid[member]`` (0: the top-level tables, k: the k-th
  ``[[subgrid]]``) and ``run.num_updates[member]``; a coord per field of
  :meth:`Config.sweep_axes` of the union (swept in some sub-grid, or set differently in
  different ones), NaN (numbers) or ``""`` for members whose task / rule has no such field;
  when sub-grids snapshot at different updates, ``snapshot_update[member, snapshot]`` (2-D,
  −1 where a member has fewer snapshots than the longest, its params NaN there) instead of the
  1-D coord, which every member sharing its snapshot updates keeps (``snapshot`` then has no
  index: snapshots are counted per member);
- variables ``loss[member, update]`` and every other per-update metric of the rule,
  ``val_accuracy[member, evaluation]`` and every other validation metric (``val_<name>``),
  ``converged_update[member]`` (−1 if never), ``diverged[member]``,
  ``converged_time[member]`` (seconds from the group's start to the end of the chunk in which the
  member met its criterion; NaN if never), and the params snapshots
  ``params.<module>.<name>[member, snapshot, ...]``. Params of members whose group has smaller
  (or no) arrays of that name are NaN-padded;
- attributes ``long_name``, ``units``, ``description`` on every variable and coordinate, and
  ``nan_meaning`` on every variable that may hold NaN (:mod:`jaxrnn.population.attributes`);
- attrs ``config`` (the TOML text; for a run started from Python, the config dict written as
  TOML by :func:`config_toml`), ``versions`` (package versions), ``devices``, ``wall_time``,
  ``compile_time`` (per group, seconds).
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from jaxrnn.population.attributes import describe, param_dims
from jaxrnn.population.checkpoint import STORE_NAME
from jaxrnn.population.config_text import config_toml

PACKAGES = ("jaxrnn", "jax", "jaxlib", "flax", "optax", "gymnax", "numpy", "xarray", "zarr")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _pad_stack(arrays: Sequence[np.ndarray | None], member_counts: Sequence[int], trailing_ndim: int) -> np.ndarray:
    """Concatenate per-group arrays ``[P_g, S, ...]`` along members, NaN-padding trailing dims."""
    shapes = [a.shape[1:] for a in arrays if a is not None]
    full = tuple(max(s[i] for s in shapes) for i in range(len(shapes[0])))
    out = []
    for array, count in zip(arrays, member_counts):
        block = np.full((count,) + full, np.nan, np.float32)
        if array is not None:
            block[(slice(None),) + tuple(slice(0, n) for n in array.shape[1:])] = array
        out.append(block)
    return np.concatenate(out, axis=0)


def build_dataset(config, groups, devices: Sequence[str]) -> xr.Dataset:
    """Assemble the per-group results (``GroupResult``) into the run's Dataset, in grid order.

    Groups may have run for different numbers of updates (sub-grids of a union): the ``update``
    and ``evaluation`` axes are those of the longest run and shorter members are NaN-padded.
    """
    from jaxrnn.population.config import MODEL_FIELDS, field_value, snapshot_updates

    members = [m for g in groups for m in g.members]
    order = np.argsort([m.index for m in members], kind="stable")
    counts = [len(g.members) for g in groups]
    run = config.run  # its shared fields (eval_every, stopping rule) hold for every member
    num_updates, num_evaluations = config.num_updates, config.num_evaluations

    def cat(name, kind, length):
        blocks = []
        for group, count in zip(groups, counts):
            array = getattr(group, kind).get(name)
            block = np.full((count, length), np.nan, np.float32)
            if array is not None:
                block[:, : array.shape[1]] = array
            blocks.append(block)
        return np.concatenate(blocks, axis=0)[order]

    data = {}
    update_names = sorted({k for g in groups for k in g.update_metrics})
    for name in update_names:
        data[name] = (("member", "update"), cat(name, "update_metrics", num_updates))
    eval_names = sorted({k for g in groups for k in g.eval_metrics})
    for name in eval_names:
        data[f"val_{name}"] = (("member", "evaluation"), cat(name, "eval_metrics", num_evaluations))
    data["converged_update"] = (("member",), np.concatenate([g.converged_update for g in groups])[order].astype(np.int32))
    data["diverged"] = (("member",), np.concatenate([g.diverged for g in groups])[order].astype(bool))
    data["converged_time"] = (("member",), np.concatenate([g.converged_time for g in groups])[order])
    data.update(_params_variables(groups, counts, order))

    sorted_members = [members[i] for i in order]
    group_of = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])[order]
    coords = {
        "member": np.arange(len(members)),
        "seed": ("member", np.array([m.seed for m in sorted_members])),
        "group": ("member", group_of.astype(np.int32)),
        "task.name": ("member", np.array([m.task["name"] for m in sorted_members], dtype=str)),
        "rule.name": ("member", np.array([m.rule.get("name", "bptt") for m in sorted_members], dtype=str)),
        "update": np.arange(1, num_updates + 1),
        "evaluation": np.arange(1, num_evaluations + 1) * run.eval_every,
        "evaluation_update": ("evaluation", np.arange(1, num_evaluations + 1) * run.eval_every),
        "snapshot_update": _snapshot_update_coord([snapshot_updates(m.run) for m in sorted_members]),
    }
    if coords["snapshot_update"][0] == "snapshot":
        coords["snapshot"] = coords["snapshot_update"][1]
    if config.has_subgrids:
        coords["subgrid"] = ("member", np.array([m.subgrid for m in sorted_members], dtype=np.int32))
        coords["run.num_updates"] = ("member", np.array([m.run.num_updates for m in sorted_members], dtype=np.int64))
    for field in config.sweep_axes():
        if field in ("task.name", "rule.name"):
            continue
        coords[field] = ("member", _coord_values([field_value(m, field) for m in sorted_members]))
    for key in MODEL_FIELDS:  # e.g. a rule's own model defaults (Hebbian: tanh) beside other rules
        values = [m.model[key] for m in sorted_members]
        if f"model.{key}" not in coords and len({repr(v) for v in values}) > 1:
            coords[f"model.{key}"] = ("member", _coord_values(values))
    attrs = {
        "config": config.source or config_toml(config.raw),
        "run_name": run.name,
        "versions": json.dumps(package_versions()),
        "devices": json.dumps(list(devices)),
        "wall_time": float(sum(g.wall_time for g in groups)),
        "compile_time": json.dumps([float(g.compile_time) for g in groups]),
        "stop_metric": run.stop_metric,
        "stop_threshold": float(run.stop_threshold),
        "stop_window": int(run.stop_window),
    }
    return describe(xr.Dataset(data, coords=coords, attrs=attrs))


def _params_variables(groups, counts, order) -> dict[str, tuple]:
    """``params.<module>.<name>[member, snapshot, <named axes>]`` of every group, NaN-padded.

    Axes are named by :func:`~jaxrnn.population.attributes.param_dims` (``neuron``, ``input``, ...);
    where one name would take two sizes (an unusual network), that variable keeps its own
    ``<variable>.axis<i>`` names, so every dimension has one size.
    """
    data, sizes = {}, {}
    for name in sorted({k for g in groups for k in g.snapshots}):
        arrays = [g.snapshots.get(name) for g in groups]
        ndim = max(a.ndim for a in arrays if a is not None)
        stacked = _pad_stack(arrays, counts, ndim - 2)[order]
        axes = param_dims(name, ndim - 2)
        if any(sizes.get(d, n) != n for d, n in zip(axes, stacked.shape[2:])):
            axes = tuple(f"{name}.axis{i}" for i in range(ndim - 2))
        sizes.update(zip(axes, stacked.shape[2:]))
        data[name] = (("member", "snapshot") + axes, stacked)
    return data


def _snapshot_update_coord(per_member: Sequence[Sequence[int]]) -> tuple:
    """``snapshot_update[snapshot]`` if every member shares its snapshot updates, else
    ``snapshot_update[member, snapshot]`` padded with −1."""
    if all(list(u) == list(per_member[0]) for u in per_member):
        return ("snapshot", np.asarray(per_member[0] if per_member else [], dtype=np.int64))
    table = np.full((len(per_member), max(len(u) for u in per_member)), -1, np.int64)
    for i, updates in enumerate(per_member):
        table[i, : len(updates)] = updates
    return (("member", "snapshot"), table)


def _coord_values(values: Sequence) -> np.ndarray:
    """Per-member coord values; a field a member does not have is NaN (numbers) or ``""``."""
    from jaxrnn.population.config import MISSING

    present = [v for v in values if v is not MISSING]
    if any(isinstance(v, list) for v in present):
        return np.asarray(["" if v is MISSING else ",".join(map(str, v)) if isinstance(v, list) else str(v)
                           for v in values])
    if len(present) == len(values):
        return np.asarray(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.asarray([np.nan if v is MISSING else float(v) for v in values])
    return np.asarray(["" if v is MISSING else str(v) for v in values])


def save(dataset: xr.Dataset, out: str | Path) -> Path:
    """Write ``dataset`` to ``out/results.zarr`` atomically (temp dir, then rename)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / STORE_NAME
    tmp = out / (STORE_NAME + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    dataset.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
    if final.exists():
        old = out / (STORE_NAME + ".old")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    return final


def load(path: str | Path) -> xr.Dataset:
    """Open a results store (a run directory or the ``.zarr`` itself) into memory."""
    path = Path(path)
    if (path / STORE_NAME).exists():
        path = path / STORE_NAME
    if not path.exists():
        raise ValueError(f"results store {str(path)!r} does not exist: pass a run directory written by `jaxrnn run`")
    with xr.open_zarr(path, consolidated=True) as dataset:
        return dataset.load()

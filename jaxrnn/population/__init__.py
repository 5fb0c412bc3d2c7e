"""Populations: a grid of members from a config, trained together, stored as one Dataset.

    ds = jaxrnn.population.run("default", out="runs/default")   # or a Config / TOML path
    ds = jaxrnn.population.load("runs/default")
"""

from __future__ import annotations

from pathlib import Path

import jax
import xarray as xr

from jaxrnn.population import checkpoint, planner, sharding, store
from jaxrnn.population.config import (
    Config,
    Grid,
    Member,
    ModelConfig,
    RunConfig,
    snapshot_updates,
)
from jaxrnn.population.parse import from_dict, load_config, packaged_configs
from jaxrnn.population.planner import parse_bytes, plan_group, time_one_chunk
from jaxrnn.population.progress import Progress
from jaxrnn.population.builders import build_rule
from jaxrnn.population.runner import (
    chunk_plan,
    concat_results,
    group_members,
    make_chunk,
    member_keys,
    train_part,
    update_key,
)
from jaxrnn.population.store import load


def run(
    config: Config | str | Path = "default",
    out: str | Path | None = None,
    *,
    quiet: bool = False,
    memory_budget: int | str | None = None,
) -> xr.Dataset:
    """Train every member of ``config`` and return (and, with ``out``, save) the results.

    With ``out`` the run is resumable: a checkpoint is written after every chunk, and calling
    ``run`` again with the same config and ``out`` (after a crash or ``kill -9``) continues where
    it stopped and ends with the same numbers; a completed run is just loaded. A directory made
    by a different config is refused with a ``ValueError``. A union of grids (``[[subgrid]]``)
    trains each group with its members' own run settings (budget, chunks, snapshots); the store
    NaN-pads the shorter runs (see :mod:`jaxrnn.population.store`).

    Args:
      config: a :class:`Config`, a TOML path, or a packaged config name.
      out: run directory; the store is written to ``out/results.zarr``.
      quiet: no progress bars.
      memory_budget: bytes (or ``"8GiB"``) per device for one compiled slice of a group; groups
        that do not fit are split into population slices (see :mod:`jaxrnn.population.planner`).

    Returns:
      The results ``xarray.Dataset`` (see :mod:`jaxrnn.population.store`).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    budget = None if memory_budget is None else parse_bytes(memory_budget)
    out = Path(out) if out is not None else None
    if out is not None and checkpoint.check_manifest(out, config.raw, write=sharding.is_writer()):
        return load(out)
    sharding.barrier("manifest")
    groups = group_members(config)  # validation already happened in load_config/from_dict
    progress = Progress(quiet or not sharding.is_writer())
    results = []
    for i, members in enumerate(groups):
        group_run = members[0].run  # equal for every member of a group (see group_members)
        plan = plan_group(members, group_run, budget) if needs_plan(members, budget) else None
        slices = plan.slices(members) if plan else [members]
        overrides = plan.rule_overrides if plan else None
        first = members[0]
        rule, _ = build_rule(first.task, first.model, {**first.rule, **(overrides or {})})
        chunk_fn = make_chunk(rule, group_run, chunk_plan(group_run)[1])  # one program for all slices
        parts = []
        for j, part in enumerate(slices):
            label = group_label(config, members)
            if len(slices) > 1:
                label += f", slice {j + 1}/{len(slices)}"
            report = progress.group(i, len(groups), len(part), group_run.num_updates, label)
            part_checkpoint = None
            if out is not None:  # group i, slice j: fixed by the config, so a resumed run finds its parts
                part_checkpoint = checkpoint.PartCheckpoint(out, f"g{i:03d}-p{j:03d}", enabled=sharding.is_writer())
            parts.append(train_part(part, group_run, progress=report, checkpoint=part_checkpoint, rule=rule,
                                    chunk_fn=chunk_fn, pad_to=len(slices[0])))
        results.append(concat_results(parts))
    progress.close()
    devices = [str(d) for d in jax.devices()]
    dataset = store.build_dataset(config, results, devices)
    if out is not None and sharding.is_writer():
        store.save(dataset, out)
        checkpoint.mark_complete(out)
    sharding.barrier("store")
    return dataset


def group_label(config: Config, members) -> str:
    """``"<rule> on <task>"``, plus the sub-grids and budget of the group for a union."""
    first = members[0]
    label = f"{first.rule.get('name', 'bptt')} on {first.task['name']}"
    if config.has_subgrids:
        subgrids = ",".join(str(k) for k in dict.fromkeys(m.subgrid for m in members))
        label += f" (subgrid {subgrids}, {first.run.num_updates} updates)"
    return label


PLAN_ABOVE = 64


def needs_plan(members, budget) -> bool:
    """Plan memory when a budget is given, or (default budget) for groups over 64 members.

    Planning compiles the group's chunk once more to read XLA's memory analysis; small groups
    skip that compile (a few seconds) since they fit any device jaxrnn runs on.
    """
    return len(members) > 1 and (budget is not None or len(members) > PLAN_ABOVE)


def dry_run(config: Config | str | Path = "default", memory_budget: int | str | None = None) -> list[dict]:
    """Plan, compile and time one chunk of each group; project the whole run without training it.

    Works for unions of grids: each group is planned and timed with its own run settings.
    Returns one dict per group: members, slices, remat, bytes per member, projected peak bytes
    per device, compile seconds, seconds per chunk and projected seconds for the group.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    budget = None if memory_budget is None else parse_bytes(memory_budget)
    rows = []
    for members in group_members(config):
        group_run = members[0].run
        chunks = -(-group_run.num_evaluations // group_run.evals_per_chunk)
        plan = plan_group(members, group_run, budget)
        slices = plan.slices(members)
        compile_s, chunk_s = time_one_chunk(slices[0], group_run, plan.rule_overrides)
        rows.append({
            "group": group_label(config, members),
            "members": len(members),
            "slices": len(slices),
            "remat": bool(plan.rule_overrides.get("remat", False)),
            "bytes_per_member": plan.bytes_per_member,
            "peak_bytes_per_device": plan.bytes_per_member * -(-plan.population_chunk // jax.device_count()),
            "budget_bytes": plan.budget,
            "compile_s": compile_s,
            "chunk_s": chunk_s,
            "projected_s": chunk_s * chunks * len(slices) + compile_s,
        })
    return rows


__all__ = [
    "Config",
    "dry_run",
    "Grid",
    "Member",
    "ModelConfig",
    "RunConfig",
    "from_dict",
    "load",
    "load_config",
    "member_keys",
    "packaged_configs",
    "run",
    "snapshot_updates",
    "update_key",
]

"""Training a population: ``run`` (chunks, checkpoints, store) and ``dry_run`` (projections).

Both are re-exported by :mod:`jaxrnn.population` (``jaxrnn.population.run``).
"""

from __future__ import annotations

from pathlib import Path

import time

import jax
import xarray as xr

from jaxrnn.population import checkpoint, sharding, store
from jaxrnn.population.config import Config, snapshot_updates
from jaxrnn.population.parse import load_config
from jaxrnn.population.config_text import parse_bytes
from jaxrnn.population.planner import plan_group
from jaxrnn.population.progress import Progress
from jaxrnn.population.runner import concat_results, group_members, group_program, train_part
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
    total = sum(len(members) * members[0].run.num_updates for members in groups)
    progress = Progress(quiet or not sharding.is_writer(), total)
    results = []
    for i, members in enumerate(groups):
        group_run = members[0].run  # equal for every member of a group (see group_members)
        plan = plan_group(members, group_run, budget) if needs_plan(members, budget) else None
        slices = plan.slices(members) if plan else [members]
        overrides = plan.rule_overrides if plan else None
        program = group_program(members, group_run, len(slices[0]), overrides)  # one executable for all slices
        parts = []
        for j, part in enumerate(slices):
            report = progress.group(i, len(groups), len(part), group_run.num_updates, group_label(config, members),
                                    j, len(slices))
            part_checkpoint = None
            if out is not None:  # group i, slice j: fixed by the config, so a resumed run finds its parts
                part_checkpoint = checkpoint.PartCheckpoint(out, f"g{i:03d}-p{j:03d}", enabled=sharding.is_writer())
            parts.append(train_part(part, group_run, progress=report, checkpoint=part_checkpoint, program=program))
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


def host_result_bytes(members, run) -> int:
    """Host memory the results of ``members`` (one group) will take: params snapshots and metrics.

    From the shapes of the group's network params (``jax.eval_shape``: nothing is compiled) ×
    snapshots, plus float32 metrics per update and per validation. The store is assembled from
    these arrays, so a run needs about twice this at its end.
    """
    import numpy as np

    program = group_program(members, run, 1)
    params = jax.eval_shape(jax.vmap(program.rule.network), program.pop_spec.state)
    param_bytes = sum(int(np.prod(x.shape[1:])) * x.dtype.itemsize for x in jax.tree.leaves(params))
    per_member = param_bytes * len(snapshot_updates(run)) + 4 * 8 * (run.num_updates + run.num_evaluations)
    return per_member * len(members)


def dry_run(config: Config | str | Path = "default", memory_budget: int | str | None = None,
            report=None) -> list[dict]:
    """Compile each group and time a few updates; project the whole run's wall time and memory.

    Per group, a sample of its members (on a CPU: 16 per device, which keeps every device busy;
    on an accelerator: one population slice) is compiled with chunks of one validation block
    (``eval_every`` updates and a validation) and run once. The projection scales the block's
    time to every validation of every member (on a CPU time grows with the members; on an
    accelerator with the slices) and adds the compile time; memory comes from XLA's analysis of
    the same program (bytes per member → slices within ``memory_budget``) and from the shapes
    of the results kept on the host (:func:`host_result_bytes`). Remat, which the real run's
    planner may add for groups that do not fit, is not projected. ``report(row)`` is called
    as each group is done (the command line prints it at once).

    Returns one dict per group: members, slices, bytes per member, projected peak bytes per
    device and on the host, compile seconds, seconds per validation block, projected seconds.
    """
    import dataclasses

    import numpy as np

    from jaxrnn.population.mapping import CPU_MEMBER_BLOCK
    from jaxrnn.population.planner import default_memory_budget
    from jaxrnn.population.runner import prepare
    from jaxrnn.population.sharding import pad_members, shard

    if not isinstance(config, Config):
        config = load_config(config)
    budget = default_memory_budget() if memory_budget is None else parse_bytes(memory_budget)
    devices = jax.device_count()
    on_cpu = jax.default_backend() == "cpu"
    rows = []
    for members in group_members(config):
        run = members[0].run
        timing_run = dataclasses.replace(run, chunk_updates=run.eval_every)
        sample = members[: min(len(members), CPU_MEMBER_BLOCK * devices if on_cpu else len(members))]
        program = group_program(sample, timing_run, len(sample))
        _, hparams, init_keys, train_keys = prepare(sample, rule=program.rule)
        mesh = program.mesh
        hparams, init_keys, train_keys = (shard(pad_members(x, program.size), mesh)
                                          for x in (hparams, init_keys, train_keys))
        pop = program.init(init_keys, hparams, shard(np.ones(program.size, bool), mesh))
        start = time.perf_counter()
        chunk = program.chunk
        compile_s = time.perf_counter() - start
        stats = chunk.memory_analysis()
        start = time.perf_counter()
        jax.block_until_ready(chunk(pop, hparams, train_keys, *program.chunk_args(0, np.full((1,), -1))))
        block_s = time.perf_counter() - start
        per_member = program.size and max(1, int((stats.argument_size_in_bytes + stats.output_size_in_bytes
                                                  + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
                                                 / program.size)) if stats is not None else 0
        fit = max(1, int(budget * devices // per_member)) if per_member else len(members)
        slices = -(-len(members) // fit)
        slice_size = -(-len(members) // slices)
        if on_cpu:
            train_s = block_s / program.size * len(members) * run.num_evaluations
        else:
            train_s = block_s * slices * run.num_evaluations
        row = {
            "group": group_label(config, members),
            "members": len(members),
            "slices": slices,
            "remat": False,
            "bytes_per_member": per_member,
            "peak_bytes_per_device": per_member * -(-slice_size // devices),
            "host_bytes": 2 * host_result_bytes(members, run),
            "budget_bytes": budget,
            "compile_s": compile_s,
            "block_s": block_s,
            "sampled_members": len(sample),
            "projected_s": train_s + compile_s,
        }
        rows.append(row)
        if report is not None:
            report(row)
    return rows

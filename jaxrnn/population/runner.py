"""The population runner: trains a group's population slices chunk by chunk, with checkpoints.

The compiled program (vmapped ``rule.update`` scanned over updates, freezing, snapshots) is
built by :mod:`jaxrnn.population.program`; this module prepares each slice's members (keys,
hyper-parameters), runs the chunks, reports progress, writes and resumes checkpoints, and
gathers the host-side results (:class:`GroupResult`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrnn.population.builders import build_rule, member_hparams
from jaxrnn.population.checkpoint import PartCheckpoint
from jaxrnn.population.config import Config, Member, RunConfig
from jaxrnn.population.program import GroupProgram, chunk_plan, member_keys, update_key, validation_key  # noqa: F401
from jaxrnn.population.sharding import gather, pad_members, padded_size, population_mesh, shard


class GroupResult(struct.PyTreeNode):
    """Host-side results of one group (numpy arrays, member axis first)."""

    members: Sequence[Member] = struct.field(pytree_node=False)
    update_metrics: dict[str, np.ndarray]
    eval_metrics: dict[str, np.ndarray]
    snapshots: dict[str, np.ndarray]
    converged_update: np.ndarray
    diverged: np.ndarray
    converged_time: np.ndarray
    wall_time: float
    compile_time: float


def _flatten_params(tree: Any) -> dict[str, Any]:
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        names = [n for n in names if n != "params"]
        flat["params." + ".".join(names)] = leaf
    return flat


def prepare(members: Sequence[Member], rule_overrides: dict | None = None, rule=None):
    """A group's rule (built unless given) and its members' stacked hparams and keys (host arrays).

    Cost independent of the device's dispatch latency: the hparams are built once per distinct
    (task, model, rule) combination — members that differ only in their seed share them — and
    every member's :func:`member_keys` come from one vmapped call (the same numbers). Built
    member by member, 4,096 members took 4.2 s on the 2-core CPU and far longer on a GPU, where
    each small op is a device round trip (the H100 scaling run at 4,096 members spent ~2 min
    here).
    """
    if rule is None:
        first = members[0]
        rule, _ = build_rule(first.task, first.model, {**first.rule, **(rule_overrides or {})})
    distinct: dict[str, Any] = {}
    hps = []
    for m in members:
        signature = repr((sorted(m.task.items()), sorted(m.model.items()), sorted(m.rule.items())))
        if signature not in distinct:
            distinct[signature] = jax.tree.map(np.asarray, member_hparams(rule, m.task, m.model, m.rule))
        hps.append(distinct[signature])
    hparams = jax.tree.map(lambda *xs: np.stack(xs), *hps)
    seeds = [m.seed for m in members]
    if max(seeds) < 2**32:
        init_keys, train_keys = (np.asarray(k) for k in _member_keys_batch(np.asarray(seeds, np.uint32)))
    else:  # seeds beyond uint32: PRNGKey's 64-bit split, one member at a time
        keys = [member_keys(seed) for seed in seeds]
        init_keys, train_keys = (np.stack([np.asarray(k[i]) for k in keys]) for i in (0, 1))
    return rule, hparams, init_keys, train_keys


@jax.jit
def _member_keys_batch(seeds: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`member_keys` of every seed at once: ``(init_keys[P, 2], train_keys[P, 2])``."""
    return jax.vmap(member_keys)(seeds)


def group_program(members: Sequence[Member], run: RunConfig, slice_size: int,
                  rule_overrides: dict | None = None) -> GroupProgram:
    """The :class:`GroupProgram` of a group whose slices hold at most ``slice_size`` members."""
    first = members[0]
    rule, _ = build_rule(first.task, first.model, {**first.rule, **(rule_overrides or {})})
    hparams = jax.tree.map(lambda x: np.asarray(x)[None], member_hparams(rule, first.task, first.model, first.rule))
    mesh = population_mesh()
    return GroupProgram(rule, run, hparams, padded_size(slice_size, mesh), mesh)


def train_part(
    members: Sequence[Member],
    run: RunConfig,
    *,
    progress=None,
    checkpoint: PartCheckpoint | None = None,
    rule_overrides: dict | None = None,
    program: GroupProgram | None = None,
) -> GroupResult:
    """Train one population slice of a group (members sharing static fields) to the end.

    The slice is padded (to ``program.size`` members, a multiple of the device count) and
    sharded over all devices (and processes); with ``checkpoint`` its state is saved after every
    chunk and a run resumes from it. Passing the group's ``program`` (:class:`GroupProgram`,
    built for the largest slice) lets every slice of a group run one compiled executable.
    ``progress(updates_done, finished, size, resumed=False)`` is called after every chunk (and
    once, with ``resumed=True``, when a checkpoint was restored). ``compile_time`` of the result
    is the time this slice spent compiling the group's chunk (0 if an earlier slice did).
    """
    mesh = population_mesh()
    if program is None:
        program = group_program(members, run, len(members), rule_overrides)
    rule = program.rule
    _, hparams, init_keys, train_keys = prepare(members, rule=rule)
    size, padded = len(members), program.size
    hparams, init_keys, train_keys = (shard(pad_members(x, padded), mesh) for x in (hparams, init_keys, train_keys))
    chunk_slots, num_slots, snap_updates = chunk_plan(run)
    e_chunk = run.evals_per_chunk
    compile_before = program.compile_time

    real = shard(np.arange(padded) < size, mesh)
    pop = program.init(init_keys, hparams, real)
    network0 = _flatten_params(gather(program.network(pop.state)))
    snapshots = {name: np.full((len(snap_updates),) + leaf.shape, np.nan, leaf.dtype) for name, leaf in network0.items()}
    if snap_updates and snap_updates[0] == 0:
        for name, leaf in network0.items():
            snapshots[name][0] = leaf
    update_metrics: dict[str, list] = {}
    eval_metrics: dict[str, list] = {}
    converged_time = np.full((padded,), np.nan)
    first_chunk, elapsed_before = 0, 0.0

    def record(c, out):
        for name, value in out["update_metrics"].items():
            update_metrics.setdefault(name, []).append(value)
        for name, value in out["eval_metrics"].items():
            eval_metrics.setdefault(name, []).append(value)
        for name in snapshots:
            for local_slot, global_slot in enumerate(s for s in chunk_slots[c] if s >= 0):
                snapshots[name][global_slot] = out["snapshots"][name][local_slot]

    saved = checkpoint.load_state() if checkpoint is not None else None
    if saved is not None:  # resume: restore the state, replay the recorded outputs
        treedef = jax.tree.structure(program.pop_spec)
        pop = shard(jax.tree.unflatten(treedef, [saved[f"pop{i}"] for i in range(treedef.num_leaves)]), mesh)
        first_chunk = int(saved["next_chunk"])
        converged_time = saved["converged_time"]
        elapsed_before = float(saved["elapsed"])
        for c in range(first_chunk):
            record(c, _unflatten_outputs(checkpoint.load_chunk(c)))
    finished = ~gather(pop.active)
    if progress is not None and first_chunk:
        progress(min(first_chunk * e_chunk, run.num_evaluations) * run.eval_every, int(finished[:size].sum()), size,
                 resumed=True, **_outcomes(pop, size))
    start = None  # training time excludes compilation
    for c in range(first_chunk, len(chunk_slots)):
        if finished.all():
            break
        local = np.full((e_chunk,), -1, np.int32)
        local[[j for j, s in enumerate(chunk_slots[c]) if s >= 0]] = np.arange(sum(s >= 0 for s in chunk_slots[c]))
        if start is None:  # compiled on first use (not timed as training)
            with getattr(progress, "compiling", contextlib.nullcontext)():
                chunk = program.chunk
            start = time.perf_counter()
        pop, out = chunk(pop, hparams, train_keys, *program.chunk_args(c * e_chunk, local))
        out = gather(out)
        finished = ~gather(pop.active)
        out = {"update_metrics": out["update_metrics"], "eval_metrics": out["eval_metrics"],
               "snapshots": _flatten_params(out["snapshots"]) if num_slots else {}}
        record(c, out)
        now = elapsed_before + time.perf_counter() - start
        converged_time[finished & np.isnan(converged_time)] = now
        if checkpoint is not None:
            checkpoint.save_chunk(c, _flatten_outputs(out))
            leaves = jax.tree.leaves(gather(pop))
            state = {f"pop{i}": np.asarray(x) for i, x in enumerate(leaves)}
            checkpoint.save_state({**state, "next_chunk": np.int64(c + 1), "converged_time": converged_time,
                                   "elapsed": np.float64(now)})
        if progress is not None:
            progress(min((c + 1) * e_chunk, run.num_evaluations) * run.eval_every, int(finished[:size].sum()), size,
                     **_outcomes(pop, size))
    final_pop = gather(pop)
    if progress is not None:
        progress(run.num_updates, int(finished[:size].sum()), size, final=True, **_outcomes(final_pop, size))
    wall = elapsed_before + (time.perf_counter() - start if start is not None else 0.0)

    def assemble(chunks, length):
        array = np.concatenate(chunks, axis=0)[:length] if chunks else np.zeros((0, padded))
        out = np.full((length,) + array.shape[1:], np.nan, np.float32)
        out[: array.shape[0]] = array
        return np.moveaxis(out, 0, 1)[:size]  # member axis first, padding dropped

    final = _flatten_params(gather(program.network(pop.state)))
    for i, u in enumerate(snap_updates):  # snapshots after everyone stopped: the frozen params
        if u > 0 and np.isnan(snapshots[next(iter(snapshots))][i]).all():
            for name in snapshots:
                snapshots[name][i] = final[name]
    converged = np.asarray(final_pop.converged_update)[:size]
    times = converged_time[:size].copy()
    times[converged < 0] = np.nan
    return GroupResult(
        members=list(members),
        update_metrics={k: assemble(v, run.num_updates) for k, v in update_metrics.items()},
        eval_metrics={k: assemble(v, run.num_evaluations) for k, v in eval_metrics.items()},
        snapshots={k: np.moveaxis(v, 0, 1)[:size] for k, v in snapshots.items()},
        converged_update=converged,
        diverged=np.asarray(final_pop.diverged)[:size],
        converged_time=times,
        wall_time=wall,
        compile_time=program.compile_time - compile_before,
    )


def _outcomes(pop, size: int) -> dict[str, int]:
    """Members of the slice converged and diverged so far (for progress)."""
    converged, diverged = gather((pop.converged_update, pop.diverged))
    return {"converged": int((np.asarray(converged)[:size] >= 0).sum()), "diverged": int(np.asarray(diverged)[:size].sum())}


def _flatten_outputs(out: dict) -> dict[str, np.ndarray]:
    flat = {f"update/{k}": v for k, v in out["update_metrics"].items()}
    flat.update({f"eval/{k}": v for k, v in out["eval_metrics"].items()})
    flat.update({f"snap/{k}": v for k, v in out["snapshots"].items()})
    return flat


def _unflatten_outputs(arrays: dict[str, np.ndarray]) -> dict:
    out = {"update_metrics": {}, "eval_metrics": {}, "snapshots": {}}
    kinds = {"update": "update_metrics", "eval": "eval_metrics", "snap": "snapshots"}
    for key, value in arrays.items():
        kind, name = key.split("/", 1)
        out[kinds[kind]][name] = value
    return out


def concat_results(parts: Sequence[GroupResult]) -> GroupResult:
    """Join the population slices of one group back into one result."""
    if len(parts) == 1:
        return parts[0]

    def cat(dicts):
        return {k: np.concatenate([d[k] for d in dicts], axis=0) for k in dicts[0]}

    return GroupResult(
        members=[m for p in parts for m in p.members],
        update_metrics=cat([p.update_metrics for p in parts]),
        eval_metrics=cat([p.eval_metrics for p in parts]),
        snapshots=cat([p.snapshots for p in parts]),
        converged_update=np.concatenate([p.converged_update for p in parts]),
        diverged=np.concatenate([p.diverged for p in parts]),
        converged_time=np.concatenate([p.converged_time for p in parts]),
        wall_time=float(sum(p.wall_time for p in parts)),
        compile_time=float(sum(p.compile_time for p in parts)),
    )


def group_members(config: Config) -> list[list[Member]]:
    """Members split into groups of equal static fields and run settings, in order of first appearance.

    Members of different sub-grids share a group (one compiled program, one chunk plan) only if
    their ``Member.run`` is equal too, so every group trains with one :class:`RunConfig`. The
    static signature is computed once per distinct (task, model, rule) tables — members that
    differ only in their seed share them — so grouping 100,000 members takes well under a second.
    """
    from jaxrnn.population import schema

    groups: dict[tuple, list[Member]] = {}
    keys: dict[tuple, tuple] = {}
    for member in config.members():
        tables = (id(member.task), id(member.model), id(member.rule), member.run)
        if tables not in keys:
            static, _ = schema.rule_fields(member.rule.get("name", "bptt"))
            keys[tables] = (member.static_key(static), member.run)
        groups.setdefault(keys[tables], []).append(member)
    return list(groups.values())

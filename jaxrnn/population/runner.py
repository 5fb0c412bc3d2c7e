"""The population runner: many independent networks trained in lock-step by one program.

Members that share their static fields (and run settings: sub-grids of a union may train for
different numbers of updates) form a *group*, compiled once; within a group the rule's
``update`` is vmapped over members (``in_axes=(0, 0, 0)``: key, state, hyper-parameters) and
scanned over updates, in chunks of ``run.chunk_updates`` between which the host reports
progress and collects metrics and snapshots.

Randomness: a member's keys come from its seed alone — ``init_key, train_key =
split(PRNGKey(seed))`` and update ``u`` uses ``fold_in(train_key, u)`` — so a member re-run
alone, in another grid or with another chunk size reproduces its numbers (:func:`member_keys`).
Every member is validated on the same set (``PRNGKey(run.validation_seed)``).

Freezing: after each block of ``eval_every`` updates every member is validated; a member whose
min of its last ``stop_window`` values of ``stop_metric`` (accuracy) reaches ``stop_threshold``
is *converged* and frozen
by masking (its state stops changing; later losses and accuracies are NaN). A member whose new
state or loss is non-finite is *diverged*: the update is discarded (the state keeps its last
finite value), the member is frozen and flagged. Masking is per member, so no member's numbers
depend on another's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrnn.population.builders import build_rule, member_hparams
from jaxrnn.population.checkpoint import PartCheckpoint
from jaxrnn.population.config import Config, Member, RunConfig, snapshot_updates
from jaxrnn.population.mapping import default_member_block, population_map
from jaxrnn.population.sharding import gather, pad_members, padded_size, population_mesh, shard


def member_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, train_key)`` of the member with ``seed``."""
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, train_key


def update_key(train_key: jax.Array, update: jax.Array) -> jax.Array:
    """Key of update number ``update`` (0-based) of a member."""
    return jax.random.fold_in(train_key, update)


def validation_key(run: RunConfig) -> jax.Array:
    return jax.random.PRNGKey(run.validation_seed)


@struct.dataclass
class PopulationState:
    """Rule states of all members of a group plus the runner's per-member bookkeeping.

    Attributes:
      state: the rule state pytree with a leading member axis ``[P, ...]``.
      active: ``[P]`` bool, still training.
      diverged: ``[P]`` bool, frozen because its state or loss became non-finite.
      converged_update: ``[P]`` int32 update count at which the criterion was met (−1: never).
      window: ``[P, W]`` the last W values of the stopping metric (−inf before W validations).
    """

    state: Any
    active: jax.Array
    diverged: jax.Array
    converged_update: jax.Array
    window: jax.Array


def _per_member_finite(tree: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    flags = [jnp.all(jnp.isfinite(x), axis=tuple(range(1, x.ndim))) for x in leaves]
    return jnp.all(jnp.stack(flags), axis=0)


def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


def init_population(rule, init_keys: jax.Array, hparams: Any, stop_window: int) -> PopulationState:
    """Initialise every member (``init_keys[P]``, stacked ``hparams``)."""
    state = jax.vmap(rule.init)(init_keys, hparams)
    size = init_keys.shape[0]
    return PopulationState(
        state=state,
        active=jnp.ones((size,), bool),
        diverged=jnp.zeros((size,), bool),
        converged_update=jnp.full((size,), -1, jnp.int32),
        window=jnp.full((size, stop_window), -jnp.inf, jnp.float32),
    )


def make_chunk(rule, run: RunConfig, num_slots: int, member_block: int | None | str = "auto"):
    """Compile-once function advancing a group by ``evals_per_chunk × eval_every`` updates.

    Returns ``chunk(pop, hparams, train_keys, val_key, first_eval, slots) -> (pop, outputs)``:
    ``first_eval`` is the index of the chunk's first validation; ``slots[E]`` the snapshot slot
    written after each validation block (−1: none). Updates past ``run.num_updates`` are masked.
    ``outputs`` holds ``update_metrics`` (each ``[E·eval_every, P]``), ``eval_metrics``
    (``[E, P]``) and ``snapshots`` (network params ``[num_slots, P, ...]``).
    ``member_block``: members vmapped together in ``rule.update`` / ``rule.evaluate`` (see
    :func:`~jaxrnn.population.mapping.member_map`); ``"auto"``: :func:`default_member_block`.
    """
    eval_every, num_updates = run.eval_every, run.num_updates
    block = default_member_block() if member_block == "auto" else member_block
    mesh = population_mesh() if jax.device_count() > 1 else None
    update = population_map(rule.update, block, mesh)
    evaluate_members = population_map(rule.evaluate, block, mesh)

    def evaluate(val_key, state, hparams):
        size = jax.tree.leaves(state)[0].shape[0]
        return evaluate_members(jnp.broadcast_to(val_key, (size,) + val_key.shape), state, hparams)
    network = jax.vmap(rule.network)

    def one_update(carry, u):
        pop, hparams, train_keys = carry
        keys = jax.vmap(update_key, in_axes=(0, None))(train_keys, u)
        new_state, metrics = update(keys, pop.state, hparams)
        running = pop.active & (u < num_updates)
        finite = _per_member_finite(new_state) & jnp.isfinite(metrics["loss"])
        accept = running & finite
        pop = pop.replace(
            state=_select(accept, new_state, pop.state),
            active=pop.active & (finite | (u >= num_updates)),
            diverged=pop.diverged | (running & ~finite),
        )
        metrics = jax.tree.map(lambda m: jnp.where(running, m, jnp.nan), metrics)
        return (pop, hparams, train_keys), metrics

    def one_block(carry, xs):
        evaluation, slot = xs
        pop, hparams, train_keys, val_key, snaps = carry
        first = evaluation * eval_every
        (pop, _, _), update_metrics = jax.lax.scan(
            one_update, (pop, hparams, train_keys), first + jnp.arange(eval_every)
        )
        running = pop.active & (first < num_updates)
        metrics = evaluate(val_key, pop.state, hparams)
        score = metrics.get(run.stop_metric, jnp.full(pop.active.shape, -jnp.inf))
        window = jnp.concatenate([pop.window[:, 1:], score[:, None]], axis=1)
        window = jnp.where(running[:, None], window, pop.window)
        done_now = running & (jnp.min(window, axis=1) >= run.stop_threshold)
        pop = pop.replace(
            window=window,
            active=pop.active & ~done_now,
            converged_update=jnp.where(done_now, first + eval_every, pop.converged_update),
        )
        metrics = jax.tree.map(lambda m: jnp.where(running, m, jnp.nan), metrics)
        if num_slots:
            params = network(pop.state)
            snaps = jax.lax.cond(
                slot >= 0,
                lambda s: jax.tree.map(lambda b, p: b.at[slot].set(p), s, params),
                lambda s: s,
                snaps,
            )
        return (pop, hparams, train_keys, val_key, snaps), (update_metrics, metrics)

    def chunk(pop, hparams, train_keys, val_key, first_eval, slots):
        if num_slots:
            params = jax.eval_shape(network, pop.state)
            snaps = jax.tree.map(lambda p: jnp.zeros((num_slots,) + p.shape, p.dtype), params)
        else:
            snaps = None
        evaluations = first_eval + jnp.arange(slots.shape[0])
        carry = (pop, hparams, train_keys, val_key, snaps)
        (pop, _, _, _, snaps), (update_metrics, eval_metrics) = jax.lax.scan(one_block, carry, (evaluations, slots))
        update_metrics = jax.tree.map(lambda m: m.reshape((-1,) + m.shape[2:]), update_metrics)
        return pop, {"update_metrics": update_metrics, "eval_metrics": eval_metrics, "snapshots": snaps}

    return jax.jit(chunk, donate_argnums=(0,))


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


def chunk_plan(run: RunConfig) -> tuple[list[list[int]], int, list[int]]:
    """Snapshot slots per chunk: ``(slots[chunk][eval] (-1 none), max slots per chunk, updates)``."""
    snap_updates = snapshot_updates(run)
    snap_at = {u // run.eval_every - 1: i for i, u in enumerate(snap_updates) if u > 0}
    e_chunk = run.evals_per_chunk
    num_chunks = -(-run.num_evaluations // e_chunk)
    slots = [[snap_at.get(e, -1) for e in range(c * e_chunk, (c + 1) * e_chunk)] for c in range(num_chunks)]
    num_slots = max((sum(s >= 0 for s in chunk) for chunk in slots), default=0)
    return slots, num_slots, snap_updates


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


def train_part(
    members: Sequence[Member],
    run: RunConfig,
    *,
    progress=None,
    checkpoint: PartCheckpoint | None = None,
    rule_overrides: dict | None = None,
    rule=None,
    chunk_fn=None,
    pad_to: int | None = None,
) -> GroupResult:
    """Train one population slice of a group (members sharing static fields) to the end.

    The slice is padded (to ``pad_to`` members, then to a multiple of the device count) and
    sharded over all devices (and processes); with ``checkpoint`` its state is saved after every
    chunk and a run resumes from it. Passing the group's ``rule`` and ``chunk_fn`` (from
    :func:`make_chunk`) with a common ``pad_to`` lets every slice of a group reuse one compiled
    program.
    """
    rule, hparams, init_keys, train_keys = prepare(members, rule_overrides, rule)
    size = len(members)
    mesh = population_mesh()
    padded = padded_size(max(size, pad_to or 0), mesh)
    hparams, init_keys, train_keys = (shard(pad_members(x, padded), mesh) for x in (hparams, init_keys, train_keys))
    chunk_slots, num_slots, snap_updates = chunk_plan(run)
    e_chunk = run.evals_per_chunk

    start = time.perf_counter()
    real = shard(np.arange(padded) < size, mesh)
    pop = jax.jit(lambda k, h, r: init_population(rule, k, h, run.stop_window).replace(active=r))(
        init_keys, hparams, real)
    network0 = _flatten_params(gather(jax.vmap(rule.network)(pop.state)))
    snapshots = {name: np.full((len(snap_updates),) + leaf.shape, np.nan, leaf.dtype) for name, leaf in network0.items()}
    if snap_updates and snap_updates[0] == 0:
        for name, leaf in network0.items():
            snapshots[name][0] = leaf
    update_metrics: dict[str, list] = {}
    eval_metrics: dict[str, list] = {}
    converged_time = np.full((padded,), np.nan)
    compile_time, first_chunk, elapsed_before = 0.0, 0, 0.0

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
        leaves, treedef = jax.tree.flatten(gather(pop))
        pop = shard(jax.tree.unflatten(treedef, [saved[f"pop{i}"] for i in range(len(leaves))]), mesh)
        first_chunk = int(saved["next_chunk"])
        converged_time = saved["converged_time"]
        elapsed_before = float(saved["elapsed"])
        for c in range(first_chunk):
            arrays = checkpoint.load_chunk(c)
            record(c, _unflatten_outputs(arrays))
    chunk_fn = chunk_fn if chunk_fn is not None else make_chunk(rule, run, num_slots)
    val_key = validation_key(run)
    finished = ~gather(pop.active)
    if progress is not None and first_chunk:
        progress(min(first_chunk * e_chunk, run.num_evaluations) * run.eval_every, int(finished[:size].sum()), size)
    for c in range(first_chunk, len(chunk_slots)):
        if finished.all():
            break
        local = np.full((e_chunk,), -1, np.int32)
        local[[j for j, s in enumerate(chunk_slots[c]) if s >= 0]] = np.arange(sum(s >= 0 for s in chunk_slots[c]))
        t0 = time.perf_counter()
        pop, out = chunk_fn(pop, hparams, train_keys, val_key, jnp.int32(c * e_chunk), jnp.asarray(local))
        out = gather(out)
        finished = ~gather(pop.active)
        if c == first_chunk:
            compile_time = time.perf_counter() - t0
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
            progress(min((c + 1) * e_chunk, run.num_evaluations) * run.eval_every, int(finished[:size].sum()), size)
    final_pop = gather(pop)
    wall = elapsed_before + time.perf_counter() - start

    def assemble(chunks, length):
        array = np.concatenate(chunks, axis=0)[:length] if chunks else np.zeros((0, padded))
        out = np.full((length,) + array.shape[1:], np.nan, np.float32)
        out[: array.shape[0]] = array
        return np.moveaxis(out, 0, 1)[:size]  # member axis first, padding dropped

    final = _flatten_params(gather(jax.vmap(rule.network)(pop.state)))
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
        compile_time=compile_time,
    )


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
    their ``Member.run`` is equal too, so every group trains with one :class:`RunConfig`.
    """
    from jaxrnn.population.builders import rule_values
    from jaxrnn.rules.registry import rule_fields

    groups: dict[tuple, list[Member]] = {}
    for member in config.members():
        static, _ = rule_fields(rule_values(member.rule)["name"])
        groups.setdefault((member.static_key(static), member.run), []).append(member)
    return list(groups.values())

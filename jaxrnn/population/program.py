"""The compiled program of a population group: one chunk of updates, vmapped over members.

Members that share their static fields (and run settings: sub-grids of a union may train for
different numbers of updates) form a *group*, compiled once; within a group the rule's
``update`` is vmapped over members (``in_axes=(0, 0, 0)``: key, state, hyper-parameters) and
scanned over updates, in chunks of ``run.chunk_updates`` between which the host reports
progress and collects metrics and snapshots (:mod:`jaxrnn.population.runner`).

Randomness: a member's keys come from its seed alone — ``init_key, train_key =
split(PRNGKey(seed))`` and update ``u`` uses ``fold_in(train_key, u)`` — so a member re-run
alone, in another grid or with another chunk size reproduces its numbers (:func:`member_keys`).
Every member is validated on the same set (``PRNGKey(run.validation_seed)``).

Freezing: after each block of ``eval_every`` updates every member is validated; a member whose
min of its last ``stop_window`` values of ``stop_metric`` (accuracy) reaches ``stop_threshold``
is *converged* and frozen by masking (its state stops changing; later losses and accuracies
are NaN). A member whose new state or loss is non-finite is *diverged*: the update is discarded
(the state keeps its last finite value), the member is frozen and flagged. Masking is per
member, so no member's numbers depend on another's.

Compiled once: :func:`compile_group` lowers and compiles the group's init and chunk programs
ahead of time for the padded slice size, with every population array sharded over the
``"pop"`` mesh on the way in and out (``P("pop")``), so every chunk — the first, later ones,
resumed ones, other slices of the group — runs the same executable. (Left to propagation, the
freshly initialised state came back partly replicated and the state after the first chunk
sharded, and the first chunk compiled twice.)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from jaxrnn.population.config import RunConfig, snapshot_updates
from jaxrnn.population.mapping import default_member_block, population_map
from jaxrnn.population.sharding import population_mesh


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
        # the state leaves as it came in, sharded by member: every chunk runs one executable
        # (a population that does not divide over the devices, as the planner's one member, is left alone)
        sharded_mesh = population_mesh()
        if pop.active.shape[0] % sharded_mesh.devices.size == 0:
            pop = jax.lax.with_sharding_constraint(pop, population_sharding(sharded_mesh))
        return pop, {"update_metrics": update_metrics, "eval_metrics": eval_metrics, "snapshots": snaps}

    return jax.jit(chunk, donate_argnums=(0,))


def chunk_plan(run: RunConfig) -> tuple[list[list[int]], int, list[int]]:
    """Snapshot slots per chunk: ``(slots[chunk][eval] (-1 none), max slots per chunk, updates)``."""
    snap_updates = snapshot_updates(run)
    snap_at = {u // run.eval_every - 1: i for i, u in enumerate(snap_updates) if u > 0}
    e_chunk = run.evals_per_chunk
    num_chunks = -(-run.num_evaluations // e_chunk)
    slots = [[snap_at.get(e, -1) for e in range(c * e_chunk, (c + 1) * e_chunk)] for c in range(num_chunks)]
    num_slots = max((sum(s >= 0 for s in chunk) for chunk in slots), default=0)
    return slots, num_slots, snap_updates




def population_sharding(mesh) -> NamedSharding:
    """Every population array: split over the ``"pop"`` mesh by its leading member axis."""
    return NamedSharding(mesh, PartitionSpec("pop"))


def replicated(mesh) -> NamedSharding:
    """Arrays every device holds whole (the validation key, chunk indices)."""
    return NamedSharding(mesh, PartitionSpec())


class GroupProgram:
    """The compiled programs of one group, for slices of ``size`` members (a multiple of the devices).

    Each program is lowered and compiled ahead of time on first use, for abstract arguments with
    explicit shardings, so it compiles exactly once per process (and not at all when every slice
    of the group is already done, e.g. on resume):

    - ``init(init_keys, hparams, real) -> PopulationState`` (``real``: False for padding members);
    - ``chunk(pop, hparams, train_keys, val_key, first_eval, slots) -> (pop, outputs)``
      (:func:`make_chunk`);
    - ``network(state) -> params`` of every member.

    ``compile_time`` is the seconds spent compiling ``chunk`` (a persistent compilation-cache hit
    takes milliseconds); ``init`` and ``network`` are small and not counted.
    """

    def __init__(self, rule, run: RunConfig, hparams_like: Any, size: int, mesh=None):
        self.rule, self.run, self.size = rule, run, int(size)
        self.mesh = mesh if mesh is not None else population_mesh()
        self.num_slots = chunk_plan(run)[1]
        self.compile_time = 0.0
        sharding = population_sharding(self.mesh)
        self._sharding = sharding

        def spec(x):
            x = np.asarray(x)
            return jax.ShapeDtypeStruct((self.size,) + x.shape[1:], x.dtype, sharding=sharding)

        self.hparams_spec = jax.tree.map(spec, hparams_like)
        self.keys_spec = jax.ShapeDtypeStruct((self.size, 2), jnp.uint32, sharding=sharding)
        self._real_spec = jax.ShapeDtypeStruct((self.size,), jnp.bool_, sharding=sharding)
        stop_window = run.stop_window
        self._init_fn = jax.jit(lambda k, h, r: init_population(rule, k, h, stop_window).replace(active=r),
                                out_shardings=sharding)
        shapes = jax.eval_shape(self._init_fn, self.keys_spec, self.hparams_spec, self._real_spec)
        self.pop_spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
        self._compiled: dict[str, Any] = {}

    def _compile(self, name: str, fn, *specs, timed: bool = True):
        if name not in self._compiled:
            start = time.perf_counter()
            self._compiled[name] = fn.lower(*specs).compile()
            if timed:
                self.compile_time += time.perf_counter() - start
        return self._compiled[name]

    @property
    def init(self):
        return self._compile("init", self._init_fn, self.keys_spec, self.hparams_spec, self._real_spec, timed=False)

    @property
    def chunk(self):
        replicated_ = replicated(self.mesh)
        specs = (self.pop_spec, self.hparams_spec, self.keys_spec,
                 jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated_),
                 jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated_),
                 jax.ShapeDtypeStruct((self.run.evals_per_chunk,), jnp.int32, sharding=replicated_))
        return self._compile("chunk", make_chunk(self.rule, self.run, self.num_slots), *specs)

    @property
    def network(self):
        return self._compile("network", jax.jit(jax.vmap(self.rule.network)), self.pop_spec.state, timed=False)

    def chunk_args(self, first_eval: int, slots: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(val_key, first_eval, slots)`` placed as :attr:`chunk` expects them."""
        replicated_ = replicated(self.mesh)
        return (jax.device_put(validation_key(self.run), replicated_),
                jax.device_put(np.int32(first_eval), replicated_), jax.device_put(np.asarray(slots, np.int32), replicated_))

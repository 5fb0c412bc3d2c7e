"""Mapping a function over a population's members: in blocks, and on each device's own members.

Members are independent, so any way of mapping ``fn`` over the leading member axis gives each
member the numbers of ``fn`` on its own slice; the ways differ in speed and memory:

- :func:`member_map`: ``jax.vmap``, or ``jax.lax.map`` over blocks of vmapped members;
- :func:`population_map`: the same on each device's own members (``jax.shard_map`` over the
  ``"pop"`` mesh of :mod:`jaxrnn.population.sharding`);
- :func:`default_member_block`: the block size the runner uses on this backend.
"""

from __future__ import annotations

import jax
from jax.sharding import PartitionSpec


CPU_MEMBER_BLOCK = 16


def default_member_block() -> int | None:
    """Members vmapped together inside one compiled program: 16 per CPU device, else all.

    On CPU a vmap over the whole population turns every step's products into one large batched
    product whose operands leave the caches once the population grows; mapping sequentially over
    blocks of 16 vmapped members (``jax.lax.map(..., batch_size=16)``) keeps a block's working set
    in cache and XLA's temporary buffers at one block's size. Measured with
    ``benchmarks/scaling.py``'s workload (BPTT on CDI, N = 50, T = 100, batch 32) on the 2-core
    CPU: 737 vs 488–586 network-updates/s at population 64, 752–803 vs 557–617 at 1,024. With
    several CPU devices the blocks are those of each device's own members
    (:func:`population_map`). On accelerators the whole population is one vmap (``None``).
    """
    if jax.default_backend() == "cpu":
        return CPU_MEMBER_BLOCK
    return None


def member_map(fn, block: int | None):
    """``jax.vmap(fn)`` over the leading member axis of every argument, ``block`` members at a time.

    ``block=None`` (or a population no larger than ``block``) is a plain vmap; otherwise
    ``jax.lax.map`` over blocks of ``block`` vmapped members (a remainder block is vmapped on its
    own). Each member's numbers are those of ``fn`` on its own slice either way.
    """
    vmapped = jax.vmap(fn)
    if not block:
        return vmapped

    def mapped(*args):
        size = jax.tree.leaves(args)[0].shape[0]
        if size <= block:
            return vmapped(*args)
        return jax.lax.map(lambda a: fn(*a), args, batch_size=block)

    return mapped


def population_map(fn, block: int | None, mesh=None):
    """:func:`member_map` of ``fn`` on each device's own members (``jax.shard_map`` over ``"pop"``).

    With one device (or ``mesh=None``) this is :func:`member_map`. Over a mesh of several
    devices every argument's leading member axis is split over the mesh and each device maps
    ``fn`` over its members, ``block`` at a time — no communication, since members are
    independent. Why: left to the SPMD partitioner, a ``lax.map`` over a sharded member axis
    would not stay local, so the blocks could only be used on one device; and on a CPU host
    split into one XLA device per core (``jax_num_cpu_devices``, what ``jaxrnn run`` does) the
    devices run their programs on their own cores at once. Measured with
    ``benchmarks/bptt_population.py``'s workload (CDI, N = 50, T = 750, batch 500) at P = 64
    on the 2-core CPU: 14.2 network-updates/s on one device (1.4 cores busy), 26.4 on two
    (2.0 cores busy). A population that does not divide over the mesh falls back to a plain
    vmap (partitioned by XLA).
    """
    local = member_map(fn, block)
    if mesh is None or mesh.devices.size == 1:
        return local
    spec = PartitionSpec("pop")
    sharded = jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    vmapped = member_map(fn, None)

    def mapped(*args):
        size = jax.tree.leaves(args)[0].shape[0]
        return sharded(*args) if size % mesh.devices.size == 0 else vmapped(*args)

    return mapped

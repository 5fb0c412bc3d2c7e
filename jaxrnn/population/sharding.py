"""Placing a population on devices and hosts with JAX's own SPMD machinery.

The member axis of every population array is sharded over a 1-D mesh of *all* devices
(``jax.sharding.Mesh(jax.devices(), ("pop",))``) — the local devices of one process, or of every
process after :func:`jaxrnn.distributed.initialize` (JAX's multi-controller runtime: every process runs
the same program on its slice; nothing here is home-made cluster code). Members are independent,
so the compiled chunk has no cross-device communication; only the host-side gathers of results
(:func:`gather`, ``multihost_utils.process_allgather``) cross processes.

The population is padded to a multiple of the device count with copies of its last member, which
the runner marks inactive from the start and drops from the results.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def population_mesh() -> Mesh:
    """A 1-D mesh named ``"pop"`` over every device of every process."""
    return Mesh(np.asarray(jax.devices()), ("pop",))


def padded_size(size: int, mesh: Mesh) -> int:
    """Smallest multiple of the mesh size that holds ``size`` members."""
    devices = mesh.devices.size
    return -(-size // devices) * devices


def pad_members(tree: Any, size: int) -> Any:
    """Pad the leading (member) axis of every leaf to ``size`` by repeating the last member."""

    def pad(x):
        x = np.asarray(x)
        extra = size - x.shape[0]
        return x if extra == 0 else np.concatenate([x, np.repeat(x[-1:], extra, axis=0)], axis=0)

    return jax.tree.map(pad, tree)


def shard(tree: Any, mesh: Mesh) -> Any:
    """Host arrays (identical on every process) → global arrays split over ``mesh`` by member."""
    sharding = NamedSharding(mesh, PartitionSpec("pop"))

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def gather(tree: Any) -> Any:
    """Global (possibly multi-process) arrays → full NumPy arrays on every process."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def is_writer() -> bool:
    """True on the one process that writes files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait for every process (no-op with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)

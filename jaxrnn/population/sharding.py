"""Placing a population on devices and hosts with JAX's own SPMD machinery.

The member axis of every population array is sharded over a 1-D mesh of *all* devices
(``jax.sharding.Mesh(jax.devices(), ("pop",))``) — the local devices of one process, or of every
process after :func:`initialize_distributed` (JAX's multi-controller runtime: every process runs
the same program on its slice; nothing here is home-made cluster code). Members are independent,
so the compiled chunk has no cross-device communication; only the host-side gathers of results
(:func:`gather`, ``multihost_utils.process_allgather``) cross processes.

The population is padded to a multiple of the device count with copies of its last member, which
the runner marks inactive from the start and drops from the results.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-process run (``jax.distributed.initialize``) with CPU collectives enabled.

    With no arguments JAX reads the cluster from the environment (SLURM, Open MPI, ...), or from
    ``JAXRNN_COORDINATOR`` / ``JAXRNN_NUM_PROCESSES`` / ``JAXRNN_PROCESS_ID``.
    """
    coordinator = coordinator or os.environ.get("JAXRNN_COORDINATOR")
    if num_processes is None and "JAXRNN_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAXRNN_NUM_PROCESSES"])
    if process_id is None and "JAXRNN_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAXRNN_PROCESS_ID"])
    # CPU devices of different processes talk through gloo (a no-op for GPU/TPU back-ends).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


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

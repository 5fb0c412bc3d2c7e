"""Joining a multi-process run with JAX's own multi-controller runtime.

Imports nothing but JAX, so it can run before anything initialises the XLA back-end (which
``jax.distributed.initialize`` requires; importing gymnax already does).
"""

from __future__ import annotations

import os

import jax


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """``jax.distributed.initialize`` with CPU collectives (gloo) enabled.

    With no arguments JAX reads the cluster from the environment (SLURM, Open MPI, ...), or from
    ``JAXRNN_COORDINATOR`` / ``JAXRNN_NUM_PROCESSES`` / ``JAXRNN_PROCESS_ID``.
    """
    coordinator = coordinator or os.environ.get("JAXRNN_COORDINATOR")
    if num_processes is None and "JAXRNN_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAXRNN_NUM_PROCESSES"])
    if process_id is None and "JAXRNN_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAXRNN_PROCESS_ID"])
    # CPU devices of different processes talk through gloo (no effect on GPU/TPU back-ends).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)

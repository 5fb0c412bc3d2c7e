"""Memory planning and dry runs: split a group into population slices that fit a budget.

The compiled chunk of a group is compiled for a single member and XLA's own accounting
(``Compiled.memory_analysis()``: arguments + outputs + temporaries − aliased buffers) gives the
bytes per member ``b``; a slice of ``p`` members needs about ``p·b`` (a slight overestimate: the
per-program constant is counted ``p`` times), per device when sharded. The planner picks the
largest slice ``p ≤ P`` with ``p·b ≤ budget × devices``.

Remat (``jax.checkpoint`` on the time-scan body; the ``remat`` field of rules that have one) stores
only carries in the backward pass for about a third more compute. It is chosen only where it
pays: when the group does not fit whole without it, and remat lets slices be at least 1.5× larger.

The default budget is 80 % of an accelerator's memory (``bytes_limit`` of
``device.memory_stats()``), or half the RAM available when the run starts, shared by the
local CPU devices.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import fail
from jaxrnn.population.config import Member, RunConfig
from jaxrnn.population.program import chunk_plan, init_population, make_chunk, validation_key
from jaxrnn.population.runner import prepare
from jaxrnn.rules.registry import get_rule

def available_memory() -> int:
    """Bytes of RAM available now (``MemAvailable`` of ``/proc/meminfo``; else free pages)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def default_memory_budget() -> int:
    """80 % of an accelerator's memory, or half the RAM *available now*, shared by the local CPU devices.

    Available, not total: on a shared machine half the total RAM may already be in use.
    """
    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.8 * stats["bytes_limit"])
    return int(0.5 * available_memory() / max(1, jax.local_device_count()))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one group is trained: slice size, rule overrides, and the estimate behind them."""

    population_chunk: int
    rule_overrides: dict
    bytes_per_member: int
    budget: int

    def slices(self, members: Sequence[Member]) -> list[Sequence[Member]]:
        p = self.population_chunk
        return [members[i : i + p] for i in range(0, len(members), p)]


def bytes_per_member(members: Sequence[Member], run: RunConfig, rule_overrides: dict | None = None) -> int:
    """XLA's memory estimate of the compiled chunk for one member of this group.

    The planner multiplies it by the slice size. Where members run in blocks
    (:func:`~jaxrnn.population.mapping.default_member_block`: on CPU devices), temporaries are
    live for one block at a time, so the product is an upper bound and a slice may be smaller
    than it needs to be — never larger than the budget allows.
    """
    rule, hparams, init_keys, train_keys = prepare(members[:1], rule_overrides)
    _, num_slots, _ = chunk_plan(run)
    chunk = make_chunk(rule, run, num_slots)
    pop = jax.eval_shape(lambda k, h: init_population(rule, k, h, run.stop_window), init_keys, hparams)
    slots = jnp.zeros((run.evals_per_chunk,), jnp.int32)
    compiled = chunk.lower(pop, hparams, train_keys, validation_key(run), jnp.int32(0), slots).compile()
    stats = compiled.memory_analysis()
    if stats is None:  # back-end without accounting: assume arguments only
        return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves((hparams, train_keys))))
    total = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    return int(max(1, total - stats.alias_size_in_bytes))


def plan_group(members: Sequence[Member], run: RunConfig, budget: int | None = None) -> Plan:
    """Choose the population slice size (and remat) that keeps one group within ``budget``."""
    budget = default_memory_budget() if budget is None else int(budget)
    devices = jax.device_count()
    size = len(members)
    per = bytes_per_member(members, run)
    fit = int(budget * devices // per)
    overrides: dict = {}
    has_remat = "remat" in get_rule(members[0].rule.get("name", "bptt")).static
    if fit < size and has_remat and not members[0].rule.get("remat", False):
        per_remat = bytes_per_member(members, run, {"remat": True})
        fit_remat = int(budget * devices // per_remat)
        if fit_remat >= 1.5 * max(fit, 1):
            overrides, per, fit = {"remat": True}, per_remat, fit_remat
    if fit < 1:
        raise ValueError(
            f"memory_budget = {budget} bytes is too small: one member of this group needs about {per} bytes "
            "(even with remat); raise --memory-budget or shrink the batch or the trial length"
        )
    return Plan(population_chunk=min(size, fit), rule_overrides=overrides, bytes_per_member=per, budget=budget)


def time_one_chunk(members: Sequence[Member], run: RunConfig, rule_overrides: dict | None = None) -> tuple[float, float]:
    """``(compile seconds, seconds of one chunk)`` of this slice: compiled ahead of time, run once."""
    rule, hparams, init_keys, train_keys = prepare(members, rule_overrides)
    _, num_slots, _ = chunk_plan(run)
    pop = jax.jit(lambda k, h: init_population(rule, k, h, run.stop_window))(init_keys, hparams)
    slots = jnp.full((run.evals_per_chunk,), -1, jnp.int32)
    args = (pop, hparams, train_keys, validation_key(run), jnp.int32(0), slots)
    t0 = time.perf_counter()
    compiled = make_chunk(rule, run, num_slots).lower(*args).compile()
    t1 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    return t1 - t0, time.perf_counter() - t1

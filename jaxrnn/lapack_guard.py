"""Keep XLA:CPU's batched LAPACK calls from deadlocking each other.

**The hazard** (jaxlib ≤ 0.10.2, CPU back-end; measured on this 2-core machine). A batched
linear-algebra custom call (``lapack_*_ffi``: LU, Cholesky, QR, eig, eigh, SVD, triangular solve)
whose work ``batch · cost`` passes 2·10⁵ FLOP splits its batch into tasks on XLA's intra-op
thread pool and then *blocks* that pool thread until the tasks finish (jaxlib's
``ParallelBatchMap``: ``absl::BlockingCounter::Wait``). XLA:CPU runs independent instructions of
one program concurrently on the same pool. When as many such calls run at once as the pool has
threads, every thread waits for tasks that no free thread can run: the process hangs with the
CPU idle. Two independent Cholesky factorisations of ``[64, 50, 50]`` in one ``jit`` hang within
a few calls on 2 cores; the same program with one factorisation never does. GPUs and TPUs use
other kernels and are not affected.

**The cure** is a data dependence: a program never holds two *heavy* batched LAPACK calls that
may run at the same time. :func:`after` threads a value through ``lax.optimization_barrier``
with earlier results, so XLA must finish those first; the numbers are unchanged.

**The check** :func:`concurrent_lapack_calls` reads a compiled CPU program's HLO and lists the
pairs of heavy LAPACK calls that no data dependence orders (within a computation; a ``while``,
``call`` or ``conditional`` counts as holding the calls of its body). Tests run it over the
analyses that batch linear algebra, so the hazard cannot creep back in. The heaviness rule is
jaxlib's own (``GetLapackBatchChunkSize``): a call splits when ``batch · cost ≥ 2·10⁵`` and the
chunk ``max(⌈batch / threads⌉, ⌈2·10⁵ / cost⌉)`` is smaller than the batch, ``cost = m·n·min(m, n)``
(jaxlib's LU estimate; its other kernels count within small factors of it, so near the threshold
the check is approximate — ``any_size=True`` ignores sizes altogether).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

MIN_WORK_PER_TASK = 200_000  # jaxlib lapack_kernels.cc: kMinWorkPerTask

_HEADER = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_TARGET = re.compile(r'custom_call_target="(lapack_[\w]+)"')
_SHAPE = re.compile(r"\b[a-z]+\d*\[([\d,]*)\]")
_REFERENCE = re.compile(r"%([\w.\-]+)")


@dataclass(frozen=True)
class LapackCall:
    """One batched LAPACK custom call of a compiled program."""

    name: str
    target: str
    batch: int
    cost: int

    def splits(self, threads: int) -> bool:
        """Whether jaxlib spreads this call over ``threads`` pool threads (and then blocks)."""
        if threads <= 1 or self.batch * self.cost < MIN_WORK_PER_TASK:
            return False
        chunk = max(-(-self.batch // threads), -(-MIN_WORK_PER_TASK // max(self.cost, 1)))
        return chunk < self.batch


def _call_size(result_type: str) -> tuple[int, int]:
    """``(batch, m·n·min(m, n))`` of the largest matrix stack in an HLO result type."""
    best = (1, 0)
    for dims in _SHAPE.findall(result_type):
        shape = [int(d) for d in dims.split(",") if d]
        if len(shape) < 3:
            continue
        m, n = shape[-2:]
        size = (math.prod(shape[:-2]), m * n * min(m, n))
        best = max(best, size, key=lambda s: s[0] * s[1])
    return best


def _parse(hlo: str) -> dict[str, dict[str, tuple[str, list[str]]]]:
    """``{computation: {instruction: (text, references)}}`` of an HLO module's text."""
    computations: dict[str, dict[str, tuple[str, list[str]]]] = {}
    current = None
    for line in hlo.splitlines():
        if not line.startswith((" ", "\t")) and line.rstrip().endswith("{"):
            header = _HEADER.match(line)
            current = header.group(1) if header else None
            if current is not None:
                computations[current] = {}
            continue
        match = _INSTRUCTION.match(line)
        if current is not None and match:
            computations[current][match.group(1)] = (match.group(2), _REFERENCE.findall(match.group(2)))
    return computations


def concurrent_lapack_calls(hlo: str, threads: int | None = None, *,
                            any_size: bool = False) -> list[tuple[LapackCall, LapackCall]]:
    """Pairs of heavy batched LAPACK calls in ``hlo`` (compiled CPU HLO text) left unordered.

    ``threads`` is the intra-op pool size (default: this machine's CPU count, at least 2, since a
    call splits only when the pool has two threads). ``any_size=True`` counts every LAPACK call as
    heavy, whatever its size — the check for a program that will later run at a larger batch
    (a population vmap makes any call batched). Returns ``[]`` when every heavy call is ordered by
    a data dependence after or before every other one.
    """
    threads = max(2, os.cpu_count() or 2) if threads is None else threads
    computations = _parse(hlo)
    held: dict[str, list[LapackCall]] = {}  # computation -> heavy calls it holds, transitively

    def calls_of(comp: str, instruction: str, text: str, refs: list[str]) -> list[LapackCall]:
        target = _TARGET.search(text)
        if target:
            result_type = text.split(" custom-call(", 1)[0]
            call = LapackCall(f"{comp}/{instruction}", target.group(1), *_call_size(result_type))
            return [call] if any_size or call.splits(threads) else []
        return [c for ref in refs if ref in computations and ref != comp for c in calls_in(ref)]

    def calls_in(comp: str) -> list[LapackCall]:  # HLO call graphs are acyclic
        if comp not in held:
            held[comp] = [c for ins, (text, refs) in computations[comp].items() for c in calls_of(comp, ins, text, refs)]
        return held[comp]

    pairs = []
    for comp, instructions in computations.items():
        holders = {}
        for instruction, (text, refs) in instructions.items():
            calls = calls_of(comp, instruction, text, refs)
            if calls:
                holders[instruction] = calls
        if len(holders) < 2:
            continue
        ancestors = _ancestors(instructions)
        for a, b in itertools.combinations(holders, 2):
            if a not in ancestors[b] and b not in ancestors[a]:
                pairs.append((holders[a][0], holders[b][0]))
    return pairs


def _ancestors(instructions: dict[str, tuple[str, list[str]]]) -> dict[str, set[str]]:
    """Every instruction's transitive operands within one computation."""
    memo: dict[str, set[str]] = {}
    for root in instructions:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if name in memo:
                continue
            operands = [r for r in instructions[name][1] if r in instructions and r != name]
            if expanded:
                memo[name] = set(operands).union(*(memo[o] for o in operands))
            else:
                stack.append((name, True))
                stack += [(o, False) for o in operands if o not in memo]
    return memo


def audit(fn: Callable, *args: Any, threads: int | None = None, **kwargs: Any) -> list[tuple[LapackCall, LapackCall]]:
    """:func:`concurrent_lapack_calls` of ``jax.jit(fn)`` compiled at these arguments (on a CPU back-end)."""
    compiled = jax.jit(fn).lower(*args, **kwargs).compile()
    return concurrent_lapack_calls(compiled.as_text(), threads)


def after(value: Any, *dependencies: Any) -> Any:
    """``value``, unchanged, but not available before the arrays of ``dependencies`` exist.

    A data dependence XLA cannot optimise away (``lax.optimization_barrier`` is not one: the CPU
    pipeline expands it and forgets the order): one element of every dependency leaf feeds a
    predicate that is never true (``isnan(s) & isinf(s)``), and ``value``'s leaves get
    ``where(predicate, 1, 0)`` added (``| predicate`` for booleans). So work that consumes the
    result starts only after the dependencies are computed — the way to order two heavy batched
    LAPACK calls (module docstring). Numbers are unchanged (``-0.0`` may become ``+0.0``), also when a
    dependency is not finite. Costs one elementwise pass over ``value``.
    """
    firsts = [jnp.real(jnp.ravel(leaf)[0]).astype(jnp.float32) for leaf in jax.tree.leaves(dependencies)
              if jnp.size(leaf) > 0 and jnp.issubdtype(jnp.result_type(leaf), jnp.number)]
    if not firsts:
        return value
    probe = sum(firsts[1:], firsts[0])
    never = jnp.isnan(probe) & jnp.isinf(probe)

    def tie(leaf):
        leaf = jnp.asarray(leaf)
        if leaf.dtype == jnp.bool_:
            return leaf | never
        return leaf + never.astype(leaf.dtype)

    return jax.tree.map(tie, value)


def ordered_map(fn: Callable, xs: Any, batch_size: int | None = None) -> Any:
    """``jax.lax.map(fn, xs, batch_size=batch_size)`` without a concurrent remainder.

    ``lax.map`` vmaps the ``n mod batch_size`` leftover elements *beside* its loop, so the two
    run at the same time — a deadlock when both hold batched LAPACK calls (module docstring).
    Here the leading axis is padded to a multiple of ``batch_size`` with copies of element 0
    (valid input, so no NaN or error paths), mapped as one loop, and the padding dropped.
    """
    if batch_size is None:
        return jax.lax.map(fn, xs)
    n = jax.tree.leaves(xs)[0].shape[0]
    batch_size = max(1, min(int(batch_size), n))
    if n % batch_size == 0:  # also n < batch_size: one vmapped batch, as lax.map
        return jax.lax.map(fn, xs, batch_size=batch_size)
    pad = -n % batch_size
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), xs)
    out = jax.lax.map(fn, padded, batch_size=batch_size)
    return jax.tree.map(lambda y: y[:n], out)

"""Conformance checks every learning rule must pass (in the spirit of optax's ``_common_test``).

A rule is a :class:`~jaxrnn.rules.base.LearningRule` — ``init``, ``update``, ``evaluate``,
``network`` and ``default_hparams`` — that the population runner vmaps over members, scans over
updates and freezes per member (:mod:`jaxrnn.population.program`). That only works if the rule
keeps a contract the type cannot express. :func:`check_rule` checks it on one small instance:

``contract``
    ``init(key, hp)`` returns a pytree of arrays; ``update(key, state, hp)`` returns
    ``(state, metrics)`` with a state of the *same* tree structure, shapes and dtypes and a
    scalar, finite ``metrics["loss"]``; ``evaluate`` returns a non-empty dict of finite
    scalars; ``network(state)`` is a non-empty pytree of float arrays.
``jit``
    ``init``, ``update`` and ``evaluate`` trace and compile under ``jax.jit`` and ``jax.vmap``
    (exercised by every other check). Jitted and eager execution are not compared: under
    ``jax.disable_jit`` every ``lax.scan`` step is dispatched op by op, which costs minutes for
    the rules' long scans, and the runner only ever executes compiled programs.
``deterministic``
    the same key, state and hyper-parameters give bit-identical results.
``population``
    a member in a vmapped population of three (different keys *and* different sweepable
    hyper-parameter values) equals the same member updated alone — no member's numbers depend
    on another's or on its position.
``isolation``
    a member whose state is non-finite leaves the other members of the population unchanged
    (the runner then discards its update and flags it).
``no recompile``
    every field of the hyper-parameter dataclass is a pytree node (a ``struct.field(pytree_node=
    False)`` would be baked into the program, so sweeping it recompiles or is silently ignored), and
    new values of every float leaf of ``hp`` re-use the compiled ``update`` (hyper-parameters are
    pytree leaves, never closure constants).

Each failure raises :class:`ConformanceError` naming the broken contract and the rule.
Every registered rule provides a small instance through ``register_rule(..., example=...)``
(a zero-argument function returning ``(rule, hparams)``); ``tests/test_rule_conformance.py``
runs :func:`check_rule` over the whole registry, so a rule registered later is checked too.
A new rule's own tests can call ``check_rule(rule, hparams)`` directly.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.rules.base import LearningRule

CHECKS = ("contract", "jit", "deterministic", "population", "isolation", "no recompile")


class ConformanceError(AssertionError):
    """A rule broke one of the contracts of :mod:`jaxrnn.rules.conformance`."""


def _fail(name: str, check: str, message: str):
    raise ConformanceError(f"rule {name!r} breaks the {check!r} contract: {message}")


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), jnp.asarray(x).dtype) for x in leaves)


def _float_leaves(tree: Any) -> list:
    return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]


def _perturbed(hp: Any, factor: float) -> Any:
    """``hp`` with every float leaf scaled by ``factor`` (new values, same structure)."""
    return jax.tree.map(lambda x: x * factor if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact) else x, hp)


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def _close(a: Any, b: Any, rtol: float, atol: float) -> str | None:
    """None if the two pytrees agree, else a description of the first disagreement."""
    paths_a = jax.tree_util.tree_leaves_with_path(a)
    leaves_b = jax.tree.leaves(b)
    for (path, x), y in zip(paths_a, leaves_b):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            return f"{jax.tree_util.keystr(path)}: shapes {x.shape} vs {y.shape}"
        if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
            nan = np.isnan(x) != np.isnan(y)
            if nan.any():
                return f"{jax.tree_util.keystr(path)}: NaN in one and not the other at {int(nan.sum())} entries"
            err = np.max(np.abs(x - y))
            return f"{jax.tree_util.keystr(path)}: largest difference {err:.3g} (rtol {rtol}, atol {atol})"
    return None


def _identical(a: Any, b: Any) -> str | None:
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        if not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True):
            return jax.tree_util.keystr(path)
    return None


def check_contract(rule: LearningRule, hp: Any, key: jax.Array, jitted: Callable) -> tuple[Any, Any, dict]:
    """The ``contract`` check; returns ``(state, new_state, metrics)`` for the other checks."""
    name = rule.name
    for field in ("init", "update", "evaluate", "network"):
        if not callable(getattr(rule, field, None)):
            _fail(name, "contract", f"{field} is not callable")
    k_init, k_update, k_eval = jax.random.split(key, 3)
    state = jax.jit(rule.init)(k_init, hp)
    if not jax.tree.leaves(state):
        _fail(name, "contract", "init returned an empty state")
    out = jitted(k_update, state, hp)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        _fail(name, "contract", f"update must return (state, metrics: dict), got {type(out).__name__}")
    new_state, metrics = out
    before, after = _signature(state), _signature(new_state)
    if before[0] != after[0]:
        _fail(name, "contract", f"update changed the state's tree structure:\n  {before[0]}\n  -> {after[0]}")
    if before[1] != after[1]:
        changed = [f"leaf {i}: {a} -> {b}" for i, (a, b) in enumerate(zip(before[1], after[1])) if a != b]
        _fail(name, "contract", "update changed state shapes/dtypes (" + "; ".join(changed[:3]) + ")")
    if "loss" not in metrics or np.shape(metrics["loss"]) != ():
        _fail(name, "contract", f"update's metrics need a scalar 'loss', got {sorted(metrics)}")
    for k, v in metrics.items():
        if np.shape(v) != ():
            _fail(name, "contract", f"update's metric {k!r} has shape {np.shape(v)}; metrics are scalars")
    if not np.isfinite(np.asarray(metrics["loss"])):
        _fail(name, "contract", f"update's loss is {metrics['loss']} on the example")
    evaluated = jax.jit(rule.evaluate)(k_eval, new_state, hp)
    if not isinstance(evaluated, dict) or not evaluated:
        _fail(name, "contract", "evaluate must return a non-empty dict of scalar metrics")
    for k, v in evaluated.items():
        if np.shape(v) != () or not np.isfinite(np.asarray(v)):
            _fail(name, "contract", f"evaluate's metric {k!r} = {v} is not a finite scalar")
    params = rule.network(new_state)
    if not _float_leaves(params):
        _fail(name, "contract", "network(state) has no float arrays")
    return state, new_state, metrics


def check_rule(rule: LearningRule, hp: Any, *, key: jax.Array | None = None, rtol: float = 2e-4,
               atol: float = 2e-5) -> None:
    """Run every check of this module on ``rule`` with hyper-parameters ``hp``.

    Raises :class:`ConformanceError` naming the first broken contract. ``rtol``/``atol`` bound
    the float32 rounding allowed between a member
    alone and in a vmapped population.
    """
    name = rule.name
    key = jax.random.PRNGKey(0) if key is None else key
    traces = {"update": 0, "population": 0}

    def counted_update(k, s, h):
        traces["update"] += 1  # runs at trace time only: one per compilation
        return rule.update(k, s, h)

    jitted = jax.jit(counted_update)
    state, new_state, metrics = check_contract(rule, hp, key, jitted)
    k_update = jax.random.split(key, 3)[1]

    # deterministic
    again = jitted(k_update, state, hp)
    problem = _identical((new_state, metrics), again)
    if problem:
        _fail(name, "deterministic", f"the same key, state and hparams gave different results at {problem}")

    # no recompile when sweeping hyper-parameters
    if dataclasses.is_dataclass(hp):
        static = [f.name for f in dataclasses.fields(hp) if not f.metadata.get("pytree_node", True)]
        if static:
            _fail(name, "no recompile", f"hyper-parameter field(s) {static} are static (pytree_node=False): "
                                        "sweeping them would recompile the update; make them pytree leaves")
    for factor in (1.01, 0.97):
        out = jitted(k_update, state, _perturbed(hp, factor))
        jax.block_until_ready(out)
    if traces["update"] != 1:
        _fail(name, "no recompile", f"update was traced {traces['update']} times for 3 hparam values of one "
                                    "structure: a hyper-parameter is a Python/static value instead of a pytree leaf")

    # a member alone == the same member in a vmapped population (keys and hparams differ per member)
    keys = jax.random.split(jax.random.fold_in(key, 1), 3)
    hps = [hp, _perturbed(hp, 1.01), _perturbed(hp, 0.97)]
    init_keys, update_keys = keys, jax.random.split(jax.random.fold_in(key, 2), 3)
    states = [jax.jit(rule.init)(k, h) for k, h in zip(init_keys, hps)]
    alone = [jitted(k, s, h) for k, s, h in zip(update_keys, states, hps)]

    def counted_population(k, s, h):
        traces["population"] += 1
        return jax.vmap(rule.update)(k, s, h)

    population = jax.jit(counted_population)
    together = population(update_keys, _stack(states), _stack(hps))
    for i in range(3):
        problem = _close(alone[i], _member(together, i), rtol, atol)
        if problem:
            _fail(name, "population", f"member {i} of a vmapped population of 3 differs from the same member "
                                      f"updated alone: {problem}")

    # isolation: a non-finite member does not touch the others
    poisoned = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.inexact) else x,
                            states[1])
    out = population(update_keys, _stack([states[0], poisoned, states[2]]), _stack(hps))
    if traces["population"] != 1:
        _fail(name, "no recompile", "the vmapped update recompiled for new state values")
    for i in (0, 2):
        problem = _close(_member(together, i), _member(out, i), 0.0, 0.0)
        if problem:
            _fail(name, "isolation", f"member {i} changed when member 1's state was made non-finite: {problem}")

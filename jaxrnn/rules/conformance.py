"""Conformance checks every learning rule must pass (in the spirit of optax's ``_common_test``).

A rule is a :class:`~jaxrnn.rules.base.LearningRule` — ``init``, ``update``, ``evaluate``,
``network`` and ``default_hparams`` — that the population runner vmaps over members, scans over
updates and freezes per member (:mod:`jaxrnn.population.program`). That only works if the rule
keeps a contract the type cannot express. :func:`check_rule` checks it on one small instance,
run as the runner runs it: ``jit(vmap(init))``, ``jit(vmap(update))`` and ``jit(vmap(evaluate))``
over a population of three members with different keys and different values of every float
hyper-parameter (three compiled programs per rule, which keeps the check cheap enough to run on
every registered rule in the test suite):

``contract``
    ``init(key, hp)`` returns a non-empty pytree of arrays; ``update(key, state, hp)`` returns
    ``(state, metrics)`` with a state of the *same* tree structure, shapes and dtypes and
    scalar metrics including a finite ``"loss"``; ``evaluate`` returns a non-empty dict of
    finite scalars; ``network(state)`` is a non-empty pytree of float arrays.
``jit and vmap``
    all three functions trace and compile under ``jax.jit(jax.vmap(...))`` (every check runs
    them so). Jitted and eager execution are not compared: under ``jax.disable_jit`` every
    ``lax.scan`` step is dispatched op by op, which costs minutes for the rules' long scans,
    and the runner only ever executes compiled programs.
``deterministic``
    the same keys, states and hyper-parameters give bit-identical results.
``population``
    a member's result does not depend on the rest of the population: member 0's new state and
    metrics are the same (to float32 rounding) when the other members get other keys,
    hyper-parameters and states. This is "a member alone equals the member in a population"
    as the runner sees it — it never runs a member outside a vmapped population, and a
    population of one would cost a fourth compilation per rule.
``isolation``
    a member whose state is non-finite leaves the other members unchanged (the runner then
    discards its update and flags it).
``no recompile``
    every field of the hyper-parameter dataclass is a pytree node (a ``struct.field(pytree_node=
    False)`` would be baked into the program, so sweeping it recompiles or is silently ignored),
    and new values of every float leaf of ``hp`` re-use the compiled update (hyper-parameters
    are pytree leaves, never closure constants).

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

CHECKS = ("contract", "jit and vmap", "deterministic", "population", "isolation", "no recompile")
POPULATION = 3  # members in the checked population


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


def _check_update(name: str, states: Any, out: Any) -> None:
    """The ``contract`` check of init and update outputs (vmapped: leading axis = members)."""
    if not jax.tree.leaves(states):
        _fail(name, "contract", "init returned an empty state")
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        _fail(name, "contract", f"update must return (state, metrics: dict), got {type(out).__name__}")
    new_states, metrics = out
    before, after = _signature(states), _signature(new_states)
    if before[0] != after[0]:
        _fail(name, "contract", f"update changed the state's tree structure:\n  {before[0]}\n  -> {after[0]}")
    if before[1] != after[1]:
        changed = [f"leaf {i}: {a} -> {b}" for i, (a, b) in enumerate(zip(before[1], after[1])) if a != b]
        _fail(name, "contract", "update changed state shapes/dtypes (" + "; ".join(changed[:3]) + ")")
    if "loss" not in metrics or np.shape(metrics["loss"]) != (POPULATION,):
        _fail(name, "contract", f"update's metrics need a scalar 'loss', got {sorted(metrics)}")
    for k, v in metrics.items():
        if np.shape(v) != (POPULATION,):
            _fail(name, "contract", f"update's metric {k!r} has shape {np.shape(v)[1:]}; metrics are scalars")
    if not np.isfinite(np.asarray(metrics["loss"])).all():
        _fail(name, "contract", f"update's loss is {metrics['loss']} on the example")


def _check_evaluate(name: str, evaluated: Any, params: Any) -> None:
    """The ``contract`` check of evaluate's metrics (vmapped) and of one member's network."""
    if not isinstance(evaluated, dict) or not evaluated:
        _fail(name, "contract", "evaluate must return a non-empty dict of scalar metrics")
    for k, v in evaluated.items():
        if np.shape(v) != (POPULATION,) or not np.isfinite(np.asarray(v)).all():
            _fail(name, "contract", f"evaluate's metric {k!r} = {v} is not a finite scalar per member")
    if not _float_leaves(params):
        _fail(name, "contract", "network(state) has no float arrays")


def _check_static_fields(name: str, hp: Any) -> None:
    if dataclasses.is_dataclass(hp):
        static = [f.name for f in dataclasses.fields(hp) if not f.metadata.get("pytree_node", True)]
        if static:
            _fail(name, "no recompile", f"hyper-parameter field(s) {static} are static (pytree_node=False): "
                                        "sweeping them would recompile the update; make them pytree leaves")


def check_rule(rule: LearningRule, hp: Any, *, key: jax.Array | None = None, rtol: float = 2e-4,
               atol: float = 2e-5) -> None:
    """Run every check of this module on ``rule`` with hyper-parameters ``hp``.

    Raises :class:`ConformanceError` naming the first broken contract. ``rtol``/``atol`` bound
    the float32 rounding allowed for member 0 between two populations that differ in the
    other members.
    """
    name = rule.name
    for field in ("init", "update", "evaluate", "network"):
        if not callable(getattr(rule, field, None)):
            _fail(name, "contract", f"{field} is not callable")
    _check_static_fields(name, hp)
    key = jax.random.PRNGKey(0) if key is None else key
    traces = {"update": 0}

    def counted_update(k, s, h):
        traces["update"] += 1  # runs at trace time only: one per compilation
        return jax.vmap(rule.update)(k, s, h)

    init = jax.jit(jax.vmap(rule.init))
    update = jax.jit(counted_update)
    evaluate = jax.jit(jax.vmap(rule.evaluate))
    k_init, k_update, k_eval, k_other = jax.random.split(key, 4)
    init_keys, update_keys = jax.random.split(k_init, POPULATION), jax.random.split(k_update, POPULATION)
    hps = _stack([_perturbed(hp, f) for f in (1.0, 1.01, 0.97)])
    states = init(init_keys, hps)
    out = update(update_keys, states, hps)
    _check_update(name, states, out)
    evaluated = evaluate(jax.random.split(k_eval, POPULATION), out[0], hps)
    _check_evaluate(name, evaluated, rule.network(_member(out[0], 0)))

    problem = _identical(out, update(update_keys, states, hps))
    if problem:
        _fail(name, "deterministic", f"the same keys, states and hparams gave different results at {problem}")

    # the other members get other keys, hyper-parameters and states: member 0 must not notice
    other_hps = _stack([_perturbed(hp, f) for f in (1.0, 0.95, 1.03)])
    other_states = init(jax.random.split(k_other, POPULATION), other_hps)
    mixed = lambda a, b: jax.tree.map(lambda x, y: x.at[0].set(y[0]), a, b)  # noqa: E731
    other_keys = jax.random.split(jax.random.fold_in(k_update, 1), POPULATION).at[0].set(update_keys[0])
    other = update(other_keys, mixed(other_states, states), mixed(other_hps, hps))
    problem = _close(_member(out, 0), _member(other, 0), rtol, atol)
    if problem:
        _fail(name, "population", "member 0 of a vmapped population changed when the other members got other keys, "
                                  f"hyper-parameters and states: {problem}")
    if traces["update"] != 1:
        _fail(name, "no recompile", f"the update was traced {traces['update']} times for 3 populations of one "
                                    "structure: a hyper-parameter is a Python/static value instead of a pytree leaf")

    # isolation: a non-finite member does not touch the others
    poisoned = jax.tree.map(lambda x: x.at[1].set(jnp.nan) if jnp.issubdtype(x.dtype, jnp.inexact) else x, states)
    out_poisoned = update(update_keys, poisoned, hps)
    for i in (0, 2):
        problem = _close(_member(out, i), _member(out_poisoned, i), 0.0, 0.0)
        if problem:
            _fail(name, "isolation", f"member {i} changed when member 1's state was made non-finite: {problem}")

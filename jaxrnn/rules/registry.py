"""Registry of learning rules for configs and the population runner.

Each rule module registers its factory with the names of its *static* factory arguments
(fields of ``[rule]`` that fix program structure: batch, trainable, population sizes, ...),
its hyper-parameter dataclass (every field except ``task`` and ``gain`` is a sweepable
``[rule]`` field; ``task`` receives the task params, ``gain`` the ``[model] gain``), the
config defaults, an eager validator raising ``ValueError`` naming ``rule.<field>``, and the
``[model]`` values the rule needs (``model_defaults``), which a member whose config leaves those
fields unset takes instead of :class:`~jaxrnn.population.config.ModelConfig`'s defaults (Hebbian
and full-FORCE: ``activation = "tanh"``, ``output = "rate"``), and ``example``: a zero-argument
function returning ``(rule, hparams)`` for a tiny instance (a few units, a few steps) on a task
the rule serves, on which ``tests/test_rule_conformance.py`` runs
:func:`jaxrnn.rules.conformance.check_rule` — so a rule registered later is checked too. The JAX-free config check reads
all of this from ``jaxrnn/configs/schema.json`` (:mod:`jaxrnn.population.schema`).

The runner calls ``factory(cell, task, readout=..., **static)``; ``readout`` is passed only
when the task has an ``output_size`` (supervised tasks); other rules build their own heads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from jaxrnn._checks import check_choice


class RuleEntry(NamedTuple):
    """How configs and the runner build a rule."""

    factory: Callable[..., Any]
    static: frozenset[str]
    hparams_cls: type
    defaults: Mapping[str, Any]
    check: Callable[[Mapping[str, Any]], None] | None
    model_defaults: Mapping[str, Any] = {}
    example: Callable[[], tuple[Any, Any]] | None = None


_RULES: dict[str, RuleEntry] = {}


def register_rule(
    name: str,
    factory: Callable[..., Any],
    *,
    static: set[str] | frozenset[str],
    hparams_cls: type,
    defaults: Mapping[str, Any],
    check: Callable[[Mapping[str, Any]], None] | None = None,
    model_defaults: Mapping[str, Any] | None = None,
    example: Callable[[], tuple[Any, Any]] | None = None,
) -> None:
    """Register rule ``name`` (see the module docstring for the meaning of each argument)."""
    if name in _RULES:
        raise ValueError(f"rule name {name!r} is already registered")
    _RULES[name] = RuleEntry(factory, frozenset(static), hparams_cls, dict(defaults), check,
                             dict(model_defaults or {}), example)


def registered_rules() -> list[str]:
    """Names of the registered rules."""
    return sorted(_RULES)


def get_rule(name: str) -> RuleEntry:
    """The entry of rule ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    check_choice("rule.name", name, registered_rules())
    return _RULES[name]


def rule_fields(name: str) -> tuple[set[str], set[str]]:
    """``(static, dynamic)`` field names a ``[rule]`` table may set for rule ``name``."""
    entry = get_rule(name)
    dynamic = {f.name for f in dataclasses.fields(entry.hparams_cls)} - {"task", "gain"}
    return set(entry.static), dynamic

"""Registry of learning rules for configs and the population runner.

Each rule module registers its factory with the names of its *static* factory arguments
(fields of ``[rule]`` that fix program structure: batch, trainable, population sizes, ...),
its hyper-parameter dataclass (every field except ``task`` and ``gain`` is a sweepable
``[rule]`` field; ``task`` receives the task params, ``gain`` the ``[model] gain``), an eager
validator raising ``ValueError`` naming ``rule.<field>``, the ``[model]`` values the rule needs
(``model_defaults``), which a member whose config leaves those fields unset takes instead of
:class:`~jaxrnn.population.config.ModelConfig`'s defaults (Hebbian and full-FORCE:
``activation = "tanh"``, ``output = "rate"``), and ``example``: a zero-argument function
returning ``(rule, hparams)`` for a tiny instance (a few units, a few steps) on a task the rule
serves, on which ``tests/test_rule_conformance.py`` runs
:func:`jaxrnn.rules.conformance.check_rule` — so a rule registered later is checked too.

The ``[rule]`` defaults are not written here: each is read from where the rule declares it
once — a static field's from the factory's signature, a sweepable field's from its
:func:`~jaxrnn.rules.hparams.hparam` declaration on the ``HParams`` dataclass (a field whose
default depends on the task or cell, such as full-FORCE's ``ff_alpha``, has none; the factory's
``default_hparams`` holds it). The JAX-free config check reads all of this from
``jaxrnn/configs/schema.json`` (:mod:`jaxrnn.population.schema`).

The runner calls ``factory(cell, task, readout=..., **static)``; ``readout`` is passed only
when the task has an ``output_size`` (supervised tasks); other rules build their own heads.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from jaxrnn._checks import check_choice
from jaxrnn.rules.hparams import config_defaults


class RuleEntry(NamedTuple):
    """How configs and the runner build a rule (``defaults``: derived, see :func:`register_rule`)."""

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
    check: Callable[[Mapping[str, Any]], None] | None = None,
    model_defaults: Mapping[str, Any] | None = None,
    example: Callable[[], tuple[Any, Any]] | None = None,
    defaults: None = None,
) -> None:
    """Register rule ``name`` (see the module docstring for the meaning of each argument).

    The entry's config ``defaults`` are :func:`rule_defaults` of the factory and
    ``hparams_cls``. ``defaults=`` is no longer accepted (it wrote every default a second time):
    give the factory's static arguments defaults and declare the sweepable ones with
    :func:`~jaxrnn.rules.hparams.hparam`.
    """
    if defaults is not None:
        raise ValueError(
            "register_rule(defaults=...) was removed: the defaults come from the factory's signature (static "
            "fields) and the HParams fields declared with jaxrnn.rules.hparams.hparam(default) (sweepable fields)")
    if name in _RULES:
        raise ValueError(f"rule name {name!r} is already registered")
    _RULES[name] = RuleEntry(factory, frozenset(static), hparams_cls, rule_defaults(factory, static, hparams_cls),
                             check, dict(model_defaults or {}), example)


def rule_defaults(factory: Callable[..., Any], static, hparams_cls: type) -> dict[str, Any]:
    """The ``[rule]`` config defaults: each static field's default in ``factory``'s signature
    (tuples as lists, as TOML writes them), then :func:`~jaxrnn.rules.hparams.config_defaults`
    of ``hparams_cls``.

    Raises ``ValueError`` for a static field the factory does not take with a default.
    """
    parameters = inspect.signature(factory).parameters
    defaults: dict[str, Any] = {}
    for field in sorted(static):
        if field not in parameters or parameters[field].default is inspect.Parameter.empty:
            raise ValueError(f"static rule field {field!r} must be an argument of {factory.__name__} with a default")
        default = parameters[field].default
        defaults[field] = list(default) if isinstance(default, tuple) else default
    return {**defaults, **config_defaults(hparams_cls)}


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

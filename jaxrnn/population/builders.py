"""From config values to objects: cells, rules, and each member's hyper-parameter pytree.

Rules come from ``jaxrnn.rules.registry`` (static factory arguments, sweepable ``HParams``
fields, defaults and validator per rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

import jaxrnn.rules  # noqa: F401  (registers the rules)
from jaxrnn._checks import check_choice, check_range
from jaxrnn.models import CTRNN, GRUCell, LinearReadout, LowRankRNN, OptimizedLSTMCell, VanillaRNN
from jaxrnn.rules.registry import get_rule, rule_fields
from jaxrnn.tasks.registry import make

CELLS = ("ctrnn", "vanilla", "lowrank", "gru", "lstm")


def rule_values(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The rule table with the rule's defaults filled in."""
    return {**get_rule(rule["name"]).defaults, **rule}


def build_cell(model: Mapping[str, Any]):
    """The cell described by a ``[model]`` table (validated by the cell itself)."""
    check_choice("model.cell", model["cell"], CELLS)
    check_range("model.hidden", model["hidden"], 1, integer=True)
    check_range("model.readout_scale", model["readout_scale"], 0.0)
    name, hidden = model["cell"], int(model["hidden"])
    if name == "ctrnn":
        cell = CTRNN(
            hidden,
            alpha=model["alpha"],
            activation=model["activation"],
            weight_init=model["weight_init"],
            input_scale=model["input_scale"],
            output=model["output"],
            use_bias=model["use_bias"],
        )
    elif name == "vanilla":
        cell = VanillaRNN(hidden, use_bias=model["use_bias"])
    elif name == "lowrank":
        cell = LowRankRNN(
            hidden, rank=model["rank"], alpha=model["alpha"], activation=model["activation"],
            output=model["output"], use_bias=model["use_bias"], parametrization=model["parametrization"],
        )
    elif name == "gru":
        cell = GRUCell(hidden)
    else:
        cell = OptimizedLSTMCell(hidden)
    return cell


def build_rule(task_values: Mapping[str, Any], model: Mapping[str, Any], rule: Mapping[str, Any]):
    """Build ``(rule, task)`` for a group from its static field values."""
    task, _ = make(task_values["name"], **{k: v for k, v in task_values.items() if k != "name"})
    cell = build_cell(model)
    values = rule_values(rule)
    entry = get_rule(values["name"])
    static = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in entry.static}
    if hasattr(task, "output_size"):
        static["readout"] = LinearReadout(task.output_size, scale=model["readout_scale"])
    return entry.factory(cell, task, **static), task


def member_hparams(rule, task_values: Mapping[str, Any], model: Mapping[str, Any], rule_table: Mapping[str, Any]):
    """The hyper-parameter pytree of one member (float32/int32 leaves)."""
    name = task_values["name"]
    _, task_params = make(name, **{k: v for k, v in task_values.items() if k != "name"})
    values = rule_values(rule_table)
    _, dynamic = rule_fields(values["name"])
    hp = rule.default_hparams.replace(task=task_params)
    updates = {k: values[k] for k in dynamic if k in values}
    if "gain" in {f.name for f in dataclasses.fields(hp)}:
        updates["gain"] = model["gain"]
    hp = hp.replace(**{k: jnp.asarray(v, dtype=jnp.asarray(getattr(hp, k)).dtype) for k, v in updates.items()})
    return hp


def check_member(member, checked: set | None = None) -> None:
    """Validate every field of a member eagerly (raises ``ValueError`` naming the field).

    Besides each value, the model is checked against the rule and the task by building the
    rule (its factory refuses, e.g., a full-FORCE or Hebbian member whose cell is not a tanh
    CTRNN read out by rate: ``model.activation = 'shifted_tanh' is not allowed: ...``). Building
    compiles nothing; with ``checked`` (a set the caller keeps) it happens once per
    combination of static fields.
    """
    task_values = dict(member.task)
    name = task_values.pop("name")
    make(name, **task_values)
    build_cell(member.model)
    check_range("model.gain", member.model["gain"], 0.0)
    values = rule_values(member.rule)
    entry = get_rule(values["name"])
    if entry.check is not None:
        entry.check(values)
    key = member.static_key(set(entry.static))
    if checked is None or key not in checked:
        build_rule(member.task, member.model, member.rule)
        if checked is not None:
            checked.add(key)

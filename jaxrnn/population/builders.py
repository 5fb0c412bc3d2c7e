"""From config values to objects: cells, rules, and each member's hyper-parameter pytree.

A rule is registered here with the names of its static factory arguments and a validator of
its dynamic hyper-parameters; its sweepable fields are read off its ``HParams`` dataclass
(every field but ``task`` and ``gain``, which come from ``[task]`` and ``[model]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxrnn._checks import check_choice, check_range
from jaxrnn.models import CTRNN, GRUCell, LinearReadout, LowRankRNN, OptimizedLSTMCell, VanillaRNN
from jaxrnn.rules import bptt
from jaxrnn.rules.bptt import BPTTHParams
from jaxrnn.tasks.registry import make

CELLS = ("ctrnn", "vanilla", "lowrank", "gru", "lstm")


class RuleEntry(NamedTuple):
    """How the runner builds a rule: ``factory(cell, task, readout=..., **static)``."""

    factory: Callable[..., Any]
    static: frozenset[str]
    hparams_cls: type
    check: Callable[[Mapping[str, Any]], None]


def _check_bptt(values: Mapping[str, Any]) -> None:
    check_range("rule.learning_rate", values["learning_rate"], 0.0, low_open=True)
    check_range("rule.init_state_scale", values["init_state_scale"], 0.0)
    if values["max_grad_norm"] != float("inf"):
        check_range("rule.max_grad_norm", values["max_grad_norm"], 0.0, low_open=True)
    check_range("rule.batch", values["batch"], 1, integer=True)
    check_range("rule.num_validation_trials", values["num_validation_trials"], 1, integer=True)


RULES: dict[str, RuleEntry] = {
    "bptt": RuleEntry(
        factory=bptt,
        static=frozenset({"batch", "trainable", "num_validation_trials", "shared_initial_state", "remat"}),
        hparams_cls=BPTTHParams,
        check=_check_bptt,
    ),
}

RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "bptt": {
        "batch": 500,
        "trainable": ["W_rec"],
        "num_validation_trials": 2000,
        "shared_initial_state": True,
        "remat": False,
        "learning_rate": 5e-4,
        "init_state_scale": 0.3,
        "max_grad_norm": float("inf"),
    },
}


def rule_fields(name: str) -> tuple[set[str], set[str]]:
    """``(static, dynamic)`` field names a ``[rule]`` table may set for rule ``name``."""
    check_choice("rule.name", name, RULES)
    entry = RULES[name]
    dynamic = {f.name for f in dataclasses.fields(entry.hparams_cls)} - {"task", "gain"}
    return set(entry.static), dynamic


def rule_values(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The rule table with the rule's defaults filled in."""
    return {**RULE_DEFAULTS.get(rule["name"], {}), **rule}


def build_cell(model: Mapping[str, Any]):
    """The cell and readout described by a ``[model]`` table (validated by the cell itself)."""
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
            output=model["output"], use_bias=model["use_bias"],
        )
    elif name == "gru":
        cell = GRUCell(hidden)
    else:
        cell = OptimizedLSTMCell(hidden)
    return cell, LinearReadout(1, scale=model["readout_scale"])


def build_rule(task_values: Mapping[str, Any], model: Mapping[str, Any], rule: Mapping[str, Any]):
    """Build ``(rule, task)`` for a group from its static field values."""
    task, _ = make(task_values["name"], **{k: v for k, v in task_values.items() if k != "name"})
    cell, readout = build_cell(model)
    values = rule_values(rule)
    entry = RULES[values["name"]]
    static = {k: values[k] for k in entry.static if k in values}
    if "trainable" in static and static["trainable"] is not None:
        static["trainable"] = tuple(static["trainable"])
    return entry.factory(cell, task, readout=readout, **static), task


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


def check_member(member) -> None:
    """Validate every field of a member eagerly (raises ``ValueError`` naming the field)."""
    task_values = dict(member.task)
    name = task_values.pop("name")
    make(name, **task_values)
    build_cell(member.model)
    check_range("model.gain", member.model["gain"], 0.0)
    values = rule_values(member.rule)
    RULES[values["name"]].check(values)

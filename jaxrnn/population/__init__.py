"""Populations: a grid of members from a config, trained together, stored as one Dataset.

    ds = jaxrnn.population.run("default", out="runs/default")   # or a Config / TOML path
    ds = jaxrnn.population.load("runs/default")

Names load lazily (PEP 562), so parsing and validating a config (:mod:`jaxrnn.population.parse`,
:mod:`jaxrnn.population.schema`) runs without importing JAX: ``jaxrnn run`` refuses a bad
config in a fraction of a second, before JAX starts.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Config": "config", "Grid": "config", "Member": "config", "ModelConfig": "config", "RunConfig": "config",
    "snapshot_updates": "config",
    "from_dict": "parse", "load_config": "parse", "packaged_configs": "parse", "parse_config": "parse",
    "apply_overrides": "config_text", "config_toml": "config_text", "parse_bytes": "config_text",
    "plan_group": "planner", "time_one_chunk": "planner",
    "Progress": "progress",
    "build_rule": "builders",
    "GroupProgram": "program", "chunk_plan": "program", "make_chunk": "program", "member_keys": "program",
    "update_key": "program",
    "concat_results": "runner", "group_members": "runner", "group_program": "runner", "prepare": "runner",
    "train_part": "runner",
    "dry_run": "train", "group_label": "train", "needs_plan": "train", "run": "train",
    "load": "store",
}
_SUBMODULES = ("attributes", "builders", "checkpoint", "config", "config_text", "mapping", "parse", "planner", "program", "progress",
               "runner", "schema", "sharding", "store", "train")


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"jaxrnn.population.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxrnn.population.{name}")
    raise AttributeError(f"module 'jaxrnn.population' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


__all__ = [
    "Config",
    "dry_run",
    "Grid",
    "Member",
    "ModelConfig",
    "RunConfig",
    "from_dict",
    "load",
    "load_config",
    "member_keys",
    "packaged_configs",
    "run",
    "snapshot_updates",
    "update_key",
]

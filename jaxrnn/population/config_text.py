"""Config text: command-line overrides, a config written back as TOML, and byte sizes.

The text-level helpers around a config, apart from parsing its meaning
(:mod:`jaxrnn.population.parse`): Hydra-style ``TABLE.FIELD=VALUE`` overrides laid over the raw
tables (:func:`apply_overrides`), a raw config dict written back as TOML text that reads back
equal (:func:`config_toml`; runs started from Python store it as their config), and memory
sizes such as ``"8GiB"`` (:func:`parse_bytes`).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from jaxrnn._checks import fail
from jaxrnn.population.config import TABLES


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with command-line overrides laid over it, as in Hydra: ``TABLE.FIELD=VALUE``.

    ``VALUE`` is read as a TOML value (``0.5``, ``[0.1, 1.0]``, ``true``, ``"cdi"``); a bare word
    that is not one is a string (``task.name=cdi``). ``grid.seeds=8``, ``rule.name=[bptt,ga]``
    (bare words in a list are strings too). The result is validated like a config file.
    """
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        table, dot, field = key.strip().partition(".")
        if not sep or not dot or not field or "." in field or table not in TABLES:
            fail("override", item, "TABLE.FIELD=VALUE with TABLE one of " + ", ".join(TABLES)
                 + " (e.g. task.noise_std=[0.1,1.0] or grid.seeds=8)")
        if table in merged and not isinstance(merged[table], Mapping):
            fail(table, merged[table], f"a table ([{table}]) to override {key} in")
        merged.setdefault(table, {})[field] = _override_value(text.strip())
    return merged


def _override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if text.startswith("[") and text.endswith("]"):
        items = [t.strip() for t in text[1:-1].split(",") if t.strip()]
        return [_override_value(t) for t in items]
    return text


def config_toml(raw) -> str:
    """A config dict (``Config.raw``) as TOML text that :func:`tomllib.loads` reads back equal.

    Written here (plain tables, ``[[subgrid]]`` arrays of tables, inline tables inside them,
    strings, numbers, booleans, lists) rather than with a TOML-writer dependency: a config
    holds nothing else. Runs started from Python store this in ``attrs["config"]``.
    """
    lines = [_toml_line(key, value) for key, value in raw.items() if not isinstance(value, dict) and key != "subgrid"]
    for key, value in raw.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"] + [_toml_line(k, v) for k, v in value.items()]
    for entry in raw.get("subgrid", []):
        lines += ["", "[[subgrid]]"] + [_toml_line(k, v) for k, v in entry.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_line(key, value) -> str:
    if value is None:  # from a Python dict: TOML has no null, the field takes its default
        return f"# {key} = None (left to its default)"
    return f"{key} = {_toml_value(value)}"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value else repr(value))
    if isinstance(value, (int, int)):
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return _toml_value(float(value))


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str | int | float) -> int:
    """``"8GiB"``, ``"500MB"``, ``"1.5e9"`` → bytes."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(text))
        if not match or match.group(2).lower() not in _UNITS:
            fail("memory_budget", text, "a size such as 8GiB, 512MiB or 2e9 (bytes)")
        value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not value > 0:
        fail("memory_budget", text, "a positive size")
    return int(value)

"""Populations: a grid of members from a config, trained together, stored as one Dataset.

    ds = jaxrnn.population.run("default", out="runs/default")   # or a Config / TOML path
    ds = jaxrnn.population.load("runs/default")
"""

from __future__ import annotations

from pathlib import Path

import jax
import xarray as xr

from jaxrnn.population import store
from jaxrnn.population.config import (
    Config,
    Member,
    ModelConfig,
    RunConfig,
    from_dict,
    load_config,
    packaged_configs,
    snapshot_updates,
)
from jaxrnn.population.progress import Progress
from jaxrnn.population.runner import group_members, member_keys, train_group, update_key
from jaxrnn.population.store import load


def run(config: Config | str | Path = "default", out: str | Path | None = None, *, quiet: bool = False) -> xr.Dataset:
    """Train every member of ``config`` and return (and, with ``out``, save) the results.

    Args:
      config: a :class:`Config`, a TOML path, or a packaged config name.
      out: run directory; the store is written to ``out/results.zarr``.
      quiet: no progress bars.

    Returns:
      The results ``xarray.Dataset`` (see :mod:`jaxrnn.population.store`).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    groups = group_members(config)  # validation already happened in load_config/from_dict
    progress = Progress(quiet)
    results = []
    for i, members in enumerate(groups):
        first = members[0]
        label = f"{first.rule.get('name', 'bptt')} on {first.task['name']}"
        report = progress.group(i, len(groups), len(members), config.run.num_updates, label)
        results.append(train_group(members, config.run, report))
    progress.close()
    devices = [str(d) for d in jax.devices()]
    dataset = store.build_dataset(config, results, snapshot_updates(config.run), devices)
    if out is not None:
        store.save(dataset, out)
    return dataset


__all__ = [
    "Config",
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

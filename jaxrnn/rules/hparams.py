"""Sweepable hyper-parameter fields, each default written once, on the rule's ``HParams`` dataclass.

A rule's ``HParams`` is a ``flax.struct`` dataclass whose leaves a population vmaps over. Each
field with a fixed default declares it with :func:`hparam`, a Python number together with the
dtype of its leaf::

    @struct.dataclass(kw_only=True)
    class BPTTHParams:
        learning_rate: jax.Array = hparam(5e-4)
        warmup_trials: jax.Array = hparam(101, dtype=jnp.int32)
        gain: jax.Array = hparam(1.0)
        task: Any                       # no default: the factory fills it (task params)

From that one declaration come both the factory's ``default_hparams``
(:func:`make_hparams`: every default as a 0-d array of its dtype, plus the values only the
factory knows — task params, a gain or a regulariser that depend on the task or the cell) and
the ``[rule]`` config defaults the registry, the JAX-free config check (``schema.json``) and
the docs' config reference read (:func:`config_defaults`). Static defaults come from the
factory's signature the same way (:func:`jaxrnn.rules.registry.register_rule`).

``kw_only=True`` lets fields with and without defaults appear in any order (keeping the
pytree's leaf order as written).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

__all__ = ["config_defaults", "hparam", "make_hparams"]

#: Fields of every ``HParams`` that the config sets from other tables: ``gain`` from
#: ``[model] gain``, ``task`` from ``[task]``. They are not ``[rule]`` fields.
NOT_RULE_FIELDS = ("task", "gain")


def hparam(default: Any = dataclasses.MISSING, *, dtype=jnp.float32) -> Any:
    """A sweepable ``HParams`` field: its leaf's ``dtype`` and (optionally) its default.

    ``default`` is a plain Python value (``5e-4``, ``101``, ``True``, ``float("inf")``), the
    value a config gets when it leaves the field unset; :func:`make_hparams` casts it to
    ``dtype`` (float32 unless said otherwise; flags such as PPO's ``normalize_rewards`` are
    float32 0/1 leaves with a ``bool`` config default). Leave ``default`` out when it depends on
    the task or the cell; the factory passes it to :func:`make_hparams`.
    """
    return dataclasses.field(default=default, metadata={"dtype": dtype})


def config_defaults(hparams_cls: type) -> dict[str, Any]:
    """``{field: default}`` of the fields of ``hparams_cls`` that declare one (``gain`` and
    ``task`` excluded: they come from ``[model]`` and ``[task]``), as plain Python values."""
    return {f.name: f.default for f in dataclasses.fields(hparams_cls)
            if f.default is not dataclasses.MISSING and f.name not in NOT_RULE_FIELDS}


def make_hparams(hparams_cls: type, **values: Any):
    """An ``hparams_cls`` with every declared default, overridden or completed by ``values``.

    Each field declared with :func:`hparam` becomes a 0-d array of its ``dtype`` (given
    values are cast too); other fields (``task``) take ``values`` as they are. A field with
    neither a default nor a value raises ``TypeError`` naming it, as the dataclass would.
    """
    leaves = {}
    for f in dataclasses.fields(hparams_cls):
        value = values.pop(f.name, f.default)
        if value is dataclasses.MISSING:
            raise TypeError(f"{hparams_cls.__name__}: no default for {f.name!r}; pass {f.name}=...")
        dtype = f.metadata.get("dtype")
        leaves[f.name] = value if dtype is None else jnp.asarray(value, dtype)
    if values:
        raise TypeError(f"{hparams_cls.__name__} has no field(s) {sorted(values)}")
    return hparams_cls(**leaves)

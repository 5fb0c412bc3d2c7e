"""Each rule default is written once: the registry's config defaults are read from the factory's
signature (static fields) and the ``hparam`` declarations of the ``HParams`` dataclass, and the
factory's ``default_hparams`` hold the same numbers."""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import jaxrnn.rules  # noqa: F401  (registers the rules)
from jaxrnn.population.parse import parse_config
from jaxrnn.rules import registry
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import config_defaults, hparam, make_hparams


@pytest.mark.parametrize("name", registry.registered_rules())
def test_config_defaults_are_the_factory_and_hparams_defaults(name):
    entry = registry.get_rule(name)
    parameters = inspect.signature(entry.factory).parameters
    for field in entry.static:
        default = parameters[field].default
        assert entry.defaults[field] == (list(default) if isinstance(default, tuple) else default), field
    rule, _ = entry.example()
    for f in dataclasses.fields(entry.hparams_cls):
        if f.name in ("task", "gain") or f.default is dataclasses.MISSING:
            assert f.name not in entry.defaults
            continue
        leaf = getattr(rule.default_hparams, f.name)  # what a member that leaves the field unset trains with
        assert leaf.dtype == f.metadata["dtype"] and leaf.shape == ()
        assert leaf == np.asarray(entry.defaults[f.name], leaf.dtype), (f.name, leaf, entry.defaults[f.name])
    assert set(entry.defaults) <= set(entry.static) | {f.name for f in dataclasses.fields(entry.hparams_cls)}


@struct.dataclass(kw_only=True)
class _ToyHParams:
    learning_rate: jax.Array = hparam(0.1)
    steps: jax.Array = hparam(3, dtype=jnp.int32)
    scale: jax.Array = hparam()  # no default: the factory's to give
    gain: jax.Array = hparam(1.0)
    task: object


def _toy(cell, task, batch: int = 4, *, mode: str = "a", required=None):
    return LearningRule(init=None, update=None, evaluate=None, network=None, name="toy",
                        default_hparams=make_hparams(_ToyHParams, scale=2.0, task=None))


def test_make_hparams_and_config_defaults():
    hp = make_hparams(_ToyHParams, scale=2.0, task="params", learning_rate=0.5)
    assert hp.learning_rate.dtype == jnp.float32 and float(hp.learning_rate) == 0.5
    assert hp.steps.dtype == jnp.int32 and int(hp.steps) == 3 and float(hp.scale) == 2.0 and hp.task == "params"
    assert config_defaults(_ToyHParams) == {"learning_rate": 0.1, "steps": 3}  # gain, task: other tables
    with pytest.raises(TypeError, match="'scale'"):
        make_hparams(_ToyHParams, task=None)
    with pytest.raises(TypeError, match="no field"):
        make_hparams(_ToyHParams, scale=1.0, task=None, learnign_rate=0.1)
    assert registry.rule_defaults(_toy, {"batch", "mode"}, _ToyHParams) == {
        "batch": 4, "mode": "a", "learning_rate": 0.1, "steps": 3}


def test_register_rule_refuses_a_second_copy_of_the_defaults_and_static_fields_without_one():
    with pytest.raises(ValueError, match="defaults=.*removed"):
        registry.register_rule("toy_defaults", _toy, static={"batch"}, hparams_cls=_ToyHParams,
                               defaults={"batch": 4})
    with pytest.raises(ValueError, match="'cell' must be an argument of _toy with a default"):
        registry.register_rule("toy_no_default", _toy, static={"cell"}, hparams_cls=_ToyHParams)
    assert "toy_defaults" not in registry.registered_rules() and "toy_no_default" not in registry.registered_rules()


def test_hebbian_clamp_bias_is_a_config_field_with_the_factory_default():
    """The registry used to miss ``clamp_bias`` (the factory's ``None``: on iff N ≥ 12), so the
    JAX-free check refused ``clamp_bias = true`` as "must be a number"."""
    assert registry.get_rule("hebbian").defaults["clamp_bias"] is None
    config = parse_config({"task": {"name": "rdm"}, "model": {"hidden": 12, "activation": "tanh", "output": "rate"},
                           "rule": {"name": "hebbian", "clamp_bias": [True, False]}})
    assert [m.rule["clamp_bias"] for m in config.members()] == [True, False]

"""The learning-rule interface shared by every rule (bptt, closed_loop, open_loop, ppo, ga, ...).

A rule is a bundle of pure functions, shaped like optax's ``GradientTransformation``. A factory
closes over static structure only (model, task, batch, sizes) and returns the bundle; every
sweepable quantity (learning rate, task params, init gain, ...) lives in the ``hparams`` pytree:

    rule   = jaxrnn.rules.bptt(cell, task, batch=500)           # static structure
    hp     = rule.default_hparams.replace(learning_rate=5e-4)   # sweepable leaves
    state  = rule.init(key, hp)                                 # params + rule state
    state, metrics = rule.update(key, state, hp)                # one training iteration
    metrics = rule.evaluate(key, state, hp)                     # validation
    params = rule.network(state)                                # network params, for analysis

``update`` returns at least ``metrics["loss"]`` (a scalar); ``evaluate`` returns at least
``metrics["accuracy"]`` for supervised rules (the population runner's stopping criterion)
or another scalar score. All functions handle one member; the population runner vmaps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

PyTree = Any


class LearningRule(NamedTuple):
    """A learning rule as pure functions plus its default sweepable hyper-parameters.

    Attributes:
      init: ``(key, hparams) -> state``.
      update: ``(key, state, hparams) -> (state, metrics)``; one training iteration.
      evaluate: ``(key, state, hparams) -> metrics``; validation (the key fixes the set).
      network: ``state -> params``; the network parameters for analysis.
      default_hparams: the hyper-parameter pytree with the rule's defaults.
      name: the registry name of the rule.
    """

    init: Callable[[jax.Array, PyTree], PyTree]
    update: Callable[[jax.Array, PyTree, PyTree], tuple[PyTree, dict[str, jax.Array]]]
    evaluate: Callable[[jax.Array, PyTree, PyTree], dict[str, jax.Array]]
    network: Callable[[PyTree], PyTree]
    default_hparams: PyTree
    name: str = "rule"

"""A learning rule written from scratch and registered: weight perturbation of ``W_rec``.

Weight perturbation (Jabri & Flower 1992) estimates the gradient from the change of the loss
under a random perturbation ``ξ ~ N(0, σ²)`` of the recurrent weights, on the same trials::

    ΔL = L(W_rec + ξ) − L(W_rec),        W_rec ← W_rec − η · ΔL · ξ / σ²

(``E[ΔL ξ / σ²] ≈ ∇L`` for small σ). Like every jaxrnn rule it is a factory that closes over
static structure (cell, task, batch) and returns a :class:`~jaxrnn.rules.base.LearningRule`
of pure functions; everything sweepable (η, σ, the init gain, the task params) is a leaf of
:class:`WeightPerturbationHParams`, so a population sweeping them compiles once. Each default is
written once: the static ones in the factory's signature, the sweepable ones with
:func:`~jaxrnn.rules.hparams.hparam` on the dataclass; the config reads both from there.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn.models import LinearReadout, rollout
from jaxrnn.models.cells import init_params
from jaxrnn.rules import LearningRule, register_rule, registered_rules
from jaxrnn.rules.hparams import hparam, make_hparams


@struct.dataclass(kw_only=True)
class WeightPerturbationHParams:
    """Sweepable hyper-parameters (pytree leaves).

    Attributes:
      learning_rate: η.
      perturb_std: σ of the weight perturbation.
      gain: recurrent gain g of the initial ``W_rec`` (set from ``[model] gain``).
      task: the task's params (set from ``[task]``).
    """

    learning_rate: jax.Array = hparam(0.05)
    perturb_std: jax.Array = hparam(0.01)
    gain: jax.Array = hparam(1.0)
    task: Any


@struct.dataclass
class WeightPerturbationState:
    params: Any
    step: jax.Array


def outputs(cell, readout, params, inputs):
    """``[B, T, O]`` outputs of ``inputs[B, T, M]`` from ``x_0 = 0``."""

    def one_trial(u):
        _, hidden = rollout(cell, params["cell"], jnp.zeros((cell.hidden,), jnp.float32), u)
        return jax.vmap(lambda h: readout.apply(params["readout"], h))(hidden)

    return jax.vmap(one_trial)(inputs)


def perturbed(params, xi):
    """``params`` with ``W_rec + ξ``."""
    cell = dict(params["cell"]["params"])
    cell["W_rec"] = cell["W_rec"] + xi
    return {**params, "cell": {**params["cell"], "params": cell}}


def weight_perturbation(cell, task, batch: int = 32, *, readout=None, num_validation_trials: int = 200):
    """Build the rule for ``cell`` on a supervised ``task``.

    Args:
      cell: a jaxrnn cell with a ``W_rec`` parameter (``CTRNN``, ``VanillaRNN``).
      task: a supervised task (``sample``, ``validation_trials``, ``loss``, ``accuracy``).
      batch: trials per update (static).
      readout: the output head (default ``LinearReadout(task.output_size)``).
      num_validation_trials: trials of the validation set (static).
    """
    readout = readout if readout is not None else LinearReadout(task.output_size)

    def init(key, hp):
        key_cell, key_readout = jax.random.split(key)
        params = {"cell": init_params(cell, key_cell, task.input_size, hp.gain),
                  "readout": readout.init(key_readout, jnp.zeros((cell.hidden,), jnp.float32))}
        return WeightPerturbationState(params=params, step=jnp.zeros((), jnp.int32))

    def update(key, state, hp):
        key_trials, key_xi = jax.random.split(key)
        trials = task.sample(key_trials, hp.task, batch)
        w_rec = state.params["cell"]["params"]["W_rec"]
        xi = hp.perturb_std * jax.random.normal(key_xi, w_rec.shape, w_rec.dtype)
        loss = task.loss(outputs(cell, readout, state.params, trials.inputs), trials)
        loss_xi = task.loss(outputs(cell, readout, perturbed(state.params, xi), trials.inputs), trials)
        step = -hp.learning_rate * (loss_xi - loss) / hp.perturb_std**2 * xi
        params = perturbed(state.params, step)
        return WeightPerturbationState(params=params, step=state.step + 1), {"loss": loss}

    def evaluate(key, state, hp):
        trials = task.validation_trials(key, hp.task, num_validation_trials)
        y = outputs(cell, readout, state.params, trials.inputs)
        return {"accuracy": jnp.mean(task.accuracy(y, trials)), "loss": task.loss(y, trials)}

    return LearningRule(init=init, update=update, evaluate=evaluate, network=lambda state: state.params,
                        default_hparams=make_hparams(WeightPerturbationHParams, task=task.default_params),
                        name="weight_perturbation")


def check(values):
    """Eager validation of a ``[rule]`` table (before anything compiles)."""
    for field in ("learning_rate", "perturb_std"):
        if not values[field] > 0:
            raise ValueError(f"rule.{field} = {values[field]!r} is not allowed: must be > 0")


def conformance_example():
    """A tiny instance for :func:`jaxrnn.rules.conformance.check_rule` (run over every registered rule)."""
    from jaxrnn.models import CTRNN
    from jaxrnn.tasks.registry import make

    task, params = make("rdm", num_steps=8)
    rule = weight_perturbation(CTRNN(6), task, batch=4, num_validation_trials=8)
    return rule, rule.default_hparams.replace(task=params)


if "weight_perturbation" not in registered_rules():
    register_rule("weight_perturbation", weight_perturbation, static={"batch", "num_validation_trials"},
                  hparams_cls=WeightPerturbationHParams, check=check, example=conformance_example)

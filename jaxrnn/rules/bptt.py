"""Backpropagation through time on supervised trials (McMahan et al. 2021, BPTT networks).

Each update samples a fresh batch of ``batch`` trials, runs the network
``x_{t+1} = cell(x_t, u_t)``, ``y_t = readout(x_{t+1})`` from the initial state
``x_0 = init_state_scale·N(0, 1)`` (one draw shared by every trial of the batch, as in the
authors' code; ``shared_initial_state=False`` draws one per trial), and takes one Adam step on

    L(θ) = mean_b Σ_t mask_bt ‖y_bt − target_bt‖²

(for the decision tasks the first- and last-step loss of the authors' code; they sum over the
batch, we average, which Adam's scale invariance makes immaterial up to its ε).
Only the parameters named in ``trainable`` move (default ``("W_rec",)``: the study trains
J_rec only); the others keep their initial values.

Configuration tiers:
  static (factory arguments): cell, task, readout, batch, trainable, validation size, remat.
  sweepable (:class:`BPTTHParams`): learning rate, Adam β's, recurrent gain g at init,
    initial-state scale, gradient-clip norm and the task params.
  state (:class:`BPTTState`): network params, Adam moments, update count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrnn._checks import check_range, fail
from jaxrnn.models.cells import init_params
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.rollout import rollout
from jaxrnn.rules.base import LearningRule


@struct.dataclass
class BPTTHParams:
    """Sweepable hyper-parameters of :func:`bptt` (all pytree leaves).

    Attributes:
      learning_rate: Adam step size (5e-4 in the study).
      gain: recurrent gain g of the initial ``W_rec`` (see ``jaxrnn.models.init_params``).
      init_state_scale: std of the initial hidden state (0.3 in the study).
      max_grad_norm: global-norm gradient clip; ``inf`` disables it (the study: none).
      task: the task's params (noise, coherence, trial length, ...).
    """

    learning_rate: jax.Array
    gain: jax.Array
    init_state_scale: jax.Array
    max_grad_norm: jax.Array
    task: Any


@struct.dataclass
class BPTTState:
    """Network params, Adam state and the number of updates taken."""

    params: Any
    opt_state: Any
    step: jax.Array


def trainable_mask(params: Any, trainable: tuple[str, ...] | None) -> Any:
    """A pytree of bools: True for leaves whose name (last path key) is in ``trainable``.

    ``trainable=None`` marks every leaf trainable.
    """

    def is_trainable(path, _):
        if trainable is None:
            return True
        name = getattr(path[-1], "key", str(path[-1]))
        return name in trainable

    return jax.tree_util.tree_map_with_path(is_trainable, params)


def clip_by_global_norm(grads: Any, max_norm: jax.Array) -> Any:
    """Rescale ``grads`` so their global norm is at most ``max_norm`` (a traced scalar)."""
    norm = optax.global_norm(grads)
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
    return jax.tree.map(lambda g: g * scale, grads)


def network_outputs(cell, readout, params: Any, x0: jax.Array, inputs: jax.Array, *, remat: bool = False):
    """Outputs ``[T, O]`` and states ``[T, N]`` of one trial (``inputs[T, M]``) from state ``x0``."""
    states, hidden = rollout(cell, params["cell"], x0, inputs, remat=remat)
    outputs = jax.vmap(lambda h: readout.apply(params["readout"], h))(hidden)
    return outputs, states


def bptt(
    cell,
    task,
    batch: int = 500,
    *,
    readout=None,
    trainable: tuple[str, ...] | None = ("W_rec",),
    num_validation_trials: int = 2000,
    shared_initial_state: bool = True,
    remat: bool = False,
) -> LearningRule:
    """Build the BPTT rule for ``cell`` on supervised ``task``.

    Args:
      cell: a jaxrnn cell (e.g. ``CTRNN(50)``).
      task: a supervised task with ``sample``, ``validation_trials``, ``loss``, ``accuracy``.
      batch: trials per update (500 in the study).
      readout: output head; default ``LinearReadout(task.output_size, scale=0.1)``.
      trainable: names of the parameters that learn (e.g. ``("W_rec",)``, ``("W_rec", "W_in",
        "W_out")``) or ``None`` for all.
      num_validation_trials: size of the validation set used by ``evaluate``.
      shared_initial_state: one ``x_0`` per batch (authors) vs one per trial.
      remat: checkpoint the time-scan body (less memory, ~1/3 more compute).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle.
    """
    check_range("rule.batch", batch, 1, integer=True)
    check_range("rule.num_validation_trials", num_validation_trials, 1, integer=True)
    readout = readout if readout is not None else LinearReadout(task.output_size, scale=0.1)
    hidden = cell.hidden
    names = _param_names(cell, readout, task.input_size)
    if trainable is not None:
        for name in trainable:
            if name not in names:
                fail("rule.trainable", list(trainable), "names of network parameters: " + ", ".join(names))
    adam = optax.scale_by_adam()

    def init_network(key, hp):
        key_cell, key_readout = jax.random.split(key)
        return {
            "cell": init_params(cell, key_cell, task.input_size, hp.gain),
            "readout": readout.init(key_readout, jnp.zeros((hidden,), jnp.float32)),
        }

    def init(key, hp):
        params = init_network(key, hp)
        return BPTTState(params=params, opt_state=adam.init(params), step=jnp.zeros((), jnp.int32))

    def initial_states(key, hp, n):
        shape = (hidden,) if shared_initial_state else (n, hidden)
        x0 = hp.init_state_scale * jax.random.normal(key, shape, jnp.float32)
        return jnp.broadcast_to(x0, (n, hidden))

    def batch_loss(params, key, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.sample(key_trials, hp.task, batch)
        x0 = initial_states(key_x0, hp, batch)
        run = lambda x, u: network_outputs(cell, readout, params, x, u, remat=remat)[0]  # noqa: E731
        outputs = jax.vmap(run)(x0, trials.inputs)
        return task.loss(outputs, trials)

    def update(key, state, hp):
        loss, grads = jax.value_and_grad(batch_loss)(state.params, key, hp)
        mask = trainable_mask(grads, trainable)
        grads = jax.tree.map(lambda g, m: g if m else jnp.zeros_like(g), grads, mask)
        grads = clip_by_global_norm(grads, hp.max_grad_norm)
        updates, opt_state = adam.update(grads, state.opt_state, state.params)
        params = jax.tree.map(lambda p, u, m: p - hp.learning_rate * u if m else p, state.params, updates, mask)
        new_state = BPTTState(params=params, opt_state=opt_state, step=state.step + 1)
        return new_state, {"loss": loss, "grad_norm": optax.global_norm(grads)}

    def evaluate(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.validation_trials(key_trials, hp.task, num_validation_trials)
        x0 = initial_states(key_x0, hp, num_validation_trials)
        run = lambda x, u: network_outputs(cell, readout, state.params, x, u)[0]  # noqa: E731
        outputs = jax.vmap(run)(x0, trials.inputs)
        return {
            "accuracy": jnp.mean(task.accuracy(outputs, trials)),
            "loss": task.loss(outputs, trials),
        }

    default_hparams = BPTTHParams(
        learning_rate=jnp.float32(5e-4),
        gain=jnp.float32(1.0),
        init_state_scale=jnp.float32(0.3),
        max_grad_norm=jnp.float32(jnp.inf),
        task=task.default_params,
    )
    return LearningRule(
        init=init,
        update=update,
        evaluate=evaluate,
        network=lambda state: state.params,
        default_hparams=default_hparams,
        name="bptt",
    )


def _param_names(cell, readout, input_size: int) -> list[str]:
    shapes = jax.eval_shape(
        lambda k: {
            "cell": init_params(cell, k, input_size),
            "readout": readout.init(k, jnp.zeros((cell.hidden,), jnp.float32)),
        },
        jax.random.PRNGKey(0),
    )
    paths = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return sorted({getattr(p[-1], "key", str(p[-1])) for p, _ in paths})

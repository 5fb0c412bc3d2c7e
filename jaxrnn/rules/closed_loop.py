"""Closed-loop training: the exact gradient of the rollout cost through controller and plant.

Ger & Barak (NeurIPS 2025, arXiv 2505.13567), "Learning Dynamics of RNNs in Closed-Loop
Environments" — the authors' "policy gradient" is plain backpropagation through the unrolled,
differentiable loop (no sampling, no REINFORCE; Ger & Barak's code, closed-loop training and tracking task).

**Double integrator** (``Integrator``, Ger & Barak's code, closed-loop training). Per update, ``B = batch`` trials::

    x_0 ~ U(−w, w)  (w = task.init_half_width, [k]),   h_0 = 0
    for t = 0 .. T−1:
        y_t = C x_t
        t = 0:  u_0 = 0                      (controller NOT called; the authors' convention)
        t ≥ 1:  h_t, r_t = cell(h_{t−1}, y_t);   u_t = W_out r_t
        loss_t = mean_{b, i} x_{t,b,i}²  +  reg_u · Σ_b Σ_j u_{t,b,j}²
        x_{t+1} = plant_step(x_t, u_t)       (A x_t + B u_t [+ noise], clamp)
    L = Σ_t loss_t · dt

``reg_u`` is the authors' ``reg_U``: it multiplies a **sum** over the batch (and control dims)
while the state term is a **mean** over batch and state dims, so its effect scales with
``batch`` (Ger & Barak's code; 0.005 at batch 100 in their nonlinear run). The plant's own
``task.beta`` (the environment's reward) is not used here.

**2-D tracking** (``Tracking2D``, Ger & Barak's code, tracking task). The controller is called every step,
``h_i, r_i = cell(h_{i−1}, [x_i, y_i, r_x(t_i), r_y(t_i)])``, ``u_i = W_out r_i``,
``s_{i+1} = plant_step(s_i, u_i)``, and
``L = Σ_i [mean_b ‖pos(s_{i+1}) − r(t_i)‖² + reg_u·Σ_{b,j} u_{i,b,j}²]·dt / T`` (the paper:
``reg_u = 0``, the default for this plant; ``W_in`` frozen, the default ``trainable``).

Episode length ``T = min(task.max_steps_in_episode, num_steps)`` is a sweepable task param:
the scan always runs ``num_steps`` (static) steps and freezes the plant and controller from
step ``T`` on, masking the loss, so members with different ``T`` share one program.

Controller. With ``CTRNN(N, alpha=1, activation="tanh", output="rate", use_bias=False,
weight_init="ger_barak")`` the cell gives ``r_t = tanh(W_rec r_{t−1} + W_in y_t)`` from
``r_0 = tanh(0) = 0`` — the authors' discrete ``ct_rnn_controller`` exactly. For ``α < 1`` the
authors leak the rate (``h ← h + α(φ(W h + W_in y) − h)``) and jaxrnn's CTRNN the voltage;
the two agree for ``activation="linear"`` (the tracking controller). The default readout is
:class:`~jaxrnn.rules.controller.ControllerReadout`: ``W_out ~ N(0, 1/N²)`` (std ``1/N``), or
``U(−input_scale, input_scale)`` for a cell with ``weight_init="uniform"`` (tracking).

The authors' rank-1 linear controller (``P_Model``) is
``LowRankRNN(N, rank=1, parametrization="ger_barak")`` (linear, ``α = 1``): ``W = U Vᵀ``,
``U, V ~ N(0, 1/N)``, input vector ``W_in ~ U(±1/√N)``, and the default readout for it is
``z ~ U(±1/√N)`` (default gain 1). Train it as they do with ``trainable=("U", "V", "W_out")``
(``m`` frozen), ``x0 ~ U(−2, 2)``, and — their loss is a mean over the T steps where this
rule sums — ``learning_rate = 0.01/T``, ``max_grad_norm = T`` (exactly their SGD 0.01, clip 1).

Updates. ``update`` samples fresh initial states, takes one SGD or Adam step
(``optimizer``, static) on ``L`` after global-norm clipping (torch ``clip_grad_norm_``;
``max_grad_norm = inf`` disables it) for the parameters named in ``trainable``. The authors
skip the update at epoch 0 (a baseline checkpoint); here the runner's update 0 is the first
real update, so the runner's snapshot 0 (update 0) is the initial network = their epoch 0, and
the loss of update ``u`` (0-based; the store's 1-based ``update`` coordinate ``u + 1``) is their
loss of epoch ``u + 1``. ``evaluate(key, ...)`` returns ``test_cost``, the closed-loop state
cost (``reg_u = 0``, over the member's own T; tracking: the tracking loss) from ``num_test``
initial states drawn from ``key``, plus ``neg_test_cost = −test_cost`` for the
runner's "≥ threshold" stopping criterion. :mod:`jaxrnn.rules.open_loop` reports the same.

Usage (the authors' nonlinear run; shared pieces live in :mod:`jaxrnn.rules.controller`)::

    plant, _ = jaxrnn.make("double-integrator")
    cell = CTRNN(100, alpha=1.0, activation="tanh", output="rate", use_bias=False, weight_init="ger_barak")
    rule = closed_loop(cell, plant)              # SGD 1e-2, clip 1, reg_u 0.005, g 0.1, T 50, batch 100
    state = rule.init(key, rule.default_hparams)
    p = rule.network(state)                      # {"cell": {"params": {W_in, W_rec}}, "readout": ...}
    P = joint_matrix(A, B, C, W_in, W_rec, W_out)   # jaxrnn.analysis: linearisation at h = 0

Speed. A ``CTRNN`` controller with the default ``ControllerReadout`` on the integrator takes
:mod:`jaxrnn.rules.integrator_loop`: trials innermost, a hand-written backward pass, no noise
drawn when every member's ``noise_std`` is 0, and population members run in cache-sized groups
under ``vmap`` — the numbers of the general path (any other cell, read-out or plant) up to
float32 rounding.

Configuration tiers:
  static (factory arguments): cell, plant, batch, num_steps, optimizer, trainable, readout,
    num_test.
  sweepable (:class:`ClosedLoopHParams`): learning rate, clip norm, ``reg_u``, recurrent gain
    ``g`` at init and the plant params (``dt``, noise, ``init_half_width``, episode length T).
  state (:class:`ClosedLoopState`): controller params, optimizer moments, update count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_range
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.controller import (
    Episodes,
    Setup,
    apply_gradients,
    check_common,
    closed_loop_cost,
    default_gain,
    evaluator,
    has_fast_loop,
    init_controller,
    is_tracking,
    masked_value_and_grad,
    sample_episodes,
    setup,
)
from jaxrnn.rules.integrator_loop import integrator_ctrnn_value_and_grad
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.registry import register_rule
from jaxrnn.rules.training import trainable_mask


@struct.dataclass(kw_only=True)
class ClosedLoopHParams:
    """Sweepable hyper-parameters of :func:`closed_loop` (all pytree leaves).

    Attributes:
      learning_rate: SGD/Adam step size (1e-2: the authors' double-integrator run).
      max_grad_norm: global-norm gradient clip (1.0; ``inf`` disables it).
      reg_u: control cost β (``reg_U``), summed over the batch (0.005 integrator, 0 tracking).
      gain: recurrent gain g of the initial ``W_rec`` (0.1 integrator, 0.2 tracking; 1 for
        ``LowRankRNN(parametrization="ger_barak")``, where it scales ``U``: see
        :func:`~jaxrnn.rules.controller.default_gain`).
      task: the plant's params.
    """

    learning_rate: jax.Array = hparam(1e-2)
    max_grad_norm: jax.Array = hparam(1.0)
    reg_u: jax.Array = hparam()  # default by plant (closed_loop)
    gain: jax.Array = hparam()  # default by cell and plant (default_gain)
    task: Any


@struct.dataclass
class ClosedLoopState:
    """Controller params ``{"cell", "readout"}``, optimizer state and update count."""

    params: Any
    opt_state: Any
    step: jax.Array


# ----------------------------------------------------------------------------- the rule


def closed_loop_value_and_grad(cell, readout, plant, structure: Setup, params, episodes: Episodes, task_params,
                               reg_u):
    """``((L, state part of L), ∂L/∂params)`` on ``episodes``, zeros for frozen leaves.

    A ``CTRNN`` with a ``ControllerReadout`` on the integrator takes
    :func:`~jaxrnn.rules.integrator_loop.integrator_ctrnn_value_and_grad` (hand-written
    backward pass; population groups under ``vmap``; no noise drawn when ``noise_std = 0``),
    anything else autodiff of :func:`~jaxrnn.rules.controller.closed_loop_cost`.
    """
    if has_fast_loop(cell, readout, plant):
        return integrator_ctrnn_value_and_grad(cell, plant, params, episodes.x0, episodes.noise_keys, task_params,
                                               reg_u, structure.num_steps,
                                               trainable_mask(params, structure.trainable))
    objective = lambda p: closed_loop_cost(  # noqa: E731
        cell, readout, plant, p, episodes, task_params, reg_u, structure.num_steps)
    return masked_value_and_grad(structure, params, objective)


def closed_loop(
    cell,
    plant,
    *,
    batch: int = 100,
    num_steps: int | None = None,
    optimizer: str = "sgd",
    trainable: tuple[str, ...] | None = None,
    readout=None,
    num_test: int = 10,
) -> LearningRule:
    """Build the closed-loop rule for ``cell`` controlling ``plant`` (module docstring).

    Args:
      cell: the controller cell (paper: ``CTRNN(100, alpha=1, activation="tanh",
        output="rate", use_bias=False, weight_init="ger_barak")``).
      plant: ``Integrator`` or ``Tracking2D`` (``jaxrnn.make("double-integrator")[0]``).
      batch: trials per update (100).
      num_steps: scan length S ≥ every member's T (default: the plant's episode length).
      optimizer: ``"sgd"`` (double integrator) or ``"adam"`` (tracking).
      trainable: parameter names that learn; ``None``: all (integrator) or all but ``W_in``
        (tracking, as the authors' closed loop, and the rank-1 ``LowRankRNN(parametrization=
        "ger_barak")`` on any plant: its input vector ``m`` is frozen).
      readout: the ``W_out`` head; default :func:`~jaxrnn.rules.controller.default_readout`.
      num_test: initial states of ``evaluate`` (10).
    """
    structure = setup(cell, plant, batch=batch, num_steps=num_steps, optimizer=optimizer, trainable=trainable,
                      readout=readout, num_test=num_test, freeze_tracking_input=True)
    readout, num_steps = structure.readout, structure.num_steps

    def init(key, hp):
        params = init_controller(cell, readout, key, structure.input_size, hp.gain)
        return ClosedLoopState(params=params, opt_state=structure.optimizer.init(params),
                               step=jnp.zeros((), jnp.int32))

    def update(key, state, hp):
        episodes = sample_episodes(key, plant, hp.task, batch)
        (loss, state_cost), grads = closed_loop_value_and_grad(cell, readout, plant, structure, state.params,
                                                               episodes, hp.task, hp.reg_u)
        params, opt_state, norm = apply_gradients(structure, state.params, state.opt_state, grads, hp)
        new_state = ClosedLoopState(params=params, opt_state=opt_state, step=state.step + 1)
        return new_state, {"loss": loss, "state_cost": state_cost, "grad_norm": norm}

    default_hparams = make_hparams(ClosedLoopHParams, reg_u=0.0 if is_tracking(plant) else 0.005,
                                   gain=default_gain(cell, plant), task=plant.default_params)
    return LearningRule(init=init, update=update, evaluate=evaluator(cell, plant, structure, num_test),
                        network=lambda state: state.params, default_hparams=default_hparams, name="closed_loop")


def _check_closed_loop(values) -> None:
    check_common(values)
    if "reg_u" in values:
        check_range("rule.reg_u", values["reg_u"], 0.0)


# reg_u has no registry default: the factory's plant-dependent one applies (0.005 / 0).


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.models.cells import CTRNN
    from jaxrnn.tasks.registry import make

    plant, params = make("double-integrator", max_steps_in_episode=6)
    rule = closed_loop(CTRNN(6, alpha=1.0, activation="tanh", output="rate"), plant, batch=4, num_test=2)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "closed_loop",
    closed_loop,
    static={"batch", "num_steps", "optimizer", "trainable", "num_test"},
    hparams_cls=ClosedLoopHParams,
    check=_check_closed_loop,
    example=conformance_example,
)

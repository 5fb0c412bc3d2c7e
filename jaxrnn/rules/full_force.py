"""Full-FORCE: recursive least squares towards a driven target network (DePasquale et al. 2018).

As McMahan et al. (2021) ran it (their ``FF_Demo.py``/``trainNcontext.py``, a port of DePasquale's
demo). Two CTRNNs with ``tanh`` rates and ``α = dt/τ`` (0.1) run side by side on each trial:

- the **target-generating (driven) network D**, random and fixed:
  ``x_D ← (1 − α) x_D + α (J_D tanh(x_D) + U_D [u; f_out; f_hint])`` with
  ``J_D = g·N(0, 1)/√N`` and ``U_D = [U_in, u_out, u_hint] ~ input_scale·N(0, 1)``; McMahan passes
  ``f_out(t) = f_hint(t) = s`` (the trial's target sign, constant over the trial);
- the **student** ``x ← (1 − α) x + α (J tanh(x) + W_in u + b)``, output
  ``z = tanh(w tanh(x))`` (McMahan; ``output_activation="linear"``: ``z = w tanh(x)``, DePasquale),
  with ``J = 0``, ``w = 0`` at the start, ``W_in ~ input_scale·N(0, 1)`` fixed, ``b = 0``.

After both networks step, at ``t = 0`` and every ``t ≥ error_trigger`` (within the trial),
with ``r = tanh(x)``, ``r_D = tanh(x_D)``:

    e_J = J r − (J_D r_D + u_out f_out(t) + u_hint f_hint(t))     [N]
    e_w = w r − f(t),   f(0) = 0, f(t > 0) = s                     [O]   (pre-tanh, as the code)
    k   = P r / (1 + rᵀ P r);   P ← P − (P r)(P r)ᵀ / (1 + rᵀ P r)
    w  ← w − e_w kᵀ;   J ← J − e_J kᵀ                              (all rows share P)

with ``P(0) = I / ff_alpha`` (50,000 for RDM, 10,000 for N-CDI in the study). The student's initial
state is redrawn each trial, ``x_0 = init_state_scale·N(0, 1)`` (``init_act_scale = 1``); D is
*not* reset between trials (as in the authors' code): its state is carried in the rule state and
settles for ``num_settle_trials`` (3) trials in ``init``. One ``update`` is one trial;
``metrics["loss"]`` is that trial's output error (``task.loss`` of the ``z`` produced during the
trial: ``z_0² + (z_{T−1} − s)²``). Steps past ``trial_length`` neither learn nor move D.

``evaluate`` runs the student (``z``, output nonlinearity included) on the validation set from
one ``x_0`` shared by all trials (the authors' ``ValidationScore``); accuracy counts
``sign(z_{T−1}) = s`` (the authors' ``|z_T − s| ≤ 1``, the same for ``|z| < 1``).
``network(state)`` is ``{"cell": {"params": {"W_in", "W_rec" = J, "b"}}, "readout": {"params":
{"W_out" = w}}}``: the cell must be a ``CTRNN`` with ``activation="tanh"`` and
``output="rate"``, so ``cell`` + readout reproduce ``w tanh(x)`` (the tanh output nonlinearity
is this rule's, not the readout's) and the analysis treats it like any BPTT network.

Not reproduced: the authors restart training from scratch when 5,000 trials pass without
reaching the criterion (the runner simply stops at ``run.num_updates``); DePasquale's random
update times (probability 1/2 per step) are not offered.

Configuration tiers:
  static (factory arguments): cell, task, readout, error_trigger, output_activation,
    num_settle_trials, num_validation_trials.
  sweepable (:class:`FullForceHParams`): ff_alpha, gain (of J_D), init_state_scale, task params.
  state (:class:`FullForceState`): student params, P, the driven network and its state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.cells import CTRNN, init_params
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.rollout import rollout_trials
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.registry import register_rule

RDM_ALPHA = 50_000.0
NCDI_ALPHA = 10_000.0


@struct.dataclass(kw_only=True)
class FullForceHParams:
    """Sweepable hyper-parameters of :func:`full_force` (all pytree leaves).

    Attributes:
      ff_alpha: RLS regulariser, ``P(0) = I / ff_alpha`` (study: 50,000 RDM / 10,000 N-CDI).
      gain: gain g of the driven network's ``J_D = g·N(0, 1)/√N``.
      init_state_scale: std of the initial states (student each trial, D once) (1.0).
      task: the task's params.
    """

    ff_alpha: jax.Array = hparam()  # default by task: RDM_ALPHA, NCDI_ALPHA (see full_force)
    gain: jax.Array = hparam(1.0)
    init_state_scale: jax.Array = hparam(1.0)
    task: Any


@struct.dataclass
class DrivenNetwork:
    """The fixed target-generating network: ``J[N, N]`` and ``W_in[N, M + 2·O]`` (columns: task
    inputs, then ``u_out``, then ``u_hint``)."""

    J: jax.Array
    W_in: jax.Array


@struct.dataclass
class FullForceState:
    """Student params, RLS inverse correlation ``P[N, N]``, the driven network, D's state
    ``x_driven[N]`` (carried across trials) and the number of trials trained."""

    params: Any
    P: jax.Array
    driven: DrivenNetwork
    x_driven: jax.Array
    step: jax.Array


def rls_step(P: jax.Array, r: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One RLS step for regressor ``r[N]``: gain ``k = P r / (1 + rᵀ P r)`` and the new ``P``.

    ``P ← P − (P r)(P r)ᵀ / (1 + rᵀ P r)`` is written as a symmetric outer product, so a
    symmetric ``P`` stays exactly symmetric in floating point.
    """
    pr = P @ r
    c = 1.0 / (1.0 + r @ pr)
    return c * pr, P - c * jnp.outer(pr, pr)


def driven_step(alpha: float, driven: DrivenNetwork, x: jax.Array, drive: jax.Array) -> jax.Array:
    """``x_D ← (1 − α) x_D + α (J_D tanh(x_D) + U_D drive)`` with ``drive = [u; f_out; f_hint]``."""
    return (1.0 - alpha) * x + alpha * (driven.J @ jnp.tanh(x) + driven.W_in @ drive)


def train_trial(cell: CTRNN, params: Any, P: jax.Array, driven: DrivenNetwork, x0: jax.Array,
                x_driven: jax.Array, inputs: jax.Array, signal: jax.Array, learn: jax.Array,
                valid: jax.Array, linear_output: bool = False):
    """Run one trial of both networks with RLS updates; returns the new weights and ``z[T, O]``.

    Args:
      cell: the student's ``CTRNN`` (``tanh`` rates); its step is ``cell.apply`` with ``W_rec = J``.
      params: student params (``W_rec`` = J, ``W_out`` = w).
      P: ``[N, N]`` RLS matrix.
      driven, x_driven: the driven network and its state ``[N]`` at the trial start.
      x0: ``[N]`` student state at the trial start.
      inputs: ``[T, M]`` task inputs.
      signal: ``[T, O]`` ``f_out = f_hint`` (McMahan: ``s``); the readout target is 0 at
        ``t = 0`` and ``signal[t]`` after.
      learn: ``[T]`` bools, apply RLS after step ``t``.
      valid: ``[T]`` bools, ``t`` is inside the trial (D does not move past its end).
      linear_output: ``z = w r`` instead of ``tanh(w r)``.

    Returns:
      ``(params, P, x_driven, z)``.
    """
    cell_params, w = params["cell"], params["readout"]["params"]["W_out"]
    u_target = driven.W_in[:, inputs.shape[-1]:]  # [u_out, u_hint]: driven by [f_out; f_hint]

    def step(carry, xs):
        x, xd, J, w, P = carry
        u, f, do_learn, ok, first = xs
        x, r = cell.apply({**cell_params, "params": {**cell_params["params"], "W_rec": J}}, x, u)
        xd = jnp.where(ok, driven_step(cell.alpha, driven, xd, jnp.concatenate([u, f, f])), xd)
        rd = jnp.tanh(xd)
        z_lin = w @ r
        e_J = J @ r - (driven.J @ rd + u_target @ jnp.concatenate([f, f]))
        e_w = z_lin - jnp.where(first, 0.0, f)
        k, P_new = rls_step(P, r)
        J = jnp.where(do_learn, J - jnp.outer(e_J, k), J)
        w = jnp.where(do_learn, w - jnp.outer(e_w, k), w)
        P = jnp.where(do_learn, P_new, P)
        return (x, xd, J, w, P), (z_lin if linear_output else jnp.tanh(z_lin))

    first = jnp.arange(inputs.shape[0]) == 0
    carry = (x0, x_driven, cell_params["params"]["W_rec"], w, P)
    (_, x_driven, J, w, P), z = jax.lax.scan(step, carry, (inputs, signal, learn, valid, first))
    params = {
        "cell": {**cell_params, "params": {**cell_params["params"], "W_rec": J}},
        "readout": {**params["readout"], "params": {**params["readout"]["params"], "W_out": w}},
    }
    return params, P, x_driven, z


def trial_signal(trials) -> jax.Array:
    """``[B, T, O]``: each trial's target at its last masked step (the sign ``s``), at every step."""
    steps = jnp.arange(trials.mask.shape[-1])
    last = jnp.argmax(trials.mask * steps, axis=-1)
    target = jnp.take_along_axis(trials.targets, last[:, None, None], axis=1)
    return jnp.broadcast_to(target, trials.targets.shape)


def full_force(
    cell,
    task,
    *,
    readout=None,
    num_validation_trials: int = 2000,
    error_trigger: int = 200,
    output_activation: str = "tanh",
    num_settle_trials: int = 3,
) -> LearningRule:
    """Build the full-FORCE rule for a ``CTRNN`` with ``tanh`` rates on a supervised task.

    Args:
      cell: ``CTRNN(N, activation="tanh", output="rate")`` (N = 50, α = 0.1 in the study).
      task: a decision task (``sample``, ``validation_trials``, ``loss``, ``accuracy``; the
        target of a trial is read at its last masked step).
      readout: the student readout (``w``); default ``LinearReadout(task.output_size)``; its
        params start at 0.
      num_validation_trials: size of the validation set used by ``evaluate``.
      error_trigger: RLS runs at ``t = 0`` and every ``t ≥ error_trigger`` (200 of 750).
      output_activation: ``"tanh"`` (McMahan: ``z = tanh(w r)``) or ``"linear"`` (``z = w r``).
      num_settle_trials: trials D runs in ``init`` before training (``ff_init_trials = 3``).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle.
    """
    if not isinstance(cell, CTRNN):
        fail("model.cell", type(cell).__name__, "'ctrnn' for full_force (a CTRNN with tanh rates)")
    if cell.activation != "tanh":
        fail("model.activation", cell.activation, "'tanh' for full_force", "the study's FF networks use tanh")
    if cell.output != "rate":
        fail("model.output", cell.output, "'rate' for full_force", "the readout w reads tanh(x)")
    check_range("rule.num_validation_trials", num_validation_trials, 1, integer=True)
    check_range("rule.error_trigger", error_trigger, 0, task.num_steps - 1, integer=True)
    check_choice("rule.output_activation", output_activation, ("tanh", "linear"))
    check_range("rule.num_settle_trials", num_settle_trials, 0, integer=True)
    readout = readout if readout is not None else LinearReadout(task.output_size)
    n, n_in, n_out = cell.hidden, task.input_size, task.output_size
    linear = output_activation == "linear"
    steps = jnp.arange(task.num_steps)

    def schedule(hp):
        valid = steps < hp.task.trial_length
        return ((steps == 0) | (steps >= error_trigger)) & valid, valid

    def run_driven(driven, x, trial_inputs, signal, hp):
        _, valid = schedule(hp)

        def step(x, xs):
            u, f, ok = xs
            return jnp.where(ok, driven_step(cell.alpha, driven, x, jnp.concatenate([u, f, f])), x), None

        return jax.lax.scan(step, x, (trial_inputs, signal, valid))[0]

    def init(key, hp):
        key_cell, key_driven, key_settle = jax.random.split(key, 3)
        cell_params = init_params(cell, key_cell, n_in)
        inner = {**cell_params["params"], "W_rec": jnp.zeros((n, n), jnp.float32)}
        readout_shapes = jax.eval_shape(readout.init, key_cell, jnp.zeros((n,), jnp.float32))
        params = {"cell": {**cell_params, "params": inner},
                  "readout": jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), readout_shapes)}
        # one draw for D: columns [J_D | U_D | x_D(0)]
        draw = jax.random.normal(key_driven, (n, n + n_in + 2 * n_out + 1), jnp.float32)
        driven = DrivenNetwork(J=hp.gain * draw[:, :n] / jnp.sqrt(jnp.float32(n)),
                               W_in=cell.input_scale * draw[:, n:-1])
        x_driven = hp.init_state_scale * draw[:, -1]
        if num_settle_trials:
            trials = task.sample(key_settle, hp.task, num_settle_trials)
            signal = trial_signal(trials)
            x_driven = jax.lax.fori_loop(
                0, num_settle_trials, lambda i, x: run_driven(driven, x, trials.inputs[i], signal[i], hp), x_driven
            )
        P = jnp.eye(n, dtype=jnp.float32) / hp.ff_alpha
        return FullForceState(params=params, P=P, driven=driven, x_driven=x_driven, step=jnp.zeros((), jnp.int32))

    def update(key, state, hp):
        key_trial, key_x0 = jax.random.split(key)
        trials = task.sample(key_trial, hp.task, 1)
        x0 = hp.init_state_scale * jax.random.normal(key_x0, (n,), jnp.float32)
        params, P, x_driven, z = train_trial(
            cell, state.params, state.P, state.driven, x0, state.x_driven,
            trials.inputs[0], trial_signal(trials)[0], *schedule(hp), linear_output=linear,
        )
        new_state = FullForceState(params=params, P=P, driven=state.driven, x_driven=x_driven, step=state.step + 1)
        return new_state, {"loss": task.loss(z[None], trials)}

    def outputs(params, x0, inputs):  # x0 [B, N], inputs [B, T, M]; only the read-outs leave the time loop
        y = rollout_trials(cell, params["cell"], x0, inputs, readout=lambda h: readout.apply(params["readout"], h))
        return y if linear else jnp.tanh(y)

    def evaluate(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.validation_trials(key_trials, hp.task, num_validation_trials)
        x0 = hp.init_state_scale * jax.random.normal(key_x0, (n,), jnp.float32)
        z = outputs(state.params, jnp.broadcast_to(x0, (num_validation_trials, n)), trials.inputs)
        return {"accuracy": jnp.mean(task.accuracy(z, trials)), "loss": task.loss(z, trials)}

    default_hparams = make_hparams(FullForceHParams, ff_alpha=RDM_ALPHA if getattr(task, "num_contexts", 0) == 0
                                   else NCDI_ALPHA, task=task.default_params)
    return LearningRule(init=init, update=update, evaluate=evaluate, network=lambda state: state.params,
                        default_hparams=default_hparams, name="full_force")


def _check_full_force(values) -> None:
    if "ff_alpha" in values:
        check_range("rule.ff_alpha", values["ff_alpha"], 0.0, low_open=True)
    check_range("rule.init_state_scale", values["init_state_scale"], 0.0)
    check_range("rule.error_trigger", values["error_trigger"], 0, integer=True)
    check_choice("rule.output_activation", values["output_activation"], ("tanh", "linear"))
    check_range("rule.num_settle_trials", values["num_settle_trials"], 0, integer=True)
    check_range("rule.num_validation_trials", values["num_validation_trials"], 1, integer=True)


# ``ff_alpha`` has no config default on purpose: left out of [rule], each member gets the study's
# value for its task from the factory (50,000 RDM, 10,000 CDI/N-CDI), so one grid over tasks
# reproduces the study; set it in [rule] to override (or sweep) it for every task.


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.tasks.registry import make

    task, params = make("rdm", num_steps=8)
    rule = full_force(CTRNN(6, alpha=0.1, activation="tanh", output="rate"), task, readout=LinearReadout(1),
                      error_trigger=2, num_settle_trials=1, num_validation_trials=8)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "full_force",
    full_force,
    static={"error_trigger", "output_activation", "num_settle_trials", "num_validation_trials"},
    hparams_cls=FullForceHParams,
    check=_check_full_force,
    model_defaults={"activation": "tanh", "output": "rate"},
    example=conformance_example,
)

"""Open-loop teacher–student training: a student controller imitates a teacher's controls.

Ger & Barak (NeurIPS 2025, arXiv 2505.13567); the authors' open-loop teacher–student for the
double integrator and for tracking (tracking notebook, cell 5). Teacher and student are controllers of the same architecture
(``{"cell", "readout"}`` params, see :mod:`jaxrnn.rules.closed_loop`); both start from
``h_0 = 0`` and see the same inputs; only the student learns:

- ``white_noise=True`` (the authors' double-integrator notebook): inputs ``y_t ~ N(0, 1)``
  i.i.d. over trials, steps and input dims (``normal(key, [B, S, c])``), no plant; both
  controllers are called at every step, ``t = 0`` included (unlike the closed loop)::

      L = Σ_{t<T} mean_{b, j} (u^s_{t,b,j} − u^T_{t,b,j})² · dt

- ``white_noise=False``: both see the observation of a plant driven by the **teacher's**
  controls, exactly the teacher's closed loop (integrator: ``u_0 = 0``, no call at ``t = 0``,
  so step 0 adds nothing — our choice, the authors' code has no such run; tracking: called
  every step, inputs ``[x, y, r_x, r_y]`` — the authors' tracking student, Ger & Barak's code, tracking task).
  For tracking (either variant) ``L`` is divided by ``T`` as the authors' tracking loss.

``dt`` and ``T = min(task.max_steps_in_episode, num_steps)`` are the plant's (sweepable), the
optimizer, clipping and trainable mask are those of :func:`~jaxrnn.rules.closed_loop.closed_loop`
(defaults: SGD 1e-2, clip 1, every parameter trained — the authors' student trains ``W_in``
also for tracking). ``evaluate`` is the closed-loop rule's: the student's closed-loop
``test_cost`` from ``num_test`` initial states drawn from the key, so closed- and open-loop
members sit on one axis.

Initialisation. The student is drawn exactly as the closed-loop rule draws its controller
(:func:`~jaxrnn.rules.controller.init_controller`): with the same seed, gain, cell and readout
it *is* the closed-loop member's update-0 network — the authors' student = closed-loop
epoch 0.

Where the teacher lives. The teacher is an array pytree, held in the **state**
(``OpenLoopState.teacher``), not in the closure: a population of students may have different
teachers and is vmapped like any other state. ``init`` picks it from a *teacher bank* — the
factory's ``teacher_params`` (one network, or networks stacked on a leading axis) or the final
(``teacher_snapshot``) params of every member of a results store ``teacher`` (a run directory
written by ``jaxrnn run``) — by the sweepable index ``hp.teacher_member``. A config thus says::

    [rule]
    name = "open_loop"
    teacher = "runs/ger-barak"        # static: the closed-loop run (relative to the working dir)
    teacher_member = [0, 1, 2]        # dynamic: one student per teacher, one program

The bank must match the student's parameter shapes exactly (a store whose groups differ in
``hidden`` is NaN-padded and is refused). ``teacher_member`` must index the bank (checked
eagerly for a store; for ``teacher_params`` JAX clamps out-of-range indices). Pairing a student
with its teacher's seed needs the seed axis and ``teacher_member`` swept together, which the
Cartesian grid cannot express: run one config per pairing, or use the Python API.

Configuration tiers:
  static (factory arguments): cell, plant, teacher bank (``teacher_params`` / ``teacher``,
    ``teacher_snapshot``), batch, num_steps, white_noise, optimizer, trainable, readout, num_test.
  sweepable (:class:`OpenLoopHParams`): learning rate, clip norm, gain g of the student's
    init, ``teacher_member``, plant params.
  state (:class:`OpenLoopState`): student params, teacher params, optimizer state, count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrnn._checks import check_range, fail
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.controller import (
    check_common,
    controller_sizes,
    controller_step,
    default_readout,
    default_gain,
    episode_sum,
    evaluator,
    gradient_step,
    init_controller,
    initial_carry,
    plant_rollouts,
    sample_episodes,
    select_tree,
    setup,
)
from jaxrnn.rules.registry import register_rule

STORE_NAME = "results.zarr"


@struct.dataclass(kw_only=True)
class OpenLoopHParams:
    """Sweepable hyper-parameters of :func:`open_loop` (all pytree leaves).

    Attributes:
      learning_rate: SGD/Adam step size (1e-2). max_grad_norm: clip (1.0; ``inf`` off).
      gain: recurrent gain g of the student's initial ``W_rec`` (default as
        :func:`~jaxrnn.rules.controller.default_gain`).
      teacher_member: int32 index into the teacher bank (0).
      task: the plant's params.
    """

    learning_rate: jax.Array = hparam(1e-2)
    max_grad_norm: jax.Array = hparam(1.0)
    gain: jax.Array = hparam()  # default by cell and plant (default_gain)
    teacher_member: jax.Array = hparam(0, dtype=jnp.int32)
    task: Any


@struct.dataclass
class OpenLoopState:
    """Student params, the (fixed) teacher params, optimizer state and update count."""

    params: Any
    teacher: Any
    opt_state: Any
    step: jax.Array


def _store_path(path) -> Path:
    path = Path(path)
    store = path / STORE_NAME if (path / STORE_NAME).exists() else path
    if not store.exists():
        fail("rule.teacher", str(path), "a run directory written by `jaxrnn run` (containing results.zarr)")
    return store


def _leaf_name(path) -> str:
    names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    return "params." + ".".join(n for n in names if n != "params")


def load_teacher_bank(path, like, snapshot: int = -1):
    """Params of every member of a results store at snapshot index ``snapshot``, ``[K, ...]``.

    ``like`` is the student's params (or their shapes); variable ``params.cell.W_rec`` etc.
    (the runner's names) fill the matching leaves.
    """
    import xarray as xr

    with xr.open_zarr(_store_path(path), consolidated=True) as ds:
        leaves, _ = jax.tree_util.tree_flatten_with_path(like)
        bank = []
        for key_path, leaf in leaves:
            name = _leaf_name(key_path)
            if name not in ds:
                fail("rule.teacher", str(path), f"a results store with the student's parameter {name!r}")
            values = np.asarray(ds[name].isel(snapshot=snapshot).values)
            if values.shape[1:] != tuple(leaf.shape):
                fail("rule.teacher", str(path), f"a store whose {name} has the student's shape {tuple(leaf.shape)} "
                     f"(got {values.shape[1:]} per member)")
            bank.append(jnp.asarray(values, leaf.dtype))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), bank)


def store_size(path) -> int:
    """Number of members of a results store."""
    import xarray as xr

    with xr.open_zarr(_store_path(path), consolidated=True) as ds:
        return int(ds.sizes["member"])


def teacher_bank(teacher_params, like):
    """``teacher_params`` (one network or a stack ``[K, ...]``) as a bank ``[K, ...]``."""
    like_leaves, like_def = jax.tree_util.tree_flatten(like)
    leaves, treedef = jax.tree_util.tree_flatten(teacher_params)
    if treedef != like_def:
        fail("teacher_params", treedef, f"a network pytree like the student's params {like_def}")
    shapes = [tuple(jnp.shape(a)) for a in leaves]
    if all(s == tuple(b.shape) for s, b in zip(shapes, like_leaves)):
        return jax.tree.map(lambda a, b: jnp.asarray(a, b.dtype)[None], teacher_params, like)
    sizes = {s[0] for s in shapes if len(s)}
    if len(sizes) == 1 and all(s[1:] == tuple(b.shape) for s, b in zip(shapes, like_leaves)):
        return jax.tree.map(lambda a, b: jnp.asarray(a, b.dtype), teacher_params, like)
    fail("teacher_params", shapes, f"the student's shapes {[tuple(b.shape) for b in like_leaves]}, "
         "optionally with one leading teacher axis")


def imitation_loss(plant, student_u, teacher_u, task_params, num_steps: int):
    """``Σ_{t<T} mean_{b,j} (u^s − u^T)²·dt`` (tracking: ``/T``) of controls ``[B, S, m]``."""
    per_step = jnp.mean((student_u - teacher_u) ** 2, axis=(0, 2))
    return episode_sum(plant, per_step, task_params, num_steps)


def white_noise_controls(cell, readout, student, teacher, inputs, task_params, num_steps: int):
    """Student and teacher controls ``[B, S, m]`` on white-noise inputs ``[B, S, c]``.

    Both called at every step from ``h_0 = 0``; the carries freeze from ``t = T`` on.
    """
    input_size = inputs.shape[-1]
    h0 = initial_carry(cell, input_size)
    limit = jnp.minimum(task_params.max_steps_in_episode, num_steps)

    def trial(ys):
        def step(carry, xs):
            y, t = xs
            hs, us = controller_step(cell, readout, student, carry[0], y)
            ht, ut = controller_step(cell, readout, teacher, carry[1], y)
            return select_tree(t < limit, (hs, ht), carry), (us, ut)

        _, (us, ut) = jax.lax.scan(step, (h0, h0), (ys, jnp.arange(num_steps)))
        return us, ut

    return jax.vmap(trial)(inputs)


def teacher_driven_controls(cell, readout, plant, student, teacher, episodes, task_params, num_steps: int):
    """Student and teacher controls ``[B, S, m]`` along the teacher's closed loop."""
    input_size, _ = controller_sizes(plant)
    h0 = initial_carry(cell, input_size)

    def policy(h, y):
        hs, us = controller_step(cell, readout, student, h[0], y)
        ht, ut = controller_step(cell, readout, teacher, h[1], y)
        return (hs, ht), ut, us

    _, ut, us = plant_rollouts(plant, policy, (h0, h0), episodes, task_params, num_steps)
    return us, ut


def open_loop(
    cell,
    plant,
    teacher_params=None,
    *,
    teacher: str | None = None,
    teacher_snapshot: int = -1,
    batch: int = 100,
    num_steps: int | None = None,
    white_noise: bool = True,
    optimizer: str = "sgd",
    trainable: tuple[str, ...] | None = None,
    readout=None,
    num_test: int = 10,
) -> LearningRule:
    """Build the open-loop teacher–student rule (module docstring).

    Args:
      cell, plant, batch, num_steps, optimizer, readout, num_test: as
        :func:`~jaxrnn.rules.closed_loop.closed_loop`.
      teacher_params: the teacher bank: one ``{"cell", "readout"}`` network, or several stacked
        on a leading axis (``hp.teacher_member`` picks one).
      teacher: instead, a results-store path (run directory); the bank is every member's
        params at snapshot index ``teacher_snapshot`` (−1: the last, the final network).
      white_noise: white-noise inputs (True) or the teacher-driven plant (False).
      trainable: parameter names that learn; ``None``: all (all but ``W_in`` — the frozen input
        vector ``m`` — for the rank-1 ``LowRankRNN(parametrization="ger_barak")``).
    """
    structure = setup(cell, plant, batch=batch, num_steps=num_steps, optimizer=optimizer, trainable=trainable,
                      readout=readout, num_test=num_test, freeze_tracking_input=False)
    readout, num_steps, input_size = structure.readout, structure.num_steps, structure.input_size
    like = jax.eval_shape(lambda k: init_controller(cell, readout, k, input_size, 1.0), jax.random.PRNGKey(0))
    if (teacher_params is None) == (teacher is None):
        fail("rule.teacher", teacher, "given exactly once: teacher_params (arrays) or teacher (a results store)")
    if teacher is not None:
        bank = load_teacher_bank(teacher, like, teacher_snapshot)
    else:
        bank = teacher_bank(teacher_params, like)

    def init(key, hp):
        params = init_controller(cell, readout, key, input_size, hp.gain)
        chosen = jax.tree.map(lambda b: b[hp.teacher_member], bank)
        return OpenLoopState(params=params, teacher=chosen, opt_state=structure.optimizer.init(params),
                             step=jnp.zeros((), jnp.int32))

    def update(key, state, hp):
        teacher_net = jax.lax.stop_gradient(state.teacher)
        if white_noise:
            inputs = jax.random.normal(key, (batch, num_steps, input_size), jnp.float32)
        else:
            episodes = sample_episodes(key, plant, hp.task, batch)

        def objective(student):
            if white_noise:
                us, ut = white_noise_controls(cell, readout, student, teacher_net, inputs, hp.task, num_steps)
            else:
                us, ut = teacher_driven_controls(cell, readout, plant, student, teacher_net, episodes, hp.task,
                                                 num_steps)
            return imitation_loss(plant, us, ut, hp.task, num_steps), ()

        params, opt_state, loss, _, norm = gradient_step(structure, state.params, state.opt_state, objective, hp)
        new_state = state.replace(params=params, opt_state=opt_state, step=state.step + 1)
        return new_state, {"loss": loss, "grad_norm": norm}

    default_hparams = make_hparams(OpenLoopHParams, gain=default_gain(cell, plant), task=plant.default_params)
    return LearningRule(init=init, update=update, evaluate=evaluator(cell, plant, structure, num_test),
                        network=lambda state: state.params, default_hparams=default_hparams, name="open_loop")


def _check_open_loop(values) -> None:
    check_common(values)
    check_range("rule.teacher_member", values["teacher_member"], 0, integer=True)
    if not isinstance(values["teacher"], str):
        fail("rule.teacher", values["teacher"], "a results-store path (a run directory written by `jaxrnn run`)")
    size = store_size(values["teacher"])
    check_range("rule.teacher_member", values["teacher_member"], 0, size - 1, integer=True)
    check_range("rule.teacher_snapshot", values["teacher_snapshot"], integer=True)


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.models.cells import CTRNN
    from jaxrnn.tasks.registry import make

    plant, params = make("double-integrator", max_steps_in_episode=6)
    cell = CTRNN(6, alpha=1.0, activation="tanh", output="rate")
    input_size, control_size = controller_sizes(plant)
    readout = default_readout(cell, control_size)
    teachers = jax.vmap(lambda k: init_controller(cell, readout, k, input_size, 1.0))(
        jax.random.split(jax.random.PRNGKey(7), 2))  # a bank of two untrained teachers
    rule = open_loop(cell, plant, teachers, batch=4, num_test=2)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "open_loop",
    open_loop,
    static={"teacher", "teacher_snapshot", "batch", "num_steps", "white_noise", "optimizer", "trainable",
            "num_test"},
    hparams_cls=OpenLoopHParams,
    check=_check_open_loop,
    example=conformance_example,
)

"""Pieces shared by the controller rules :mod:`~jaxrnn.rules.closed_loop` and :mod:`~jaxrnn.rules.open_loop`.

Ger & Barak (NeurIPS 2025, arXiv 2505.13567), Ger & Barak's code: the controller
(``{"cell", "readout"}`` params, ``h, r = cell(h, y)``, ``u = W_out r``), batches of episodes of
the two differentiable plants (``Integrator``, ``Tracking2D``), one-trial rollouts under any
``policy(h, obs) -> (h, u, extra)`` through the plants' pure ``plant_step``, the closed-loop cost,
and the masked, clipped SGD/Adam step (built from :mod:`jaxrnn.rules.training`). The equations
are in :mod:`jaxrnn.rules.closed_loop`.

Episode length: the scans run ``num_steps`` (static) steps; ``T = min(task.max_steps_in_episode,
num_steps)`` (sweepable) masks the loss, and the carries are frozen from step ``T`` on, so no
value past the member's own episode can overflow into its gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.cells import CTRNN, LowRankRNN, init_params
from jaxrnn.rules.integrator_loop import integrator_ctrnn_cost, process_noise
from jaxrnn.rules import training
from jaxrnn.rules.training import clip_by_global_norm, optimizer_step, trainable_mask
from jaxrnn.tasks import integrator, tracking

OPTIMIZERS = ("sgd", "adam")


class ControllerReadout(nn.Module):
    """``u = W_out r`` without bias; ``W_out[m, N] ~ N(0, scale²)`` or ``U(−scale, scale)``.

    Attributes (static): features m; distribution ``"normal"`` or ``"uniform"``; scale
    (``None``: ``1/N``, Ger & Barak's ``Who ~ N(0, std 1/N)``).
    """

    features: int = 1
    distribution: str = "normal"
    scale: float | None = None

    @nn.compact
    def __call__(self, r: jax.Array) -> jax.Array:
        n = r.shape[-1]
        s = 1.0 / n if self.scale is None else self.scale
        if self.distribution == "uniform":
            init = lambda k, shape, dtype=jnp.float32: jax.random.uniform(k, shape, dtype, -s, s)  # noqa: E731
        else:
            init = lambda k, shape, dtype=jnp.float32: s * jax.random.normal(k, shape, dtype)  # noqa: E731
        return self.param("W_out", init, (self.features, n)) @ r


class Episodes(NamedTuple):
    """A batch of episode starts: ``x0[B, n]``, ``reference[B, R, 2]`` (tracking; else None),
    ``noise_keys[B]`` (process noise of each trial)."""

    x0: jax.Array
    reference: jax.Array | None
    noise_keys: jax.Array


# ----------------------------------------------------------------------------- plants


def check_plant(plant) -> None:
    if not isinstance(plant, (integrator.Integrator, tracking.Tracking2D)):
        fail("task", plant, "a differentiable plant: 'double-integrator' (Integrator) or 'tracking-2d' (Tracking2D)")


def is_tracking(plant) -> bool:
    return isinstance(plant, tracking.Tracking2D)


def controller_sizes(plant) -> tuple[int, int]:
    """``(input size, control size)``: ``(c, m)`` for the integrator, ``(4, 2)`` for tracking."""
    check_plant(plant)
    if is_tracking(plant):
        return 4, 2
    return plant.observation_size, plant.control_size


def resolve_num_steps(plant, num_steps: int | None) -> int:
    """``num_steps`` or the plant's default episode length (50, or the reference length)."""
    if num_steps is None:
        return plant.num_samples if is_tracking(plant) else int(plant.default_params.max_steps_in_episode)
    high = plant.num_samples if is_tracking(plant) else None
    check_range("rule.num_steps", num_steps, 1, high, integer=True)
    return int(num_steps)


def episode_mask(task_params, num_steps: int) -> jax.Array:
    """``[S]`` bool, ``t < T`` with ``T = min(task.max_steps_in_episode, num_steps)``."""
    return jnp.arange(num_steps) < jnp.minimum(task_params.max_steps_in_episode, num_steps)


def sample_episodes(key: jax.Array, plant, task_params, batch: int) -> Episodes:
    """``key → (key_x0, key_reference, key_noise)``; ``x0 ~ U(−w, w)``, fresh references."""
    key_x0, key_reference, key_noise = jax.random.split(key, 3)
    size = 4 if is_tracking(plant) else plant.order
    x0 = jax.random.uniform(key_x0, (batch, size), jnp.float32, -1.0, 1.0) * task_params.init_half_width
    reference = None
    if is_tracking(plant):
        reference = jax.vmap(lambda k: plant.reference(k, task_params))(jax.random.split(key_reference, batch))
    return Episodes(x0, reference, jax.random.split(key_noise, batch))


def select_tree(flag, new, old):
    """``new`` where ``flag`` else ``old``, leafwise (freezes a carry)."""
    return jax.tree.map(lambda n, o: jnp.where(flag, n, o), new, old)


def integrator_rollout(policy, h0, x0, noise_key, task_params, num_steps: int, observation_size: int,
                       skip_first: bool = True):
    """One integrator trial under ``policy(h, y) -> (h, u, extra)``.

    ``skip_first``: ``u_0 = 0``, ``extra_0 = 0`` and ``h`` unchanged at ``t = 0``. The carry is
    frozen from ``t = T`` on. Returns ``xs[S, k]`` (pre-step states ``x_t``), ``us[S, m]``
    (applied controls) and ``extras[S, ...]``.
    """
    limit = jnp.minimum(task_params.max_steps_in_episode, num_steps)

    def step(carry, inputs):
        x, h = carry
        t, key = inputs
        h_new, u, extra = policy(h, integrator.observe(x, task_params, observation_size))
        if skip_first:
            called = t > 0
            h_new = select_tree(called, h_new, h)
            u, extra = jax.tree.map(lambda a: jnp.where(called, a, 0.0), (u, extra))
        x_next = integrator.plant_step(x, u, task_params, key)
        return select_tree(t < limit, (x_next, h_new), (x, h)), (x, u, extra)

    keys = jax.random.split(noise_key, num_steps)
    _, (xs, us, extras) = jax.lax.scan(step, (x0, h0), (jnp.arange(num_steps), keys))
    return xs, us, extras


def tracking_rollout(policy, h0, s0, reference, noise_key, task_params, num_steps: int):
    """One tracking trial under ``policy(h, obs) -> (h, u, extra)`` (called every step).

    Returns ``errors[S]`` (``‖pos(s_{i+1}) − r(t_i)‖²``), ``us[S, 2]`` and ``extras[S, ...]``;
    the carry is frozen from ``i = T`` on.
    """
    limit = jnp.minimum(task_params.max_steps_in_episode, num_steps)

    def step(carry, inputs):
        s, h = carry
        target, t, key = inputs
        h_new, u, extra = policy(h, jnp.concatenate([tracking.positions(s), target]))
        s_next = tracking.plant_step(s, u, task_params, key)
        error = tracking.tracking_error(s_next, target)
        return select_tree(t < limit, (s_next, h_new), (s, h)), (error, u, extra)

    keys = jax.random.split(noise_key, num_steps)
    xs = (reference[:num_steps], jnp.arange(num_steps), keys)
    _, (errors, us, extras) = jax.lax.scan(step, (s0, h0), xs)
    return errors, us, extras


def plant_rollouts(plant, policy, h0, episodes: Episodes, task_params, num_steps: int):
    """:func:`integrator_rollout` / :func:`tracking_rollout` over the batch: ``([B, S, ...],)*3``."""
    if is_tracking(plant):
        run = lambda s0, ref, k: tracking_rollout(policy, h0, s0, ref, k, task_params, num_steps)  # noqa: E731
        return jax.vmap(run)(episodes.x0, episodes.reference, episodes.noise_keys)
    run = lambda x0, k: integrator_rollout(  # noqa: E731
        policy, h0, x0, k, task_params, num_steps, plant.observation_size)
    return jax.vmap(run)(episodes.x0, episodes.noise_keys)


def episode_sum(plant, per_step: jax.Array, task_params, num_steps: int) -> jax.Array:
    """``Σ_{t<T} per_step_t · dt`` (tracking: ``/ T`` as well) for ``per_step[S]``."""
    mask = episode_mask(task_params, num_steps)
    total = jnp.sum(jnp.where(mask, per_step, 0.0)) * task_params.dt
    if is_tracking(plant):
        total = total / jnp.sum(mask)
    return total


# ----------------------------------------------------------------------------- controller


def default_readout(cell, control_size: int) -> ControllerReadout:
    """Ger & Barak's ``W_out``: ``U(−input_scale, input_scale)`` for ``weight_init="uniform"``
    cells (tracking), ``z ~ U(−1/√N, 1/√N)`` for ``LowRankRNN(parametrization="ger_barak")``
    (their rank-1 ``P_Model``), else ``N(0, 1/N²)``."""
    if getattr(cell, "weight_init", None) == "uniform":
        return ControllerReadout(control_size, "uniform", float(cell.input_scale))
    if is_ger_barak_low_rank(cell):
        return ControllerReadout(control_size, "uniform", float(1.0 / np.sqrt(cell.hidden)))
    return ControllerReadout(control_size, "normal")


def is_ger_barak_low_rank(cell) -> bool:
    """Whether ``cell`` is a ``LowRankRNN`` in Ger & Barak's parametrisation (``W = U Vᵀ``)."""
    return isinstance(cell, LowRankRNN) and cell.parametrization == "ger_barak"


def default_gain(cell, plant) -> float:
    """The rules' default recurrent gain g: the authors' 0.2 (tracking) or 0.1 (integrator CTRNN),
    and 1 for ``LowRankRNN(parametrization="ger_barak")`` — g scales ``U``, and their rank-1
    model's ``u ~ N(0, 1/N)`` is unscaled (their g multiplies a frozen random bulk, 0 there)."""
    if is_ger_barak_low_rank(cell):
        return 1.0
    return 0.2 if is_tracking(plant) else 0.1


def init_controller(cell, readout, key: jax.Array, input_size: int, gain) -> dict[str, Any]:
    """``{"cell", "readout"}`` params from ``key`` (``key_cell, key_readout = split(key)``).

    Shared by both rules: a closed-loop and an open-loop member with the same seed and gain
    start from the same network (the authors' student = closed-loop epoch 0).
    """
    key_cell, key_readout = jax.random.split(key)
    return {
        "cell": init_params(cell, key_cell, input_size, gain),
        "readout": readout.init(key_readout, jnp.zeros((cell.hidden,), jnp.float32)),
    }


def initial_carry(cell, input_size: int):
    """``h_0 = 0`` of the cell."""
    return cell.initialize_carry(jax.random.PRNGKey(0), (input_size,))


def controller_step(cell, readout, params, h, y):
    """``h, r = cell(h, y)``; ``u = readout(r)``. One trial: ``h[N], y[c] -> (h[N], u[m])``."""
    h, r = cell.apply(params["cell"], h, y)
    return h, readout.apply(params["readout"], r)


def param_names(cell, readout, input_size: int) -> list[str]:
    shapes = jax.eval_shape(lambda k: init_controller(cell, readout, k, input_size, 1.0), jax.random.PRNGKey(0))
    return sorted({getattr(p[-1], "key", str(p[-1])) for p, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]})


def resolve_trainable(trainable, names: list[str], default) -> tuple[str, ...] | None:
    """Validated ``trainable`` names (``None`` → ``default``; ``default`` ``None`` = all)."""
    trainable = default if trainable is None else tuple(trainable)
    for name in trainable or ():
        if name not in names:
            fail("rule.trainable", list(trainable), "names of network parameters: " + ", ".join(names))
    return trainable


# ----------------------------------------------------------------------------- costs


def has_fast_loop(cell, readout, plant) -> bool:
    """Whether :func:`closed_loop_cost` runs :mod:`~jaxrnn.rules.integrator_loop`: a ``CTRNN``
    controller with a :class:`ControllerReadout` on the integrator."""
    return type(cell) is CTRNN and type(readout) is ControllerReadout and not is_tracking(plant)


def closed_loop_cost(cell, readout, plant, params, episodes: Episodes, task_params, reg_u, num_steps: int):
    """``(L, state part of L)`` of the closed loop (module docstring) on ``episodes``.

    A ``CTRNN`` with a :class:`ControllerReadout` on the integrator takes the fast path of
    :mod:`~jaxrnn.rules.integrator_loop` (same numbers up to float32 rounding).
    """
    if has_fast_loop(cell, readout, plant):
        noise = process_noise(episodes.noise_keys, task_params, num_steps, plant.order)
        return integrator_ctrnn_cost(cell, plant, params, episodes.x0, noise, task_params, reg_u, num_steps)
    input_size, _ = controller_sizes(plant)

    def policy(h, y):
        h, u = controller_step(cell, readout, params, h, y)
        return h, u, ()

    states, us, _ = plant_rollouts(plant, policy, initial_carry(cell, input_size), episodes, task_params, num_steps)
    if is_tracking(plant):
        state_per_step = jnp.mean(states, axis=0)  # states are the tracking errors [B, S]
    else:
        state_per_step = jnp.mean(states**2, axis=(0, 2))
    control_per_step = jnp.sum(us**2, axis=(0, 2))
    state_cost = episode_sum(plant, state_per_step, task_params, num_steps)
    return state_cost + reg_u * episode_sum(plant, control_per_step, task_params, num_steps), state_cost


def evaluation_cost(cell, readout, plant, params, key: jax.Array, task_params, num_test: int, num_steps: int):
    """Closed-loop state cost (``reg_u = 0``) from ``num_test`` episodes drawn from ``key``."""
    episodes = sample_episodes(key, plant, task_params, num_test)
    return closed_loop_cost(cell, readout, plant, params, episodes, task_params, 0.0, num_steps)[1]


# ----------------------------------------------------------------------------- optimizer


def make_optimizer(name: str) -> optax.GradientTransformation:
    """The direction of the step: ``identity`` (SGD) or ``scale_by_adam`` (torch defaults)."""
    check_choice("rule.optimizer", name, OPTIMIZERS)
    return optax.identity() if name == "sgd" else optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


class Setup(NamedTuple):
    """Static structure shared by the controller rules (see :func:`setup`)."""

    num_steps: int
    input_size: int
    readout: Any
    trainable: tuple[str, ...] | None
    optimizer: optax.GradientTransformation


def setup(cell, plant, *, batch, num_steps, optimizer, trainable, readout, num_test, freeze_tracking_input) -> Setup:
    """Validate the static arguments of a controller rule and resolve their defaults."""
    check_plant(plant)
    check_range("rule.batch", batch, 1, integer=True)
    check_range("rule.num_test", num_test, 1, integer=True)
    input_size, control_size = controller_sizes(plant)
    readout = readout if readout is not None else default_readout(cell, control_size)
    names = param_names(cell, readout, input_size)
    # Frozen input vector by default: the authors' closed loop on tracking, and Ger & Barak's
    # rank-1 model (W = u vᵀ, input vector m frozen) under either rule.
    rank_one = isinstance(cell, LowRankRNN) and cell.parametrization == "ger_barak"
    freeze_input = rank_one or (freeze_tracking_input and is_tracking(plant))
    default = tuple(n for n in names if n != "W_in") if freeze_input else None
    return Setup(resolve_num_steps(plant, num_steps), input_size, readout,
                 resolve_trainable(trainable, names, default), make_optimizer(optimizer))


def masked_value_and_grad(structure: Setup, params, objective):
    """``((loss, aux), grads)`` of ``objective(params) -> (loss, aux)`` for the trainable leaves
    (exact zeros elsewhere, never computed)."""
    mask = trainable_mask(params, structure.trainable)
    return training.masked_value_and_grad(objective, params, mask, has_aux=True)


def apply_gradients(structure: Setup, params, opt_state, grads, hp):
    """One clipped step ``p ← p − lr·direction`` on the trainable leaves.

    Returns ``(params, opt_state, grad_norm)``; ``grad_norm`` is before clipping.
    """
    mask = trainable_mask(params, structure.trainable)
    norm = optax.tree.norm(grads)
    params, opt_state = optimizer_step(structure.optimizer, clip_by_global_norm(grads, hp.max_grad_norm), opt_state,
                                       params, hp.learning_rate, mask)
    return params, opt_state, norm


def gradient_step(structure: Setup, params, opt_state, objective, hp):
    """One masked, clipped step on ``objective(params) -> (loss, aux)``.

    Returns ``(params, opt_state, loss, aux, grad_norm)``; ``grad_norm`` is before clipping.
    """
    (loss, aux), grads = masked_value_and_grad(structure, params, objective)
    params, opt_state, norm = apply_gradients(structure, params, opt_state, grads, hp)
    return params, opt_state, loss, aux, norm


def evaluator(cell, plant, structure: Setup, num_test: int):
    """``evaluate(key, state, hp)`` of both rules: the closed-loop ``test_cost`` of ``state.params``."""

    def evaluate(key, state, hp):
        cost = evaluation_cost(cell, structure.readout, plant, state.params, key, hp.task, num_test,
                               structure.num_steps)
        return {"test_cost": cost, "neg_test_cost": -cost}

    return evaluate


def check_common(values) -> None:
    """Eager validation of the fields both controller rules share."""
    check_range("rule.learning_rate", values["learning_rate"], 0.0, low_open=True)
    if values["max_grad_norm"] != float("inf"):
        check_range("rule.max_grad_norm", values["max_grad_norm"], 0.0, low_open=True)
    check_range("rule.batch", values["batch"], 1, integer=True)
    check_range("rule.num_test", values["num_test"], 1, integer=True)
    if values["num_steps"] is not None:
        check_range("rule.num_steps", values["num_steps"], 1, integer=True)
    check_choice("rule.optimizer", values["optimizer"], OPTIMIZERS)



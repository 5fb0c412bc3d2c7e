"""The closed loop of a CTRNN controller and the integrator plant, laid out for speed.

Ger & Barak (NeurIPS 2025, arXiv 2505.13567), Ger & Barak's code, closed-loop training: the loss of
:func:`~jaxrnn.rules.controller.closed_loop_cost` and its gradient for a
:class:`~jaxrnn.models.CTRNN` controller with the read-out ``u = W_out o``
(``ControllerReadout``) on the :class:`~jaxrnn.tasks.integrator.Integrator` plant — the
numbers of the general path (``jax.vmap`` of a one-trial ``lax.scan``, autodiff) up to float32
rounding. With ``B`` trials, plant state ``x[k, B]``, controller voltage ``v[N, B]`` and rate
``r = f(v)`` (``v_0 = 0``, ``r_0 = f(0)``), noise ``w_t = noise_std·√dt·ε_t``::

    x_1 = clip(A x_0 + w_0)                                 (t = 0: u_0 = 0, controller idle)
    for t = 1 .. S−1:
        v_t = (1 − α) v_{t−1} + α (W_rec r_{t−1} + W_in C x_t + b),   r_t = f(v_t)
        u_t = W_out o_t        (o_t = r_t for output="rate", v_t for output="state")
        x_{t+1} = clip(A x_t + B u_t + w_t, −clamp, clamp)
    L = dt Σ_{t<T} [mean_{i,b} x_{t,i,b}² + reg_u Σ_{j,b} u_{t,j,b}²]

The backward pass is written out. With ``λ_t = ∂L/∂v_t``, ``g_t = ∂L/∂x_t`` (``λ_S = 0``,
``g_S = 0``), for ``t = S−1 .. 1``::

    p = ∂L/∂(A x_t + B u_t + w_t) = 1[|x_{t+1}| < clamp] ⊙ g_{t+1}
    ∂L/∂u_t = 2 dt reg_u 1[t<T] u_t + Bᵀ p
    λ_t = (1 − α) λ_{t+1} + f'(v_t) ⊙ (α W_recᵀ λ_{t+1} + W_outᵀ ∂L/∂u_t)     (rate output;
          for output="state" the read-out term enters without f')
    g_t = (2 dt / (k B)) 1[t<T] x_t + Aᵀ p + Cᵀ α W_inᵀ λ_t
    ∂L/∂W_rec = α Σ_t λ_t r_{t−1}ᵀ,  ∂L/∂W_in = α Σ_t λ_t (C x_t)ᵀ,  ∂L/∂b = α Σ_t λ_t 1,
    ∂L/∂W_out = Σ_t ∂L/∂u_t o_tᵀ

Why it is fast (CPU; numbers in ``benchmarks/results/closed_loop_population-cpu.json``):

1. the trial axis is innermost, so a step's recurrent products are plain ``[N, N] @ [N, B]``
   matmuls, and the plant's and read-out's few rows are small ``dot``s (on XLA:CPU these are
   ~20× faster than the same product written as a broadcast and a sum);
2. the backward pass keeps only ``x_t``, ``u_t`` and the rates ``r_t`` (``f'`` is read off the
   rate) and reads each once; frozen weights get no gradient work;
3. the process noise is drawn before the loop, with the very keys and numbers of the general
   path's per-step draws, and — in :func:`integrator_ctrnn_value_and_grad`, the rule's
   update — not at all when every member's ``noise_std`` is 0 (a ``lax.cond`` on the
   population, so ``noise_std`` stays a sweepable leaf);
4. under ``jax.vmap`` over a population, :func:`integrator_ctrnn_value_and_grad` (a
   ``jax.custom_batching.custom_vmap``) runs the members in groups of :func:`group_size`
   (cache-sized on CPU, thousands of members on an accelerator),
   one group after another: only one group's stored rates are alive at a time (vmapping the
   whole population kept ``[S, P, N, B]`` of them, 1 GB at P = 512, and streamed
   ``[P, N, B]`` arrays through memory at every step, ~2× slower per network at P ≥ 64).

Episode length ``T = min(max_steps_in_episode, S)`` (traced): past it the plant state is frozen
and the controller runs on with its recurrent input gated off, so every value stays finite and
nothing after ``T`` reaches the loss or a gradient.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

from jaxrnn.models.cells import ACTIVATIONS, CTRNN, DERIVATIVE_FROM_RATE
from jaxrnn.tasks import integrator

GROUP_BYTES = 8 * 2**20  # stored rates per group of members run together on CPU (cache-sized)
ACCELERATOR_GROUP_BYTES = 4 * 2**30  # on GPU/TPU: large groups (few sequential steps), bounded memory
WEIGHTS = ("W_rec", "W_in", "b", "W_out")


class LoopSpec(NamedTuple):
    """Static structure: the cell's α, activation and output, the plant's k, m, c."""

    alpha: float
    activation: str
    rate_output: bool
    order: int
    control_size: int
    observation_size: int


def loop_spec(cell: CTRNN, plant: integrator.Integrator) -> LoopSpec:
    return LoopSpec(float(cell.alpha), cell.activation, cell.output == "rate", plant.order, plant.control_size,
                    plant.observation_size)


def standard_normals(noise_keys: jax.Array, num_steps: int, order: int) -> jax.Array:
    """``ε[S, k, B]``: trial ``b``'s step-``t`` draw ``normal(split(noise_keys[b], S)[t], (k,))``,
    the numbers :func:`~jaxrnn.rules.controller.integrator_rollout` draws inside its loop."""
    draw = lambda key: jax.vmap(lambda k: jax.random.normal(k, (order,), jnp.float32))(  # noqa: E731
        jax.random.split(key, num_steps))
    return jnp.transpose(jax.vmap(draw)(noise_keys), (1, 2, 0))


def noise_scale(task_params) -> jax.Array:
    return task_params.noise_std * jnp.sqrt(task_params.dt)


def process_noise(noise_keys: jax.Array, task_params, num_steps: int, order: int) -> jax.Array:
    """``w[S, k, B] = noise_std·√dt·ε`` (differentiable in the params)."""
    return noise_scale(task_params) * standard_normals(noise_keys, num_steps, order)


def _weights(cell: CTRNN, params, dtype):
    p = params["cell"]["params"]
    # an absent bias enters as a constant, so no gradient is formed for it
    bias = p["b"] if cell.use_bias else jax.lax.stop_gradient(jnp.zeros((cell.hidden,), dtype))
    return p["W_rec"], p["W_in"], bias, params["readout"]["params"]["W_out"]


def _plant_args(task_params, reg_u, num_steps: int, dtype):
    return (jnp.asarray(task_params.dt, dtype), jnp.asarray(task_params.clamp, dtype), jnp.asarray(reg_u, dtype),
            jnp.minimum(task_params.max_steps_in_episode, num_steps))


def integrator_ctrnn_cost(cell: CTRNN, plant, params, x0: jax.Array, noise: jax.Array, task_params, reg_u,
                          num_steps: int):
    """``(L, state part of L)`` of ``params = {"cell", "readout"}``, differentiable in every input.

    Args:
      x0: ``[B, k]`` initial plant states.
      noise: ``[S, k, B]`` process noise (:func:`process_noise`).
      task_params: the plant's params (``dt``, ``clamp``, ``max_steps_in_episode`` are read).
      reg_u: the control-cost weight.
      num_steps: S, the static scan length (``noise.shape[0]``).

    Gradients of the weights take the hand-written backward pass; gradients of anything else
    (``x0``, noise, ``dt``, ``clamp``, ``reg_u``; rare) autodiff of the same forward pass.
    """
    return _loop_cost(loop_spec(cell, plant), *_weights(cell, params, x0.dtype), x0.T, noise,
                      *_plant_args(task_params, reg_u, num_steps, x0.dtype))


def integrator_ctrnn_value_and_grad(cell: CTRNN, plant, params, x0: jax.Array, noise_keys: jax.Array, task_params,
                                    reg_u, num_steps: int, trainable):
    """``((L, state part), grads)``: the values of :func:`integrator_ctrnn_cost` on the noise
    of ``noise_keys`` (``[B]``, drawn only when ``noise_std·√dt ≠ 0``) and ``∂L/∂params`` for the
    leaves where the bool pytree ``trainable`` is True (exact zeros elsewhere, not computed).

    One network; ``jax.vmap`` over a population runs it in groups (module docstring). It is
    not itself differentiable (``custom_vmap``); differentiate :func:`integrator_ctrnn_cost`.
    """
    weights = _weights(cell, params, x0.dtype)
    flags = {path[-1].key: bool(flag) for path, flag in jax.tree_util.tree_leaves_with_path(trainable)}
    want = tuple(flags.get(name, False) for name in WEIGHTS)
    value_and_grad = _member_value_and_grad(loop_spec(cell, plant), want, num_steps)
    costs, grads = value_and_grad(*weights, x0.T, noise_keys, noise_scale(task_params),
                                  *_plant_args(task_params, reg_u, num_steps, x0.dtype))
    named = dict(zip(WEIGHTS, grads))
    return costs, jax.tree_util.tree_map_with_path(
        lambda path, w: named[path[-1].key] if flags[path[-1].key] else jnp.zeros_like(w), params)


# ----------------------------------------------------------------------------- forward


def loop_forward(spec: LoopSpec, w_rec, w_in, bias, w_out, x0, noise, dt, clamp, reg_u, limit):
    """``((L, state cost), kept)`` of the loop (module docstring); differentiable by autodiff.

    ``kept = (xs, us, rates, states)`` for the steps ``t = 1 .. S−1``: the plant state ``x_t``
    the step reads (``[S−1, k, B]``), its control ``u_t`` (``[S−1, m, B]``), its new rate
    ``r_t`` (``[S−1, N, B]``) and, for ``output="state"``, its voltage ``v_t`` (else None).
    """
    alpha, activation, rate_output, k, m, c = spec
    f = ACTIVATIONS[activation]
    a, b, _ = integrator.plant_matrices(k, m, c, dt)
    num_steps, _, batch = noise.shape
    v0 = jnp.zeros((w_rec.shape[0], batch), x0.dtype)
    x1 = jnp.where(0 < limit, jnp.clip(a @ x0 + noise[0], -clamp, clamp), x0)

    def step(carry, inputs):
        x, v, r = carry
        t, w = inputs
        live = t < limit
        drive = jnp.where(live, w_rec @ r, 0.0) + w_in @ x[:c] + bias[:, None]
        v = drive if alpha == 1.0 else (1.0 - alpha) * v + alpha * drive
        r = f(v)
        u = w_out @ (r if rate_output else v)
        x_next = jnp.clip(a @ x + b @ u + w, -clamp, clamp)
        return (jnp.where(live, x_next, x), v, r), (x, u, r, None if rate_output else v)

    steps = jnp.arange(1, num_steps)
    _, (xs, us, rates, states) = jax.lax.scan(step, (x1, v0, f(v0)), (steps, noise[1:]))
    live = steps < limit
    x0_cost = jnp.where(0 < limit, jnp.mean(x0**2), 0.0)
    state_cost = (x0_cost + jnp.sum(jnp.where(live, jnp.mean(xs**2, axis=(1, 2)), 0.0))) * dt
    control_cost = jnp.sum(jnp.where(live, jnp.sum(us**2, axis=(1, 2)), 0.0)) * dt
    return (state_cost + reg_u * control_cost, state_cost), (xs, us, rates, states)


# ----------------------------------------------------------------------------- backward


def loop_backward(spec: LoopSpec, want, w_rec, w_in, w_out, dt, clamp, reg_u, limit, kept, ct_loss, ct_state):
    """``(∂/∂W_rec, ∂/∂W_in, ∂/∂b, ∂/∂W_out)`` of ``ct_loss·L + ct_state·(state cost)``
    (module docstring; None where ``want`` is False), from :func:`loop_forward`'s ``kept``.

    A reverse scan over ``t = S−1 .. 1`` that reads what step ``t`` kept, once: the term
    ``λ_{t+1} r_tᵀ`` of ``∂L/∂W_rec`` is taken at step ``t`` (where ``r_t`` is read), and
    ``λ_1 r_0ᵀ`` after the loop.
    """
    xs, us, rates, states = kept
    want_w_rec, want_w_in, want_b, want_w_out = want
    alpha, activation, rate_output, k, m, c = spec
    d_rate = DERIVATIVE_FROM_RATE[activation]
    a, b, _ = integrator.plant_matrices(k, m, c, dt)
    _, n, batch = rates.shape
    live = (jnp.arange(1, rates.shape[0] + 1) < limit).astype(xs.dtype)
    coef_x = (ct_loss + ct_state) * dt * 2.0 / (k * batch) * live  # [S−1]
    coef_u = ct_loss * reg_u * dt * 2.0 * live
    scaled_w_rec_t = alpha * w_rec.T
    x_after = jnp.concatenate([xs[1:], xs[-1:]])  # x_{t+1} (x_S is never read: g_S = 0)
    ones = jnp.ones((batch,), xs.dtype)

    def step(carry, inputs):
        g, lam, g_w_rec, g_w_in, g_b, g_w_out = carry  # g = ∂L/∂x_{t+1}, lam = λ_{t+1}
        x, x_next, u, r, v, cx, cu = inputs  # r = r_t, v = v_t
        p = jnp.where(jnp.abs(x_next) < clamp, g, 0.0)
        g_u = cu * u + b.T @ p
        if want_w_rec:
            g_w_rec = g_w_rec + lam @ r.T
        if rate_output:
            lam = (1.0 - alpha) * lam + d_rate(r) * (scaled_w_rec_t @ lam + w_out.T @ g_u)
        else:
            lam = w_out.T @ g_u + (1.0 - alpha) * lam + d_rate(r) * (scaled_w_rec_t @ lam)
        if want_w_in:
            g_w_in = g_w_in + lam @ x[:c].T
        if want_b:
            g_b = g_b + lam @ ones
        if want_w_out:
            g_w_out = g_w_out + g_u @ (r if rate_output else v).T
        g_y = alpha * (w_in.T @ lam)
        g = cx * x + a.T @ p + jnp.concatenate([g_y, jnp.zeros((k - c, batch), g_y.dtype)])
        return (g, lam, g_w_rec, g_w_in, g_b, g_w_out), None

    zeros = lambda *shape: jnp.zeros(shape, xs.dtype)  # noqa: E731
    carry = (zeros(k, batch), zeros(n, batch), zeros(n, n), zeros(*w_in.shape), zeros(n), zeros(*w_out.shape))
    inputs = (xs, x_after, us, rates, states, coef_x, coef_u)
    (_, lam, g_w_rec, g_w_in, g_b, g_w_out), _ = jax.lax.scan(step, carry, inputs, reverse=True)
    if want_w_rec:
        g_w_rec = g_w_rec + jnp.outer(lam @ ones, ACTIVATIONS[activation](jnp.zeros((n,), xs.dtype)))
    return (alpha * g_w_rec if want_w_rec else None, alpha * g_w_in if want_w_in else None,
            alpha * g_b if want_b else None, g_w_out if want_w_out else None)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _loop_cost(spec, w_rec, w_in, bias, w_out, x0, noise, dt, clamp, reg_u, limit):
    return loop_forward(spec, w_rec, w_in, bias, w_out, x0, noise, dt, clamp, reg_u, limit)[0]


def _needs_autodiff(perturbed) -> bool:
    """Whether anything but the four weights (x0, noise, dt, clamp, reg_u) wants a cotangent."""
    return any(perturbed[4:])


def _loop_cost_fwd(spec, *args):
    values = tuple(a.value for a in args)
    perturbed = tuple(a.perturbed for a in args)
    if _needs_autodiff(perturbed):
        costs, pullback = jax.vjp(lambda *a: loop_forward(spec, *a)[0], *values)
        return costs, (pullback, perturbed)
    costs, kept = loop_forward(spec, *values)
    w_rec, w_in, _, w_out, _, _, dt, clamp, reg_u, limit = values
    return costs, ((w_rec, w_in, w_out, dt, clamp, reg_u, limit, kept), perturbed)


def _loop_cost_bwd(spec, saved, cts):
    residuals, perturbed = saved
    ct_loss, ct_state = (jnp.zeros(()) if isinstance(c, SymbolicZero) else c for c in cts)
    if _needs_autodiff(perturbed):
        grads = residuals((ct_loss, ct_state))
        return tuple(g if want else None for g, want in zip(grads[:-1], perturbed)) + (None,)
    return loop_backward(spec, perturbed[:4], *residuals, ct_loss, ct_state) + (None,) * 6


_loop_cost.defvjp(_loop_cost_fwd, _loop_cost_bwd, symbolic_zeros=True)


# ----------------------------------------------------------------------------- populations


def group_size(num_members: int, num_steps: int, hidden: int, batch: int) -> int:
    """Members run together under ``vmap``: as many as keep their stored rates within
    :data:`GROUP_BYTES` on CPU (4 at the paper's N = 100, B = 100, S = 50), at least 1.

    On an accelerator (``jax.default_backend() != "cpu"`` when the program is traced) the
    budget is :data:`ACCELERATOR_GROUP_BYTES` (2,147 members at the paper's sizes): there every
    group costs ``2 S`` sequential kernel launches of ~10 µs, so groups of 4 left an H100
    launch-bound (64 members: 2,700 network-updates/s; 4,096 × 1,000 updates did not finish in
    150 s, ``benchmarks/results/gpu-closed_loop.json``).
    """
    per_member = 4 * num_steps * hidden * batch
    budget = GROUP_BYTES if jax.default_backend() == "cpu" else ACCELERATOR_GROUP_BYTES
    return max(1, min(num_members, budget // per_member))


def _member_value_and_grad(spec: LoopSpec, want: tuple[bool, ...], num_steps: int):
    """``f(w_rec, w_in, bias, w_out, x0, noise_keys, scale, dt, clamp, reg_u, limit) ->
    ((L, state cost), grads)`` for one network; under ``vmap``, the members in groups
    (:func:`_in_groups`)."""

    def with_noise(noise, *args):
        w_rec, w_in, bias, w_out, x0, dt, clamp, reg_u, limit = args
        costs, kept = loop_forward(spec, w_rec, w_in, bias, w_out, x0, noise, dt, clamp, reg_u, limit)
        grads = loop_backward(spec, want, w_rec, w_in, w_out, dt, clamp, reg_u, limit, kept,
                              jnp.ones((), x0.dtype), jnp.zeros((), x0.dtype))
        weights = (w_rec, w_in, bias, w_out)
        return costs, tuple(jnp.zeros_like(w) if g is None else g for g, w in zip(grads, weights))

    def noise_of(keys, scale, grouped):
        """``scale·ε`` (one network, or ``[G]`` of them), drawn only when some ``scale ≠ 0``:
        zeros otherwise, the same numbers."""
        normals = partial(standard_normals, num_steps=num_steps, order=spec.order)
        if grouped:
            draw = lambda: scale[:, None, None, None] * jax.vmap(normals)(keys)  # noqa: E731
        else:
            draw = lambda: scale * normals(keys)  # noqa: E731
        shape = jax.eval_shape(draw)
        return jax.lax.cond(jnp.any(scale != 0), draw, lambda: jnp.zeros(shape.shape, shape.dtype))

    def split(args):
        """``(noise_keys, scale, the arguments of with_noise)``."""
        return args[5], args[6], args[:5] + args[7:]

    @custom_vmap
    def one(*args):
        keys, scale, rest = split(args)
        return with_noise(noise_of(keys, scale, False), *rest)

    @one.def_vmap
    def grouped(axis_size, in_batched, *args):
        args = tuple(a if batched else jnp.broadcast_to(a, (axis_size,) + jnp.shape(a))
                     for a, batched in zip(args, in_batched))
        size = group_size(axis_size, num_steps, args[0].shape[-1], args[4].shape[-1])  # N, B

        def run_group(group):
            keys, scale, rest = split(group)
            return jax.vmap(with_noise)(noise_of(keys, scale, True), *rest)

        out = _in_groups(run_group, args, axis_size, size)
        return out, jax.tree.map(lambda _: True, out)

    return one


def _in_groups(fn, args, axis_size: int, size: int):
    """``fn`` over consecutive groups of ``size`` members (a ``lax.map``), then the rest."""
    full = axis_size // size * size
    head = jax.tree.map(lambda a: a[:full].reshape((full // size, size) + a.shape[1:]), args)
    out = jax.tree.map(lambda o: o.reshape((full,) + o.shape[2:]), jax.lax.map(fn, head))
    if full == axis_size:
        return out
    tail = fn(jax.tree.map(lambda a: a[full:], args))
    return jax.tree.map(lambda o, t: jnp.concatenate([o, t]), out, tail)

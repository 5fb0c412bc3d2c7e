"""Unrolling a cell over time with ``lax.scan``: one trial, or a batch of trials at once.

- :func:`rollout` runs one trial (vmap it over trials);
- :func:`rollout_trials` runs ``B`` trials at once with the trial axis innermost and returns
  only the read-out, which is what BPTT needs;
- :func:`ctrnn_readout_trials` is the same for a :class:`~jaxrnn.models.CTRNN` with a linear
  read-out, with its backward pass written out by hand (what ``jaxrnn.rules.bptt`` uses).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax.custom_derivatives import SymbolicZero

from jaxrnn.models.cells import ACTIVATIONS, CTRNN, DERIVATIVE_FROM_RATE


def rollout(
    cell: nn.Module, params: Any, carry0: Any, xs: jax.Array, *, remat: bool = False
) -> tuple[Any, jax.Array]:
    """Run ``cell`` over the inputs of one trial.

    ``carry_t, y_t = cell(carry_{t−1}, x_t)`` for ``t = 0 … T−1``.

    Args:
      cell: a flax cell with the ``RNNCellBase`` contract.
      params: its parameters.
      carry0: initial carry (``[N]`` for jaxrnn cells).
      xs: ``[T, M]`` inputs.
      remat: wrap the step in ``jax.checkpoint`` (recompute activations in the backward pass
        instead of storing them; trades FLOPs for memory in long BPTT).

    Returns:
      ``(carries, ys)``: the carry after each step (``[T, N]``) and the outputs (``[T, ·]``).
      Batch over trials with ``jax.vmap(rollout, in_axes=(None, None, 0, 0))``, or use
      :func:`rollout_trials` when only a read-out of the outputs is needed.
    """

    def step(carry, x):
        carry, y = cell.apply(params, carry, x)
        return carry, (carry, y)

    if remat:
        step = jax.checkpoint(step)
    _, (carries, ys) = jax.lax.scan(step, carry0, xs)
    return carries, ys


def rollout_trials(
    cell: nn.Module,
    params: Any,
    carry0: jax.Array,
    xs: jax.Array,
    *,
    readout: Callable[[jax.Array], jax.Array] | None = None,
    remat: bool = False,
) -> jax.Array:
    """Run ``cell`` over ``B`` trials at once and return the read-out of its outputs.

    The numbers of ``jax.vmap(rollout)`` followed by ``readout`` at every step (up to float32
    rounding), laid out for speed: inside the time loop the trial axis is the last (minor)
    axis of every array, so a step's recurrent product for all trials is one
    ``[N, N] @ [N, B]`` matmul — on CPU about 1.6× faster than ``[B, N] @ [N, N]ᵀ``, also
    under a further ``vmap`` over a population — and only the read-out, not the
    ``[T, B, N]`` carries, leaves the loop.

    Args:
      cell: a flax cell with the ``RNNCellBase`` contract (unbatched ``carry[N]``, ``x[M]``).
      params: its parameters.
      carry0: ``[B, N]`` initial carries (an array; tuple carries such as an LSTM's work too).
      xs: ``[B, T, M]`` inputs.
      readout: ``y[N] → out[O]`` applied to the cell output of one trial at every step
        (e.g. ``lambda h: readout.apply(readout_params, h)``); ``None`` keeps the outputs.
      remat: checkpoint the step (the backward pass stores only the carries).

    Returns:
      ``[B, T, O]``: ``readout(y_t)`` for every trial and step (the outputs ``[B, T, N]`` when
      ``readout`` is None).
    """
    carry = jax.tree.map(lambda c: jnp.moveaxis(c, 0, -1), carry0)  # [N, B]
    step_cell = jax.vmap(lambda c, x: cell.apply(params, c, x), in_axes=(-1, -1), out_axes=-1)
    head = None if readout is None else jax.vmap(readout, in_axes=-1, out_axes=-1)

    def step(carry, x):
        carry, y = step_cell(carry, x)
        return carry, (y if head is None else head(y))

    if remat:
        step = jax.checkpoint(step)
    _, ys = jax.lax.scan(step, carry, jnp.moveaxis(xs, 0, -1))  # [T, O, B]
    return jnp.moveaxis(ys, -1, 0)


# --- CTRNN with a linear read-out: the backward pass by hand ------------------------------------

def ctrnn_readout_trials(
    cell: CTRNN, params: Any, readout_params: Any, carry0: jax.Array, xs: jax.Array
) -> jax.Array:
    """``y_t = W_out x_t (+ b_out)`` for ``B`` trials of a :class:`CTRNN`, with a fast gradient.

    The forward pass is ``CTRNN.__call__`` (``output="state"``) from ``x_0 = carry0``,

        x_t = (1 − α) x_{t−1} + α (W_rec f(x_{t−1}) + W_in u_t + b),

    the numbers of :func:`rollout_trials` with a :class:`~jaxrnn.models.LinearReadout` up to
    float32 rounding, with the same trial-axis-last layout. The backward pass is written out
    (a ``jax.custom_vjp``) rather than derived by autodiff:

        λ_t = ∂L/∂x_t = W_outᵀ ∂L/∂y_t + (1 − α) λ_{t+1} + f'(x_t) ⊙ (α W_recᵀ) λ_{t+1},
        ∂L/∂W_rec = α Σ_t λ_t f(x_{t−1})ᵀ,   ∂L/∂W_in = α Σ_t λ_t u_tᵀ,   ∂L/∂b = α Σ_t λ_t

    (sums over trials included). It keeps only the rates ``f(x_{t−1})`` (``[T, N, B]``, as many
    numbers as ``remat=True`` keeps, but nothing is recomputed: ``f'`` is read off the rate),
    its products are plain ``[N, N] @ [N, B]`` matmuls (``α W_recᵀ`` is formed once), and
    gradients nobody asks for — frozen weights, e.g. under ``jax.lax.stop_gradient`` — are not
    computed; the states are kept only when the read-out weights need a gradient.

    Args:
      cell: a ``CTRNN`` with ``output="state"``.
      params: its parameters (``{"params": {"W_rec", "W_in"[, "b"]}}``).
      readout_params: ``LinearReadout`` parameters (``{"params": {"W_out"[, "b_out"]}}``).
      carry0: ``[B, N]`` initial states.
      xs: ``[B, T, M]`` inputs.

    Returns:
      ``[B, T, O]``: the read-out of the state after every step.
    """
    weights = ctrnn_readout_weights("ctrnn_readout_trials", cell, params, readout_params, carry0.dtype)
    ys = _ctrnn_readout((float(cell.alpha), cell.activation), *weights, carry0.T, xs)
    return jnp.moveaxis(ys, -1, 0)


def ctrnn_readout_weights(caller: str, cell: CTRNN, params: Any, readout_params: Any, dtype) -> tuple:
    """``(W_rec, W_in, b, W_out, b_out)`` of a CTRNN (``output="state"``) and its linear read-out.

    Absent biases enter as zeros under ``stop_gradient``, so no gradient is formed for them.
    Raises ``ValueError`` (naming ``caller``) for another cell.
    """
    if type(cell) is not CTRNN or cell.output != "state":
        raise ValueError(
            f"{caller} needs a CTRNN with output='state', got {cell!r} (use rollout_trials for other cells)"
        )
    p, q = params["params"], readout_params["params"]
    bias = p["b"] if cell.use_bias else jax.lax.stop_gradient(jnp.zeros((cell.hidden,), dtype))
    w_out = q["W_out"]
    b_out = q["b_out"] if "b_out" in q else jax.lax.stop_gradient(jnp.zeros((w_out.shape[0],), dtype))
    return p["W_rec"], p["W_in"], bias, w_out, b_out


def _ctrnn_forward(spec, w_rec, w_in, bias, w_out, b_out, x0, xs, keep_states):
    """Read-outs ``[T, O, B]``, the rates ``f(x_{t−1})`` read by each step (``[T, N, B]``) and,
    if ``keep_states``, the states ``x_t`` (``[T, N, B]``).

    The rate of the new state is computed right after it and carried to the next step, so the
    state update and the rate are neighbouring elementwise passes over the step's arrays.
    """
    alpha, activation = spec
    f = ACTIVATIONS[activation]

    def step(carry, u_t):
        x, r = carry
        x_new = (1.0 - alpha) * x + alpha * (w_rec @ r + w_in @ u_t + bias[:, None])
        y = w_out @ x_new + b_out[:, None]
        return (x_new, f(x_new)), (y, r, x_new if keep_states else None)

    inputs = jnp.moveaxis(xs, 0, -1)  # [T, M, B]
    _, (ys, rates, states) = jax.lax.scan(step, (x0, f(x0)), inputs)
    return ys, rates, states


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _ctrnn_readout(spec, w_rec, w_in, bias, w_out, b_out, x0, xs):
    """``ys[T, O, B]`` from ``x0[N, B]`` and ``xs[B, T, M]``."""
    return _ctrnn_forward(spec, w_rec, w_in, bias, w_out, b_out, x0, xs, False)[0]


def ctrnn_readout_fwd(spec, w_rec, w_in, bias, w_out, b_out, x0, xs):
    """Forward rule of the ``custom_vjp`` behind :func:`ctrnn_readout_trials`.

    ``spec = (α, activation name)``; the arguments are ``jax.custom_derivatives.CustomVJPPrimal``
    (``symbolic_zeros=True``: ``.value`` and ``.perturbed``). Returns ``ys[T, O, B]`` and the
    residuals for :func:`ctrnn_readout_bwd`: the weights, the rates ``f(x_{t−1})`` ``[T, N, B]``,
    the states (only if ``W_out`` is perturbed), the inputs (only if ``W_in`` or the inputs
    are), and which arguments are perturbed. The fused kernel
    (:mod:`~jaxrnn.models.ctrnn_fused`) falls back to this pair when asked for a gradient it
    does not form.
    """
    args = (w_rec, w_in, bias, w_out, b_out, x0, xs)
    values = tuple(a.value for a in args)
    perturbed = tuple(a.perturbed for a in args)
    ys, rates, states = _ctrnn_forward(spec, *values, keep_states=perturbed[3])
    keep_inputs = perturbed[1] or perturbed[6]
    residuals = (values[0], values[1], values[3], rates, states, values[6] if keep_inputs else None)
    return ys, (residuals, perturbed)


def ctrnn_readout_bwd(spec, saved, ct_ys):
    """Backward rule of the ``custom_vjp`` behind :func:`ctrnn_readout_trials` (the equations
    are in its docstring): cotangents of ``(W_rec, W_in, b, W_out, b_out, x0, xs)`` from the
    residuals of :func:`ctrnn_readout_fwd` and ``ct_ys[T, O, B]``, ``None`` for those not
    perturbed."""
    (w_rec, w_in, w_out, rates, states, xs), perturbed = saved
    want_w_rec, want_w_in, want_b, want_w_out, want_b_out, want_x0, want_xs = perturbed
    alpha, activation = spec
    d_rate = DERIVATIVE_FROM_RATE[activation]
    num_steps, n, batch = rates.shape
    dtype = rates.dtype
    if isinstance(ct_ys, SymbolicZero):
        ct_ys = jnp.zeros((num_steps, w_out.shape[0], batch), dtype)
    # The carried λ already holds W_outᵀ ∂L/∂y_t when step t starts; step t adds the read-out
    # cotangent of step t − 1 in its single elementwise pass.
    ct_prev = jnp.concatenate([jnp.zeros_like(ct_ys[:1]), ct_ys[:-1]])
    scaled_w_rec_t = alpha * w_rec.T
    scaled_w_in_t = alpha * w_in.T
    inputs = jnp.moveaxis(xs, 0, -1) if (want_w_in or want_xs) else None  # [T, M, B]

    def step(carry, step_inputs):
        lam, g_w_rec, g_w_in, g_b, g_w_out, g_b_out = carry
        rate, ct_y, ct_y_prev, state, u_t = step_inputs  # rate = f(x_{t−1}), read by step t
        if want_w_rec:
            g_w_rec = g_w_rec + lam @ rate.T
        if want_w_in:
            g_w_in = g_w_in + lam @ u_t.T
        if want_b:
            g_b = g_b + jnp.sum(lam, axis=1)
        if want_w_out:
            g_w_out = g_w_out + ct_y @ state.T
        if want_b_out:
            g_b_out = g_b_out + jnp.sum(ct_y, axis=1)
        ct_u = scaled_w_in_t @ lam if want_xs else None
        lam = (1.0 - alpha) * lam + d_rate(rate) * (scaled_w_rec_t @ lam) + w_out.T @ ct_y_prev
        return (lam, g_w_rec, g_w_in, g_b, g_w_out, g_b_out), ct_u

    def zeros(*shape):
        return jnp.zeros(shape, dtype)

    m = w_in.shape[1]
    carry = (w_out.T @ ct_ys[-1], zeros(n, n), zeros(n, m), zeros(n), zeros(*w_out.shape), zeros(w_out.shape[0]))
    step_inputs = (rates, ct_ys, ct_prev, states, inputs)
    (lam, g_w_rec, g_w_in, g_b, g_w_out, g_b_out), ct_u = jax.lax.scan(step, carry, step_inputs, reverse=True)
    return (
        alpha * g_w_rec if want_w_rec else None,
        alpha * g_w_in if want_w_in else None,
        alpha * g_b if want_b else None,
        g_w_out if want_w_out else None,
        g_b_out if want_b_out else None,
        lam if want_x0 else None,
        jnp.moveaxis(ct_u, -1, 0) if want_xs else None,
    )


_ctrnn_readout.defvjp(ctrnn_readout_fwd, ctrnn_readout_bwd, symbolic_zeros=True)

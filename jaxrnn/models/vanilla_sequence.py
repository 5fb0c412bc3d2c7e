"""A :class:`~jaxrnn.models.VanillaRNN` over stored sequences with resets, with a fast gradient.

What recurrent PPO's minibatch steps spend their time on: re-running the cell over ``B`` stored
sequences of ``T`` steps from their stored initial states, zeroing the state at episode starts,
and differentiating through it. :func:`vanilla_sequences` gives the numbers of
``jax.vmap`` over sequences of the generic loop (``ActorCritic.sequence``: one ``cell.apply`` per
step, autodiff) up to float32 rounding, for the Elman cell ``h ← tanh(W_rec h + W_in x + b)``::

    drive_t = W_in x_t + b                          (all T steps at once, before the loop)
    h̃_{t−1} = (1 − reset_t) h_{t−1}                 (h_{−1} = carry0)
    h_t     = tanh(W_rec h̃_{t−1} + drive_t)

The backward pass is written out (a ``jax.custom_vjp``) rather than derived by autodiff. With
``g_t = ∂L/∂h_t`` the outputs' cotangent plus what flows back from step ``t + 1``::

    δ_t = g_t ⊙ (1 − h_t²),      g_{t−1} ← ∂L/∂h_{t−1} + (1 − reset_t) W_recᵀ δ_t
    ∂L/∂W_rec = Σ_t δ_t h̃_{t−1}ᵀ,  ∂L/∂drive_t = δ_t,  ∂L/∂carry0 = (1 − reset_0) W_recᵀ δ_0

and ``∂L/∂W_in``, ``∂L/∂b`` follow from ``∂L/∂drive`` by autodiff of the one matmul outside the
loop. Why: each of the ``T`` steps is a tiny ``[N, N] @ [N, B]`` product (B = 2 sequences per
PPO minibatch), so per-step overhead, not arithmetic, sets the time. The forward loop holds one
matmul per step instead of two (the input drive moved out), and the backward loop one instead of
three (autodiff accumulates ``∂L/∂W_rec`` and ``∂L/∂W_in`` inside the loop as per-step outer
products); the weight gradients are then single ``einsum``s over all ``T·B`` rows. Only the
states ``h_t`` are stored (``1 − tanh²`` is read off them).

Layout: one row per sequence (``h[B, N]``), so a step's product is ``h̃ @ W_recᵀ`` forward and
``δ @ W_rec`` backward, with ``W_recᵀ`` formed once before the loop: a row-major GEMM whose
right operand is contracted on its first axis, which XLA:CPU runs fastest. Measured on the
2-core CPU, a 128-step loop of ``[16 members, 2, 64]`` states: 3.0 µs per step in rows against
6.8 µs as columns (``W_rec @ h[N, B]``, the layout of
:func:`~jaxrnn.models.rollout.ctrnn_readout_trials`, whose many-trial products are the other
way round).

Measured with recurrent PPO's update (Pendulum, 64 units, population P = 64, members in blocks
of 16 as the runner runs them, 2-core CPU): 1,330 → 730 ms per update with this path in
columns, → 412 ms in rows. Tried and not kept: ``lax.scan(unroll=k)``
of these loops (k = 2, 4: ≈ 1 % faster at P = 64, 7 % slower at P = 1; k = 8 no gain), running
the members in groups of 8–32 inside the loops (``lax.map(batch_size=·)``: forward 3.8 → 3.6 ms,
within noise), and heads applied row-major (``z @ Wᵀ`` on all rows instead of ``jax.vmap`` of
``W @ z``: 628 → 667 ms per update, slower).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn.models.cells import VanillaRNN


def vanilla_sequences(cell: VanillaRNN, params: Any, carry0: jax.Array, obs: jax.Array,
                      resets: jax.Array) -> jax.Array:
    """The states ``h_t`` of a :class:`VanillaRNN` over ``B`` sequences with resets.

    Args:
      cell: the ``VanillaRNN``.
      params: its parameters (``{"params": {"W_rec", "W_in"[, "b"]}}``).
      carry0: ``[B, N]`` states before each sequence (zeroed first where ``resets[:, 0]``).
      obs: ``[B, T, M]`` inputs.
      resets: ``[B, T]`` bools; ``resets[b, t]`` zeroes the state before input ``t``.

    Returns:
      ``[B, T, N]``: the state (= output) after every step.
    """
    if type(cell) is not VanillaRNN:
        raise ValueError(f"vanilla_sequences needs a VanillaRNN, got {cell!r} (use ActorCritic.sequence)")
    p = params["params"]
    drive = jnp.einsum("btm,nm->tbn", obs, p["W_in"])  # [T, B, N]
    if cell.use_bias:
        drive = drive + p["b"]
    keep = 1.0 - jnp.swapaxes(resets, 0, 1).astype(drive.dtype)  # [T, B]
    hs = masked_tanh_scan(p["W_rec"], drive, keep, carry0)  # [T, B, N]
    return jnp.swapaxes(hs, 0, 1)


def _forward(w_rec, drive, keep, h0):
    w_rec_t = w_rec.T  # rows: h̃ @ W_recᵀ, the product XLA:CPU runs fastest (module docstring)

    def step(h, inputs):
        drive_t, keep_t = inputs
        h = jnp.tanh((keep_t[:, None] * h) @ w_rec_t + drive_t)
        return h, h

    _, hs = jax.lax.scan(step, h0, (drive, keep))
    return hs


@jax.custom_vjp
def masked_tanh_scan(w_rec: jax.Array, drive: jax.Array, keep: jax.Array, h0: jax.Array) -> jax.Array:
    """``h_t = tanh(W_rec (keep_t ⊙ h_{t−1}) + drive_t)`` from ``h_{−1} = h0``, one row per sequence.

    Shapes: ``w_rec[N, N]``, ``drive[T, B, N]``, ``keep[T, B]`` (0 or 1; not differentiated),
    ``h0[B, N]``; returns ``hs[T, B, N]``. The gradient is the hand-written backward pass of the
    module docstring.
    """
    return _forward(w_rec, drive, keep, h0)


def _masked_tanh_scan_fwd(w_rec, drive, keep, h0):
    hs = _forward(w_rec, drive, keep, h0)
    return hs, (w_rec, keep, h0, hs)


def _masked_tanh_scan_bwd(saved, ct_hs):
    w_rec, keep, h0, hs = saved

    def step(g_next, inputs):
        ct_h, h, keep_t = inputs
        delta = (ct_h + g_next) * (1.0 - h * h)
        return keep_t[:, None] * (delta @ w_rec), delta  # rows: (W_recᵀ δ)ᵀ = δᵀ W_rec

    ct_h0, deltas = jax.lax.scan(step, jnp.zeros_like(h0), (ct_hs, hs, keep), reverse=True)
    previous = keep[:, :, None] * jnp.concatenate([h0[None], hs[:-1]])  # h̃_{t−1}, [T, B, N]
    ct_w_rec = jnp.einsum("tbn,tbm->nm", deltas, previous)
    return ct_w_rec, deltas, jnp.zeros_like(keep), ct_h0


masked_tanh_scan.defvjp(_masked_tanh_scan_fwd, _masked_tanh_scan_bwd)

"""A CTRNN's whole time loop as one Pallas kernel per tile of trials (forward and backward).

The XLA path of :func:`~jaxrnn.models.rollout.ctrnn_readout_trials` runs a ``lax.scan``: every
time step is a handful of kernels that read and write the step's ``[P, N, B]`` arrays in
accelerator memory, so a vmapped population of BPTT networks is bound by memory traffic
(``benchmarks/results/gpu-bptt.json``). Here one kernel program owns ``block_trials`` trials of
one network and runs all ``T`` steps with the state held on chip; the only per-step traffic
is the step's inputs, its read-outs and (for the backward pass) its rates.

Forward, in rows of trials (``x_t[b]`` is a row of ``N`` units), the numbers of
:class:`~jaxrnn.models.CTRNN` (``output="state"``) followed by a linear read-out::

    x_t = (1 − α) x_{t−1} + α (f(x_{t−1}) W_recᵀ + u_t W_inᵀ + b),     y_t = x_t W_outᵀ + b_out.

Backward (a ``jax.custom_vjp``; ``λ_t = ∂L/∂x_t``, ``r_t = f(x_{t−1})`` stored by the forward)::

    λ_{t−1} = (1 − α) λ_t + f'(x_{t−1}) ⊙ (α λ_t W_rec) + (∂L/∂y_{t−1}) W_out,
    ∂L/∂W_rec = α Σ_t λ_tᵀ r_t,   ∂L/∂W_in = α Σ_t λ_tᵀ u_t,   ∂L/∂b = α Σ_t Σ_b λ_t,
    ∂L/∂x_0 = λ_0 (the λ left after step 0),

with ``f'`` read off the stored rate (:data:`~jaxrnn.models.cells.DERIVATIVE_FROM_RATE`). Each program
returns its tile's weight-gradient sums; the tiles are added afterwards (``∂L/∂b_out`` is the
sum of the read-out cotangents). Gradients for ``W_out`` or the inputs are not formed by the
kernel: when either is asked for, the whole call takes the XLA path instead (same numbers up to
float32 rounding).

Layout and padding: the hidden size is padded to a power of two ``≥ 16`` (zero weights, so the
padded units stay at zero and never reach a real one), the batch to a multiple of
``block_trials`` (zero inputs, zero cotangents). Inputs enter as ``[T, M, B]`` and read-outs
leave as ``[T, O, B]``, one contiguous row of trials per channel; the stored rates are
``[T, B, N_pad]`` (4·T·B·N_pad bytes per network: 98 MB for the study's T = 750, B = 500,
N = 50 → 64).

Backends: on GPUs the kernel is compiled by Pallas' Triton backend; elsewhere (CPU) Pallas
can only *interpret* it, which is slow and meant for tests. Under ``jax.vmap`` (a population)
Pallas adds the member axis to the kernel's grid. Products use the precision of
``precision`` (default: ``lax.Precision.DEFAULT``, i.e. TF32 on NVIDIA GPUs, the precision
XLA gives the scan path's float32 matmuls there).

Status: the numbers are tested against the XLA path (interpreted kernel, CPU) and the kernel
is checked to lower to Triton for CUDA without a GPU; its GPU speed is measured by
``benchmarks/gpu.py --jobs bptt_fused`` (see ``benchmarks/results``).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.experimental import pallas as pl

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.cells import ACTIVATIONS, CTRNN, DERIVATIVE_FROM_RATE
from jaxrnn.models.rollout import ctrnn_readout_bwd, ctrnn_readout_fwd, ctrnn_readout_weights


@dataclasses.dataclass(frozen=True)
class FusedKernel:
    """Static settings of the fused CTRNN kernel (hashable; part of the compiled program).

    Attributes:
      block_trials: trials per kernel program (a power of two ``≥ 16``); the grid has
        ``ceil(B / block_trials)`` programs per network. The default 32 with 4 warps is the
        setting with the most resident warps per H100 SM and no register spills in
        ``benchmarks/results/fused_kernel-ptxas.json`` (compiled without a GPU; not timed).
      num_warps: Triton warps per program (GPU only).
      num_stages: Triton software-pipelining stages for the time loop's loads (GPU only).
      precision: ``"default"`` (TF32 products on NVIDIA GPUs, as XLA's default) or
        ``"highest"`` (full float32).
      interpret: run the Pallas interpreter instead of compiling; ``None`` interprets exactly
        when JAX's default backend is the CPU.
    """

    block_trials: int = 32
    num_warps: int = 4
    num_stages: int = 2
    precision: str = "default"
    interpret: bool | None = None

    def __post_init__(self):
        check_range("kernel.block_trials", self.block_trials, 16, integer=True)
        if self.block_trials & (self.block_trials - 1):
            fail("kernel.block_trials", self.block_trials, "a power of two >= 16 (16, 32, 64, ...)")
        check_range("kernel.num_warps", self.num_warps, 1, 32, integer=True)
        check_range("kernel.num_stages", self.num_stages, 1, 8, integer=True)
        check_choice("kernel.precision", self.precision, ("default", "highest"))

    def lax_precision(self):
        return jax.lax.Precision.HIGHEST if self.precision == "highest" else jax.lax.Precision.DEFAULT

    def interpreted(self) -> bool:
        return jax.default_backend() == "cpu" if self.interpret is None else bool(self.interpret)

    def compiler_params(self):
        if self.interpreted():
            return None
        from jax.experimental.pallas import triton as pltriton

        return pltriton.CompilerParams(num_warps=self.num_warps, num_stages=self.num_stages)


def padded_hidden(n: int) -> int:
    """The kernel's hidden width: the next power of two, at least 16 (Triton's dot minimum)."""
    return max(16, 1 << (int(n) - 1).bit_length())


def ctrnn_readout_fused(
    cell: CTRNN,
    params: Any,
    readout_params: Any,
    carry0: jax.Array,
    xs: jax.Array,
    *,
    kernel: FusedKernel = FusedKernel(),
) -> jax.Array:
    """:func:`~jaxrnn.models.rollout.ctrnn_readout_trials` computed by the fused kernel.

    Args:
      cell: a ``CTRNN`` with ``output="state"``.
      params: its parameters (``{"params": {"W_rec", "W_in"[, "b"]}}``).
      readout_params: ``LinearReadout`` parameters (``{"params": {"W_out"[, "b_out"]}}``).
      carry0: ``[B, N]`` initial states.
      xs: ``[B, T, M]`` inputs.
      kernel: the kernel's static settings.

    Returns:
      ``[B, T, O]``: the read-out of the state after every step.
    """
    weights = ctrnn_readout_weights("ctrnn_readout_fused", cell, params, readout_params, carry0.dtype)
    ys = _fused_readout((float(cell.alpha), cell.activation, kernel), *weights, carry0.T, xs)
    return jnp.moveaxis(ys, -1, 0)


# --- the kernels -----------------------------------------------------------------------------


def _forward_kernel(alpha, activation, precision, num_steps, u_ref, x0_ref, w_rec_t_ref, w_in_t_ref, b_ref,
                    w_out_ref, y_ref, r_ref=None):
    """One tile: ``y_ref[T, O, bt]`` (and ``r_ref[T, bt, Np]`` = the rate each step reads)."""
    f = ACTIVATIONS[activation]
    num_inputs, num_outputs = w_in_t_ref.shape[0], w_out_ref.shape[0]
    w_rec_t = w_rec_t_ref[...]
    w_in_rows = [w_in_t_ref[m] for m in range(num_inputs)]
    w_out_rows = [w_out_ref[o] for o in range(num_outputs)]
    bias = b_ref[...]

    def step(t, carry):
        x, rate = carry
        if r_ref is not None:
            r_ref[t] = rate
        drive = jnp.dot(rate, w_rec_t, precision=precision) + bias[None, :]
        for m in range(num_inputs):
            drive = drive + u_ref[t, m][:, None] * w_in_rows[m][None, :]
        x = (1.0 - alpha) * x + alpha * drive
        for o in range(num_outputs):
            y_ref[t, o] = jnp.sum(x * w_out_rows[o][None, :], axis=1)
        return x, f(x)

    x0 = x0_ref[...]
    jax.lax.fori_loop(0, num_steps, step, (x0, f(x0)))


def _backward_kernel(alpha, activation, precision, num_steps, want, r_ref, ct_ref, u_ref, w_rec_ref,
                     w_out_ref, g_rec_ref, g_in_ref, g_b_ref, lam0_ref):
    """One tile's ``Σ_t λ_tᵀ r_t`` ``[1, Np, Np]``, ``Σ_t λ_tᵀ u_t`` ``[1, M, Np]``, ``Σ λ`` ``[1, Np]``
    and ``λ_0`` ``[bt, Np]`` (the factor α is applied by the caller)."""
    d_rate = DERIVATIVE_FROM_RATE[activation]
    want_w_rec, want_w_in, want_b = want
    num_outputs = w_out_ref.shape[0]
    num_inputs = g_in_ref.shape[1]
    scaled_w_rec = alpha * w_rec_ref[...]
    w_out_rows = [w_out_ref[o] for o in range(num_outputs)]
    contract_trials = (((0,), (0,)), ((), ()))

    def readout_cotangent(t):
        total = ct_ref[t, 0][:, None] * w_out_rows[0][None, :]
        for o in range(1, num_outputs):
            total = total + ct_ref[t, o][:, None] * w_out_rows[o][None, :]
        return total

    def step(i, carry):
        lam, g_rec, g_in, g_b = carry
        t = num_steps - 1 - i
        rate = r_ref[t]
        if want_w_rec:
            g_rec = g_rec + jax.lax.dot_general(lam, rate, contract_trials, precision=precision)
        if want_w_in:
            g_in = tuple(g + jnp.sum(lam * u_ref[t, m][:, None], axis=0) for m, g in enumerate(g_in))
        if want_b:
            g_b = g_b + jnp.sum(lam, axis=0)
        back = (1.0 - alpha) * lam + d_rate(rate) * jnp.dot(lam, scaled_w_rec, precision=precision)
        lam = back + readout_cotangent(t)  # ct_ref[t] = ∂L/∂y_{t−1} (zero for t = 0)
        return lam, g_rec, g_in, g_b

    n_pad = w_rec_ref.shape[0]
    zeros = jnp.zeros((n_pad,), jnp.float32)
    g_in0 = tuple(zeros for _ in range(num_inputs)) if want_w_in else ()
    carry = (readout_cotangent(num_steps), jnp.zeros((n_pad, n_pad), jnp.float32), g_in0, zeros)
    lam, g_rec, g_in, g_b = jax.lax.fori_loop(0, num_steps, step, carry)
    g_rec_ref[0] = g_rec  # sums not wanted stay zero and are not read by the caller
    for m, g in enumerate(g_in):
        g_in_ref[0, m] = g
    g_b_ref[0] = g_b
    lam0_ref[...] = lam


# --- padding and the two pallas_calls --------------------------------------------------------


def _pad_to(a, axis, size):
    extra = size - a.shape[axis]
    if extra == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return jnp.pad(a, widths)


def _geometry(kernel: FusedKernel, n: int, batch: int):
    n_pad = padded_hidden(n)
    tiles = -(-batch // kernel.block_trials)
    return n_pad, tiles, tiles * kernel.block_trials


def _fused_forward(spec, w_rec, w_in, bias, w_out, x0, xs, keep_rates):
    """Read-outs ``[T, O, B]`` (no ``b_out``) and, if ``keep_rates``, rates ``[T, B_pad, N_pad]``."""
    alpha, activation, kernel = spec
    n, batch, num_steps = x0.shape[0], x0.shape[1], xs.shape[1]
    num_inputs, num_outputs = w_in.shape[1], w_out.shape[0]
    n_pad, tiles, b_pad = _geometry(kernel, n, batch)
    bt = kernel.block_trials
    inputs = _pad_to(jnp.transpose(xs, (1, 2, 0)), 2, b_pad)  # [T, M, B_pad]
    x0_rows = _pad_to(_pad_to(x0.T, 0, b_pad), 1, n_pad)  # [B_pad, Np]
    w_rec_t = _pad_to(_pad_to(w_rec.T, 0, n_pad), 1, n_pad)
    w_in_t = _pad_to(w_in.T, 1, n_pad)  # [M, Np]
    b_row = _pad_to(bias, 0, n_pad)
    w_out_p = _pad_to(w_out, 1, n_pad)  # [O, Np]
    out_shape = [jax.ShapeDtypeStruct((num_steps, num_outputs, b_pad), jnp.float32)]
    out_specs = [pl.BlockSpec((num_steps, num_outputs, bt), lambda i: (0, 0, i))]
    if keep_rates:
        out_shape.append(jax.ShapeDtypeStruct((num_steps, b_pad, n_pad), jnp.float32))
        out_specs.append(pl.BlockSpec((num_steps, bt, n_pad), lambda i: (0, i, 0)))
    body = partial(_forward_kernel, alpha, activation, kernel.lax_precision(), num_steps)
    outputs = pl.pallas_call(
        body,
        grid=(tiles,),
        in_specs=[
            pl.BlockSpec((num_steps, num_inputs, bt), lambda i: (0, 0, i)),
            pl.BlockSpec((bt, n_pad), lambda i: (i, 0)),
            pl.BlockSpec((n_pad, n_pad), lambda i: (0, 0)),
            pl.BlockSpec((num_inputs, n_pad), lambda i: (0, 0)),
            pl.BlockSpec((n_pad,), lambda i: (0,)),
            pl.BlockSpec((num_outputs, n_pad), lambda i: (0, 0)),
        ],
        out_specs=out_specs,
        out_shape=out_shape,
        compiler_params=kernel.compiler_params(),
        interpret=kernel.interpreted(),
        name="ctrnn_fused_forward",
    )(inputs, x0_rows, w_rec_t, w_in_t, b_row, w_out_p)
    ys = outputs[0][:, :, :batch]
    return ys, (outputs[1] if keep_rates else None)


def _fused_backward(spec, w_rec, w_out, rates, xs, ct_ys, num_inputs, want_w_rec=True, want_b=True):
    """``(Σ λᵀr [N, N], Σ λᵀu [N, M] or None, Σ λ [N], λ_0 [N, B])`` without the factor α.

    ``xs`` (``[B, T, M]``) is read only for the input-weight gradient; ``None`` skips it. The
    sums not wanted are not formed (their places hold zeros).
    """
    alpha, activation, kernel = spec
    want_w_in = xs is not None
    n = w_rec.shape[0]
    num_steps, b_pad, n_pad = rates.shape
    batch = ct_ys.shape[2]
    tiles, bt = b_pad // kernel.block_trials, kernel.block_trials
    num_outputs = w_out.shape[0]
    # shifted by one step: row t holds ∂L/∂y_{t−1}, row 0 zeros, row T the last step's
    cotangents = _pad_to(jnp.concatenate([jnp.zeros_like(ct_ys[:1]), ct_ys]), 2, b_pad)  # [T + 1, O, B_pad]
    inputs = _pad_to(jnp.transpose(xs, (1, 2, 0)), 2, b_pad) if want_w_in else jnp.zeros((1, num_inputs, bt))
    w_rec_p = _pad_to(_pad_to(w_rec, 0, n_pad), 1, n_pad)
    w_out_p = _pad_to(w_out, 1, n_pad)
    input_spec = (
        pl.BlockSpec((num_steps, num_inputs, bt), lambda i: (0, 0, i))
        if want_w_in
        else pl.BlockSpec((1, num_inputs, bt), lambda i: (0, 0, 0))
    )
    want = (want_w_rec, want_w_in, want_b)
    body = partial(_backward_kernel, alpha, activation, kernel.lax_precision(), num_steps, want)
    g_rec, g_in, g_b, lam0 = pl.pallas_call(
        body,
        grid=(tiles,),
        in_specs=[
            pl.BlockSpec((num_steps, bt, n_pad), lambda i: (0, i, 0)),
            pl.BlockSpec((num_steps + 1, num_outputs, bt), lambda i: (0, 0, i)),
            input_spec,
            pl.BlockSpec((n_pad, n_pad), lambda i: (0, 0)),
            pl.BlockSpec((num_outputs, n_pad), lambda i: (0, 0)),
        ],
        out_specs=[
            pl.BlockSpec((1, n_pad, n_pad), lambda i: (i, 0, 0)),
            pl.BlockSpec((1, num_inputs, n_pad), lambda i: (i, 0, 0)),
            pl.BlockSpec((1, n_pad), lambda i: (i, 0)),
            pl.BlockSpec((bt, n_pad), lambda i: (i, 0)),
        ],
        out_shape=[
            jax.ShapeDtypeStruct((tiles, n_pad, n_pad), jnp.float32),
            jax.ShapeDtypeStruct((tiles, num_inputs, n_pad), jnp.float32),
            jax.ShapeDtypeStruct((tiles, n_pad), jnp.float32),
            jax.ShapeDtypeStruct((b_pad, n_pad), jnp.float32),
        ],
        compiler_params=kernel.compiler_params(),
        interpret=kernel.interpreted(),
        name="ctrnn_fused_backward",
    )(rates, cotangents, inputs, w_rec_p, w_out_p)
    g_in = jnp.sum(g_in, axis=0)[:, :n].T if want_w_in else None
    return jnp.sum(g_rec, axis=0)[:n, :n], g_in, jnp.sum(g_b, axis=0)[:n], lam0[:batch, :n].T


# --- the custom_vjp --------------------------------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused_readout(spec, w_rec, w_in, bias, w_out, b_out, x0, xs):
    """``ys[T, O, B]`` from ``x0[N, B]`` and ``xs[B, T, M]`` (the signature of the XLA path's ``custom_vjp``, :func:`~jaxrnn.models.rollout.ctrnn_readout_fwd`)."""
    ys, _ = _fused_forward(spec, w_rec, w_in, bias, w_out, x0, xs, keep_rates=False)
    return ys + b_out[None, :, None]


def _xla_spec(spec):
    return spec[:2]


def _fused_readout_fwd(spec, w_rec, w_in, bias, w_out, b_out, x0, xs):
    args = (w_rec, w_in, bias, w_out, b_out, x0, xs)
    perturbed = tuple(a.perturbed for a in args)
    if perturbed[3] or perturbed[6]:  # W_out or the inputs: the kernel forms neither gradient
        ys, residuals = ctrnn_readout_fwd(_xla_spec(spec), *args)
        return ys, (True, residuals)
    values = tuple(a.value for a in args)
    w_rec, w_in, bias, w_out, b_out, x0, xs = values
    ys, rates = _fused_forward(spec, w_rec, w_in, bias, w_out, x0, xs, keep_rates=True)
    saved = (w_rec, w_out, rates, xs if perturbed[1] else None, x0.shape[1], w_in.shape[1])
    return ys + b_out[None, :, None], (False, (saved, perturbed))


def _fused_readout_bwd(spec, residuals, ct_ys):
    use_xla, saved = residuals
    if use_xla:
        return ctrnn_readout_bwd(_xla_spec(spec), saved, ct_ys)
    (w_rec, w_out, rates, xs, batch, num_inputs), perturbed = saved
    want_w_rec, want_w_in, want_b, _, want_b_out, want_x0, _ = perturbed
    alpha = spec[0]
    num_steps = rates.shape[0]
    if isinstance(ct_ys, SymbolicZero):
        ct_ys = jnp.zeros((num_steps, w_out.shape[0], batch), rates.dtype)
    g_rec, g_in, g_b, lam0 = _fused_backward(spec, w_rec, w_out, rates, xs, ct_ys, num_inputs, want_w_rec, want_b)
    return (
        alpha * g_rec if want_w_rec else None,
        alpha * g_in if want_w_in else None,
        alpha * g_b if want_b else None,
        None,
        jnp.sum(ct_ys, axis=(0, 2)) if want_b_out else None,
        lam0 if want_x0 else None,
        None,
    )


_fused_readout.defvjp(_fused_readout_fwd, _fused_readout_bwd, symbolic_zeros=True)

"""Closed-loop spectra and the rank-1 theory of Ger & Barak (NeurIPS 2025; the authors' ``P_Model``, theory notebook).

Everything here is pure JAX for **one** network per call; the ``*_batched`` forms are
``jax.vmap`` over a leading axis (members or snapshots — nest ``jax.vmap`` for both);
:func:`spectrum` (re-exported from ``linearize``), :func:`spectral_radius` and
:func:`dominant_is_complex` accept any leading axes directly.

**Joint matrix** (Ger & Barak's code, ``P_Model``). A linear(ised) CTRNN controller with ``α = dt/τ`` drives a
linear plant; the controller observes the *post-step* plant state. Column convention,
``W_rec[N, N]``, ``W_in[N, c]``, ``W_out[m, N]``; plant ``A[n, n]``, ``B[n, m]``, ``C[c, n]``::

    u_t     = W_out h_t
    x_{t+1} = A x_t + B u_t
    y_{t+1} = C x_{t+1}
    h_{t+1} = (1 − α) h_t + α (W_rec h_t + W_in y_{t+1})

Substituting ``x_{t+1}`` into ``y_{t+1}`` gives ``h_{t+1} = α W_in C A x_t +
(α W_in C B W_out + (1 − α) I + α W_rec) h_t``, so the joint state ``s = [x; h]`` evolves
as ``s_{t+1} = P s_t`` with::

    P = [[ A           , B W_out                                      ],
         [ α W_in C A  , α W_in C B W_out + (1 − α) I + α W_rec ]]

(the authors' ``create_p_matrix_from_rnn`` omits the ``α`` on ``W_in C B W_out``; the two agree
for ``α = 1`` and whenever ``C B = 0``, as for the position-observed double integrator).

**Rank-1 theory** (Ger & Barak's code, theory notebook). With ``W_rec = u vᵀ`` exactly (no ``1/N``: for a
``LowRankRNN`` take ``u, v = jaxrnn.models.low_rank_factors(cell, params)``, which is
``(U, V)`` for ``parametrization="ger_barak"`` and ``(U, V/N)`` for ``"normalized"``),
``α = 1``, ``h_0 = 0``, input vector ``m`` and readout ``z`` on the double integrator
``A = [[1, 1], [0, 1]]``, ``B = [0, 1]ᵀ``, ``C = [1, 0]``, the hidden state stays in
``span{m, u}``: ``h_t = a_t m + b_t u``, and ``(x, v, a, b)`` evolves by the 4×4 ``P_eff`` of
:func:`reduced_system`, whose characteristic polynomial is ``λ·p(λ)`` with::

    p(λ) = λ³ − (σ_vu + 2) λ² + (2σ_vu − σ_zm + 1) λ + (σ_vu σ_zm − σ_vu − σ_vm σ_zu)
         = (λ − σ_vu)((λ − 1)² − σ_zm) − σ_vm σ_zu.

The three learning stages of a run (from its loss and ``ρ(P)``) are :mod:`jaxrnn.analysis.stages`.

Order parameters are ordered ``sigmas = [σ_zm, σ_zu, σ_vm, σ_vu]`` throughout.
Eigenvalues use ``jnp.linalg.eigvals`` (general, non-symmetric); run in float64
(``with jax.enable_x64(True):``) when eigenvalues near the unit circle matter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.linearize import spectrum


def as_matrix(name: str, value, ndim1_as: str) -> jax.Array:
    """Promote a vector to a column (``"col"``) or row (``"row"``) matrix.

    Other ranks raise a ``ValueError`` naming ``name`` (e.g. a population passed where one
    network is expected). Shared with :mod:`~jaxrnn.analysis.control`.
    """
    value = jnp.asarray(value)
    if value.ndim == 1:
        return value[:, None] if ndim1_as == "col" else value[None, :]
    if value.ndim != 2:
        fail(f"{name}.shape", value.shape, "a matrix (or a vector)", "did you forget jax.vmap?")
    return value


def _check_dim(name: str, shape, axis: int, expected: int, what: str) -> None:
    if shape[axis] != expected:
        fail(f"{name}.shape", tuple(shape), f"{what} (axis {axis} = {expected})")


def joint_matrix(A, B, C, W_in, W_rec, W_out, alpha=1.0) -> jax.Array:
    """Joint agent–environment map ``P[n + N, n + N]`` with ``[x; h]_{t+1} = P [x; h]_t``.

    See the module docstring for the derivation (Ger & Barak 2025, Ger & Barak's code, ``P_Model``).

    Args:
      A: plant dynamics ``[n, n]``. B: plant input ``[n, m]`` (a vector ``[n]`` means ``m = 1``).
      C: observation ``[c, n]`` (a vector ``[n]`` means ``c = 1``).
      W_in: ``[N, c]`` (vector ``m`` → ``[N, 1]``). W_rec: ``[N, N]``.
      W_out: ``[m, N]`` (vector ``z`` → ``[1, N]``). alpha: ``dt/τ`` (may be traced).
    """
    A = jnp.asarray(A)
    B, C = as_matrix("B", B, "col"), as_matrix("C", C, "row")
    W_in, W_out = as_matrix("W_in", W_in, "col"), as_matrix("W_out", W_out, "row")
    W_rec = as_matrix("W_rec", W_rec, "col")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        fail("A.shape", A.shape, "square [n, n]", "did you forget jax.vmap?")
    n, N = A.shape[0], W_rec.shape[0]
    _check_dim("B", B.shape, 0, n, "[n, m] with n = A.shape[0]")
    _check_dim("C", C.shape, 1, n, "[c, n] with n = A.shape[0]")
    _check_dim("W_rec", W_rec.shape, 1, N, "square [N, N]")
    _check_dim("W_in", W_in.shape, 0, N, "[N, c] with N = W_rec.shape[0]")
    _check_dim("W_in", W_in.shape, 1, C.shape[0], "[N, c] with c = C.shape[0]")
    _check_dim("W_out", W_out.shape, 1, N, "[m, N] with N = W_rec.shape[0]")
    _check_dim("W_out", W_out.shape, 0, B.shape[1], "[m, N] with m = B.shape[1]")
    gain = alpha * W_in @ C
    top = jnp.concatenate([A, B @ W_out], axis=1)
    bottom = jnp.concatenate(
        [gain @ A, gain @ B @ W_out + (1.0 - alpha) * jnp.eye(N, dtype=W_rec.dtype) + alpha * W_rec],
        axis=1,
    )
    return jnp.concatenate([top, bottom], axis=0)


def spectral_radius(P) -> jax.Array:
    """``ρ(P) = max |λ_i(P)|`` of ``P[..., d, d]`` (any leading axes); stable iff ``ρ < 1``.

    The sorted eigenvalues themselves are :func:`spectrum` (``jaxrnn.analysis.linearize``).
    """
    return jnp.max(jnp.abs(spectrum(P)), axis=-1)


def dominant_is_complex(P, rtol=1e-6) -> jax.Array:
    """Whether the largest-modulus eigenvalue of ``P[..., d, d]`` is complex: ``|Im λ₁| > rtol·|λ₁|``."""
    top = spectrum(P)[..., 0]
    return jnp.abs(top.imag) > rtol * jnp.abs(top)


def stabilisation_epoch(radii) -> jax.Array:
    """First epoch after which ``ρ < 1`` holds forever (``ep_of_stab``, Ger & Barak's code, ``P_Model``).

    ``radii[E]`` are spectral radii per epoch (non-finite counts as unstable). Returns the
    smallest ``e`` with ``radii[e:] < 1`` (int32), ``−1`` if the last epoch is unstable.
    """
    radii = jnp.asarray(radii)
    if radii.ndim != 1:
        fail("radii.shape", radii.shape, "[E] (one network)", "use stabilisation_epoch_batched")
    epochs = jnp.arange(radii.shape[0], dtype=jnp.int32)
    last_unstable = jnp.max(jnp.where(radii < 1.0, -1, epochs), initial=-1)
    first = last_unstable + 1
    return jnp.where(first < radii.shape[0], first, -1).astype(jnp.int32)


# ----------------------------------------------------------------------------- rank-1 theory


def overlaps(m, z, u, v) -> jax.Array:
    """Order parameters ``[σ_zm, σ_zu, σ_vm, σ_vu] = [z·m, z·u, v·m, v·u]`` (vectors ``[N]``).

    ``u, v`` must factor the recurrent matrix exactly, ``W_rec = u vᵀ`` (see the module
    docstring: ``jaxrnn.models.low_rank_factors`` for a ``LowRankRNN`` in either parametrisation).
    """
    m, z, u, v = (jnp.ravel(jnp.asarray(a)) for a in (m, z, u, v))
    return jnp.stack([z @ m, z @ u, v @ m, v @ u])


def reduced_system(s_zm, s_zu, s_vm, s_vu) -> jax.Array:
    """The 4×4 effective map ``P_eff`` of ``(x, v, a, b)`` (Ger & Barak's code, theory notebook)::

        [[1, 1, 0,    0   ],     x' = x + v
         [0, 1, σ_zm, σ_zu],     v' = v + z·h,        h = a m + b u
         [1, 1, 0,    0   ],     a' = C x' = x + v    (C B = 0)
         [0, 0, σ_vm, σ_vu]]     b' = v_rec·h
    """
    zm, zu, vm, vu = jnp.broadcast_arrays(*(as_float(s) for s in (s_zm, s_zu, s_vm, s_vu)))
    one, zero = jnp.ones_like(zm), jnp.zeros_like(zm)
    return jnp.stack([
        jnp.stack([one, one, zero, zero], -1),
        jnp.stack([zero, one, zm, zu], -1),
        jnp.stack([one, one, zero, zero], -1),
        jnp.stack([zero, zero, vm, vu], -1),
    ], -2)


def characteristic_coefficients(s_zm, s_zu, s_vm, s_vu) -> jax.Array:
    """Coefficients ``[1, b, c, d]`` of the cubic ``p(λ) = λ³ + bλ² + cλ + d`` (highest first).

    ``b = −(σ_vu + 2)``, ``c = 2σ_vu − σ_zm + 1``, ``d = σ_vu σ_zm − σ_vu − σ_vm σ_zu``;
    ``det(λI − P_eff) = λ·p(λ)``.
    """
    s_zm, s_zu, s_vm, s_vu = (as_float(s) for s in (s_zm, s_zu, s_vm, s_vu))
    b = -(s_vu + 2.0)
    c = 2.0 * s_vu - s_zm + 1.0
    d = s_vu * s_zm - s_vu - s_vm * s_zu
    return jnp.stack(jnp.broadcast_arrays(jnp.ones_like(b), b, c, d))


def as_float(x) -> jax.Array:
    """``x`` as a floating array, keeping float32/float64 (ints and Python scalars → default float).

    Shared with :mod:`~jaxrnn.analysis.control`.
    """
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(x, float))


def _csqrt(x) -> jax.Array:
    """Principal complex square root (imaginary for negative ``x``)."""
    return jnp.sqrt(as_float(x) + 0j)


def stage1_eigenvalues(s_zm) -> jax.Array:
    """Stage-1 pair ``λ₁,₂ ≈ 1 ± √σ_zm`` (roots of ``p`` for ``σ_vu = σ_vm σ_zu = 0``); complex ``[2]``.

    Complex (oscillatory) when ``σ_zm < 0``.
    """
    root = _csqrt(s_zm)
    return jnp.stack([1.0 + root, 1.0 - root])


def stage1_loss(s_zm, T) -> jax.Array:
    """Stage-1 loss ``½ Σ_{t<T} r^t = ½ (1 − r^T)/(1 − r)``, ``r = |1 + √σ_zm|²`` (theory nb cell 4).

    The authors use ``T = num_steps + 1``. For ``|r − 1| < 1e-6`` the first-order expansion
    ``½ (T + (r − 1) T(T − 1)/2)`` replaces the 0/0 form.
    """
    r = jnp.abs(1.0 + _csqrt(s_zm)) ** 2
    near_one = jnp.abs(1.0 - r) < 1e-6
    safe = jnp.where(near_one, 2.0, r)
    series = 0.5 * (T + (r - 1.0) * T * (T - 1) / 2)
    return jnp.where(near_one, series, 0.5 * (1.0 - safe**T) / (1.0 - safe))


def stage2_lambda3(s_zm, s_zu, s_vm, s_vu) -> jax.Array:
    """Real root near ``σ_vu``: ``λ₃ ≈ σ_vu + σ_vm σ_zu / ((σ_vu − 1)² − σ_zm)``.

    First order in ``δ = σ_vm σ_zu`` around ``λ = σ_vu`` of ``(λ − σ_vu)((λ−1)² − σ_zm) = δ``.
    """
    s_zm, s_zu, s_vm, s_vu = (as_float(s) for s in (s_zm, s_zu, s_vm, s_vu))
    return s_vu + s_vm * s_zu / ((s_vu - 1.0) ** 2 - s_zm)


def stage2_lambda1(s_zm, s_zu, s_vm, s_vu) -> jax.Array:
    """``λ₁ = 1 + √σ_zm + ε`` to second order in ``δ = σ_vm σ_zu`` (``compute_eps_order``).

    Derivation: with ``q = √σ_zm``, ``d = 1 + q − σ_vu`` and ``λ = 1 + q + ε``,
    ``p(λ) = (d + ε)(2qε + ε²) − δ = 2qd ε + (d + 2q) ε² + ε³ − δ = 0``. Writing
    ``ε = ε₁ + ε₂`` with ``ε₁ = O(δ)``, ``ε₂ = O(δ²)``: ``ε₁ = δ / (2qd)`` and
    ``ε₂ = −(d + 2q) ε₁² / (2qd)``. Complex (``q`` imaginary) when ``σ_zm < 0``; the
    conjugate is ``λ₂`` then. Singular at ``σ_zm = 0`` or ``d = 0`` (degenerate roots).
    """
    s_zu, s_vm, s_vu = (as_float(s) for s in (s_zu, s_vm, s_vu))
    q = _csqrt(s_zm)
    d = 1.0 + q - s_vu
    delta = s_vm * s_zu
    eps1 = delta / (2.0 * q * d)
    eps2 = -(d + 2.0 * q) * eps1**2 / (2.0 * q * d)
    return 1.0 + q + eps1 + eps2


def stage2_pair_product(s_zm, s_zu, s_vm, s_vu) -> jax.Array:
    """``λ₁λ₂ = c + bλ₃ + λ₃²`` (``= |λ₁|²`` for a complex pair), with the stage-2 ``λ₃``.

    Matching ``p(λ) = (λ − λ₃)(λ² + (b + λ₃)λ + λ₁λ₂)`` coefficient by coefficient gives
    ``λ₁λ₂ = c + bλ₃ + λ₃²`` — exact for the exact ``λ₃``, approximate with
    :func:`stage2_lambda3`.
    """
    _, b, c, _ = characteristic_coefficients(s_zm, s_zu, s_vm, s_vu)
    lam3 = stage2_lambda3(s_zm, s_zu, s_vm, s_vu)
    return c + b * lam3 + lam3**2


def effective_loss(sigmas, alpha, T) -> jax.Array:
    """Effective loss ``α L_∞ + (1 − α) L_0`` over ``sigmas = [σ_zm, σ_zu, σ_vm, σ_vu]``.

    ``L_∞ = (c + bλ₃ + λ₃²)^T`` (long-time growth of the oscillatory pair, stage-2 ``λ₃``);
    ``L_0 = (σ_zm+1)² + (σ_zm+3)² + (δ + 2σ_zm)² + (δ + 3σ_zm + 1)²``, ``δ = σ_vm σ_zu``
    (sum of squares of the ``(x, v)`` block of ``P_eff³``: the short-time loss).
    ``T`` is an integer exponent (the authors use 20 or 10); ``alpha`` may be traced.
    Differentiable in ``sigmas`` (theory nb cell 11).
    """
    sigmas = as_float(sigmas)
    if sigmas.shape != (4,):
        fail("sigmas.shape", sigmas.shape, "(4,) = [σ_zm, σ_zu, σ_vm, σ_vu]", "vmap for several")
    s_zm, s_zu, s_vm, s_vu = sigmas[0], sigmas[1], sigmas[2], sigmas[3]
    delta = s_vm * s_zu
    loss_inf = stage2_pair_product(s_zm, s_zu, s_vm, s_vu) ** T
    loss_0 = (
        (s_zm + 1.0) ** 2 + (s_zm + 3.0) ** 2 + (delta + 2.0 * s_zm) ** 2 + (delta + 3.0 * s_zm + 1.0) ** 2
    )
    return alpha * loss_inf + (1.0 - alpha) * loss_0


def optimise_effective_loss(sigmas0, alpha, T, learning_rate, steps: int, clip=1.0):
    """SGD on :func:`effective_loss` over the 4 order parameters, as a ``lax.scan``.

    ``optax.sgd(learning_rate)`` after ``clip_by_global_norm(clip)`` (``clip=None``: no clipping),
    matching the theory notebook (SGD lr 1e-3, 200 steps, clip 1.0, T = 20).
    Returns ``(sigmas[steps + 1, 4], losses[steps + 1])``: the trajectory from ``sigmas0``
    and the loss at each point. ``steps`` and ``T`` are static ints; the rest may be traced.
    """
    check_range("steps", steps, 1, integer=True)
    transforms = [] if clip is None else [optax.clip_by_global_norm(clip)]
    optimiser = optax.chain(*transforms, optax.sgd(learning_rate))
    sigmas0 = as_float(sigmas0)
    loss_and_grad = jax.value_and_grad(effective_loss)

    def body(carry, _):
        sigmas, opt_state = carry
        loss, grad = loss_and_grad(sigmas, alpha, T)
        updates, opt_state = optimiser.update(grad, opt_state, sigmas)
        return (optax.apply_updates(sigmas, updates), opt_state), (sigmas, loss)

    (final, _), (path, losses) = jax.lax.scan(body, (sigmas0, optimiser.init(sigmas0)), length=steps)
    path = jnp.concatenate([path, final[None]], axis=0)
    losses = jnp.concatenate([losses, effective_loss(final, alpha, T)[None]], axis=0)
    return path, losses


# ----------------------------------------------------------------------------- vmapped forms

#: ``[K, N, c], [K, N, N], [K, m, N] -> [K, n + N, n + N]``; plant and ``alpha`` shared.
joint_matrix_batched = jax.vmap(joint_matrix, in_axes=(None, None, None, 0, 0, 0, None))
# spectrum, spectral_radius and dominant_is_complex take any leading axes themselves.
#: ``[K, E] -> [K]``.
stabilisation_epoch_batched = jax.vmap(stabilisation_epoch)
#: ``[K, N] ×4 -> [K, 4]``.
overlaps_batched = jax.vmap(overlaps)
#: ``[K] ×4 -> [K, 4, 4]``.
reduced_system_batched = jax.vmap(reduced_system)


"""Effective feedback gains and optimal-control references (Ger & Barak 2025, the authors' ``train_non_linear`` notebook).

Sign conventions — read before comparing numbers:

- **Learned / regressed gains** ``k`` (:func:`feedback_gains`, :func:`gain_landscape`,
  :func:`stability_map`) use ``u = k·x`` (``u = k₁ x + k₂ v`` for the double integrator), as
  the authors' regression does.
- **LQR** (:func:`lqr`) uses the control-textbook sign ``u = −K x``, so a learned ``k`` is
  compared with ``−K``.

Controllers to compare on one axis are :class:`LinearController` ``(F, G, H)``::

    u_t = H ξ_t,    x_{t+1} = A x_t + B u_t,    y_{t+1} = C x_{t+1},    ξ_{t+1} = F ξ_t + G y_{t+1}

with ``ξ_0 = 0`` (hence ``u_0 = 0``, as in the authors' rollouts where ``h_0 = 0``). A linear
CTRNN is ``F = (1−α)I + αW_rec, G = αW_in, H = W_out`` (:func:`rnn_controller`); the LQG
controller is the steady-state Kalman filter plus LQR (:func:`lqg_controller`).
:func:`closed_loop_cost` scores any of them with the same rollout.

Riccati equations are solved by iterating the Riccati recursion in a ``lax.while_loop``
(forward-mode/jit/vmap friendly; not reverse-differentiable). Use float64
(``with jax.enable_x64(True):``) for reference-grade numbers.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.closed_loop import as_float, as_matrix, joint_matrix, spectral_radius

# ----------------------------------------------------------------------------- learned gains


def feedback_gains(states, controls) -> jax.Array:
    """Least-squares gains of ``u ≈ k·x`` without intercept (Ger & Barak's code, ``train_non_linear`` notebook).

    Args:
      states: ``[S, n]`` true plant states (``[S, 2]``: position, velocity).
      controls: ``[S]`` (→ ``k[n]``) or ``[S, m]`` (→ ``K[m, n]``).

    The caller drops ``t = 0`` (where ``u = 0`` by construction); see
    :func:`feedback_gains_from_rollouts`. Equals ``sklearn LinearRegression(fit_intercept=False)``.
    """
    states, controls = jnp.asarray(states), jnp.asarray(controls)
    if states.ndim != 2:
        fail("states.shape", states.shape, "[S, n]", "use feedback_gains_from_rollouts for [B, T, n]")
    if controls.ndim not in (1, 2) or controls.shape[0] != states.shape[0]:
        fail("controls.shape", controls.shape, f"[S] or [S, m] with S = {states.shape[0]}")
    k, *_ = jnp.linalg.lstsq(states, controls)
    return k if controls.ndim == 1 else k.T


def feedback_gains_from_rollouts(states, controls, drop: int = 1) -> jax.Array:
    """:func:`feedback_gains` on rollouts ``states[B, T, n]``, ``controls[B, T]``, dropping ``t < drop``."""
    states, controls = jnp.asarray(states), jnp.asarray(controls)
    if states.ndim != 3 or controls.shape[:2] != states.shape[:2]:
        fail("states.shape, controls.shape", (states.shape, controls.shape), "[B, T, n] and [B, T]")
    check_range("drop", drop, 0, states.shape[1] - 1, integer=True)
    states = states[:, drop:].reshape(-1, states.shape[-1])
    controls = controls[:, drop:].reshape((states.shape[0],) + controls.shape[2:])
    return feedback_gains(states, controls)


def _log_cost(M, x0, T: int) -> jax.Array:
    """``log(Σ_{t<T} ‖x_t‖² / T)`` for ``x_{t+1} = M x_t``, accumulated in log space (no overflow)."""

    def step(carry, _):
        direction, log_norm = carry  # x_t = exp(log_norm) · direction, ‖direction‖ = 1 (or 0)
        nxt = M @ direction
        norm = jnp.linalg.norm(nxt)
        safe = jnp.where(norm > 0, norm, 1.0)
        return (nxt / safe, log_norm + jnp.log(norm)), log_norm

    norm0 = jnp.linalg.norm(x0)
    start = (x0 / jnp.where(norm0 > 0, norm0, 1.0), jnp.log(norm0))
    _, log_norms = jax.lax.scan(step, start, length=T)
    return jax.nn.logsumexp(2.0 * log_norms) - jnp.log(T)


def gain_landscape(A, B, k1_grid, k2_grid, x0=(1.0, 1.0), T: int = 50) -> jax.Array:
    """Cost landscape over static gains ``u = k₁ x₁ + k₂ x₂`` (the authors' ``train_non_linear`` and figures notebooks).

    ``cost[i, j] = log(Σ_{t=0}^{T−1} ‖x_t‖² / T)`` with ``x_{t+1} = (A + B [k1_grid[i], k2_grid[j]]) x_t``
    from ``x_0 = x0``; ``x_0`` is counted, as in the training loss. Shapes: ``A[2, 2]``,
    ``B[2]`` or ``[2, 1]``, grids ``[K1]``, ``[K2]`` → ``[K1, K2]`` (the authors: 50×50 on
    ``[−1.2, 0.6]²``). Finite even where the loop diverges (log-space accumulation).
    """
    A = as_float(A)
    B = jnp.reshape(jnp.asarray(B, A.dtype), (-1,))
    if A.shape != (2, 2) or B.shape != (2,):
        fail("A.shape, B.shape", (A.shape, B.shape), "(2, 2) and (2,) or (2, 1): a 2-D plant, one input")
    x0 = jnp.asarray(x0, dtype=A.dtype)
    return _landscape(A, B, x0, jnp.asarray(k1_grid, A.dtype), jnp.asarray(k2_grid, A.dtype), int(T))


@functools.partial(jax.jit, static_argnums=5)
def _landscape(A, B, x0, k1_grid, k2_grid, T: int):
    """:func:`gain_landscape` after validation, compiled once per shape (a figure draws several)."""

    def cost(k1, k2):
        return _log_cost(A + jnp.outer(B, jnp.stack([k1, k2])), x0, T)

    return jax.vmap(jax.vmap(cost, in_axes=(None, 0)), in_axes=(0, None))(k1_grid, k2_grid)


#: Vertices ``(k₁, k₂)`` of the stable region of :func:`stability_map`, an open triangle.
STABLE_TRIANGLE = ((0.0, 0.0), (0.0, -2.0), (-4.0, -4.0))


def stability_map(k1, k2) -> jax.Array:
    """Stability label of ``M = [[1, 1], [k₁, 1 + k₂]]`` (double integrator under ``u = k₁x + k₂v``).

    ``2``: all ``|λ| < 1``; ``1``: unstable complex pair; ``0``: unstable, real eigenvalues.
    Elementwise with broadcasting, so a grid is
    ``stability_map(*jnp.meshgrid(k1_grid, k2_grid, indexing="ij"))`` (int32).

    Exact closed form (no grid, no eigen-solver). ``M``'s characteristic polynomial is
    ``λ² − τλ + δ`` with ``τ = 2 + k₂``, ``δ = 1 + k₂ − k₁``; by Jury's criterion both roots lie
    strictly inside the unit circle iff ``|δ| < 1`` and ``|τ| < 1 + δ``, which for this ``M`` is the
    open triangle (:data:`STABLE_TRIANGLE`)::

        k₁ < 0,   k₂ < k₁,   k₂ > (k₁ − 4)/2          vertices (0, 0), (0, −2), (−4, −4)

    (``δ > −1`` is implied). The roots are complex iff ``τ² − 4δ = k₂² + 4k₁ < 0``, i.e. left of
    the parabola ``k₁ = −k₂²/4``. Points on a boundary (``ρ = 1``) are unstable.
    """
    return _stability_labels(jnp.asarray(k1), jnp.asarray(k2))


@jax.jit
def _stability_labels(k1, k2):
    stable = (k1 < 0) & (k2 < k1) & (2.0 * k2 > k1 - 4.0)
    is_complex = k2 * k2 + 4.0 * k1 < 0
    return jnp.where(stable, 2, jnp.where(is_complex, 1, 0)).astype(jnp.int32)


# ----------------------------------------------------------------------------- Riccati, LQR, LQG


def _default_tol(dtype) -> float:
    return 1e-12 if jnp.dtype(dtype) == jnp.float64 else 1e-6


def solve_dare(A, B, Q, R, *, tol=None, max_iters: int = 10_000):
    """Discrete algebraic Riccati equation by iterating the Riccati recursion.

    ``P ← Q + AᵀPA − AᵀPB (R + BᵀPB)⁻¹ BᵀPA`` from ``P = Q`` until
    ``max|ΔP| ≤ tol·max(1, max|P|)`` (default 1e-12 in float64, 1e-6 in float32) or
    ``max_iters``. Returns ``(P[n, n], converged)``; ``converged`` is False when ``(A, B)`` is
    not stabilisable, ``(A, Q^{1/2})`` not detectable, or ``max_iters`` is too small.
    """
    dtype = jnp.result_type(*(as_float(a) for a in (A, B, Q, R)))
    A, B, Q, R = (jnp.asarray(a, dtype) for a in (A, B, Q, R))
    n = A.shape[0]
    if A.shape != (n, n) or B.ndim != 2 or B.shape[0] != n or Q.shape != (n, n):
        fail("A, B, Q shapes", (A.shape, B.shape, Q.shape), "[n, n], [n, m], [n, n]", "did you forget jax.vmap?")
    if R.shape != (B.shape[1], B.shape[1]):
        fail("R.shape", R.shape, f"[m, m] with m = B.shape[1] = {B.shape[1]}")
    tol = _default_tol(A.dtype) if tol is None else tol

    def riccati(P):
        gain = jnp.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P_new = Q + A.T @ P @ A - A.T @ P @ B @ gain
        return 0.5 * (P_new + P_new.T)

    def cond(carry):
        i, _, change = carry
        return (i < max_iters) & (change > 0)

    def body(carry):
        i, P, _ = carry
        P_new = riccati(P)
        change = jnp.max(jnp.abs(P_new - P))
        done = (change <= tol * jnp.maximum(1.0, jnp.max(jnp.abs(P_new)))) | ~jnp.isfinite(change)
        return i + 1, P_new, jnp.where(done, 0.0, change)

    start = (jnp.zeros((), jnp.int32), Q, jnp.ones((), A.dtype))
    _, P, change = jax.lax.while_loop(cond, body, start)
    converged = (change == 0) & jnp.all(jnp.isfinite(P))
    return P, converged


def lqr(A, B, Q, R, *, tol=None, max_iters: int = 10_000) -> jax.Array:
    """Infinite-horizon discrete LQR gain ``K[m, n]`` for ``u = −K x``.

    Minimises ``Σ_t x_tᵀ Q x_t + u_tᵀ R u_t`` subject to ``x_{t+1} = A x_t + B u_t``:
    ``K = (R + BᵀPB)⁻¹ BᵀPA`` with ``P`` from :func:`solve_dare` (check its ``converged``
    when in doubt). ``B`` may be a vector ``[n]`` (one input).
    """
    B = as_matrix("B", B, "col")
    P, _ = solve_dare(A, B, Q, jnp.atleast_2d(R), tol=tol, max_iters=max_iters)
    return jnp.linalg.solve(jnp.atleast_2d(R) + B.T @ P @ B, B.T @ P @ jnp.asarray(A))


def lqr_cost(A, B, Q, R, x0, K=None) -> jax.Array:
    """Infinite-horizon cost ``Σ_{t≥0} x_tᵀQx_t + u_tᵀRu_t`` from ``x0[n]`` under ``u = −K x``.

    ``K=None`` uses the optimal :func:`lqr` gain (then the cost is ``x0ᵀ P x0``, ``P`` the DARE
    solution). Otherwise ``x0ᵀ P_K x0`` with ``P_K = Q + KᵀRK + (A − BK)ᵀ P_K (A − BK)``
    (solved exactly, Kronecker form); ``+inf`` when ``A − BK`` is not stable.
    """
    A, x0 = as_float(A), as_float(x0)
    B, R = as_matrix("B", B, "col"), jnp.atleast_2d(R)
    K = lqr(A, B, Q, R) if K is None else jnp.atleast_2d(K)
    closed = A - B @ K
    n = A.shape[0]
    weight = jnp.asarray(Q) + K.T @ R @ K
    # vec(P) = (I − Mᵀ⊗Mᵀ)⁻¹ vec(W) for P = W + MᵀPM (row-major vec).
    P = jnp.linalg.solve(jnp.eye(n * n, dtype=A.dtype) - jnp.kron(closed.T, closed.T), weight.reshape(-1))
    cost = x0 @ P.reshape(n, n) @ x0
    return jnp.where(spectral_radius(closed) < 1.0, cost, jnp.inf)


def kalman_gain(A, C, W, V, *, tol=None, max_iters: int = 10_000) -> jax.Array:
    """Steady-state Kalman filter gain ``L[n, c]`` for ``x' = Ax + w``, ``y = Cx + v``.

    ``w ~ N(0, W)``, ``v ~ N(0, V)``. The prior covariance ``Σ`` solves the dual DARE
    ``Σ = AΣAᵀ + W − AΣCᵀ(CΣCᵀ + V)⁻¹CΣAᵀ`` (:func:`solve_dare` on ``(Aᵀ, Cᵀ, W, V)``), and
    ``L = ΣCᵀ(CΣCᵀ + V)⁻¹`` is the *measurement-update* gain:
    ``x̂_{t|t} = x̂_{t|t−1} + L (y_t − C x̂_{t|t−1})``. (The one-step predictor gain is ``A L``.)
    """
    A, C, V = jnp.asarray(A), as_matrix("C", C, "row"), jnp.atleast_2d(V)
    Sigma, _ = solve_dare(A.T, C.T, W, V, tol=tol, max_iters=max_iters)
    return jnp.linalg.solve(C @ Sigma @ C.T + V, C @ Sigma).T


class LinearController(NamedTuple):
    """Linear dynamic controller ``ξ' = F ξ + G y'``, ``u = H ξ``, ``ξ_0 = 0`` (a pytree).

    Shapes ``F[N, N]``, ``G[N, c]``, ``H[m, N]``; stack along a leading axis and ``jax.vmap``
    for populations.
    """

    F: jax.Array
    G: jax.Array
    H: jax.Array


def rnn_controller(W_in, W_rec, W_out, alpha=1.0) -> LinearController:
    """The linear CTRNN ``h' = (1−α)h + α(W_rec h + W_in y')``, ``u = W_out h`` as a controller."""
    W_rec = jnp.asarray(W_rec)
    W_in, W_out = as_matrix("W_in", W_in, "col"), as_matrix("W_out", W_out, "row")
    F = (1.0 - alpha) * jnp.eye(W_rec.shape[0], dtype=W_rec.dtype) + alpha * W_rec
    return LinearController(F, alpha * W_in, W_out)


def state_feedback_controller(K) -> LinearController:
    """Static feedback ``u = K x`` (learned-gain sign) as a controller; use it with ``C = I``.

    ``ξ`` is the last observed state, so ``u_0 = 0`` like every controller here. For LQR pass
    ``-lqr(A, B, Q, R)``.
    """
    K = jnp.atleast_2d(jnp.asarray(K))
    n = K.shape[1]
    return LinearController(jnp.zeros((n, n), K.dtype), jnp.eye(n, dtype=K.dtype), K)


def lqg_controller(A, B, C, Q, R, W, V, *, tol=None, max_iters: int = 10_000) -> LinearController:
    """Steady-state LQG: Kalman filter (:func:`kalman_gain`) + LQR (:func:`lqr`).

    ``ξ_t = x̂_{t|t}``; ``u_t = −K ξ_t``; prediction ``(A − BK) ξ_t`` and update with
    ``y_{t+1}``: ``ξ_{t+1} = (I − LC)(A − BK) ξ_t + L y_{t+1}``. ``ξ_0 = 0`` (prior mean).
    """
    A, B, C = jnp.asarray(A), as_matrix("B", B, "col"), as_matrix("C", C, "row")
    K = lqr(A, B, Q, R, tol=tol, max_iters=max_iters)
    L = kalman_gain(A, C, W, V, tol=tol, max_iters=max_iters)
    F = (jnp.eye(A.shape[0], dtype=A.dtype) - L @ C) @ (A - B @ K)
    return LinearController(F, L, -K)


def closed_loop_matrix(A, B, C, controller: LinearController) -> jax.Array:
    """Joint map of plant and controller: ``[[A, BH], [GCA, F + GCBH]]`` (``joint_matrix`` with α = 1)."""
    return joint_matrix(A, B, C, controller.G, controller.F, controller.H, 1.0)


def _promoted_float(*values) -> jnp.dtype:
    """``jnp.result_type`` of ``values`` (Python scalars and weakly typed values, such as a
    Python float passed through ``jax.jit``, never promote float32 to float64); the default
    float when they are all integers."""
    dtype = jnp.result_type(*(v if isinstance(v, (int, float)) else jnp.asarray(v) for v in values))
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.result_type(dtype, float)


def closed_loop_cost(A, B, C, controller: LinearController, x0s, T: int, Q=None, R=None) -> jax.Array:
    """Mean finite-horizon cost ``(1/T) Σ_{t<T} x_tᵀQx_t + u_tᵀRu_t`` over ``x0s[K, n]``.

    Noise-free rollout of :func:`closed_loop_matrix` from ``[x0; 0]``. Defaults ``Q = I``,
    ``R = 0``; the authors' training loss (mean over state dims too) is this divided by ``n``.

    Dtype: the rollout runs in, and the scalar result has, the promoted dtype of all array
    inputs (``A, B, C``, the controller's ``F, G, H``, ``x0s``, ``Q``, ``R``; Python scalars are
    weak and integers count as the default float) — float32 unless one of them is float64,
    which needs ``jax.enable_x64``. So float32 params with NumPy (float64) plant matrices give
    float64 under x64 and float32 without it; cast the inputs to choose.
    """
    dtype = _promoted_float(A, B, C, *controller, x0s, *(a for a in (Q, R) if a is not None))
    A, B, C, x0s = (jnp.asarray(a, dtype) for a in (A, B, C, x0s))
    controller = LinearController(*(jnp.asarray(a, dtype) for a in controller))
    n = A.shape[0]
    if x0s.ndim != 2 or x0s.shape[1] != n:
        fail("x0s.shape", x0s.shape, f"[K, n] with n = {n}")
    P = closed_loop_matrix(A, B, C, controller)
    H = jnp.atleast_2d(controller.H)
    Q = jnp.eye(n, dtype=dtype) if Q is None else jnp.asarray(Q, dtype)
    R = jnp.zeros((H.shape[0], H.shape[0]), dtype) if R is None else jnp.atleast_2d(jnp.asarray(R, dtype))

    def one(x0):
        def step(s, _):
            x, xi = s[:n], s[n:]
            u = H @ xi
            return P @ s, x @ Q @ x + u @ R @ u

        s0 = jnp.concatenate([x0, jnp.zeros(P.shape[0] - n, dtype)])
        _, costs = jax.lax.scan(step, s0, length=T)
        return jnp.mean(costs)

    return jnp.mean(jax.vmap(one)(x0s))


# ----------------------------------------------------------------------------- vmapped forms

#: ``states[K, S, n], controls[K, S] -> [K, n]``.
feedback_gains_batched = jax.vmap(feedback_gains)
#: ``A[K, n, n], B[K, n, m], Q[K, n, n], R[K, m, m] -> [K, m, n]``.
lqr_batched = jax.vmap(lqr)
#: controllers stacked on a leading axis ``-> [K]`` (plant, ``x0s`` and ``T`` shared).
closed_loop_cost_batched = jax.vmap(closed_loop_cost, in_axes=(None, None, None, 0, None, None, None, None))

"""Linearisation of a one-network map: Jacobians, spectra and integration timescales.

For a discrete-time map ``x_{t+1} = F(x_t, u_t)`` (``step(x[N], u[M]) -> x_next[N]``, pure,
params closed over) linearised at a state ``x*`` and input ``u*``::

    δx_{t+1} ≈ J_rec δx_t + J_inp δu_t,     J_rec = ∂F/∂x [N, N],  J_inp = ∂F/∂u [N, M]

The spectrum of ``J_rec`` decides stability (discrete time: stable iff ``max|λ| < 1``, as
Golub's fixed-point-finder ``FixedPoints.is_stable``) and sets the integration timescales
(Singh et al. / Huang, Singh & Rajan 2024, plumetracknets ``arch_utils.py``)::

    τ_i = dt · | 1 / ln|λ_i| |

measured in units of ``dt`` per step (``dt = 1``: steps). ``|λ| = 1`` (a perfect integrator
mode) gives ``τ = inf``; ``|λ| = 0`` gives ``τ = 0``; unstable modes ``|λ| > 1`` get the
e-folding time of their growth unless ``unstable_tau`` replaces it (Singh's ``filters=['fix']``
sets ``τ = 1`` for every ``|λ| ≥ 1``).

Everything is written for one network and one state; :func:`jacobians` is the vmapped form
over states, :func:`spectrum` and :func:`timescales` accept any leading batch axes, and a
population of networks is lifted with ``jax.vmap`` over a params pytree, e.g.
``jax.vmap(lambda p, x: jacobian(partial(step, p), x, u))(params, xs)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrnn._checks import check_range, fail

Step = Callable[[jax.Array, jax.Array], jax.Array]


def _check_state_input(step: Step, x: jax.Array, u: jax.Array, name_x: str = "x") -> None:
    """Eager shape checks: ``x[N]``, ``u[M]`` and ``step(x, u)`` of shape ``[N]``."""
    if x.ndim != 1:
        fail(f"{name_x}.shape", x.shape, "[N] (one state)", "for many states use jacobians or jax.vmap")
    if u.ndim != 1:
        fail("u.shape", u.shape, "[M] (one input vector)", "for a scalar input pass u[None]")
    out = jax.eval_shape(step, x, u)
    if out.shape != x.shape:
        fail("step(x, u).shape", out.shape, f"equal to x.shape = {x.shape}", "step must map x[N], u[M] to x_next[N]")


def jacobian(step: Step, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Jacobians of ``step`` at ``(x, u)`` by forward-mode autodiff (``jax.jacfwd``).

    Args:
      step: pure map ``step(x[N], u[M]) -> x_next[N]`` of one network.
      x: state ``[N]``.
      u: input ``[M]``.

    Returns:
      ``(J_rec[N, N], J_inp[N, M])`` with ``J_rec[i, j] = ∂F_i/∂x_j`` and
      ``J_inp[i, k] = ∂F_i/∂u_k``.
    """
    x = jnp.asarray(x)
    u = jnp.asarray(u)
    _check_state_input(step, x, u)
    return jax.jacfwd(step, argnums=(0, 1))(x, u)


def jacobians(step: Step, xs: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`jacobian` at many states: ``xs[K, N]`` with one input ``u[M]`` or ``u[K, M]``.

    Returns ``(J_rec[K, N, N], J_inp[K, N, M])``.
    """
    xs = jnp.asarray(xs)
    u = jnp.asarray(u)
    if xs.ndim != 2:
        fail("xs.shape", xs.shape, "[K, N] (a batch of states)", "for one state use jacobian")
    if u.ndim not in (1, 2) or (u.ndim == 2 and u.shape[0] != xs.shape[0]):
        fail("u.shape", u.shape, f"[M] or [K, M] with K = {xs.shape[0]}")
    in_axes = (0, 0 if u.ndim == 2 else None)
    return jax.vmap(lambda x, v: jacobian(step, x, v), in_axes=in_axes)(xs, u)


def spectrum(J: jax.Array) -> jax.Array:
    """Eigenvalues of ``J[..., N, N]``, sorted by modulus ``|λ|`` in descending order.

    Returns a complex array ``[..., N]`` (the order within a complex-conjugate pair, which
    share ``|λ|``, is whatever ``argsort`` gives). Works on any leading batch axes.
    """
    J = jnp.asarray(J)
    if J.ndim < 2 or J.shape[-1] != J.shape[-2]:
        fail("J.shape", J.shape, "[..., N, N] (square in the last two axes)")
    eigvals = jnp.linalg.eigvals(J)
    order = jnp.argsort(-jnp.abs(eigvals), axis=-1)
    return jnp.take_along_axis(eigvals, order, axis=-1)


def timescales(eigvals: jax.Array, dt: float = 1.0, *, unstable_tau: float | None = None) -> jax.Array:
    """Integration timescales ``τ = dt · |1 / ln|λ||`` of discrete-time eigenvalues.

    Args:
      eigvals: eigenvalues (real or complex), any shape.
      dt: duration of one step (1 gives τ in steps; 0.1 gives McMahan's time units).
      unstable_tau: if given, ``τ`` of every mode with ``|λ| ≥ 1`` is replaced by this value
        (Singh et al.'s ``'fix'`` filter uses 1.0); by default ``|λ| = 1`` gives ``inf`` and
        ``|λ| > 1`` the growth e-folding time.

    Returns:
      real array of the shape of ``eigvals`` (dtype of ``|λ|``).

    Example:
        >>> import jax.numpy as jnp
        >>> [round(float(t), 3) for t in timescales(jnp.array([0.9, -0.5, 0.0]))]   # 1/|ln 0.9|, 1/ln 2, 0
        [9.491, 1.443, 0.0]
        >>> round(float(timescales(jnp.array([0.9]), dt=0.1)[0]), 4)               # in McMahan's time units
        0.9491
    """
    check_range("dt", dt, 0.0, low_open=True)
    if unstable_tau is not None:
        check_range("unstable_tau", unstable_tau, 0.0)
    modulus = jnp.abs(jnp.asarray(eigvals))
    log_mod = jnp.log(modulus)
    # 1/0 -> inf at |λ| = 1 and 1/(-inf) -> 0 at λ = 0, which is the intended limit.
    tau = dt * jnp.abs(1.0 / log_mod)
    if unstable_tau is not None:
        tau = jnp.where(modulus >= 1.0, jnp.asarray(unstable_tau, tau.dtype), tau)
    return tau

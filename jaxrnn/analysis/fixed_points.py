"""Fixed points of a one-network map by minimising the speed q from many starts.

Spec (Sussillo & Barak 2013; Golub & Sussillo 2018 ``fixed-point-finder``, SPECS §4; McMahan
et al. 2021 ``FP_Analysis.py``, SPECS §3.7):

- **Objective.** For a pure map ``step(x[N], u[M]) -> x_next[N]`` and a static input ``u``,
  each candidate minimises ``q(x) = ½‖F(x, u) − x‖²`` from its own start ``x0[k]``.
- **Methods** (fixed iteration budget ``max_iters``, per-candidate convergence masks that
  freeze a finished candidate, no data-dependent Python control flow — a ``lax.while_loop``
  that ends after ``max_iters`` iterations or once every candidate is frozen — so the whole
  finder jits and vmaps across networks):
    - ``"lm"``: Levenberg–Marquardt (damped Gauss–Newton) on the residual ``F(x, u) − x``,
      ``δ = −(JᵀJ + λI)⁻¹ Jᵀr`` with ``J = ∂F/∂x − I`` by ``jax.jacfwd``, accepted iff ``q``
      drops (``λ ← λ/3``, else ``λ ← 4λ``) — the analogue of McMahan's
      ``scipy.optimize.root(method='lm', tol=1e-8)`` (MINPACK). Written here in JAX rather than
      with ``optimistix.LevenbergMarquardt``: optimistix vmaps cleanly, but builds its damping
      term in the default float dtype, so float32 starts under ``jax_enable_x64`` fail with a
      lineax structure mismatch (optimistix 0.1.0); this version stays in ``x0``'s dtype.
    - ``"adam"``: Adam (``b1 = 0.9, b2 = 0.999, eps = 1e-5``, as google-research's
      computation-thru-dynamics finder) on ``q`` with an exponentially decaying learning rate
      ``learning_rate · decay^i`` (``optax.exponential_decay``); a candidate whose
      ``q < stop_tol`` is frozen (its mask), as Golub's
      per-candidate stop ``q < tol_q``. Adam is element-wise, so the joint optimisation of
      ``Σ_k q_k`` is exactly ``K`` independent optimisations.
- **Post-processing** (fixed shapes: padded ``[K, ·]`` arrays and a validity mask):
    1. ``converged = q < tol`` (and finite);
    2. distance outliers (Golub): with ``c`` the centroid of ``x0`` and ``d̄`` the mean
       ``‖x0 − c‖``, drop ``x*`` with ``‖x* − c‖ / d̄ ≥ outlier_scale`` (skipped when
       ``outlier_scale`` is None or ``d̄ = 0``);
    3. uniqueness (Golub's ``get_unique``): candidates are visited in index order; an
       unvisited candidate ``i`` claims every unvisited candidate within Euclidean distance
       ``unique_tol`` of it, and of that cluster the one with the lowest ``q`` is kept.
       (McMahan instead averaged each cluster with tolerance 1e-2; here the representative
       is an actual optimiser output, so its ``q`` and Jacobian are exact.)
    ``valid = converged & not outlier & unique``.
- **Classification.** ``eigvals[k]`` are the eigenvalues of ``∂step/∂x`` at ``x*[k]`` sorted
  by ``|λ|`` descending; ``stable = valid & (max|λ| < 1)`` (discrete-time map). McMahan's
  perturbation test (25 kicks of size 1e-4, 100 steps) is not reproduced: for a hyperbolic
  fixed point it agrees with the spectral criterion.
- **Dtype.** Everything runs in ``x0``'s float dtype (float64 when ``jax_enable_x64`` is on
  and ``x0`` is float64 — needed for ``tol = 1e-8`` on large networks).

Configuration tiers: ``method``, ``max_iters`` and every float option are static Python
values; ``x0`` and ``u`` are arrays (may be traced). The finder is compiled once per
(``step`` object, shapes, options) — looping over probe inputs with one ``step`` reuses the
compilation (an unhashable ``step`` runs uncached) — and composes with ``jax.jit``/``vmap``.
Candidate order is kept: row ``k`` of the result came from ``x0[k]``.

For a population of networks, :func:`find_fixed_points_population` vmaps the finder over a
params pytree with a leading member axis (``step(params, x, u)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.analysis.linearize import spectrum

METHODS = ("lm", "adam")
DEFAULT_MAX_ITERS = {"lm": 200, "adam": 5000}

#: McMahan's "small" RDM probe amplitudes (``rnnanalysis.py``): 0, ±0.1, ..., ±1.0 (× 0.03).
RDM_PROBE_LEVELS = (0.0, 0.1, -0.1, 0.2, -0.2, 0.3, -0.3, 0.4, -0.4, 0.5, -0.5,
                    0.6, -0.6, 0.7, -0.7, 0.8, -0.8, 0.9, -0.9, 1.0, -1.0)
RDM_PROBE_SCALE = 0.03
CONTEXT_PROBE_MAX = 0.02
NUM_PROBES_PER_CONTEXT = 21


@struct.dataclass
class FixedPoints:
    """Fixed points of one network for one static input (padded, one row per start).

    Attributes:
      x: ``[K, N]`` optimiser outputs ``x*`` (meaningful where ``valid``).
      q: ``[K]`` speed ``½‖F(x*, u) − x*‖²`` (``inf`` where the optimiser diverged).
      valid: ``[K]`` bool, ``q < tol`` and not a distance outlier and the kept member of its
        cluster of duplicates.
      eigvals: ``[K, N]`` complex eigenvalues of ``∂F/∂x`` at ``x*``, sorted by ``|λ|``
        descending (NaN rows where ``x*`` is not finite).
      stable: ``[K]`` bool, ``valid & (max|λ| < 1)``.
      converged: ``[K]`` bool, ``q < tol`` (before the uniqueness and outlier filters).
    """

    x: jax.Array
    q: jax.Array
    valid: jax.Array
    eigvals: jax.Array
    stable: jax.Array
    converged: jax.Array

    @property
    def num_valid(self) -> jax.Array:
        """Number of distinct fixed points found (``[...]`` under vmap)."""
        return jnp.sum(self.valid, axis=-1)

    @property
    def num_unstable(self) -> jax.Array:
        """``[K]`` number of eigenvalues with ``|λ| > 1`` (0: attractor, 1: saddle, ...)."""
        return jnp.sum(jnp.abs(self.eigvals) > 1.0, axis=-1)


def _residual(step: Callable, x: jax.Array, u: jax.Array) -> jax.Array:
    return step(x, u).astype(x.dtype) - x


def speed(step: Callable, x: jax.Array, u: jax.Array) -> jax.Array:
    """``q(x) = ½‖step(x, u) − x‖²`` for one state ``x[N]``."""
    r = _residual(step, x, u)
    return 0.5 * jnp.sum(r * r)


def _lm_body(residual, xtol: float, stop_tol: float):
    """One Levenberg–Marquardt iteration for one candidate (masked by ``done``)."""

    def body(carry):
        i, x, damping, done = carry
        r = residual(x)
        J = jax.jacfwd(residual)(x)
        q = 0.5 * jnp.sum(r * r)
        hessian = J.T @ J
        eye = jnp.eye(x.shape[0], dtype=x.dtype)
        damping = jnp.where(i == 0, 1e-3 * jnp.max(jnp.diagonal(hessian)) + jnp.finfo(x.dtype).tiny, damping)
        delta = -jnp.linalg.solve(hessian + damping * eye, J.T @ r)
        x_new = x + delta
        r_new = residual(x_new)
        q_new = 0.5 * jnp.sum(r_new * r_new)
        accept = jnp.isfinite(q_new) & (q_new < q) & ~done
        # A tiny step, accepted or not, means a root or a stagnation point (MINPACK's xtol).
        small_step = jnp.linalg.norm(delta) <= xtol * (jnp.linalg.norm(x) + xtol)
        x = jnp.where(accept, x_new, x)
        damping = jnp.where(accept, damping / 3.0, damping * 4.0)
        damping = jnp.clip(damping, jnp.finfo(x.dtype).tiny, 1.0 / jnp.finfo(x.dtype).eps)
        q_now = jnp.where(accept, q_new, q)
        done = done | (q_now < stop_tol) | (q_now == 0) | small_step | ~jnp.isfinite(q)
        return i + 1, x, damping, done

    return body


def _solve_lm(step, x0, u, max_iters: int, xtol: float, stop_tol: float) -> jax.Array:
    """Damped Gauss–Newton (Levenberg 1944 / Marquardt 1963) on ``r(x) = F(x, u) − x``.

    ``δ = −(JᵀJ + λI)⁻¹ Jᵀr``; a step is accepted iff it lowers ``q``, then ``λ ← λ/3``,
    else ``λ ← 4λ`` (``λ₀ = 10⁻³ max diag JᵀJ``, Madsen–Nielsen). A candidate is done once
    ``q < stop_tol``, ``q = 0`` or ``‖δ‖ ≤ xtol·(‖x‖ + xtol)``; the loop stops when every
    candidate is done or after ``max_iters`` iterations.
    """
    residual = lambda x: _residual(step, x, u)  # noqa: E731
    body = jax.vmap(_lm_body(residual, xtol, stop_tol), in_axes=((None, 0, 0, 0),), out_axes=(None, 0, 0, 0))

    def cond(carry):
        i, _, _, done = carry
        return (i < max_iters) & ~jnp.all(done)

    K = x0.shape[0]
    init = (jnp.zeros((), jnp.int32), x0, jnp.ones((K,), x0.dtype), jnp.zeros((K,), bool))
    _, x, _, _ = jax.lax.while_loop(cond, body, init)
    return x


def _solve_adam(step, x0, u, max_iters: int, learning_rate: float, decay: float, stop_tol: float) -> jax.Array:
    schedule = optax.exponential_decay(learning_rate, transition_steps=1, decay_rate=decay)
    optimizer = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-5)
    value_and_grad = jax.vmap(jax.value_and_grad(lambda x: speed(step, x, u)))

    def body(carry):
        i, x, opt_state, done = carry
        q, grad = value_and_grad(x)
        done = done | (q < stop_tol) | ~jnp.isfinite(q)
        updates, opt_state = optimizer.update(grad, opt_state, x)
        x = jnp.where(done[:, None], x, optax.apply_updates(x, updates))
        return i + 1, x, opt_state, done

    def cond(carry):
        i, _, _, done = carry
        return (i < max_iters) & ~jnp.all(done)

    init = (jnp.zeros((), jnp.int32), x0, optimizer.init(x0), jnp.zeros(x0.shape[:1], bool))
    _, x, _, _ = jax.lax.while_loop(cond, body, init)
    return x


def _not_outliers(x: jax.Array, x0: jax.Array, outlier_scale: float | None) -> jax.Array:
    """Golub's distance-outlier test relative to the spread of the starting states."""
    if outlier_scale is None:
        return jnp.ones(x.shape[:1], bool)
    centroid = jnp.mean(x0, axis=0)
    spread = jnp.mean(jnp.linalg.norm(x0 - centroid, axis=-1))
    distance = jnp.linalg.norm(x - centroid, axis=-1)
    inside = distance < outlier_scale * spread
    return jnp.where(spread > 0, inside, True)


def _unique_mask(x: jax.Array, q: jax.Array, candidate: jax.Array, unique_tol: float) -> jax.Array:
    """Greedy clustering in index order; keep the lowest-``q`` member of each cluster.

    Distances are computed row by row (``O(K·N)`` memory) and exactly, not via a Gram matrix
    whose cancellation would blur ``unique_tol`` in float32.
    """

    def body(i, carry):
        checked, keep = carry
        active = candidate[i] & ~checked[i]
        close = jnp.linalg.norm(x - x[i], axis=-1) <= unique_tol
        match = candidate & ~checked & close & active
        best = jnp.argmin(jnp.where(match, q, jnp.inf))
        keep = keep.at[best].set(keep[best] | active)
        return checked | match, keep

    init = (jnp.zeros(x.shape[:1], bool), jnp.zeros(x.shape[:1], bool))
    _, keep = jax.lax.fori_loop(0, x.shape[0], body, init)
    return keep


def _check_options(method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol):
    check_choice("method", method, METHODS)
    check_range("tol", tol, 0.0, low_open=True)
    check_range("max_iters", max_iters, 1, integer=True)
    check_range("learning_rate", learning_rate, 0.0, low_open=True)
    check_range("decay", decay, 0.0, 1.0, low_open=True)
    check_range("stop_tol", stop_tol, 0.0)
    check_range("unique_tol", unique_tol, 0.0)
    if outlier_scale is not None:
        check_range("outlier_scale", outlier_scale, 0.0, low_open=True)
    check_range("xtol", xtol, 0.0, low_open=True)


def find_fixed_points(
    step: Callable[[jax.Array, jax.Array], jax.Array],
    x0: jax.Array,
    u: jax.Array,
    *,
    method: str = "lm",
    tol: float = 1e-8,
    max_iters: int | None = None,
    learning_rate: float = 1.0,
    decay: float = 0.9995,
    stop_tol: float | None = None,
    unique_tol: float = 1e-3,
    outlier_scale: float | None = 10.0,
    xtol: float | None = None,
) -> FixedPoints:
    """Fixed points ``x* = step(x*, u)`` of one network from the starts ``x0[K, N]``.

    Args:
      step: pure map ``step(x[N], u[M]) -> x_next[N]`` (network params closed over).
      x0: ``[K, N]`` starting states (e.g. :func:`sample_states` of visited states); their
        float dtype is the working dtype.
      u: ``[M]`` static input (cast to ``x0``'s dtype).
      method: ``"lm"`` (Levenberg–Marquardt) or ``"adam"`` (optax).
      tol: a candidate converged iff ``q < tol`` (McMahan: 1e-8).
      max_iters: fixed iteration budget per candidate; default 200 (``"lm"``) or 5000
        (``"adam"``).
      learning_rate, decay: Adam step size ``learning_rate · decay^i`` (``"adam"`` only;
        Golub's initial rate 1.0, decaying ×0.9995 per step, i.e. ×0.08 over 5000 steps).
      stop_tol: a candidate is frozen once ``q < stop_tol``; default ``1e-4 · tol`` for
        ``"adam"`` and 0 for ``"lm"`` (which stops on its step size, see ``xtol``).
      unique_tol: Euclidean radius within which two fixed points are the same (Golub: 1e-3).
      outlier_scale: drop ``x*`` farther than ``outlier_scale`` mean start-spreads from the
        centroid of ``x0`` (Golub: 10); None keeps all.
      xtol: LM stops a candidate once a step has ``‖δ‖ ≤ xtol·(‖x‖ + xtol)`` (MINPACK's
        xtol test); default ``max(1e-10, 10·eps)`` of the dtype (``"lm"`` only).

    Returns:
      :class:`FixedPoints` with ``[K, ·]`` arrays aligned with ``x0``.

    Raises:
      ValueError: bad option values, ``x0`` not ``[K, N]`` (did you forget
        :func:`find_fixed_points_population` / ``jax.vmap``?), ``u`` not ``[M]``, ``x0`` not
        floating point, or ``step(x, u)`` not of shape ``[N]``.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 2:
        fail("x0.shape", x0.shape, "[K, N] (K starting states of one network)",
             "for one start use x0[None]; for a population use find_fixed_points_population or jax.vmap")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        fail("x0.dtype", x0.dtype, "a floating dtype (float32, or float64 with jax_enable_x64)")
    u = jnp.asarray(u)
    if u.ndim != 1:
        fail("u.shape", u.shape, "[M] (one static input vector)", "for a scalar input pass u[None]")
    u = u.astype(x0.dtype)
    out = jax.eval_shape(step, x0[0], u)
    if out.shape != x0.shape[1:]:
        fail("step(x, u).shape", out.shape, f"equal to x.shape = {x0.shape[1:]}",
             "step must map one state x[N] and input u[M] to x_next[N]")
    max_iters = DEFAULT_MAX_ITERS.get(method, 1) if max_iters is None else max_iters
    if stop_tol is None:
        stop_tol = 1e-4 * tol if method == "adam" else 0.0
    xtol = max(1e-10, 10.0 * float(jnp.finfo(x0.dtype).eps)) if xtol is None else xtol
    _check_options(method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol)

    options = dict(method=method, tol=float(tol), max_iters=int(max_iters), learning_rate=float(learning_rate),
                   decay=float(decay), stop_tol=float(stop_tol), unique_tol=float(unique_tol),
                   outlier_scale=None if outlier_scale is None else float(outlier_scale), xtol=float(xtol))
    try:
        hash(step)
    except TypeError:  # e.g. a bound method of an unhashable object: run without the cache
        return _find(step, x0, u, **options)
    return _find_jit(step, x0, u, **options)


def _find(step, x0, u, *, method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol):
    if method == "lm":
        x = _solve_lm(step, x0, u, max_iters, xtol, stop_tol)
    else:
        x = _solve_adam(step, x0, u, max_iters, learning_rate, decay, stop_tol)

    finite = jnp.all(jnp.isfinite(x), axis=-1)
    q = jax.vmap(lambda xi: speed(step, xi, u))(x)
    q = jnp.where(finite & jnp.isfinite(q), q, jnp.inf)
    converged = q < tol
    candidate = converged & _not_outliers(x, x0, outlier_scale)
    valid = candidate & _unique_mask(x, q, candidate, unique_tol)

    x_safe = jnp.where(finite[:, None], x, x0)
    J = jax.vmap(jax.jacfwd(step), in_axes=(0, None))(x_safe, u).astype(x0.dtype)
    eigvals = spectrum(J)
    eigvals = jnp.where(finite[:, None], eigvals, jnp.nan)
    stable = valid & (jnp.max(jnp.abs(eigvals), axis=-1) < 1.0)
    return FixedPoints(x=x, q=q, valid=valid, eigvals=eigvals, stable=stable, converged=converged)


# Compiled once per (step, shapes, options): looping over probe inputs with one step reuses it.
_find_jit = jax.jit(_find, static_argnums=0, static_argnames=(
    "method", "tol", "max_iters", "learning_rate", "decay", "stop_tol", "unique_tol", "outlier_scale", "xtol"))


def find_fixed_points_population(
    step: Callable[[Any, jax.Array, jax.Array], jax.Array],
    params: Any,
    x0: jax.Array,
    u: jax.Array,
    **options: Any,
) -> FixedPoints:
    """:func:`find_fixed_points` for a population: ``jax.vmap`` over the members' params.

    Args:
      step: ``step(params, x[N], u[M]) -> x_next[N]`` for one member.
      params: pytree whose leaves have a leading member axis ``P``.
      x0: ``[P, K, N]`` per-member starts, or ``[K, N]`` shared by every member.
      u: ``[P, M]`` per-member inputs, or ``[M]`` shared.
      **options: keyword options of :func:`find_fixed_points` (static).

    Returns:
      :class:`FixedPoints` with a leading member axis (``x[P, K, N]``, ``valid[P, K]``, ...),
      equal to stacking per-member calls.
    """
    x0 = jnp.asarray(x0)
    u = jnp.asarray(u)
    if x0.ndim not in (2, 3):
        fail("x0.shape", x0.shape, "[P, K, N] (per member) or [K, N] (shared)")
    if u.ndim not in (1, 2):
        fail("u.shape", u.shape, "[P, M] (per member) or [M] (shared)")

    def one(member_params, member_x0, member_u):
        return find_fixed_points(functools.partial(step, member_params), member_x0, member_u, **options)

    in_axes = (0, 0 if x0.ndim == 3 else None, 0 if u.ndim == 2 else None)
    return jax.vmap(one, in_axes=in_axes)(params, x0, u)


def sample_states(key: jax.Array, states: jax.Array, num: int, noise_std: float | jax.Array = 0.0) -> jax.Array:
    """``num`` starting states drawn uniformly (with replacement) from visited states.

    As Golub's ``sample_states``: random (trial, time) samples of actual trajectories plus
    optional isotropic Gaussian noise ``N(0, noise_std²)``.

    Args:
      key: PRNG key.
      states: ``[..., N]`` visited states (e.g. ``[B, T, N]`` rollouts); leading axes are
        flattened.
      num: number of samples (static).
      noise_std: standard deviation of the added noise (may be traced).

    Returns:
      ``[num, N]`` array in ``states``' dtype.
    """
    states = jnp.asarray(states)
    if states.ndim < 2:
        fail("states.shape", states.shape, "[..., N] with at least one sample axis", "for one state use states[None]")
    check_range("num", num, 1, integer=True)
    if not isinstance(noise_std, jax.core.Tracer):
        check_range("noise_std", noise_std, 0.0)
    flat = states.reshape(-1, states.shape[-1])
    return _sample_rows(key, flat, jnp.asarray(noise_std, flat.dtype), int(num))


@functools.partial(jax.jit, static_argnames="num")
def _sample_rows(key: jax.Array, flat: jax.Array, noise_std: jax.Array, num: int) -> jax.Array:
    key_index, key_noise = jax.random.split(key)
    index = jax.random.randint(key_index, (num,), 0, flat.shape[0])
    noise = jax.random.normal(key_noise, (num, flat.shape[-1]), flat.dtype)
    return flat[index] + noise_std * noise


def _num_contexts_of(task_name: str, num_contexts: int | None) -> int:
    implied = {"rdm": 0, "cdi": 2, "ncdi": num_contexts}.get(task_name)
    suffix = task_name[len("ncdi-"):] if task_name.startswith("ncdi-") else ""
    if suffix.isdigit():
        implied = int(suffix)
    elif task_name not in ("rdm", "cdi", "ncdi"):
        fail("task_name", task_name, "one of 'rdm', 'cdi', 'ncdi', 'ncdi-<n>' (e.g. 'ncdi-4')")
    if implied is None:
        fail("num_contexts", num_contexts, "an integer >= 2 for task_name 'ncdi'")
    if num_contexts is not None and int(num_contexts) != implied:
        fail("num_contexts", num_contexts, f"{implied} for task {task_name!r} (or None)")
    if task_name != "rdm":
        check_range("num_contexts", implied, 2, integer=True)
    return int(implied)


def probe_inputs(task_name: str, num_contexts: int | None = None, *, dtype: Any = jnp.float32) -> jax.Array:
    """McMahan et al.'s static ("small") probe inputs for the fixed-point analysis.

    From the authors' ``rnnanalysis.py`` (``rdm_fixed_points``, ``N_fixed_points``,
    ``inputs='small'``):

    - **RDM** (``M = 1``): ``0.03 · [0, 0.1, −0.1, 0.2, −0.2, …, 1.0, −1.0]``, 21 rows, in
      that order (increasing ``|·|``).
    - **CDI / N-CDI** with ``n`` contexts (``M = 2n``, inputs ``[sensory_0..n−1,
      context_0..n−1]`` as :mod:`jaxrnn.tasks.decision`): the 21 values
      ``v = linspace(−0.02, 0.02, 21)`` sorted by ``|v|`` (``np.argsort``, as the authors;
      floating-point ties break as ``0.01`` before ``−0.01``); row ``i·n + c`` carries
      ``v_i`` on the cued sensory channel ``c`` **only** (the other sensory channels are 0,
      as in the authors' code, not the same value on every channel) and the one-hot cue
      ``context_c = 1``. Rows are interleaved by context, ``n·21`` rows in all.

    The signed probe value of each row (the topology label of McMahan's Fig. 5) is
    ``inputs[:, 0]`` for RDM and ``inputs[:, :n].sum(-1)`` for N-CDI.

    Args:
      task_name: ``"rdm"``, ``"cdi"`` (2 contexts), ``"ncdi"`` (give ``num_contexts``) or a
        registry name ``"ncdi-<n>"``.
      num_contexts: number of contexts; implied by every name but ``"ncdi"``.
      dtype: output dtype.

    Returns:
      ``[P, M]`` array of static inputs (``P = 21`` for RDM, ``21·n`` otherwise).
    """
    n = _num_contexts_of(task_name, num_contexts)
    if n == 0:
        inputs = RDM_PROBE_SCALE * np.asarray(RDM_PROBE_LEVELS)[:, None]
        return jnp.asarray(inputs, dtype)
    levels = np.linspace(-CONTEXT_PROBE_MAX, CONTEXT_PROBE_MAX, NUM_PROBES_PER_CONTEXT)
    levels = levels[np.argsort(np.abs(levels), kind="stable")]
    inputs = np.zeros((n * NUM_PROBES_PER_CONTEXT, 2 * n))
    for context in range(n):
        inputs[context::n, context] = levels
        inputs[context::n, n + context] = 1.0
    return jnp.asarray(inputs, dtype)

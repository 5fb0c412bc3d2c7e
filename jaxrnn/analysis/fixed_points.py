"""Fixed points of a one-network map by minimising the speed q from many starts.

Spec (Sussillo & Barak 2013; Golub & Sussillo 2018 ``fixed-point-finder``; McMahan
et al. 2021 ``FP_Analysis.py``):

- **Objective.** For a pure map ``step(x[N], u[M]) -> x_next[N]`` and a static input ``u``,
  each candidate minimises ``q(x) = ½‖F(x, u) − x‖²`` from its own start ``x0[k]``.
- **Methods** (:mod:`jaxrnn.analysis.fixed_point_solvers`; per-candidate stopping, static
  shapes, ``lax.while_loop``, so the finder jits and vmaps):
    - ``"lm"``: Levenberg–Marquardt (damped Gauss–Newton) on the residual ``F(x, u) − x``,
      ``δ = −(JᵀJ + λI)⁻¹ Jᵀr``, accepted iff ``q`` drops (``λ ← λ/3``, else ``λ ← 4λ``) —
      the analogue of McMahan's ``scipy.optimize.root(method='lm', tol=1e-8)`` (MINPACK).
      Candidates go through a work queue of ``lanes`` lanes: a lane whose candidate is done
      (or spent ``max_iters`` iterations) takes the next start, so nothing waits for the
      slowest candidate; the result equals iterating each candidate alone. ``J = ∂F/∂x − I``
      by ``jax.jacfwd``, or — when ``step`` exposes the structure hook ``rate_map`` (a
      :class:`~jaxrnn.analysis.fixed_point_solvers.RateMap`, ``F(x) = (1 − α)x + α(W f(x) +
      c)``) — ``JᵀJ = α²(D WᵀW D − D Wᵀ − W D + I)`` in closed form, solved by Cholesky.
      Written in JAX rather than with ``optimistix.LevenbergMarquardt``: optimistix builds its
      damping term in the default float dtype, so float32 starts under ``jax_enable_x64``
      fail with a lineax structure mismatch (optimistix 0.1.0); this stays in ``x0``'s dtype.
    - ``"adam"``: Adam (``b1 = 0.9, b2 = 0.999, eps = 1e-5``, as google-research's
      computation-thru-dynamics finder) on ``q`` with ``learning_rate · decay^i``; a candidate
      whose ``q < stop_tol`` is frozen, as Golub's per-candidate stop ``q < tol_q``.
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
  by ``|λ|`` descending (of every row, or with ``eigvals_of="valid"`` of the valid rows only,
  NaN elsewhere); ``stable = valid & (max|λ| < 1)`` (discrete-time map). McMahan's
  perturbation test (25 kicks of size 1e-4, 100 steps) is not reproduced: for a hyperbolic
  fixed point it agrees with the spectral criterion.
- **Dtype.** Everything runs in ``x0``'s float dtype (float64 when ``jax_enable_x64`` is on
  and ``x0`` is float64 — needed for ``tol = 1e-8`` on large networks), with matrix products
  at full precision on every backend (no TF32 on GPUs: :mod:`jaxrnn.analysis.precision`).

Configuration tiers: ``method``, ``max_iters``, ``lanes`` and every float option are static
Python values; ``x0`` and ``u`` are arrays (may be traced). The finder is compiled once per
(``step`` object, shapes, options) — looping over probe inputs with one ``step`` reuses the
compilation (an unhashable ``step`` runs uncached) — and composes with ``jax.jit``/``vmap``.
Candidate order is kept: row ``k`` of the result came from ``x0[k]``.

For a population of networks, :func:`find_fixed_points_population` puts every member's starts
in one work queue (``step(params, x, u)``, params with a leading member axis). Starting states
and McMahan's probe inputs: :mod:`jaxrnn.analysis.fixed_point_inputs` (``sample_states`` and
``probe_inputs`` are also importable from :mod:`jaxrnn.analysis`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.analysis import fixed_point_solvers as solvers
from jaxrnn.analysis.linearize import spectrum
from jaxrnn.analysis.precision import full_precision
from jaxrnn.lapack_guard import after

__all__ = ["FixedPoints", "find_fixed_points", "find_fixed_points_population", "speed"]

METHODS = ("lm", "adam")
DEFAULT_MAX_ITERS = {"lm": 200, "adam": 5000}
EIGVALS_OF = ("all", "valid")


@struct.dataclass
class FixedPoints:
    """Fixed points of one network for one static input (padded, one row per start).

    Attributes:
      x: ``[K, N]`` optimiser outputs ``x*`` (meaningful where ``valid``).
      q: ``[K]`` speed ``½‖F(x*, u) − x*‖²`` (``inf`` where the optimiser diverged).
      valid: ``[K]`` bool, ``q < tol`` and not a distance outlier and the kept member of its
        cluster of duplicates.
      eigvals: ``[K, N]`` complex eigenvalues of ``∂F/∂x`` at ``x*``, sorted by ``|λ|``
        descending (NaN rows where ``x*`` is not finite, and with ``eigvals_of="valid"``
        where the row is not valid).
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


def speed(step: Callable, x: jax.Array, u: jax.Array) -> jax.Array:
    """``q(x) = ½‖step(x, u) − x‖²`` for one state ``x[N]``."""
    r = step(x, u).astype(x.dtype) - x
    return 0.5 * jnp.sum(r * r)


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


def _check_options(method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol, lanes,
                   use_rate_map, eigvals_of):
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
    check_range("lanes", lanes, 1, integer=True)
    check_choice("use_rate_map", use_rate_map, (True, False))
    check_choice("eigvals_of", eigvals_of, EIGVALS_OF)


def _resolve_options(dtype, *, method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol,
                     lanes, use_rate_map, eigvals_of) -> dict:
    """Fill the dtype- and method-dependent defaults, validate, return hashable static options."""
    max_iters = DEFAULT_MAX_ITERS.get(method, 1) if max_iters is None else max_iters
    if stop_tol is None:
        stop_tol = 1e-4 * tol if method == "adam" else 0.0
    xtol = max(1e-10, 10.0 * float(jnp.finfo(dtype).eps)) if xtol is None else xtol
    _check_options(method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol, outlier_scale, xtol, lanes,
                   use_rate_map, eigvals_of)
    return dict(method=method, tol=float(tol), max_iters=int(max_iters), learning_rate=float(learning_rate),
                decay=float(decay), stop_tol=float(stop_tol), unique_tol=float(unique_tol),
                outlier_scale=None if outlier_scale is None else float(outlier_scale), xtol=float(xtol),
                lanes=int(lanes), use_rate_map=bool(use_rate_map), eigvals_of=eigvals_of)


def _check_x0(x0: jax.Array, ndims: tuple[int, ...], shape: str, hint: str) -> None:
    if x0.ndim not in ndims:
        fail("x0.shape", x0.shape, shape, hint)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        fail("x0.dtype", x0.dtype, "a floating dtype (float32, or float64 with jax_enable_x64)")


def _check_step_shape(out: jax.ShapeDtypeStruct, num_hidden: int) -> None:
    if out.shape != (num_hidden,):
        fail("step(x, u).shape", out.shape, f"equal to x.shape = {(num_hidden,)}",
             "step must map one state x[N] and input u[M] to x_next[N]")


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
    lanes: int = 256,
    use_rate_map: bool = True,
    eigvals_of: str = "all",
) -> FixedPoints:
    """Fixed points ``x* = step(x*, u)`` of one network from the starts ``x0[K, N]``.

    Args:
      step: pure map ``step(x[N], u[M]) -> x_next[N]`` (network params closed over). If it
        has a method ``rate_map(u) -> RateMap`` (the structure hook,
        :class:`~jaxrnn.analysis.fixed_point_solvers.RateMap`), LM uses the closed-form
        normal equations of that map.
      x0: ``[K, N]`` starting states (e.g.
        :func:`~jaxrnn.analysis.fixed_point_inputs.sample_states` of visited states); their
        float dtype is the working dtype.
      u: ``[M]`` static input (cast to ``x0``'s dtype).
      method: ``"lm"`` (Levenberg–Marquardt) or ``"adam"`` (optax).
      tol: a candidate converged iff ``q < tol`` (McMahan: 1e-8).
      max_iters: iteration budget per candidate; default 200 (``"lm"``) or 5000 (``"adam"``).
      learning_rate, decay: Adam step size ``learning_rate · decay^i`` (``"adam"`` only;
        Golub's initial rate 1.0, decaying ×0.9995 per step, i.e. ×0.08 over 5000 steps).
      stop_tol: a candidate is frozen once ``q < stop_tol``; default ``1e-4 · tol`` for
        ``"adam"`` and 0 for ``"lm"`` (which stops on its step size, see ``xtol``).
      unique_tol: Euclidean radius within which two fixed points are the same (Golub: 1e-3).
      outlier_scale: drop ``x*`` farther than ``outlier_scale`` mean start-spreads from the
        centroid of ``x0`` (Golub: 10); None keeps all.
      xtol: LM stops a candidate once a step has ``‖δ‖ ≤ xtol·(‖x‖ + xtol)`` (MINPACK's
        xtol test); default ``max(1e-10, 10·eps)`` of the dtype (``"lm"`` only).
      lanes: LM candidates iterated together by the work queue (``"lm"`` only; static; the
        result does not depend on it).
      use_rate_map: use the step's ``rate_map`` hook when it has one (False: always the
        generic ``jax.jacfwd`` path; the results agree to float rounding).
      eigvals_of: ``"all"`` (eigenvalues of every row) or ``"valid"`` (only of the valid
        rows, NaN elsewhere: one eigendecomposition per distinct fixed point instead of per
        start).

    Returns:
      :class:`FixedPoints` with ``[K, ·]`` arrays aligned with ``x0``.

    Raises:
      ValueError: bad option values, ``x0`` not ``[K, N]`` (did you forget
        :func:`find_fixed_points_population` / ``jax.vmap``?), ``u`` not ``[M]``, ``x0`` not
        floating point, or ``step(x, u)`` not of shape ``[N]``.
    """
    x0 = jnp.asarray(x0)
    _check_x0(x0, (2,), "[K, N] (K starting states of one network)",
              "for one start use x0[None]; for a population use find_fixed_points_population or jax.vmap")
    u = jnp.asarray(u)
    if u.ndim != 1:
        fail("u.shape", u.shape, "[M] (one static input vector)", "for a scalar input pass u[None]")
    u = u.astype(x0.dtype)
    _check_step_shape(jax.eval_shape(step, x0[0], u), x0.shape[1])
    options = _resolve_options(x0.dtype, method=method, tol=tol, max_iters=max_iters, learning_rate=learning_rate,
                               decay=decay, stop_tol=stop_tol, unique_tol=unique_tol, outlier_scale=outlier_scale,
                               xtol=xtol, lanes=lanes, use_rate_map=use_rate_map, eigvals_of=eigvals_of)
    fps = _find_cached(step, None, x0[None], u, population=False, **options)
    return jax.tree.map(lambda a: a[0], fps)


def find_fixed_points_population(
    step: Callable[[Any, jax.Array, jax.Array], jax.Array],
    params: Any,
    x0: jax.Array,
    u: jax.Array,
    **options: Any,
) -> FixedPoints:
    """:func:`find_fixed_points` for a population: every member's starts in one LM work queue.

    Args:
      step: ``step(params, x[N], u[M]) -> x_next[N]`` for one member; an optional
        ``rate_map(params, u) -> RateMap`` method is the structure hook.
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
    _check_x0(x0, (2, 3), "[P, K, N] (per member) or [K, N] (shared)", "")
    if u.ndim not in (1, 2):
        fail("u.shape", u.shape, "[P, M] (per member) or [M] (shared)")
    sizes = {leaf.shape[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(params)}
    if len(sizes) != 1 or None in sizes:
        fail("params", f"<leading axes {sorted(map(str, sizes))}>", "a pytree whose leaves share one leading member axis P")
    (P,) = sizes
    for name, value, ndim in (("x0", x0, 3), ("u", u, 2)):
        if value.ndim == ndim and value.shape[0] != P:
            fail(f"{name}.shape", value.shape, f"a leading member axis of size P = {P} (the params')")
    x0 = jnp.broadcast_to(x0, (P,) + x0.shape[-2:])
    u = jnp.broadcast_to(u, (P, u.shape[-1])).astype(x0.dtype)
    member = lambda a: a[0]  # noqa: E731
    out = jax.eval_shape(lambda p, x, v: step(jax.tree.map(member, p), x, v), params, x0[0, 0], u[0])
    _check_step_shape(out, x0.shape[-1])
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        fail("options", unknown, "keyword options of find_fixed_points: " + ", ".join(OPTION_DEFAULTS))
    options = _resolve_options(x0.dtype, **{**OPTION_DEFAULTS, **options})
    return _find_cached(step, params, x0, u, population=True, **options)


def _find_cached(step, params, x0, u, **options):
    try:
        hash(step)
    except TypeError:  # e.g. a bound method of an unhashable object: run without the cache
        return _find(step, params, x0, u, **options)
    return _find_jit(step, params, x0, u, **options)


@full_precision
def _find(step, params, x0, u, *, population, method, tol, max_iters, learning_rate, decay, stop_tol, unique_tol,
          outlier_scale, xtol, lanes, use_rate_map, eigvals_of):
    """The finder on groups ``x0[G, K, N]``: a population's members, or one network (``G = 1``)."""
    if population:
        map_fn = lambda problem, x: step(problem[0], x, problem[1])  # noqa: E731
        problems = (params, u)
    else:
        map_fn = lambda v, x: step(x, v)  # noqa: E731
        problems = u
    hook = getattr(step, "rate_map", None) if use_rate_map and method == "lm" else None
    if method == "adam":
        x = solvers.adam_solve(map_fn, problems, x0, batched=population, max_iters=max_iters,
                               learning_rate=learning_rate, decay=decay, stop_tol=stop_tol)
    elif hook is None:
        x = solvers.lm_queue(solvers.lm_iteration(map_fn, xtol, stop_tol), problems, x0, batched=population,
                             max_iters=max_iters, lanes=lanes)
    else:
        N = x0.shape[-1]
        rate_of = lambda *args: solvers.rate_problem(solvers.check_rate_map(hook(*args), N, x0.dtype))  # noqa: E731
        rates = jax.vmap(rate_of)(params, u) if population else rate_of(u)
        x = solvers.lm_queue(solvers.rate_lm_iteration(xtol, stop_tol), rates, x0, batched=population,
                             max_iters=max_iters, lanes=lanes)
    return _classify(map_fn, problems, population, x0, x, tol, unique_tol, outlier_scale, eigvals_of)


def _classify(map_fn, problems, batched, x0, x, tol, unique_tol, outlier_scale, eigvals_of) -> FixedPoints:
    """``q``, convergence, outliers, uniqueness and eigenvalues of the solver outputs ``x[G, K, N]``."""
    in_problem = 0 if batched else None
    finite = jnp.all(jnp.isfinite(x), axis=-1)

    def group(problem, starts, xs, ok):
        q = jax.vmap(lambda xi: speed(lambda z, _: map_fn(problem, z), xi, None))(xs)
        q = jnp.where(ok & jnp.isfinite(q), q, jnp.inf)
        converged = q < tol
        candidate = converged & _not_outliers(xs, starts, outlier_scale)
        return q, converged, candidate & _unique_mask(xs, q, candidate, unique_tol)

    q, converged, valid = jax.vmap(group, in_axes=(in_problem, 0, 0, 0))(problems, x0, x, finite)
    x_safe = jnp.where(finite[..., None], x, x0)
    jacobian = lambda problem, xi: jax.jacfwd(lambda z: map_fn(problem, z))(xi).astype(x0.dtype)  # noqa: E731
    if eigvals_of == "all":
        jacobians = jax.vmap(jax.vmap(jacobian, in_axes=(None, 0)), in_axes=(in_problem, 0))(problems, x_safe)
        # After the solver even when J does not depend on x (a linear map): unordered batched
        # LAPACK calls can deadlock XLA:CPU (jaxrnn.lapack_guard).
        eigvals = spectrum(after(jacobians, x))
    else:
        eigvals = _spectra_of_rows(jacobian, problems, batched, x_safe, valid)
    eigvals = jnp.where(finite[..., None], eigvals, jnp.nan)
    stable = valid & (jnp.max(jnp.abs(eigvals), axis=-1) < 1.0)
    return FixedPoints(x=x, q=q, valid=valid, eigvals=eigvals, stable=stable, converged=converged)


def _spectra_of_rows(jacobian, problems, batched, x, rows_mask, block: int = 64) -> jax.Array:
    """Sorted eigenvalues of the rows of ``x[G, K, N]`` in ``rows_mask``, NaN elsewhere.

    The selected rows are compacted and processed ``block`` at a time in a ``while_loop``
    whose trip count is the number of selected rows over ``block`` (static shapes).
    """
    G, K, N = x.shape
    total = G * K
    block = min(block, total)
    flat = x.reshape(total, N)
    selected = rows_mask.reshape(total)
    rows = jnp.nonzero(selected, size=total + block, fill_value=total)[0]
    count = jnp.sum(selected, dtype=jnp.int32)
    jac = jax.vmap(jacobian, in_axes=(0 if batched else None, 0))

    def body(carry):
        start, out = carry
        index = jax.lax.dynamic_slice(rows, (start,), (block,))
        live = jnp.minimum(index, total - 1)
        problem = jax.tree.map(lambda a: a[live // K], problems) if batched else problems
        out = out.at[index].set(spectrum(jac(problem, flat[live])), mode="drop")
        return start + block, out

    out = jnp.full((total, N), jnp.nan, jnp.result_type(x.dtype, jnp.complex64))
    out = jax.lax.while_loop(lambda carry: carry[0] < count, body, (jnp.zeros((), jnp.int32), out))[1]
    return out.reshape(G, K, N)


# Compiled once per (step, shapes, options): looping over probe inputs with one step reuses it.
OPTION_DEFAULTS = {name: p.default for name, p in inspect.signature(find_fixed_points).parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
_find_jit = jax.jit(_find, static_argnames=("step", "population", *OPTION_DEFAULTS))

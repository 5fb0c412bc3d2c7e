"""Root-finding back-ends of :mod:`jaxrnn.analysis.fixed_points`: LM work queue, Adam, rate maps.

All solvers take *groups* of candidates, ``x0[G, K, N]``: group ``g`` (a network at one static
input) has its own *problem* ``problems[g]`` (a pytree with a leading ``G`` axis, or one problem
shared by every group), and ``map_fn(problem, x[N]) -> x_next[N]`` is the map whose fixed points
are sought. A candidate minimises ``q(x) = ½‖r(x)‖²`` with ``r(x) = F(x) − x``.

**Levenberg–Marquardt** (Levenberg 1944, Marquardt 1963; damping as Madsen–Nielsen), per
candidate::

    J = ∂r/∂x,   δ = −(JᵀJ + λI)⁻¹ Jᵀr,   λ₀ = 10⁻³ max diag JᵀJ
    accept iff q(x + δ) < q(x):  x ← x + δ, λ ← λ/3;   else λ ← 4λ   (λ clipped to [tiny, 1/eps])
    done once q < stop_tol, q = 0, ‖δ‖ ≤ xtol·(‖x‖ + xtol) (MINPACK's xtol) or q not finite,
    or after max_iters iterations of its own.

*Work queue* (:func:`lm_queue`). The ``G·K`` candidates are one queue in index order. ``lanes``
of them are iterated together (one vmapped iteration per ``lax.while_loop`` step, static
shapes); when a lane's candidate is done its ``x`` is written to the output at its index and the
lane loads the next pending start (positions from a cumulative sum of the done mask), so no
lane idles while another candidate still needs iterations, except in the final drain. Each
candidate's trajectory depends only on its own start, problem and iteration count, so the result
is the one a loop over single candidates gives (the old "vmap every candidate until all are
done" loop ran every candidate for ``max_iters`` iterations).

*Two ways to form the normal equations.* Generic (:func:`lm_iteration`): ``J`` by
``jax.jacfwd``, ``JᵀJ`` and ``Jᵀr`` by matrix products, ``jnp.linalg.solve`` (LU; ``O(N³)``
per iteration for the Jacobian alone). Structured (:func:`rate_lm_iteration`), for the
CTRNN-family map of a :class:`RateMap`::

    F(x) = (1 − α) ⊙ x + α ⊙ (W f(x) + c),   D = diag f'(x),   A = diag α
    J    = A (W D − I)
    JᵀJ  = D (WᵀA²W) D − D WᵀA² − A²W D + A²      (WᵀA²W precomputed once per problem)
    Jᵀr  = d ⊙ (Wᵀ(α ⊙ r)) − α ⊙ r

``O(N²)`` per candidate before the solve, and the SPD system is solved by Cholesky
(``lax.linalg.cholesky`` + two triangular solves). Equal to the generic path to float rounding.

**Adam** (:func:`adam_solve`): optax Adam on ``q`` with ``learning_rate · decay^i``; a candidate
is frozen once ``q < stop_tol``; all candidates of a group advance together (the schedule is
shared), groups are vmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrnn._checks import fail


@struct.dataclass
class RateMap:
    """The CTRNN-family map ``F(x) = (1 − α) ⊙ x + α ⊙ (W f(x) + c)`` of one network at one input.

    The structure hook of the fixed-point finder: a step object that defines
    ``rate_map(u) -> RateMap`` (one network, ``step(x, u)``) or ``rate_map(params, u) ->
    RateMap`` (population, ``step(params, x, u)``) promises that ``step`` *is* this map, and
    the finder then forms the Levenberg–Marquardt normal equations in closed form
    (:func:`rate_lm_iteration`). A unit clamped to ``v`` (Hebbian bias units) is ``α_i = 1``,
    ``W_i· = 0``, ``c_i = v``.

    Attributes:
      weights: ``[N, N]`` recurrent matrix ``W`` (array leaf).
      offset: ``[N]`` constant drive ``c`` (e.g. ``W_in u + b``; array leaf).
      alpha: ``[N]`` per-unit leak ``α = dt/τ`` (array leaf).
      activation: elementwise rate function ``f`` (static; ``f'`` by ``jax.jvp``).
    """

    weights: jax.Array
    offset: jax.Array
    alpha: jax.Array
    activation: Callable[[jax.Array], jax.Array] = struct.field(pytree_node=False)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``F(x)`` for one state ``x[N]``."""
        return (1.0 - self.alpha) * x + self.alpha * (self.weights @ self.activation(x) + self.offset)

    def rates(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f(x), f'(x))`` (``f`` is elementwise, so one JVP with ones gives ``f'``)."""
        return jax.jvp(self.activation, (x,), (jnp.ones_like(x),))


def check_rate_map(rate: Any, num_hidden: int, dtype: Any) -> RateMap:
    """Validate what a step's ``rate_map`` hook returned (shapes), cast to ``dtype``."""
    if not isinstance(rate, RateMap):
        fail("step.rate_map(...)", type(rate).__name__, "a jaxrnn.analysis.fixed_point_solvers.RateMap")
    N = num_hidden
    for name, shape in (("weights", (N, N)), ("offset", (N,)), ("alpha", (N,))):
        value = getattr(rate, name)
        if tuple(value.shape) != shape:
            fail(f"step.rate_map(...).{name}.shape", tuple(value.shape), f"{shape} (N = {N} hidden units)",
                 "alpha is per unit: use jnp.full(N, alpha)" if name == "alpha" else "")
    return RateMap(rate.weights.astype(dtype), rate.offset.astype(dtype), rate.alpha.astype(dtype), rate.activation)


def rate_problem(rate: RateMap) -> tuple[RateMap, jax.Array]:
    """``(rate, WᵀA²W)``: the per-problem data of :func:`rate_lm_iteration` (``A = diag α``)."""
    scaled = rate.alpha[:, None] * rate.weights
    return rate, scaled.T @ scaled


def _lm_update(x, damping, first, residual, r, hessian, gradient, solve, xtol, stop_tol):
    """Damping, step, acceptance and stopping test shared by both ways of forming ``JᵀJ``."""
    q = 0.5 * jnp.sum(r * r)
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    damping = jnp.where(first, 1e-3 * jnp.max(jnp.diagonal(hessian)) + jnp.finfo(x.dtype).tiny, damping)
    delta = -solve(hessian + damping * eye, gradient)
    x_new = x + delta
    r_new = residual(x_new)
    q_new = 0.5 * jnp.sum(r_new * r_new)
    accept = jnp.isfinite(q_new) & (q_new < q)
    # A tiny step, accepted or not, means a root or a stagnation point (MINPACK's xtol).
    small_step = jnp.linalg.norm(delta) <= xtol * (jnp.linalg.norm(x) + xtol)
    x = jnp.where(accept, x_new, x)
    damping = jnp.where(accept, damping / 3.0, damping * 4.0)
    damping = jnp.clip(damping, jnp.finfo(x.dtype).tiny, 1.0 / jnp.finfo(x.dtype).eps)
    q_now = jnp.where(accept, q_new, q)
    done = (q_now < stop_tol) | (q_now == 0) | small_step | ~jnp.isfinite(q)
    return x, damping, done


def lm_iteration(map_fn: Callable, xtol: float, stop_tol: float) -> Callable:
    """Generic LM iteration ``(problem, x, damping, first) -> (x, damping, done)`` for one candidate.

    ``J = ∂r/∂x`` by ``jax.jacfwd``, ``δ`` by ``jnp.linalg.solve`` (LU) of ``JᵀJ + λI``.
    """

    def iterate(problem, x, damping, first):
        residual = lambda z: map_fn(problem, z).astype(z.dtype) - z  # noqa: E731
        r = residual(x)
        J = jax.jacfwd(residual)(x)
        return _lm_update(x, damping, first, residual, r, J.T @ J, J.T @ r, jnp.linalg.solve, xtol, stop_tol)

    return iterate


def _cholesky_solve(matrix: jax.Array, vector: jax.Array) -> jax.Array:
    """``matrix⁻¹ vector`` for an SPD ``matrix`` (Cholesky ``LLᵀ``; NaN if not numerically SPD)."""
    lower = jax.lax.linalg.cholesky(matrix, symmetrize_input=False)
    y = jax.lax.linalg.triangular_solve(lower, vector[:, None], left_side=True, lower=True)
    return jax.lax.linalg.triangular_solve(lower, y, left_side=True, lower=True, transpose_a=True)[:, 0]


def rate_lm_iteration(xtol: float, stop_tol: float) -> Callable:
    """Structured LM iteration for a :func:`rate_problem` ``(RateMap, WᵀA²W)``.

    ``JᵀJ = D G D − D WᵀA² − A²W D + A²`` with ``G = WᵀA²W``, ``Jᵀr = d ⊙ (Wᵀ(α ⊙ r)) − α ⊙ r``
    (module docstring), solved by Cholesky; ``O(N²)`` work besides the factorisation.
    """

    def iterate(problem, x, damping, first):
        rate, gram = problem
        residual = lambda z: rate(z) - z  # noqa: E731
        r = residual(x)
        _, d = rate.rates(x)
        a2 = rate.alpha * rate.alpha
        cross = (a2[:, None] * rate.weights) * d[None, :]  # A²W D
        hessian = d[:, None] * gram * d[None, :] - cross.T - cross + jnp.diag(a2)
        gradient = d * (rate.weights.T @ (rate.alpha * r)) - rate.alpha * r
        return _lm_update(x, damping, first, residual, r, hessian, gradient, _cholesky_solve, xtol, stop_tol)

    return iterate


def lm_queue(iterate: Callable, problems: Any, x0: jax.Array, *, batched: bool, max_iters: int,
             lanes: int) -> jax.Array:
    """Run ``iterate`` on every candidate of ``x0[G, K, N]`` through a work queue of ``lanes`` lanes.

    Args:
      iterate: ``(problem, x[N], damping, first) -> (x, damping, done)`` for one candidate.
      problems: pytree with a leading ``G`` axis (``batched``) or one problem for all groups.
      x0: ``[G, K, N]`` starts; candidate ``g·K + k`` is group ``g``'s ``k``-th start.
      batched: whether ``problems`` has the group axis (lanes then gather their group's problem).
      max_iters: iterations per candidate (its own count, not the loop's).
      lanes: candidates iterated together (static; capped at ``G·K``).

    Returns:
      ``[G, K, N]``: each candidate's ``x`` once it was done or had ``max_iters`` iterations.
    """
    G, K, N = x0.shape
    total = G * K
    flat = x0.reshape(total, N)
    width = min(int(lanes), total)
    step = jax.vmap(iterate, in_axes=(0 if batched else None, 0, 0, 0))

    def body(state):
        index, x, damping, count, out, pending = state
        live = jnp.minimum(index, total - 1)
        problem = jax.tree.map(lambda a: a[live // K], problems) if batched else problems
        x, damping, done = step(problem, x, damping, count == 0)
        count = count + 1
        finished = (index < total) & (done | (count >= max_iters))
        out = out.at[jnp.where(finished, index, total)].set(x, mode="drop")
        # The i-th finished lane (in lane order) takes the i-th pending start, if any is left.
        nxt = pending + jnp.cumsum(finished, dtype=jnp.int32) - 1
        load = finished & (nxt < total)
        index = jnp.where(finished, jnp.where(load, nxt, total), index)
        x = jnp.where(load[:, None], flat[jnp.minimum(nxt, total - 1)], x)
        damping = jnp.where(load, jnp.ones_like(damping), damping)
        count = jnp.where(load, 0, count)
        pending = jnp.minimum(pending + jnp.sum(finished, dtype=jnp.int32), total)
        return index, x, damping, count, out, pending

    init = (jnp.arange(width, dtype=jnp.int32), flat[:width], jnp.ones((width,), x0.dtype),
            jnp.zeros((width,), jnp.int32), flat, jnp.asarray(width, jnp.int32))
    out = jax.lax.while_loop(lambda state: jnp.any(state[0] < total), body, init)[4]
    return out.reshape(G, K, N)


def adam_solve(map_fn: Callable, problems: Any, x0: jax.Array, *, batched: bool, max_iters: int,
               learning_rate: float, decay: float, stop_tol: float) -> jax.Array:
    """Adam on ``q`` for every candidate of ``x0[G, K, N]`` (one ``while_loop`` per group, vmapped)."""
    schedule = optax.exponential_decay(learning_rate, transition_steps=1, decay_rate=decay)
    optimizer = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-5)

    def one_group(problem, starts):
        def speed(x):
            r = map_fn(problem, x).astype(x.dtype) - x
            return 0.5 * jnp.sum(r * r)

        value_and_grad = jax.vmap(jax.value_and_grad(speed))

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

        init = (jnp.zeros((), jnp.int32), starts, optimizer.init(starts), jnp.zeros(starts.shape[:1], bool))
        return jax.lax.while_loop(cond, body, init)[1]

    return jax.vmap(one_group, in_axes=(0 if batched else None, 0))(problems, x0)

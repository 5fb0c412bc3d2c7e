"""Small statistics in JAX (jit/vmap-able): OLS regression with its t-test, mean with a t-interval,
Spearman's rank correlation, and label-permutation tests.

Written so the Huang, Singh & Rajan (2024) analyses (:mod:`jaxrnn.analysis.policy`) stay inside
one compiled, vmapped program; they reproduce ``scipy.stats.linregress`` and the Student-t
interval ``mean ± t_{(1+c)/2, n−1}·s/√n``.

Student-t tail probabilities use the regularised incomplete beta function
(``jax.scipy.special.betainc``)::

    P(|T_ν| > t) = I_{ν/(ν+t²)}(ν/2, ½)

and quantiles invert it by bisection on ``t`` (:func:`t_quantile`). Samples are masked rather
than dropped (``mask[S]`` of bools; NaN samples are masked out as well), so shapes stay static.

**Permutation tests** (:func:`permutation_test`; McMahan et al. 2021 report silhouettes "close
to zero" — a permutation null says what zero is). For a statistic ``T(labels)`` of labelled
samples (a silhouette, a difference of mean distances, a slope across blocks)::

    T_b = T(π_b(labels)),  b = 1..B        π_b: a uniform random permutation (within each stratum)
    p_greater   = (1 + #{b: T_b ≥ T_obs}) / (1 + B)
    p_less      = (1 + #{b: T_b ≤ T_obs}) / (1 + B)
    p_two-sided = (1 + #{b: |T_b| ≥ |T_obs|}) / (1 + B)     (for statistics centred on 0)

the add-one estimate (Phipson & Smyth 2010), never 0. ``strata`` restricts the permutations to
within groups (e.g. shuffle learning-rule labels only among networks of one noise level), so
the null keeps every other factor of the design fixed. The ``B`` permuted statistics are one
vmapped program (``jax.lax.map`` in batches bounds the memory).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.special import betainc

from jaxrnn._checks import check_range, fail


def t_two_sided_p(t: jax.Array, df: jax.Array) -> jax.Array:
    """``P(|T_df| > |t|)`` for Student's t with ``df`` degrees of freedom."""
    t = jnp.asarray(t, jnp.float32)
    df = jnp.asarray(df, t.dtype)
    return betainc(0.5 * df, 0.5, df / (df + t * t))


def t_quantile(q: jax.Array | float, df: jax.Array, iters: int = 100) -> jax.Array:
    """The ``q``-quantile (``q ≥ ½``) of Student's t: solves ``P(|T| > t) = 2(1 − q)`` by bisection.

    The bracket is ``[0, 1e6]`` (covers ``df ≥ 1`` at any ``q ≤ 1 − 1e-6``); ``iters`` halvings.
    """
    df = jnp.asarray(df, jnp.float32)
    tail = 2.0 * (1.0 - jnp.asarray(q, jnp.float32))

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        too_small = t_two_sided_p(mid, df) > tail
        return jnp.where(too_small, mid, lo), jnp.where(too_small, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(df), jnp.full_like(df, 1e6)))
    return 0.5 * (lo + hi)


def _mask(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    valid = jnp.isfinite(x)
    return valid if mask is None else valid & jnp.asarray(mask, bool)


@struct.dataclass
class Regression:
    """OLS fit ``y ≈ slope·x + intercept`` (fields as ``scipy.stats.linregress``).

    Attributes:
      slope, intercept: least-squares coefficients.
      r: Pearson correlation.
      p: two-sided p-value of ``H0: slope = 0`` (t-test, ``n − 2`` degrees of freedom).
      stderr: standard error of the slope ``√((1 − r²) s_yy / ((n − 2) s_xx))``.
      ci_low, ci_high: ``slope ∓ t_{(1+c)/2, n−2}·stderr`` (``c`` = confidence).
      n: number of points used.
    """

    slope: jax.Array
    intercept: jax.Array
    r: jax.Array
    p: jax.Array
    stderr: jax.Array
    ci_low: jax.Array
    ci_high: jax.Array
    n: jax.Array


def linear_regression(x: jax.Array, y: jax.Array, mask: jax.Array | None = None,
                      confidence: float = 0.95, num_intercepts: int = 1) -> Regression:
    """Ordinary least squares of ``y[S]`` on ``x[S]`` over the masked, finite pairs.

    ``slope = s_xy/s_xx``, ``r = s_xy/√(s_xx s_yy)``, ``t = r√(ν/(1−r²))`` with
    ``ν = n − 1 − num_intercepts`` degrees of freedom; with the default ``num_intercepts = 1``
    this equals ``scipy.stats.linregress(x[m], y[m])`` (``ν = n − 2``) plus a ``confidence``
    interval of the slope. For a fixed-effects (within-group) fit, pass ``x`` and ``y`` demeaned
    within each of ``k`` groups and ``num_intercepts = k``. Needs ``ν ≥ 1`` (NaN p and interval
    otherwise).
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    m = (_mask(x, mask) & jnp.isfinite(y)).astype(jnp.float32)
    xs, ys = jnp.where(m > 0, x, 0.0), jnp.where(m > 0, y, 0.0)
    n = jnp.sum(m)
    mx, my = jnp.sum(xs) / n, jnp.sum(ys) / n
    dx, dy = m * (xs - mx), m * (ys - my)
    sxx, syy, sxy = jnp.sum(dx * dx), jnp.sum(dy * dy), jnp.sum(dx * dy)
    slope = sxy / sxx
    r = jnp.clip(sxy / jnp.sqrt(sxx * syy), -1.0, 1.0)
    df = n - 1.0 - num_intercepts
    t = r * jnp.sqrt(df / jnp.maximum((1.0 - r) * (1.0 + r), 1e-30))
    p = jnp.where(df > 0, t_two_sided_p(t, jnp.maximum(df, 1.0)), jnp.nan)
    stderr = jnp.sqrt(jnp.maximum((1.0 - r * r) * syy / sxx, 0.0) / df)
    half = t_quantile(0.5 * (1.0 + confidence), jnp.maximum(df, 1.0)) * stderr
    half = jnp.where(df > 0, half, jnp.nan)
    return Regression(slope=slope, intercept=my - slope * mx, r=r, p=p, stderr=stderr,
                      ci_low=slope - half, ci_high=slope + half, n=n)


def mean_interval(x: jax.Array, axis: int = 0, confidence: float = 0.99,
                  mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(mean, low, high)`` of ``x`` along ``axis``: ``mean ∓ t_{(1+c)/2, n−1}·s/√n``.

    ``s`` is the sample standard deviation (``ddof = 1``); masked or non-finite samples are
    left out. This treats the samples as independent (for a time series it is the interval of
    Huang et al.'s Fig. 1e, narrower than one that accounts for autocorrelation).
    """
    x = jnp.asarray(x, jnp.float32)
    m = _mask(x, mask if mask is None else jnp.broadcast_to(mask, x.shape)).astype(jnp.float32)
    xs = jnp.where(m > 0, x, 0.0)
    n = jnp.sum(m, axis=axis)
    mean = jnp.sum(xs, axis=axis) / n
    var = jnp.sum(m * (xs - jnp.expand_dims(mean, axis)) ** 2, axis=axis) / (n - 1.0)
    half = t_quantile(0.5 * (1.0 + confidence), jnp.maximum(n - 1.0, 1.0)) * jnp.sqrt(var / n)
    return mean, mean - half, mean + half


def rank(x: jax.Array) -> jax.Array:
    """``[S]`` ranks from 1 with ties averaged (``scipy.stats.rankdata(x, "average")``); O(S²), jit/vmap-able."""
    x = jnp.asarray(x)
    less = jnp.sum(x[None, :] < x[:, None], axis=1)
    equal = jnp.sum(x[None, :] == x[:, None], axis=1)
    return (less + 0.5 * (equal + 1)).astype(jnp.float32)


def spearman(x: jax.Array, y: jax.Array) -> jax.Array:
    """Spearman's rank correlation of ``x[S]`` and ``y[S]`` (``scipy.stats.spearmanr(x, y)[0]``).

    The Pearson correlation of the tie-averaged ranks; NaN when either side is constant.
    """
    rx, ry = rank(x), rank(y)
    dx, dy = rx - jnp.mean(rx), ry - jnp.mean(ry)
    return jnp.sum(dx * dy) / jnp.sqrt(jnp.sum(dx * dx) * jnp.sum(dy * dy))


ALTERNATIVES = ("greater", "less", "two-sided")


@struct.dataclass
class PermutationTest:
    """Outcome of :func:`permutation_test`.

    Attributes:
      value: the statistic on the true labels.
      p_value: add-one permutation p-value of ``alternative``.
      null_mean: mean of the permuted statistics (what "chance" is for this design).
      null: ``[B]`` the permuted statistics.
    """

    value: jax.Array
    p_value: jax.Array
    null_mean: jax.Array
    null: jax.Array


def permuted_labels(key: jax.Array, labels: jax.Array, num_permutations: int,
                    strata: jax.Array | None = None) -> jax.Array:
    """``[B, S]`` random permutations of ``labels[S]``, each within the groups of ``strata[S]``.

    Sorting positions by (stratum, uniform) gives a uniform random order within each stratum;
    position ``order0[i]`` (the ``i``-th in stratum order) receives the label of position
    ``order_b[i]``, which lies in the same stratum.
    """
    labels = jnp.asarray(labels)
    S = labels.shape[0]
    strata = jnp.zeros(S, jnp.int32) if strata is None else jnp.asarray(strata)
    order0 = jnp.argsort(strata, stable=True)

    def one(k):
        u = jax.random.uniform(k, (S,))
        order = jnp.lexsort((u, strata))
        return jnp.zeros_like(labels).at[order0].set(labels[order])

    return jax.vmap(one)(jax.random.split(key, int(num_permutations)))


def permutation_test(statistic, labels: jax.Array, key: jax.Array, *, args: tuple = (),
                     num_permutations: int = 1000, strata: jax.Array | None = None, alternative: str = "greater",
                     batch_size: int = 100) -> PermutationTest:
    """Label-permutation test of ``statistic(labels, *args) -> scalar`` (see the module docstring).

    Args:
      statistic: a jit-able function of the ``[S]`` label array and the data ``args``. Pass the
        data as ``args`` and ``statistic`` as a module-level function: the compiled program is
        then cached by ``(statistic, shapes)`` and reused across calls (a closure over the data
        recompiles every time).
      labels: ``[S]`` the true labels (ints, or floats such as noise levels).
      key: PRNG key of the permutations.
      args: arrays passed to ``statistic`` after the labels.
      num_permutations: ``B``.
      strata: ``[S]`` optional group ids; labels are only exchanged within a group.
      alternative: ``"greater"`` (the statistic is larger than chance), ``"less"`` or
        ``"two-sided"`` (``|T|``; for statistics whose null is centred on 0).
      batch_size: permutations evaluated at once (memory bound).
    """
    if alternative not in ALTERNATIVES:
        fail("alternative", alternative, "one of " + ", ".join(map(repr, ALTERNATIVES)))
    check_range("num_permutations", num_permutations, 1, integer=True)
    check_range("batch_size", batch_size, 1, integer=True)
    labels = jnp.asarray(labels)
    if labels.ndim != 1:
        fail("labels.shape", labels.shape, "[S] (one label per sample)")
    if strata is not None and jnp.shape(strata) != labels.shape:
        fail("strata.shape", jnp.shape(strata), f"[S] with S = {labels.shape[0]} (one stratum per sample)")
    perms = permuted_labels(key, labels, num_permutations, strata)
    value, null = _permutation_null(statistic, labels, perms, tuple(args), min(int(batch_size), int(num_permutations)))
    if alternative == "greater":
        extreme = null >= value - 1e-6 * jnp.abs(value)
    elif alternative == "less":
        extreme = null <= value + 1e-6 * jnp.abs(value)
    else:
        extreme = jnp.abs(null) >= jnp.abs(value) * (1 - 1e-6)
    p = (1.0 + jnp.sum(extreme)) / (1.0 + num_permutations)
    return PermutationTest(value=value, p_value=p, null_mean=jnp.mean(null), null=null)


@functools.partial(jax.jit, static_argnames=("statistic", "batch_size"))
def _permutation_null(statistic, labels, perms, args, batch_size):
    one = lambda lab: jnp.asarray(statistic(lab, *args), jnp.float32)  # noqa: E731
    return one(labels), jax.lax.map(one, perms, batch_size=batch_size)

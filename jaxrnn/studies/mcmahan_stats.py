"""The statistics behind McMahan et al.'s (2021) figures and claims, each with its baselines.

Every quantity the reproduction reports about a group of networks is one of four statistics of a
labelled distance matrix ``D[K, K]`` (SVCCA or attractor topology) or of per-network numbers,
written as a module-level function ``statistic(labels, *data)`` so that a label-permutation null
(:func:`jaxrnn.analysis.stats.permutation_test`) recomputes it in one compiled program, cached
across calls of equal shapes:

- **silhouette** of the labels (learning rule, noise level) on ``D``
  (:func:`silhouette_statistic` of :func:`metric_for`). ``convention = "rows"`` is the authors' (sklearn's
  ``silhouette_score(D, labels)`` with the rows of ``D`` as features, ``svcca_analysis.py``);
  ``"precomputed"`` uses ``D`` as distances. For the attractor topology, whose distance is the
  Euclidean distance between the authors' signatures (``fixed_point_input_topology.py`` passed
  the signatures to sklearn as features), the authors' convention *is* ``"precomputed"``:
  :data:`TOPOLOGY_CONVENTION` maps it.
- **group gap** (:func:`group_gap_statistic`): mean distance between the group (label 1, e.g.
  Hebbian) and the rest minus the mean distance within the rest::

      gap = mean_{i∈G, j∉G} D_ij − mean_{i≠j ∉G} D_ij        (> 0: the group lies apart)

- **trend across blocks** (:func:`trend_statistic`): the least-squares slope of a per-block
  silhouette against the block's value ``x_b`` (the number of contexts, the noise level). The
  permutations shuffle labels within each block, so the null keeps every block's design.
- **rank correlation** (:func:`spearman_statistic`): Spearman's ρ between a per-network
  label (noise level) and a per-network number (attractors at zero input).

:func:`tested` runs one statistic with its permutation null and returns plain floats; the
"untrained" baseline is the same call on the update-0 networks' matrix (the reproduction does
that). A statistic that cannot be computed (fewer than two labels, a label with one network)
gives ``None`` — the claims table then says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.analysis.embedding import row_distances, silhouette
from jaxrnn.analysis.stats import permutation_test, spearman

#: silhouette convention per distance, under each named convention of the reproduction.
TOPOLOGY_CONVENTION = {"rows": "precomputed", "precomputed": "precomputed"}
SVCCA_CONVENTION = {"rows": "rows", "precomputed": "precomputed"}


@dataclasses.dataclass(frozen=True)
class StatResult:
    """A statistic, its permutation p-value and the null's mean (``None`` where not computable)."""

    value: float | None
    p_value: float | None = None
    null_mean: float | None = None
    n: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None and np.isfinite(self.value)


def encode(labels: Sequence) -> np.ndarray:
    """Integer codes ``0..L−1`` of arbitrary labels (order of first sorted appearance)."""
    return np.unique(np.asarray(labels), return_inverse=True)[1].astype(np.int32)


def silhouette_statistic(labels: jax.Array, metric: jax.Array) -> jax.Array:
    """Silhouette of ``labels`` on ``metric`` (the rows distances for the authors' convention, see
    :func:`metric_for`)."""
    return silhouette(metric, labels)


def metric_for(D: np.ndarray, convention: str = "rows") -> jax.Array:
    """The matrix whose entries the silhouette treats as distances: ``row_distances(D)`` (rows) or ``D``."""
    if convention not in ("rows", "precomputed"):
        raise ValueError(f"convention = {convention!r} is not allowed: must be 'rows' or 'precomputed'")
    D = jnp.asarray(D, jnp.float32)
    return row_distances(D) if convention == "rows" else D


def group_gap_statistic(in_group: jax.Array, D: jax.Array) -> jax.Array:
    """``mean D(group, rest) − mean D(rest, rest)`` over off-diagonal pairs; ``in_group[K]`` 0/1."""
    off = 1.0 - jnp.eye(D.shape[0], dtype=D.dtype)
    g = in_group.astype(D.dtype)
    across = g[:, None] * (1.0 - g)[None, :]
    within = (1.0 - g)[:, None] * (1.0 - g)[None, :] * off
    return jnp.sum(D * across) / jnp.sum(across) - jnp.sum(D * within) / jnp.sum(within)


def trend_statistic(labels: jax.Array, xs: jax.Array, *metrics: jax.Array) -> jax.Array:
    """OLS slope of the per-block silhouettes against ``xs``; ``labels`` concatenates the blocks'
    labels in order, block ``b`` being ``metrics[b]`` (sizes from the static shapes)."""
    bounds = np.cumsum([0] + [m.shape[0] for m in metrics])
    s = jnp.stack([silhouette(m, labels[a:b]) for m, a, b in zip(metrics, bounds[:-1], bounds[1:])])
    dx = xs - jnp.mean(xs)
    return jnp.sum(dx * (s - jnp.mean(s))) / jnp.sum(dx * dx)


def spearman_statistic(x: jax.Array, y: jax.Array) -> jax.Array:
    """Spearman ρ of the (permuted) label ``x`` and the per-network number ``y``."""
    return spearman(x.astype(jnp.float32), y)


def can_separate(labels: np.ndarray) -> str:
    """``""`` if a silhouette of ``labels`` is defined (≥ 2 labels, each on ≥ 2 networks), else why not."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    if len(values) < 2:
        return f"{len(values)} label(s) among {len(labels)} networks: nothing to separate"
    if counts.min() < 2:
        return "a label with a single network (" + ", ".join(f"{v}: {c}" for v, c in zip(values, counts)) + ")"
    return ""


def tested(statistic: Callable[..., jax.Array], labels: np.ndarray, key: jax.Array, args: tuple = (), *,
         num_permutations: int = 1000, strata: np.ndarray | None = None,
         alternative: str = "greater") -> StatResult:
    """:func:`permutation_test` of ``statistic(labels, *args)`` with plain-float results (``None`` if non-finite)."""
    labels = np.asarray(labels)
    result = permutation_test(statistic, jnp.asarray(labels), key, args=tuple(args),
                              num_permutations=int(num_permutations),
                              strata=None if strata is None else jnp.asarray(strata), alternative=alternative)
    value = float(result.value)
    if not np.isfinite(value):
        return StatResult(None, n=len(labels), note="the statistic is not finite")
    return StatResult(value, float(result.p_value), float(result.null_mean), n=len(labels))


def silhouette_test(D: np.ndarray, labels: Sequence, key: jax.Array, *, convention: str = "rows",
                    num_permutations: int = 1000, strata: np.ndarray | None = None) -> StatResult:
    """Silhouette of ``labels`` on ``D`` with its one-sided (clustered more than chance) permutation p."""
    labels = encode(labels)
    why = can_separate(labels)
    if why:
        return StatResult(None, n=len(labels), note=why)
    D = np.asarray(D, np.float32)
    if not np.all(np.isfinite(D)):
        return StatResult(None, n=len(labels), note="the distance matrix has non-finite entries")
    return tested(silhouette_statistic, labels, key, (metric_for(D, convention),), num_permutations=num_permutations,
                strata=strata)


def group_gap_test(D: np.ndarray, in_group: Sequence[bool], key: jax.Array, *,
                   num_permutations: int = 1000) -> StatResult:
    """:func:`group_gap_statistic` with its one-sided permutation p (group membership shuffled)."""
    g = np.asarray(in_group, bool)
    if g.sum() < 1 or (~g).sum() < 2:
        return StatResult(None, n=len(g), note=f"{g.sum()} networks in the group, {(~g).sum()} outside: need >= 1 and >= 2")
    D = np.asarray(D, np.float32)
    if not np.all(np.isfinite(D)):
        return StatResult(None, n=len(g), note="the distance matrix has non-finite entries")
    return tested(group_gap_statistic, g.astype(np.int32), key, (jnp.asarray(D),), num_permutations=num_permutations)


def trend_test(blocks: Sequence[np.ndarray], block_labels: Sequence[Sequence], xs: Sequence[float], key: jax.Array,
               *, convention: str = "rows", num_permutations: int = 1000,
               alternative: str = "greater") -> StatResult:
    """Slope of per-block silhouettes against ``xs``; labels permuted within blocks."""
    keep = [i for i, lab in enumerate(block_labels) if not can_separate(encode(lab))
            and np.all(np.isfinite(blocks[i]))]
    if len(keep) < 3:
        return StatResult(None, n=int(sum(len(b) for b in block_labels)),
                      note=f"{len(keep)} block(s) with a defined silhouette: a trend needs >= 3")
    labels = np.concatenate([encode(block_labels[i]) for i in keep])
    strata = np.concatenate([np.full(len(block_labels[i]), j) for j, i in enumerate(keep)])
    args = (jnp.asarray([xs[i] for i in keep], jnp.float32),) + tuple(metric_for(blocks[i], convention) for i in keep)
    result = tested(trend_statistic, labels, key, args, num_permutations=num_permutations, strata=strata,
                  alternative=alternative)
    note = "" if len(keep) == len(blocks) else f"{len(blocks) - len(keep)} block(s) without a defined silhouette left out"
    return dataclasses.replace(result, note=note)


def spearman_test(x: Sequence[float], y: Sequence[float], key: jax.Array, *, num_permutations: int = 1000,
                  strata: np.ndarray | None = None, alternative: str = "greater") -> StatResult:
    """Spearman ρ(x, y) with a permutation p (``x`` shuffled, within ``strata``)."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return StatResult(None, n=int(ok.sum()), note="fewer than 3 networks, or one side constant: no rank correlation")
    return tested(spearman_statistic, x[ok], key, (jnp.asarray(y[ok]),), num_permutations=num_permutations,
                strata=None if strata is None else np.asarray(strata)[ok], alternative=alternative)

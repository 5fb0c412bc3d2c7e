"""The three learning stages of a closed-loop training run (Ger & Barak, NeurIPS 2025, §4.2).

The paper describes the stages by what the loss and the spectrum of the joint agent–environment
map ``P`` do (§4.2, Figs. 3–5; the authors draw the boundaries by eye in their figures notebook):

1. *Negative-position policy*: "the loss rapidly decreases"; the joint map is unstable
   (``ρ(P) > 1``) throughout.
2. *Building a world model*: "the loss enters a plateau", which "concludes when the closed-loop
   dynamics stabilize, as the dominant eigenvalues of P enter the unit disk".
3. *Policy refinement*: once ``P`` is stable, "training loss drops again".

The detector turns this description into a definition — fixed from the text above before it
was run on our networks, and not tuned afterwards:

- **Stage 3 starts** at the stabilisation epoch ``s₃``: the first epoch after which
  ``ρ(P) < 1`` holds for good (:func:`jaxrnn.analysis.closed_loop.stabilisation_epoch`, the
  authors' ``ep_of_stab``). ``s₃ = −1`` if the last epoch is unstable.
- **Stage 1 ends** at the knee of the loss before stabilisation. Before ``s₃`` the paper has
  exactly two regimes — a fast drop, then a plateau — so the two-segment least-squares line fit
  (:func:`segment_fit`) of ``log L`` over the unstable epochs ``[0, s₃)`` (the whole run when it
  never stabilises) puts its breakpoint ``b₁`` where the drop meets the plateau. Stage 1 is
  ``[0, b₁)``. Each segment has at least ``min_length`` epochs (3); a window shorter than two
  segments leaves stage 2 empty (``b₁ = s₃``).
- **Stage 2** is ``[b₁, s₃)``; stage 3 is ``[s₃, E)``.

Non-finite losses (a diverged run) end the window at the first one. The loss of update ``e``
must belong to the network whose spectral radius is ``radii[e]`` (the runner's loss of update
``e`` is that of snapshot ``e``, the params before the update).

Why a segmented fit and not a threshold ("stage 1 ends when the loss has halved"): the knee of a
drop does not sit at a fixed fraction of the initial loss — a fraction fires after one or two
updates when the first step is large, which is where the earlier detector put it. A least-squares
segmentation uses the whole curve, is insensitive to the SGD zig-zag of the plateau, and needs no
threshold. Why NumPy, not JAX: the exact dynamic programme runs on prefix sums that need float64
(a float32 ``Σx²`` over 1,000 epochs cancels), once per curve, outside any jitted code;
:func:`learning_stages_batched` loops over runs.

Segmented least squares (Bellman 1961): for ``y[E]`` and ``K`` segments, choose breakpoints
``0 < b₁ < … < b_{K−1} < E`` minimising ``Σ_k SSE_k``, where ``SSE_k`` is the residual sum of
squares of the ordinary least-squares line through ``(t, y_t)`` on segment ``k``. Solved
exactly by dynamic programming over the ``O(E²)`` segment costs (``O(K E²)`` time).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.closed_loop import stabilisation_epoch


class Segmentation(NamedTuple):
    """Result of :func:`segment_fit` (one line per segment).

    Attributes:
      breaks: ``[K−1]`` int, the first index of segments 2..K (segment k is ``[breaks[k−1], breaks[k])``).
      slopes: ``[K]`` slope of each segment's least-squares line (per index step).
      intercepts: ``[K]`` value of each line at its segment's first index.
      sse: total residual sum of squares.
    """

    breaks: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    sse: float


def _segment_costs(y: np.ndarray, min_length: int) -> np.ndarray:
    """``cost[i, j]`` = SSE of the least-squares line through ``y[i:j]`` (``inf`` if ``j − i < min_length``)."""
    E = y.shape[0]
    t = np.arange(E, dtype=np.float64) / max(E - 1, 1)  # scaled to [0, 1] for the prefix sums
    zero = np.zeros(1)
    s1 = np.concatenate([zero, np.cumsum(np.ones(E))])
    st, sy = np.concatenate([zero, np.cumsum(t)]), np.concatenate([zero, np.cumsum(y)])
    stt, sty = np.concatenate([zero, np.cumsum(t * t)]), np.concatenate([zero, np.cumsum(t * y)])
    syy = np.concatenate([zero, np.cumsum(y * y)])
    d = lambda s: s[None, :] - s[:, None]  # noqa: E731  [i, j] -> sum over [i, j)
    n, sx_, sy_, sxx, sxy, syy_ = d(s1), d(st), d(sy), d(stt), d(sty), d(syy)
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = sxx - sx_ * sx_ / n
        cov = sxy - sx_ * sy_ / n
        vy = syy_ - sy_ * sy_ / n
        cost = vy - np.where(vt > 0, cov * cov / vt, 0.0)
    cost = np.where(n >= min_length, np.maximum(cost, 0.0), np.inf)
    return cost


def _line(y: np.ndarray, start: int, stop: int) -> tuple[float, float]:
    t = np.arange(start, stop, dtype=np.float64)
    if stop - start == 1:
        return 0.0, float(y[start])
    slope, intercept = np.polyfit(t - start, y[start:stop], 1)
    return float(slope), float(intercept)


def segment_fit(y, num_segments: int, *, min_length: int = 3) -> Segmentation:
    """Best ``num_segments``-piece least-squares line fit of ``y[E]`` (segmented least squares).

    Exact dynamic programme (module docstring). Segments are contiguous, each at least
    ``min_length`` long (``num_segments · min_length ≤ E`` required). Ties go to the earliest
    breakpoint. ``y`` must be finite.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        fail("y.shape", y.shape, "[E] (one curve)", "use learning_stages_batched for several runs")
    check_range("num_segments", num_segments, 1, integer=True)
    check_range("min_length", min_length, 1, integer=True)
    E = y.shape[0]
    if num_segments * min_length > E:
        fail("num_segments * min_length", num_segments * min_length, f"<= len(y) = {E}")
    if not np.all(np.isfinite(y)):
        fail("y", "non-finite values", "finite values (cut a diverged curve at its first non-finite entry)")
    cost = _segment_costs(y, min_length)
    best = cost[0].copy()  # best[j]: one segment covering [0, j)
    back = np.zeros((num_segments, E + 1), dtype=np.int64)
    for k in range(1, num_segments):
        total = best[:, None] + cost  # [i, j]: k segments on [0, i), one on [i, j)
        back[k] = np.argmin(total, axis=0)  # argmin takes the first (earliest) of ties
        best = total[back[k], np.arange(E + 1)]
    breaks, j = [], E
    for k in range(num_segments - 1, 0, -1):
        j = int(back[k, j])
        breaks.append(j)
    breaks = np.asarray(breaks[::-1], dtype=np.int64)
    edges = [0, *breaks.tolist(), E]
    lines = [_line(y, a, b) for a, b in zip(edges[:-1], edges[1:])]
    return Segmentation(breaks, np.array([s for s, _ in lines]), np.array([c for _, c in lines]),
                        float(best[E]))


class LearningStages(NamedTuple):
    """Stage boundaries of one closed-loop training run (see :func:`learning_stages`).

    Attributes:
      stage1_end: ``b₁``, the first epoch of stage 2 (stage 1 is ``[0, b₁)``).
      stage3_start: ``s₃``, the stabilisation epoch (first epoch of stage 3), ``−1`` if never.
      labels: ``[E]`` int stage of each epoch, 1, 2 or 3.
      knee_fit: the two-segment fit of ``log L`` on ``[0, s₃)`` that placed ``b₁`` (``None`` when
        the window was too short to fit two segments).
    """

    stage1_end: int
    stage3_start: int
    labels: np.ndarray
    knee_fit: Segmentation | None


_stabilisation_epoch = jax.jit(stabilisation_epoch)  # one program per run length, not one per op


def learning_stages(losses, radii, *, min_length: int = 3) -> LearningStages:
    """Split a closed-loop training run into Ger & Barak's three stages (module docstring).

    Args:
      losses: ``[E]`` training loss per epoch (> 0).
      radii: ``[E]`` spectral radius ``ρ(P)`` of the joint map of the same networks.
      min_length: fewest epochs per fitted segment (3).

    Returns:
      :class:`LearningStages` with ``stage1_end = b₁`` and ``stage3_start = s₃``.
    """
    losses, radii = np.asarray(losses, np.float64), np.asarray(radii, np.float64)
    if losses.ndim != 1 or radii.shape != losses.shape:
        fail("losses.shape, radii.shape", (losses.shape, radii.shape), "both [E]",
             "use learning_stages_batched for several runs")
    finite = np.isfinite(losses)
    if np.any(finite & (losses <= 0)):
        fail("losses", float(losses[finite & (losses <= 0)][0]), "> 0 (the stages are read from log L)")
    E = losses.shape[0]
    s3 = int(_stabilisation_epoch(radii))
    window = E if s3 < 0 else s3
    window = min(window, int(np.argmin(finite)) if not finite.all() else E)
    fit = None
    if window >= 2 * min_length:
        fit = segment_fit(np.log(losses[:window]), 2, min_length=min_length)
        b1 = int(fit.breaks[0])
    else:
        b1 = window
    end = E if s3 < 0 else s3
    epochs = np.arange(E)
    labels = 1 + (epochs >= b1).astype(np.int64) + (epochs >= end).astype(np.int64)
    return LearningStages(b1, s3, labels, fit)


def learning_stages_batched(losses, radii, *, min_length: int = 3) -> list[LearningStages]:
    """:func:`learning_stages` for each run of ``losses[K, E]``, ``radii[K, E]``."""
    losses, radii = np.asarray(losses), np.asarray(radii)
    if losses.ndim != 2 or radii.shape != losses.shape:
        fail("losses.shape, radii.shape", (losses.shape, radii.shape), "both [K, E]")
    return [learning_stages(lo, ra, min_length=min_length) for lo, ra in zip(losses, radii)]

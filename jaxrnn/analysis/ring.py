"""PCA and the ring score of hidden states (Huang, Singh & Rajan 2024, Fig. 1c).

- :func:`pca`: PCA by SVD of the centred (optionally weighted) rows of ``X[S, N]``; component
  signs fixed so each component's largest-magnitude loading is positive.
- :func:`fit_circle`: Kåsa's (1976) algebraic circle fit ``|p|² + D p₁ + E p₂ + F = 0`` by least
  squares on centred points (for conditioning).
- :func:`ring_score`: with ``p = (PC1, PC2)`` scores and the fitted circle ``(c, r)``,
  ``ρ_s = ‖p_s − c‖``, ``radius_cv = std ρ / mean ρ`` (0 on a circle), ``variance_fraction =
  (s₁² + s₂²)/Σ sᵢ²``, ``circular_corr = max(|⟨e^{i(φ−θ)}⟩|, |⟨e^{i(φ+θ)}⟩|)`` with
  ``φ = atan2(p − c)`` (phase locking of the ring angle to θ up to rotation or reflection), and
  ``score = variance_fraction · circular_corr · max(0, 1 − radius_cv)``.

Re-exported by :mod:`jaxrnn.analysis.policy`, whose docstring gives the reasoning.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import fail


@struct.dataclass
class PCA:
    """``mean[N]``, ``components[N, N]`` (rows, by variance), ``scores[S, N]``, ``explained[N]``."""

    mean: jax.Array
    components: jax.Array
    scores: jax.Array
    explained: jax.Array


def pca(X: jax.Array, mask: jax.Array | None = None) -> PCA:
    """PCA of ``X[S, N]`` by SVD of the centred rows (masked rows left out of the fit).

    Component signs are fixed so that each component's largest-magnitude loading is positive.
    """
    X = jnp.asarray(X, jnp.float32)
    w = jnp.ones(X.shape[:1]) if mask is None else jnp.asarray(mask, jnp.float32)
    mean = jnp.sum(w[:, None] * X, 0) / jnp.sum(w)
    _, s, vt = jnp.linalg.svd(w[:, None] * (X - mean), full_matrices=False)
    sign = jnp.sign(jnp.take_along_axis(vt, jnp.argmax(jnp.abs(vt), 1)[:, None], 1))
    vt = vt * jnp.where(sign == 0, 1.0, sign)
    return PCA(mean=mean, components=vt, scores=(X - mean) @ vt.T, explained=s**2 / jnp.sum(s**2))


@struct.dataclass
class RingScore:
    """How ring-like hidden states are in their top-2 PCs (see the module docstring)."""

    radius_cv: jax.Array
    variance_fraction: jax.Array
    circular_corr: jax.Array
    center: jax.Array
    radius: jax.Array

    @property
    def score(self) -> jax.Array:
        return self.variance_fraction * self.circular_corr * jnp.maximum(0.0, 1.0 - self.radius_cv)


def fit_circle(points: jax.Array, mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Kåsa's algebraic circle fit of ``points[S, 2]``: ``(center[2], radius)``."""
    w = jnp.ones(points.shape[:1]) if mask is None else jnp.asarray(mask, jnp.float32)
    shift = jnp.sum(w[:, None] * points, 0) / jnp.sum(w)  # centred for conditioning
    p = points - shift
    A = w[:, None] * jnp.concatenate([p, jnp.ones_like(p[:, :1])], 1)
    b = -w * jnp.sum(p * p, 1)
    (d, e, f), *_ = jnp.linalg.lstsq(A, b)
    center = -0.5 * jnp.stack([d, e])
    return center + shift, jnp.sqrt(jnp.maximum(center @ center - f, 0.0))


def ring_score(hidden: jax.Array, theta: jax.Array, mask: jax.Array | None = None) -> RingScore:
    """Ring score of hidden states ``hidden[S, N]`` labelled by angles ``theta[S]``."""
    hidden, theta = jnp.asarray(hidden), jnp.asarray(theta)
    if hidden.ndim != 2 or hidden.shape[1] < 2:
        fail("hidden.shape", hidden.shape, "[S, N] with N >= 2 (samples × neurons of one agent)",
             "flatten episodes × time first; for a population use jax.vmap")
    if theta.shape != hidden.shape[:1]:
        fail("theta.shape", theta.shape, f"[S] = ({hidden.shape[0]},), one angle per hidden state")
    w = jnp.ones(hidden.shape[:1]) if mask is None else jnp.asarray(mask, jnp.float32)
    fit = pca(hidden, w)
    p = fit.scores[:, :2]
    center, radius = fit_circle(p, w)
    rho = jnp.linalg.norm(p - center, axis=1)
    mean_rho = jnp.sum(w * rho) / jnp.sum(w)
    cv = jnp.sqrt(jnp.sum(w * (rho - mean_rho) ** 2) / jnp.sum(w)) / mean_rho
    phi = jnp.arctan2(p[:, 1] - center[1], p[:, 0] - center[0])
    lock = lambda d: jnp.abs(jnp.sum(w * jnp.exp(1j * d)) / jnp.sum(w))  # noqa: E731
    return RingScore(radius_cv=cv, variance_fraction=jnp.sum(fit.explained[:2]),
                     circular_corr=jnp.maximum(lock(phi - theta), lock(phi + theta)), center=center, radius=radius)

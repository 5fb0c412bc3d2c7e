"""Running observation and return statistics of recurrent PPO, and folding them into the network.

What Stable-Baselines3's ``VecNormalize`` (and the ``pytorch-a2c-ppo-acktr`` template of the
Huang, Singh & Rajan 2024 agents, Singh's ``plumetracknets``) does around the environment, written as pure
functions of a per-member state so that a population carries one set of statistics per member:

- :class:`RunningMoments` / :func:`update_moments`: mean and variance of a stream of batches,
  combined exactly (Chan, Golub & LeVeque 1979) — after ``k`` batches they equal the moments of
  the concatenated samples, seeded by one pseudo-sample of mean 0, variance 1 and weight
  ``count = 1e-4`` (as SB3's ``RunningMeanStd(epsilon=1e-4)``)::

      δ = μ_B − μ,  n' = n + n_B,  μ' = μ + δ n_B / n',
      σ'² = (σ² n + σ_B² n_B + δ² n n_B / n') / n'

- :func:`normalize`: ``(x − μ) / sqrt(σ² + 1e-8)``.
- :func:`discounted_returns`: the running discounted return ``G_t = γ G_{t−1} + r_t`` (reset to 0
  after an episode ends) whose variance scales the rewards when rewards are normalised:
  ``r̃_t = clip(r_t / sqrt(Var G + 1e-8), ±10)`` (VecNormalize's ``norm_reward``; the mean is not
  subtracted).
- :func:`fold_input_normalization`: a cell fed normalised observations equals a cell fed raw
  ones with ``W_in' = W_in diag(1/s)`` and ``b' = b − W_in' μ``, ``s = sqrt(σ² + 1e-8)``,
  because the observation enters only through ``W_in o + b``. ``ppo``'s ``network(state)``
  returns the folded params, so the stored snapshots — and every analysis of them (fixed points
  under the goal observation, policy landscapes) — take raw Pendulum observations.

Differences from VecNormalize, chosen so that one PPO update is one consistent function: the
statistics are frozen during an update (rollout and epochs see the same normalisation; the
segments re-run in the epochs reproduce the rollout exactly) and updated with the whole rollout
afterwards (observations) or before the advantages are computed (returns); observations are not
clipped (VecNormalize clips at ±10), so the fold above is exact.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

EPSILON = 1e-8
INITIAL_COUNT = 1e-4
REWARD_CLIP = 10.0


@struct.dataclass
class RunningMoments:
    """Running ``mean[...]``, ``var[...]`` and (float32) sample ``count`` of a stream."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def init_moments(shape: tuple[int, ...] = ()) -> RunningMoments:
    """Mean 0, variance 1, weight ``1e-4`` (one faint pseudo-sample)."""
    return RunningMoments(mean=jnp.zeros(shape, jnp.float32), var=jnp.ones(shape, jnp.float32),
                          count=jnp.float32(INITIAL_COUNT))


def update_moments(moments: RunningMoments, batch: jax.Array) -> RunningMoments:
    """Moments after the samples ``batch[B, ...]`` (trailing axes as ``moments.mean``)."""
    batch = batch.reshape((-1,) + moments.mean.shape).astype(jnp.float32)
    n_b = jnp.float32(batch.shape[0])
    mean_b, var_b = jnp.mean(batch, 0), jnp.var(batch, 0)
    total = moments.count + n_b
    delta = mean_b - moments.mean
    mean = moments.mean + delta * n_b / total
    m2 = moments.var * moments.count + var_b * n_b + delta**2 * moments.count * n_b / total
    return RunningMoments(mean=mean, var=m2 / total, count=total)


def scale(moments: RunningMoments) -> jax.Array:
    """``sqrt(σ² + 1e-8)``."""
    return jnp.sqrt(moments.var + EPSILON)


def normalize(moments: RunningMoments, x: jax.Array) -> jax.Array:
    """``(x − μ) / sqrt(σ² + 1e-8)``, broadcast over leading axes of ``x``."""
    return (x - moments.mean) / scale(moments)


def discounted_returns(rewards: jax.Array, dones: jax.Array, start: jax.Array, gamma: jax.Array):
    """``G_t = γ G_{t−1} + r_t`` over ``rewards[T, ...]`` from ``G_{−1} = start[...]``, with
    ``G`` reset to 0 after a step with ``dones_t``. Returns ``(G[T, ...], G carried on)``."""

    def body(g, xs):
        r, done = xs
        g = gamma * g + r
        return jnp.where(done, 0.0, g), g

    end, returns = jax.lax.scan(body, start, (rewards, dones))
    return returns, end


def fold_input_normalization(cell_params: Any, moments: RunningMoments) -> Any:
    """Cell params that take raw observations: ``W_in / s`` and ``b − (W_in / s) μ``.

    ``cell_params`` is a flax variable dict ``{"params": {"W_in"[N, M], "b"[N], ...}}`` (the
    VanillaRNN, CTRNN and LowRankRNN with a bias); other entries are returned unchanged.
    """
    p = dict(cell_params["params"])
    w_in = p["W_in"] / scale(moments)
    p["b"] = p["b"] - w_in @ moments.mean
    p["W_in"] = w_in
    return {**cell_params, "params": p}

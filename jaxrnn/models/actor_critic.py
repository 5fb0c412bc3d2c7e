"""Recurrent actor-critic: a cell followed by a Gaussian policy head and a value head.

The network of the PPO agents of Huang, Singh & Rajan (2024), built on the template of Singh's
``plumetracknets`` (``code/ppo/a2c_ppo_acktr/model.py``, ``distributions.py``):

    h_t = cell(reset_t ? 0 : h_{t−1}, o_t)                      (e.g. VanillaRNN(64), tanh)
    μ_t = W_mean tanh(W_hidden y_t + b_hidden) + b_mean           (policy mean, [A])
    V_t = W_value tanh(W_hidden' y_t + b_hidden') + b_value       (value, scalar)
    π(a | h_t) = N(μ_t, diag(exp(2·log_std)))                     (log_std: learned, state-independent)

where ``y_t`` is the cell's output (``h_t`` for the jaxrnn cells). The recurrent state is zeroed
before the first observation of every episode (``reset_t``: the previous step ended an episode).

Initialisation as the template: hidden layers orthogonal with gain √2, the mean and value output
layers orthogonal with gain 1, biases 0, ``log_std = 0``; the cell as ``init_params`` (for the
VanillaRNN: PyTorch ``nn.RNN``-like normal weights, recurrent gain ``g``). The template's heads
have two hidden layers; ``num_layers`` (default 1, as in the study brief) sets how many.
Weights follow the package's column convention (``W[out, in]``, ``y = W x + b``).

Re-running stored segments (:meth:`ActorCritic.sequences`, PPO's minibatch steps) keeps only the
cell inside the time loop and applies the heads to all outputs at once; for a ``VanillaRNN`` the
cell runs as :func:`~jaxrnn.models.vanilla_sequence.vanilla_sequences` (input drive outside the
loop, hand-written gradient with one matmul per step), other cells as ``jax.vmap`` of
:meth:`ActorCritic.sequence`.

:func:`gaussian_log_prob` and :func:`gaussian_entropy` are the policy's log-density and entropy.

Configuration tiers: every attribute of :class:`ActorCritic` and the heads is static; the gain
``g`` is an argument of :meth:`ActorCritic.init` (sweepable); the params are state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxrnn._checks import check_range
from jaxrnn.models.cells import VanillaRNN, init_params
from jaxrnn.models.vanilla_sequence import vanilla_sequences

SQRT2 = math.sqrt(2.0)
LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """``log N(action; mean, diag σ²)`` summed over the last (action) axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy ``Σ_a (½ + ½ log 2π + log σ_a)`` of a diagonal Gaussian."""
    return jnp.sum(0.5 + 0.5 * LOG_2PI + log_std, axis=-1)


def _orthogonal(gain: float):
    """``jax.nn.initializers.orthogonal(gain)`` for 2-D shapes, its QR done by Householder
    reflections in plain JAX ops rather than by LAPACK.

    Same draw (``normal(key, (max(r, c), min(r, c)))``) and the same ``Q`` (a QR with a positive
    diagonal of ``R`` is unique), so the same numbers up to float32 rounding. Why: under the
    population runner's ``vmap`` the LAPACK QR becomes a batched custom call whose jaxlib kernel
    fans its batch out on XLA:CPU's intra-op thread pool and blocks until it is done; two such
    calls running at once (the actor's and the critic's layers) on a 2-thread pool each hold a
    thread waiting for the other, forever. Seen in about 1 of 7 runs of ``tests/test_ppo.py`` on
    the 2-core CPU (jaxlib 0.10.2; both pool threads parked in ``ParallelBatchMap`` →
    ``BlockingCounter::Wait`` under ``lapack_sgeqrf_ffi``).
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if len(shape) != 2:
            raise ValueError(f"orthogonal init needs a 2-D shape, got {shape}")
        rows, cols = shape
        z = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
        q = householder_q(z)
        return jnp.asarray(gain, dtype) * (q.T if rows < cols else q)

    return init


def householder_q(a: jax.Array) -> jax.Array:
    """The ``Q [m, n]`` of ``a = Q R`` (``a [m, n]``, ``m ≥ n``) with ``diag R ≥ 0``.

    ``n`` Householder reflections ``H_k = I − 2 v vᵀ / vᵀv`` that zero column ``k`` below the
    diagonal (``Q = H_1 ⋯ H_n``, first ``n`` columns), then each column's sign flipped where
    ``R_kk < 0``, as ``jax.random.orthogonal`` does. Products at full float32 precision.
    """
    m, n = a.shape
    rows = jnp.arange(m)
    highest = jax.lax.Precision.HIGHEST

    def reflect(k, carry):
        r, q = carry
        x = jnp.where(rows >= k, r[:, k], 0.0)
        alpha = -jnp.where(r[k, k] >= 0, 1.0, -1.0) * jnp.sqrt(jnp.sum(x * x))
        v = x.at[k].add(-alpha)
        vv = jnp.dot(v, v, precision=highest)
        scale = jnp.where(vv > 0, 2.0 / jnp.where(vv > 0, vv, 1.0), 0.0)
        r = r - scale * jnp.outer(v, jnp.dot(v, r, precision=highest))
        q = q - scale * jnp.outer(jnp.dot(q, v, precision=highest), v)
        return r, q

    r, q = jax.lax.fori_loop(0, n, reflect, (a, jnp.eye(m, dtype=a.dtype)))
    return q[:, :n] * jnp.sign(jnp.diagonal(r))[None, :]


class _MLPTrunk(nn.Module):
    """``num_layers`` tanh layers ``z ← tanh(W z + b)`` of ``features`` units (orthogonal √2)."""

    features: int
    num_layers: int

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        for i in range(self.num_layers):
            suffix = "" if i == 0 else str(i + 1)
            w = self.param(f"W_hidden{suffix}", _orthogonal(SQRT2), (self.features, z.shape[-1]))
            b = self.param(f"b_hidden{suffix}", nn.initializers.zeros, (self.features,))
            z = jnp.tanh(w @ z + b)
        return z


class GaussianPolicyHead(nn.Module):
    """``y[N] -> (mean[A], log_std[A])``: tanh MLP to the mean, state-independent ``log_std``.

    Attributes (static):
      num_actions: A.
      features: units per hidden layer (64).
      num_layers: hidden layers (1; the plumetracknets template has 2).
      init_log_std: initial ``log_std`` (0, as the template's ``AddBias(zeros)``).
    """

    num_actions: int = 1
    features: int = 64
    num_layers: int = 1
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = _MLPTrunk(self.features, self.num_layers, name="trunk")(y) if self.num_layers else y
        w = self.param("W_mean", _orthogonal(1.0), (self.num_actions, z.shape[-1]))
        b = self.param("b_mean", nn.initializers.zeros, (self.num_actions,))
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.num_actions,))
        return w @ z + b, log_std


class ValueHead(nn.Module):
    """``y[N] -> V`` (a scalar): tanh MLP, linear output (orthogonal gain 1)."""

    features: int = 64
    num_layers: int = 1

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        z = _MLPTrunk(self.features, self.num_layers, name="trunk")(y) if self.num_layers else y
        w = self.param("W_value", _orthogonal(1.0), (1, z.shape[-1]))
        b = self.param("b_value", nn.initializers.zeros, (1,))
        return (w @ z + b)[0]


@dataclasses.dataclass(frozen=True)
class ActorCritic:
    """A recurrent cell with policy and value heads (static structure only).

    Params are ``{"cell": ..., "actor": ..., "critic": ...}`` (flax variable dicts).

    Attributes:
      cell: a flax cell with the ``RNNCellBase`` contract (unbatched carry).
      input_size: observation size M.
      num_actions: action size A.
      features: units per hidden layer of each head (64).
      num_layers: hidden layers per head (1).
    """

    cell: nn.Module
    input_size: int
    num_actions: int = 1
    features: int = 64
    num_layers: int = 1

    def __post_init__(self):
        check_range("rule.hidden_head", self.features, 1, integer=True)
        check_range("rule.head_layers", self.num_layers, 0, integer=True)

    @property
    def policy(self) -> GaussianPolicyHead:
        return GaussianPolicyHead(self.num_actions, self.features, self.num_layers)

    @property
    def critic(self) -> ValueHead:
        return ValueHead(self.features, self.num_layers)

    def initial_carry(self) -> Any:
        """The zero recurrent state (the state at the start of every episode)."""
        return self.cell.initialize_carry(jax.random.PRNGKey(0), (self.input_size,))

    def init(self, key: jax.Array, gain: jax.Array | float = 1.0) -> dict[str, Any]:
        """Params of cell (recurrent gain ``gain``), policy and value heads."""
        key_cell, key_actor, key_critic = jax.random.split(key, 3)
        cell_params = init_params(self.cell, key_cell, self.input_size, gain)
        _, y = self.cell.apply(cell_params, self.initial_carry(), jnp.zeros((self.input_size,), jnp.float32))
        return {
            "cell": cell_params,
            "actor": self.policy.init(key_actor, y),
            "critic": self.critic.init(key_critic, y),
        }

    def step(self, params: Any, carry: Any, obs: jax.Array, reset: jax.Array):
        """One step of one environment.

        Args:
          params: the network params.
          carry: recurrent state after the previous step.
          obs: ``[M]`` observation.
          reset: ``()`` bool; True zeroes ``carry`` first (a new episode starts with ``obs``).

        Returns:
          ``(carry, (mean[A], log_std[A], value[], y[N]))``.
        """
        carry, (mean, log_std, y) = self.policy_step(params, carry, obs, reset)
        value = self.critic.apply(params["critic"], y)
        return carry, (mean, log_std, value, y)

    def policy_step(self, params: Any, carry: Any, obs: jax.Array, reset: jax.Array):
        """:meth:`step` without the value head: ``(carry, (mean[A], log_std[A], y[N]))`` — all that
        sampling an action needs (PPO's rollout applies the critic after its time loop)."""
        zero = self.initial_carry()
        carry = jax.tree.map(lambda c, z: jnp.where(reset, z, c), carry, zero)
        carry, y = self.cell.apply(params["cell"], carry, obs)
        mean, log_std = self.policy.apply(params["actor"], y)
        return carry, (mean, log_std, y)

    def value_after(self, params: Any, carry: Any, obs: jax.Array) -> jax.Array:
        """``V`` after feeding ``obs`` to the network in state ``carry`` (no reset)."""
        _, y = self.cell.apply(params["cell"], carry, obs)
        return self.critic.apply(params["critic"], y)

    def sequence(self, params: Any, carry0: Any, obs: jax.Array, resets: jax.Array):
        """Re-run one environment's segment from its stored initial state.

        Args:
          carry0: recurrent state before the segment (reset by ``resets[0]`` if set).
          obs: ``[T, M]`` observations; resets: ``[T]`` bools.

        Returns:
          ``(mean[T, A], log_std[A], values[T])``.
        """

        zero = self.initial_carry()

        def body(carry, xs):
            ob, reset = xs
            carry = jax.tree.map(lambda c, z: jnp.where(reset, z, c), carry, zero)
            carry, y = self.cell.apply(params["cell"], carry, ob)
            return carry, y

        # only the cell is inside the time loop; the heads see all T outputs at once
        _, ys = jax.lax.scan(body, carry0, (obs, resets))
        return self.heads(params, ys)

    def sequences(self, params: Any, carry0: Any, obs: jax.Array, resets: jax.Array, *, fast: bool = True):
        """:meth:`sequence` of ``B`` environments at once (``carry0[B, N]``, ``obs[B, T, M]``,
        ``resets[B, T]``); returns ``(mean[B, T, A], log_std[A], values[B, T])``.

        For a :class:`~jaxrnn.models.VanillaRNN` (and ``fast=True``) the cell runs as
        :func:`~jaxrnn.models.vanilla_sequence.vanilla_sequences` — the same numbers up to float32
        rounding, with the input drive outside the time loop and a hand-written gradient; other
        cells (or ``fast=False``) ``jax.vmap`` :meth:`sequence`.
        """
        if fast and type(self.cell) is VanillaRNN:
            return self.heads(params, vanilla_sequences(self.cell, params["cell"], carry0, obs, resets))
        means, log_std, values = jax.vmap(self.sequence, in_axes=(None, 0, 0, 0))(params, carry0, obs, resets)
        return means, log_std[0], values

    def heads(self, params: Any, ys: jax.Array):
        """Policy and value of cell outputs ``ys[..., N]``: ``(mean[..., A], log_std[A], values[...])``."""
        flat = ys.reshape((-1, ys.shape[-1]))
        means, log_std = jax.vmap(self.policy.apply, in_axes=(None, 0))(params["actor"], flat)
        values = jax.vmap(self.critic.apply, in_axes=(None, 0))(params["critic"], flat)
        return means.reshape(ys.shape[:-1] + means.shape[-1:]), log_std[0], values.reshape(ys.shape[:-1])

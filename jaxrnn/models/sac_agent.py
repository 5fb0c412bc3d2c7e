"""Recurrent actor and twin recurrent critic of off-policy SAC (Ni, Eysenbach & Salakhutdinov 2021).

The agent of :mod:`jaxrnn.rules.recurrent_sac`: two *separate* recurrent encoders, one for the
actor and one for the critic (the "separate RNN" architecture that Ni et al. recommend, their
``policies/models/policy_rnn.py``), each followed by one ``features``-unit tanh layer (Huang,
Singh & Rajan 2024: "vanilla RNNs followed by 1-layer feedforward policy and value networks, all
64 units wide, tanh"):

    h_t  = cell_π(reset_t ? 0 : h_{t−1}, o_t)                 actor encoder (e.g. VanillaRNN(64))
    z_t  = tanh(W_π h_t + b_π)
    μ_t  = W_μ z_t + b_μ,   log σ_t = clip(W_σ z_t + b_σ, −20, 2)
    π(·|h_t): u ~ N(μ_t, σ_t²),  a = tanh(u) ∈ [−1, 1]^A,   torque = low + (a + 1)(high − low)/2

    g_t  = cell_Q(reset_t ? 0 : g_{t−1}, o_t)                 critic encoder (its own params)
    Q_i(g_t, a) = W_i tanh(W'_i [g_t; a] + b'_i) + b_i,   i = 1, 2   (twin Q heads, one encoder)

Differences from pomdp-baselines, all to keep the network the paper's: the encoders see the
observation only (Ni et al. also embed the previous action and reward, and concatenate a
"shortcut" embedding of the current observation to the heads' input), heads have one tanh layer
(theirs two ReLU layers of 128), and the cell is the package's cell (theirs LSTM/GRU). With these
choices the actor's recurrence ``h_t = F(h_{t−1}, o_t)`` is exactly the map that Huang et al.'s
fixed-point and timescale analyses study, and :attr:`SACAgent.policy` maps ``h`` to the torque.

Initialisation: the cells by :func:`~jaxrnn.models.init_params` (recurrent gain ``g``); hidden
layers of the heads ``W ~ U(±1/√fan_in)`` (PyTorch ``nn.Linear``), biases 0; output layers
``U(±3e-3)`` (rlkit's ``init_w``, inherited by pomdp-baselines, so the initial policy is
``μ ≈ 0``, ``σ ≈ 1`` and the initial ``Q ≈ 0``). Weights follow the package's column convention
(``W[out, in]``).

Params: ``{"cell": actor cell, "actor": policy head, "critic": {"cell", "q1", "q2"}}`` — the
first two are what the analyses of :mod:`jaxrnn.analysis.policy` read for a PPO agent, with the
same meaning.

Sequences (:meth:`SACAgent.sequence`): ``B`` stored sub-sequences of ``L`` steps each start from
the zero state (Ni et al.: sampled sequences start from zero) and zero it again wherever a new
episode starts (``resets``). For a :class:`~jaxrnn.models.VanillaRNN` the cell runs as
:func:`~jaxrnn.models.vanilla_sequence.vanilla_sequences` (input drive outside the time loop,
hand-written gradient); other cells by ``jax.vmap`` of a ``lax.scan``.

Configuration tiers: every attribute of :class:`SACAgent` and of the heads is static; the gain
``g`` is an argument of :meth:`SACAgent.init` (sweepable); the params are state.
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

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
OUTPUT_INIT = 3e-3
LOG_2PI = math.log(2.0 * math.pi)

__all__ = ["LOG_STD_MAX", "LOG_STD_MIN", "QHead", "SACAgent", "TanhGaussianPolicy", "tanh_gaussian", "to_env_units"]


def _fan_in_uniform(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """PyTorch ``nn.Linear``'s weight init ``U(±1/√fan_in)`` for ``W[out, in]``."""
    bound = 1.0 / math.sqrt(shape[-1])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _small_uniform(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -OUTPUT_INIT, OUTPUT_INIT)


def to_env_units(action: jax.Array, low, high) -> jax.Array:
    """``a ∈ [−1, 1]^A`` to the environment's units ``low + (a + 1)(high − low)/2``."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    return low + 0.5 * (action + 1.0) * (high - low)


def tanh_gaussian(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample of ``a = tanh(u)``, ``u = μ + σ ε``, and its log-density.

    ``log π(a) = Σ_a [log N(u; μ, σ) − log(1 − tanh²u)]`` with the change of variables written
    ``log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u))`` (exact, and finite for large ``|u|``,
    unlike ``log(1 − a² + 1e-6)``). Shapes ``[..., A]`` in, ``(a[..., A], log_prob[...])`` out.
    """
    u = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * noise**2 - log_std - 0.5 * LOG_2PI
    jacobian = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(gaussian - jacobian, axis=-1)


class TanhGaussianPolicy(nn.Module):
    """``y[N] -> (torque[A], log σ[A])``: one tanh layer, then the Gaussian's mean and log-std.

    ``__call__`` gives the *deterministic* action ``low + (tanh μ + 1)(high − low)/2`` (what
    ``evaluate`` applies, in the units of the environment) and ``log σ``;
    :meth:`gaussian` gives the pre-squash ``(μ, log σ)`` that training samples from.

    Attributes (static): num_actions A; features (64); low, high: the action bounds (tuples of A
    floats; ``a = ±1`` maps to them).
    """

    num_actions: int = 1
    features: int = 64
    low: tuple[float, ...] = (-1.0,)
    high: tuple[float, ...] = (1.0,)

    @nn.compact
    def gaussian(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        w = self.param("W_hidden", _fan_in_uniform, (self.features, y.shape[-1]))
        b = self.param("b_hidden", nn.initializers.zeros, (self.features,))
        z = jnp.tanh(w @ y + b)
        mean = self.param("W_mean", _small_uniform, (self.num_actions, self.features)) @ z
        mean = mean + self.param("b_mean", nn.initializers.zeros, (self.num_actions,))
        log_std = self.param("W_log_std", _small_uniform, (self.num_actions, self.features)) @ z
        log_std = log_std + self.param("b_log_std", nn.initializers.zeros, (self.num_actions,))
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def __call__(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = self.gaussian(y)
        return to_env_units(jnp.tanh(mean), self.low, self.high), log_std


class QHead(nn.Module):
    """``(g[N], a[A]) -> Q`` (a scalar): one tanh layer on ``[g; a]``, linear output."""

    features: int = 64

    @nn.compact
    def __call__(self, g: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([g, action], axis=-1)
        w = self.param("W_hidden", _fan_in_uniform, (self.features, x.shape[-1]))
        b = self.param("b_hidden", nn.initializers.zeros, (self.features,))
        z = jnp.tanh(w @ x + b)
        q = self.param("W_q", _small_uniform, (1, self.features)) @ z
        return (q + self.param("b_q", nn.initializers.zeros, (1,)))[0]


@dataclasses.dataclass(frozen=True)
class SACAgent:
    """Recurrent tanh-Gaussian actor and twin-Q recurrent critic (static structure only).

    Attributes:
      cell: a flax cell with the ``RNNCellBase`` contract; the actor and the critic each get their
        own copy of its params.
      input_size: observation size M.
      num_actions: action size A.
      features: units of each head's hidden layer (64).
      low, high: the action bounds (tuples of A floats).
    """

    cell: nn.Module
    input_size: int
    num_actions: int = 1
    features: int = 64
    low: tuple[float, ...] = (-1.0,)
    high: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        check_range("rule.hidden_head", self.features, 1, integer=True)
        if len(self.low) != self.num_actions or len(self.high) != self.num_actions:
            raise ValueError(f"action bounds low = {self.low}, high = {self.high} must each have "
                             f"num_actions = {self.num_actions} entries")

    @property
    def policy(self) -> TanhGaussianPolicy:
        return TanhGaussianPolicy(self.num_actions, self.features, self.low, self.high)

    @property
    def q_head(self) -> QHead:
        return QHead(self.features)

    def initial_carry(self) -> Any:
        """The zero recurrent state (the state at the start of every episode and sequence)."""
        return self.cell.initialize_carry(jax.random.PRNGKey(0), (self.input_size,))

    def init(self, key: jax.Array, gain: jax.Array | float = 1.0) -> dict[str, Any]:
        """Params ``{"cell", "actor", "critic": {"cell", "q1", "q2"}}``; both cells at gain ``gain``."""
        key_cell, key_actor, key_critic_cell, key_q1, key_q2 = jax.random.split(key, 5)
        cell_params = init_params(self.cell, key_cell, self.input_size, gain)
        critic_cell = init_params(self.cell, key_critic_cell, self.input_size, gain)
        _, y = self.cell.apply(cell_params, self.initial_carry(), jnp.zeros((self.input_size,), jnp.float32))
        action = jnp.zeros((self.num_actions,), jnp.float32)
        return {
            "cell": cell_params,
            "actor": self.policy.init(key_actor, y, method=TanhGaussianPolicy.gaussian),
            "critic": {"cell": critic_cell, "q1": self.q_head.init(key_q1, y, action),
                       "q2": self.q_head.init(key_q2, y, action)},
        }

    def policy_step(self, params: Any, carry: Any, obs: jax.Array, reset: jax.Array):
        """One step of the actor: ``(carry, (torque[A], log_std[A], y[N]))`` with the deterministic
        torque (the same signature as :meth:`ActorCritic.policy_step`).

        ``reset`` (a ``()`` bool) zeroes ``carry`` first (a new episode starts with ``obs``).
        """
        carry, y = self.encode(params["cell"], carry, obs, reset)
        torque, log_std = self.policy.apply(params["actor"], y)
        return carry, (torque, log_std, y)

    def encode(self, cell_params: Any, carry: Any, obs: jax.Array, reset: jax.Array):
        """``(carry, y)`` after feeding ``obs`` to the cell, zeroing ``carry`` first if ``reset``."""
        zero = self.initial_carry()
        carry = jax.tree.map(lambda c, z: jnp.where(reset, z, c), carry, zero)
        return self.cell.apply(cell_params, carry, obs)

    def sequence(self, cell_params: Any, obs: jax.Array, resets: jax.Array) -> tuple[Any, jax.Array]:
        """Run the cell over ``B`` sequences from the zero state: ``(carries[B, L, ...], ys[B, L, N])``.

        Args:
          cell_params: the actor's or the critic's cell params.
          obs: ``[B, L, M]`` observations.
          resets: ``[B, L]`` bools; ``resets[b, t]`` zeroes the state before ``obs[b, t]``.
        """
        if type(self.cell) is VanillaRNN:
            carry0 = jnp.zeros((obs.shape[0], self.cell.hidden), obs.dtype)
            hs = vanilla_sequences(self.cell, cell_params, carry0, obs, resets)
            return hs, hs

        def one(obs_b, resets_b):
            def body(carry, xs):
                carry, y = self.encode(cell_params, carry, *xs)
                return carry, (carry, y)

            return jax.lax.scan(body, self.initial_carry(), (obs_b, resets_b))[1]

        return jax.vmap(one)(obs, resets)

    def successors(self, cell_params: Any, carries: Any, next_obs: jax.Array) -> jax.Array:
        """Outputs ``y'[..., N]`` of one more step from each stored carry with ``next_obs[..., M]``
        (no reset: ``next_obs`` continues the carry's episode)."""
        flat_obs = next_obs.reshape((-1, next_obs.shape[-1]))
        flat_carries = jax.tree.map(lambda c: c.reshape((flat_obs.shape[0],) + c.shape[next_obs.ndim - 1:]), carries)
        _, ys = jax.vmap(self.cell.apply, in_axes=(None, 0, 0))(cell_params, flat_carries, flat_obs)
        return ys.reshape(next_obs.shape[:-1] + ys.shape[-1:])

    def gaussian(self, actor_params: Any, ys: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Pre-squash ``(μ[..., A], log σ[..., A])`` of the policy at outputs ``ys[..., N]``."""
        flat = ys.reshape((-1, ys.shape[-1]))
        mean, log_std = jax.vmap(lambda y: self.policy.apply(actor_params, y, method=TanhGaussianPolicy.gaussian))(flat)
        shape = ys.shape[:-1] + (self.num_actions,)
        return mean.reshape(shape), log_std.reshape(shape)

    def twin_q(self, critic_params: Any, gs: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(Q_1, Q_2)[...]`` at critic outputs ``gs[..., N]`` and actions ``actions[..., A]`` in [−1, 1]."""
        flat_g, flat_a = gs.reshape((-1, gs.shape[-1])), actions.reshape((-1, actions.shape[-1]))
        q = jax.vmap(self.q_head.apply, in_axes=(None, 0, 0))
        return (q(critic_params["q1"], flat_g, flat_a).reshape(gs.shape[:-1]),
                q(critic_params["q2"], flat_g, flat_a).reshape(gs.shape[:-1]))

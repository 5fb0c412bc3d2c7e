"""The recurrent PPO objective: GAE, the clipped loss and the loss of a minibatch of sequences.

Pure functions of arrays, used by :func:`jaxrnn.rules.ppo.ppo`, after
Schulman et al. (2017, 2016) and the ``pytorch-a2c-ppo-acktr`` template the Huang, Singh &
Rajan (2024) agents follow:

- :func:`gae`: generalised advantage estimation over one sequence;
- :func:`normalize_advantages`: ``(A − mean)/(std + 1e-5)`` over the rollout;
- :func:`ppo_loss`: the clipped surrogate, (clipped) value loss and entropy bonus;
- :class:`Segment` and :func:`segment_loss`: a minibatch of whole environment sequences,
  re-run through the recurrent actor-critic from their stored initial states.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn.models.actor_critic import ActorCritic, gaussian_entropy, gaussian_log_prob


def gae(rewards, values, next_values, terminals, dones, gamma, gae_lambda):
    """Generalised advantage estimation over one sequence (``[T]`` arrays; vmap for more).

    ``δ_t = r_t + γ(1 − terminals_t)·next_values_t − values_t``,
    ``A_t = δ_t + γλ(1 − dones_t)·A_{t+1}`` with ``A_T = 0``; returns ``(A[T], A + values)``.
    ``dones_t`` marks the last step of an episode, ``terminals_t`` one with no future reward.
    """
    not_term = 1.0 - terminals.astype(jnp.float32)
    not_done = 1.0 - dones.astype(jnp.float32)

    def body(next_adv, xs):
        r, v, nv, nt, nd = xs
        adv = r + gamma * nt * nv - v + gamma * gae_lambda * nd * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(body, jnp.zeros((), jnp.float32),
                                 (rewards, values, next_values, not_term, not_done), reverse=True)
    return advantages, advantages + values


def normalize_advantages(advantages: jax.Array) -> jax.Array:
    """``(A − mean A)/(std A + 1e-5)`` over all elements (population std)."""
    return (advantages - jnp.mean(advantages)) / (jnp.std(advantages) + 1e-5)


def ppo_loss(log_probs, entropy, values, old_log_probs, old_values, advantages, returns,
             clip_eps, vf_coef, ent_coef, *, clip_value_loss: bool = True):
    """The clipped PPO objective of one minibatch (Schulman et al. 2017), to minimise.

    With ``ρ = exp(log π − log π_old)``::

        L_π = −mean min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)
        L_V = ½ mean max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)   (clip_value_loss)
              ½ mean (V − R)²                                              (otherwise)
        L   = L_π + vf_coef·L_V − ent_coef·mean H

    All array arguments share one shape (``entropy`` may be a scalar); ``advantages`` are used as
    given (normalise them before). Returns ``(L, aux)`` with the terms, the approximate KL
    ``mean((ρ − 1) − log ρ)`` and the fraction of clipped ratios.
    """
    log_ratio = log_probs - old_log_probs
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)
    policy_loss = -jnp.mean(surrogate)
    value_losses = (values - returns) ** 2
    if clip_value_loss:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        value_losses = jnp.maximum(value_losses, (clipped - returns) ** 2)
    value_loss = 0.5 * jnp.mean(value_losses)
    mean_entropy = jnp.mean(entropy)
    total = policy_loss + vf_coef * value_loss - ent_coef * mean_entropy
    aux = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": mean_entropy,
        "approx_kl": jnp.mean(ratio - 1.0 - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }
    return total, aux


@struct.dataclass
class Segment:
    """One rollout's transitions, environment axis first (``[E, T, ...]``; ``carry0[E, N]``)."""

    carry0: Any
    obs: jax.Array
    resets: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    advantages: jax.Array
    returns: jax.Array


def segment_loss(net: ActorCritic, params: Any, segment: Segment, hp: Any, clip_value_loss: bool = True,
                 *, fast: bool = True):
    """:func:`ppo_loss` of a minibatch of whole sequences, re-running ``net`` from ``carry0``
    (:meth:`ActorCritic.sequences`; ``fast`` selects its hand-differentiated VanillaRNN path);
    ``hp`` supplies ``clip_eps``, ``vf_coef`` and ``ent_coef`` (a ``PPOHParams``)."""
    means, log_std, values = net.sequences(params, segment.carry0, segment.obs, segment.resets, fast=fast)
    log_probs = gaussian_log_prob(means, log_std, segment.actions)
    return ppo_loss(log_probs, gaussian_entropy(log_std), values, segment.log_probs, segment.values,
                    segment.advantages, segment.returns, hp.clip_eps, hp.vf_coef, hp.ent_coef,
                    clip_value_loss=clip_value_loss)

"""The losses of recurrent SAC on a batch of stored sequences (Haarnoja et al. 2018; Ni et al. 2021).

For a batch of ``B`` sub-sequences of ``L`` steps (:class:`~jaxrnn.rules.sequence_replay.Transition`
fields ``[B, L, ...]``), with the actor's encoder outputs ``h_t``, the critic's ``g_t``, the target
critic's ``ḡ_t``, and the successors ``h'_t = F_π(h_t, o'_t)``, ``ḡ'_t = F̄_Q(ḡ_t, o'_t)`` of the true
next observation ``o'_t`` (the final observation where the episode was cut by its time limit)::

    a'_t ~ π(·|h'_t),  ã_t ~ π(·|h_t)                        (tanh-Gaussian, reparameterised)
    y_t   = s r_t + γ (1 − term_t) [min_i Q̄_i(ḡ'_t, a'_t) − α log π(a'_t|h'_t)]      (critic target)
    L_Q   = Σ_t m_t Σ_i (Q_i(g_t, a_t) − y_t)² / Σ_t m_t                             (critic loss)
    L_π   = Σ_t m_t [α log π(ã_t|h_t) − min_i Q_i(g_t, ã_t)] / Σ_t m_t              (actor loss)
    L_α   = −α [Σ_t m_t log π(ã_t|h_t) / Σ_t m_t + H̄]                                 (temperature loss)

with ``α = exp(log α)``, ``s`` the reward scale, ``m_t`` the loss mask (0 on burn-in steps) and
``H̄`` the target entropy (−A by default). These are pomdp-baselines' ``policies/rl/sac.py`` and
``policy_rnn.py`` (the sum of the two squared TD errors; the temperature loss in ``α``, not
``log α``, its ``update_others``). Gradients: ``y`` is a constant; ``L_Q`` moves the critic (cell
and heads); ``L_π`` moves the actor (cell and head) through ``ã`` only (the critic's params and
``g_t`` held fixed); ``L_α`` moves ``log α`` only. :func:`sac_loss` returns their sum with the
stop-gradients placed so that one ``jax.grad`` gives all three gradients at once, each loss
differentiated with respect to its own parameters — the same numbers as three separate
gradients, from one forward and one backward pass through each encoder.

As softlearning (Haarnoja's reference implementation) all three losses are evaluated at the
parameters before the step; pomdp-baselines instead steps the critic first and evaluates the
actor loss with the stepped critic (one more forward pass of the critic's encoder).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn.models.sac_agent import SACAgent, tanh_gaussian

sg = jax.lax.stop_gradient

__all__ = ["actor_loss", "critic_loss", "critic_target", "masked_mean", "sac_loss", "temperature_loss"]


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``Σ m x / max(Σ m, 1)``."""
    return jnp.sum(mask * x) / jnp.maximum(jnp.sum(mask), 1.0)


def critic_target(rewards, terminals, next_q1, next_q2, next_log_prob, alpha, gamma, reward_scale=1.0):
    """``y = s r + γ (1 − term) (min(Q̄_1, Q̄_2) − α log π(a'))`` elementwise."""
    soft_value = jnp.minimum(next_q1, next_q2) - alpha * next_log_prob
    return reward_scale * rewards + gamma * (1.0 - terminals.astype(rewards.dtype)) * soft_value


def critic_loss(q1, q2, target, mask):
    """``masked mean of (Q_1 − y)² + (Q_2 − y)²``."""
    return masked_mean((q1 - target) ** 2 + (q2 - target) ** 2, mask)


def actor_loss(q1_new, q2_new, log_prob, alpha, mask):
    """``masked mean of α log π(ã) − min(Q_1, Q_2)(ã)``."""
    return masked_mean(alpha * log_prob - jnp.minimum(q1_new, q2_new), mask)


def temperature_loss(log_alpha, log_prob, target_entropy, mask):
    """``−α (masked mean of log π(ã) + H̄)``, differentiated with respect to ``log α``."""
    return -jnp.exp(log_alpha) * (masked_mean(log_prob, mask) + target_entropy)


def sac_loss(agent: SACAgent, params: Any, log_alpha: jax.Array, target_critic: Any, batch: Any,
             noise: jax.Array, mask: jax.Array, hp: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``L_Q + L_π + L_α`` of one batch (module docstring) and its parts.

    Args:
      agent: the :class:`~jaxrnn.models.sac_agent.SACAgent`.
      params: ``{"cell", "actor", "critic"}`` (differentiated).
      log_alpha: ``()`` log temperature (differentiated).
      target_critic: the target critic's ``{"cell", "q1", "q2"}`` (not differentiated).
      batch: a :class:`~jaxrnn.rules.sequence_replay.Transition` of ``[B, L, ...]`` arrays
        (``resets[:, 0]`` True: every sequence starts from the zero state).
      noise: ``[2, B, L, A]`` standard normal draws for ``a'`` and ``ã``.
      mask: ``[L]`` or ``[B, L]`` loss weights (0 on burn-in steps).
      hp: anything with ``gamma``, ``reward_scale`` and ``target_entropy``.

    Returns:
      ``(total, aux)``; ``aux`` holds ``critic_loss``, ``actor_loss``, ``alpha_loss``,
      ``alpha``, ``entropy`` (``−`` masked mean ``log π(ã)``), ``q`` (masked mean ``Q_1(g, a)``)
      and ``target`` (masked mean ``y``).
    """
    mask = jnp.broadcast_to(mask, batch.rewards.shape).astype(jnp.float32)
    alpha = jnp.exp(log_alpha)
    # actor encoder: once, differentiated; its successors feed the (constant) target
    carries, hs = agent.sequence(params["cell"], batch.obs, batch.resets)
    next_hs = agent.successors(sg(params["cell"]), sg(carries), batch.next_obs)
    next_actions, next_log_prob = tanh_gaussian(*agent.gaussian(sg(params["actor"]), next_hs), noise[0])
    # target critic at the successors
    target_carries, _ = agent.sequence(target_critic["cell"], batch.obs, batch.resets)
    next_gs = agent.successors(target_critic["cell"], target_carries, batch.next_obs)
    next_q1, next_q2 = agent.twin_q(target_critic, next_gs, next_actions)
    target = sg(critic_target(batch.rewards, batch.terminals, next_q1, next_q2, next_log_prob, sg(alpha),
                              hp.gamma, hp.reward_scale))
    # online critic at the stored actions
    _, gs = agent.sequence(params["critic"]["cell"], batch.obs, batch.resets)
    q1, q2 = agent.twin_q(params["critic"], gs, batch.actions)
    loss_q = critic_loss(q1, q2, target, mask)
    # actor: gradient through ã only
    new_actions, log_prob = tanh_gaussian(*agent.gaussian(params["actor"], hs), noise[1])
    q1_new, q2_new = agent.twin_q(sg(params["critic"]), sg(gs), new_actions)
    loss_pi = actor_loss(q1_new, q2_new, log_prob, sg(alpha), mask)
    loss_alpha = temperature_loss(log_alpha, sg(log_prob), hp.target_entropy, mask)
    aux = {"critic_loss": loss_q, "actor_loss": loss_pi, "alpha_loss": loss_alpha, "alpha": alpha,
           "entropy": -masked_mean(log_prob, mask), "q": masked_mean(q1, mask), "target": masked_mean(target, mask)}
    return loss_q + loss_pi + loss_alpha, aux

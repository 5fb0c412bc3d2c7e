"""Deterministic episodes of a recurrent Gaussian policy: the validation score of the RL rules.

:func:`deterministic_returns` plays ``num_episodes`` episodes of ``num_steps`` steps of a gymnax
environment from ``env.reset`` with the action ``clip(μ(h_t), low, high)`` — the policy mean,
no exploration noise — and returns the mean undiscounted return (``return``), its std over
episodes (``return_std``) and the mean reward of each episode's last step (``final_reward``).
Rewards after an episode's end within ``num_steps`` are not counted. The key fixes the episodes
(starts and any environment noise), so every member of a population is scored on the same set.

``net`` is any recurrent policy with ``initial_carry()`` and ``policy_step(params, carry, obs,
reset) -> (carry, (mean, ...))`` (:class:`~jaxrnn.models.actor_critic.ActorCritic`); ``params``
take raw observations. Used by :func:`jaxrnn.rules.ppo.ppo`'s ``evaluate``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def deterministic_returns(net, env, params: Any, key: jax.Array, env_params: Any, num_episodes: int,
                          num_steps: int) -> dict[str, jax.Array]:
    """``{"return", "return_std", "final_reward"}`` of ``num_episodes`` deterministic episodes."""
    key_reset, key_steps = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_episodes), env_params)
    space = env.action_space(env_params)
    step = jax.vmap(net.policy_step, in_axes=(None, 0, 0, None))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, key_t):
        env_state, obs, rnn, alive, ret, last = carry
        rnn, (mean, *_) = step(params, rnn, obs, jnp.array(False))
        obs, env_state, reward, terminated, truncated, _ = env_step(
            jax.random.split(key_t, num_episodes), env_state, jnp.clip(mean, space.low, space.high), env_params)
        ret = ret + jnp.where(alive, reward, 0.0)
        last = jnp.where(alive, reward, last)
        alive = alive & ~(terminated | truncated)
        return (env_state, obs, rnn, alive, ret, last), None

    zeros = jnp.zeros((num_episodes,), jnp.float32)
    carry0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_episodes,) + x.shape), net.initial_carry())
    start = (env_state, obs, carry0, jnp.ones((num_episodes,), bool), zeros, zeros)
    (_, _, _, _, ret, last), _ = jax.lax.scan(body, start, jax.random.split(key_steps, num_steps))
    return {"return": jnp.mean(ret), "return_std": jnp.std(ret), "final_reward": jnp.mean(last)}

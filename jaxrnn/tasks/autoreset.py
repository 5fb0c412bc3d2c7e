"""gymnax's auto-resetting ``step`` with the resets drawn ahead of the time loop.

:meth:`gymnax.environments.environment.Environment.step` (gymnax 1.0.1) splits its key into
``(key_step, key_reset)``, runs ``step_env(key_step, ...)`` **and** ``reset_env(key_reset, ...)``
at every step, and keeps the reset where the episode ended::

    done = terminated ∨ truncated(state')
    (obs, state) = done ? reset_env(key_reset) : (obs', state')
    info["final_observation"] = obs'

In a rollout the reset draws (a key split, the initial state, the observation noise) are
independent of everything the loop computes, so :func:`draw_resets` runs ``reset_env`` for all
``[T, E]`` steps in one batched call before the loop and :func:`step_with_reset` does the rest of
``Environment.step`` inside it. With the same keys the numbers are exactly gymnax's
(``tests/test_pendulum.py``); on the 2-core CPU this moved ~5 % of a PPO update out of the
sequential loop (``jaxrnn.rules.ppo``).

Configuration tiers: the environment is static; keys, states and params are arrays.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def draw_resets(env, keys: jax.Array, params: Any) -> tuple[jax.Array, tuple[Any, Any]]:
    """Split every key as ``Environment.step`` does and draw its reset.

    Args:
      env: a gymnax environment.
      keys: ``[...]`` keys, one per (step, environment), as passed to ``env.step``.
      params: the environment's params (shared).

    Returns:
      ``(step_keys[...], (obs[..., M], state[...]))``: the keys for ``step_env`` and the
      reset that ``env.step`` would have drawn with each key.
    """
    flat = keys.reshape((-1,) + keys.shape[keys.ndim - _key_ndim(keys):])
    halves = jax.vmap(jax.random.split)(flat)
    step_keys, reset_keys = halves[:, 0], halves[:, 1]
    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, params)
    lead = keys.shape[: keys.ndim - _key_ndim(keys)]
    unflat = lambda a: a.reshape(lead + a.shape[1:])  # noqa: E731
    return unflat(step_keys), (unflat(obs), jax.tree.map(unflat, state))


def step_with_reset(env, key_step: jax.Array, reset: tuple[Any, Any], state: Any, action: jax.Array, params: Any):
    """``env.step`` of one environment with its reset ``(obs, state)`` drawn beforehand.

    Returns ``(obs, state, reward, terminated, truncated, info)`` as ``Environment.step``
    (``info`` with ``terminated``, ``truncated`` and ``final_observation``).
    """
    obs_step, state_step, reward, terminated, info = env.step_env(key_step, state, action, params)
    truncated = env.is_truncated(state_step, params)
    done = jnp.logical_or(terminated, truncated)
    obs_reset, state_reset = reset
    pick = lambda a, b: jax.lax.select(done, a, b)  # noqa: E731
    state = jax.tree.map(pick, state_reset, state_step)
    obs = jax.tree.map(pick, obs_reset, obs_step)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
    return obs, state, reward, terminated, truncated, info


def _key_ndim(keys: jax.Array) -> int:
    """Trailing axes of one key: 1 for raw ``uint32[2]`` keys, 0 for typed keys."""
    return 0 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else 1

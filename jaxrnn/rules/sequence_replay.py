"""Sequence replay for recurrent off-policy RL, on flashbax's trajectory buffer.

Ni et al. (2021, pomdp-baselines ``buffers/seq_replay_buffer_vanilla.py``) store whole episodes
and sample sub-sequences of a fixed length that a recurrent network re-runs from the zero state.
Here every environment of an agent appends its steps in time order to its own row of a
:func:`flashbax.make_trajectory_buffer` (``add_batch_size = num_envs``, a ring of
``capacity // num_envs`` steps per row), and a batch is ``B`` windows of ``L`` consecutive stored
steps, row and start drawn uniformly (flashbax: ``period = 1``; a window never spans the
write position, so it is always a stretch of one environment's experience in the order it
happened). A window may cross an episode boundary: every stored step carries ``reset`` (its
observation is the first of an episode), and the network zeroes its state there — so the
sequences of Ni et al. come out as they are, whole, with the hidden state reset at each episode
start, and nothing is masked. :func:`sample` also sets ``reset`` on the first step of every window:
a window that starts mid-episode is re-run from the zero state (Ni et al.'s choice for
sub-sequences; ``burn_in`` of :func:`~jaxrnn.rules.recurrent_sac.recurrent_sac` leaves its first
steps out of the losses).

Why flashbax: its buffer is pure functions over a pytree state (``init``, ``add``, ``sample``)
with static shapes, so ``jax.vmap`` turns one agent's buffer into a population's — one buffer
per member, each sampled with the member's own key — with no change.

Each step is stored with its true next observation ``next_obs`` (the final observation where
the episode was cut by the time limit, before the auto-reset), as pomdp-baselines' vanilla
buffer stores ``obs2``: the critic target bootstraps from it, so a truncated episode is not
treated as terminated.

Configuration tiers: ``num_envs``, ``capacity``, ``batch_size`` and ``sequence_length`` are
static (shapes); the buffer state is state.
"""

from __future__ import annotations

import flashbax
import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_range, fail

__all__ = ["Transition", "make_buffer", "sample"]


@struct.dataclass
class Transition:
    """One stored environment step (leading axes ``[...]`` are added by the buffer and batches).

    Attributes:
      obs: ``[M]`` the observation the action was chosen on.
      actions: ``[A]`` the action taken, in the policy's units ([−1, 1] for SAC).
      rewards: ``()`` float32 reward.
      terminals: ``()`` bool, the episode terminated (not merely truncated) after this step.
      next_obs: ``[M]`` the true next observation (before any auto-reset).
      resets: ``()`` bool, ``obs`` is the first observation of an episode.
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    terminals: jax.Array
    next_obs: jax.Array
    resets: jax.Array


def make_buffer(num_envs: int, capacity: int, batch_size: int, sequence_length: int):
    """A flashbax trajectory buffer of ``capacity`` steps in ``num_envs`` rows.

    Raises ``ValueError`` (naming the ``rule.`` field) unless ``capacity`` is a multiple of
    ``num_envs`` whose rows hold at least one sequence.
    """
    check_range("rule.buffer_size", capacity, 1, integer=True)
    check_range("rule.sequence_length", sequence_length, 1, integer=True)
    check_range("rule.batch_size", batch_size, 1, integer=True)
    if capacity % num_envs:
        fail("rule.buffer_size", capacity, f"a multiple of rule.num_envs = {num_envs}")
    if capacity // num_envs < sequence_length:
        fail("rule.buffer_size", capacity,
             f"at least rule.num_envs × rule.sequence_length = {num_envs * sequence_length}")
    return flashbax.make_trajectory_buffer(
        add_batch_size=num_envs, sample_batch_size=batch_size, sample_sequence_length=sequence_length,
        period=1, min_length_time_axis=sequence_length, max_length_time_axis=capacity // num_envs)


def sample(buffer, state, key: jax.Array) -> Transition:
    """``B`` windows of ``L`` stored steps (``Transition`` of ``[B, L, ...]``), ``resets[:, 0] = True``.

    Only meaningful once ``buffer.can_sample(state)`` (before that the windows hold the buffer's
    initial zeros).
    """
    windows = buffer.sample(state, key).experience
    return windows.replace(resets=windows.resets.at[:, 0].set(True))


def can_sample(buffer, state) -> jax.Array:
    """``()`` bool: every row holds at least one whole window."""
    return jnp.asarray(buffer.can_sample(state))

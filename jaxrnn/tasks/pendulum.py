"""Gym/Gymnasium ``Pendulum-v1`` in JAX, fully (FO) or partially (PO) observed.

The environment of Huang, Singh & Rajan (InterpPol @ RLC 2024), "Learning dynamics and the
geometry of neural dynamics in recurrent neural controllers": the physics is Gymnasium's
``gymnasium/envs/classic_control/pendulum.py`` step for step; the FO/PO split is that of
Ni et al. 2021 (pomdp-baselines ``Pendulum-F-v0`` / ``Pendulum-P-v0``).

Spec (``θ = 0`` is upright; ``θ`` is not wrapped in the state, only in the cost):

- **Observation** ``[3]`` float32 ``(cos θ, sin θ, θ̇)`` when ``observe_velocity=True`` (FO,
  ``"pendulum-fo"``), ``[2]`` ``(cos θ, sin θ)`` otherwise (PO, ``"pendulum-po"``: the
  velocity must be inferred). Each component gets ``N(0, obs_noise_std²)`` noise (default 0).
- **Action** torque ``u``, shape ``()`` or ``[1]``, clipped to ``[−max_torque, max_torque]``.
- **Reward** ``−(angle_normalize(θ)² + 0.1·θ̇² + 0.001·u²)`` of the state *before* the step
  and the clipped torque; in ``[−16.2736, 0]`` at the defaults.
  ``angle_normalize(x) = ((x + π) mod 2π) − π``.
- **Dynamics** (semi-implicit Euler, Gymnasium's order: clip the velocity, then move with it)::

      θ̇' = clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, −max_speed, max_speed)
      θ'  = θ + θ̇'·dt

- **Start state** ``θ ~ U(−π, π)``, ``θ̇ ~ U(−1, 1)``, ``time = 0``.
- **Termination** never; **truncation** when ``time ≥ max_steps_in_episode`` (200, Gymnasium's
  ``TimeLimit``). The inherited gymnax ``step`` auto-resets on truncation and reports the
  pre-reset observation in ``info["final_observation"]``.

API: gymnax 1.x ``Environment`` — ``reset(key, params) -> (obs, state)``,
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``.
Transitions are differentiable (no ``stop_gradient``); RL rules simply do not differentiate them.

``PendulumState`` and ``PendulumParams`` are standalone ``flax.struct`` dataclasses (not
subclasses of gymnax's ``EnvState``/``EnvParams``, so their fields keep the declared order); they
carry the ``time`` and ``max_steps_in_episode`` fields that gymnax's inherited methods read.
Environments compare equal (and hash alike) when their static configuration is equal, so the
inherited ``jax.jit(static_argnames="self")`` cache is shared between equal instances.

Configuration tiers: ``observe_velocity`` is static (it fixes the observation size); every field
of :class:`PendulumParams` is a sweepable pytree leaf (vmap over ``g`` or ``obs_noise_std``);
:class:`PendulumState` changes each step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from jaxrnn._checks import check_choice, check_range
from jaxrnn.tasks.base import cast_like

MAX_EPISODE_STEPS = 200


@struct.dataclass
class PendulumState:
    """Per-step state (tier: state); fields in the order ``theta, theta_dot, time``.

    Attributes:
      theta: ``()`` float32 angle θ (0 = upright), not wrapped.
      theta_dot: ``()`` float32 angular velocity θ̇.
      time: ``()`` int32 steps taken in this episode.
    """

    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array


@struct.dataclass
class PendulumParams:
    """Sweepable physics and noise (tier: params; all pytree leaves).

    Attributes:
      max_speed: clip bound of θ̇ (8).
      max_torque: clip bound of the torque u (2).
      dt: integration step (0.05 s).
      g: gravity (10).
      m: mass (1).
      l: length (1).
      max_steps_in_episode: episode length before truncation (int32, 200).
      obs_noise_std: std of the Gaussian noise added to each observation component (0).
    """

    max_speed: jax.Array = 8.0
    max_torque: jax.Array = 2.0
    dt: jax.Array = 0.05
    g: jax.Array = 10.0
    m: jax.Array = 1.0
    l: jax.Array = 1.0  # noqa: E741 - Gymnasium's name
    max_steps_in_episode: jax.Array = MAX_EPISODE_STEPS
    obs_noise_std: jax.Array = 0.0


def angle_normalize(x: jax.Array) -> jax.Array:
    """Wrap an angle to ``[−π, π)``: ``((x + π) mod 2π) − π``."""
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


def pendulum_cost(theta: jax.Array, theta_dot: jax.Array, torque: jax.Array) -> jax.Array:
    """Gymnasium's cost ``angle_normalize(θ)² + 0.1·θ̇² + 0.001·u²`` (``u`` already clipped)."""
    return angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * torque**2


def pendulum_dynamics(
    theta: jax.Array, theta_dot: jax.Array, torque: jax.Array, params: PendulumParams
) -> tuple[jax.Array, jax.Array]:
    """One semi-implicit Euler step ``(θ, θ̇, u) -> (θ', θ̇')``, moving with the clipped θ̇'.

    ``u`` must already be clipped to ``±max_torque``.
    """
    acceleration = 3 * params.g / (2 * params.l) * jnp.sin(theta) + 3.0 / (params.m * params.l**2) * torque
    new_theta_dot = jnp.clip(theta_dot + acceleration * params.dt, -params.max_speed, params.max_speed)
    new_theta = theta + new_theta_dot * params.dt
    return new_theta, new_theta_dot


class Pendulum(environment.Environment[PendulumState, PendulumParams]):
    """Gymnasium ``Pendulum-v1`` (see the module docstring for the spec).

    Args:
      observe_velocity: ``True`` for FO ``(cos θ, sin θ, θ̇)``, ``False`` for PO
        ``(cos θ, sin θ)`` (static: fixes the observation size).
    """

    _supports_transition_gradients = True
    _transition_gradients_enabled = True

    def __init__(self, observe_velocity: bool = True):
        super().__init__()
        check_choice("task.observe_velocity", observe_velocity, (True, False))
        self.observe_velocity = bool(observe_velocity)
        self.obs_shape = (3,) if self.observe_velocity else (2,)

    def __repr__(self) -> str:
        return f"Pendulum(observe_velocity={self.observe_velocity})"

    def _static_key(self) -> tuple:
        return (type(self), self.observe_velocity, self.transition_gradients_enabled)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pendulum) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    @property
    def name(self) -> str:
        return "Pendulum-v1-" + ("FO" if self.observe_velocity else "PO")

    @property
    def observation_size(self) -> int:
        return self.obs_shape[0]

    @property
    def num_actions(self) -> int:
        """Size of the (continuous) action: one torque."""
        return 1

    @property
    def default_params(self) -> PendulumParams:
        return PendulumParams(
            max_speed=jnp.float32(8.0),
            max_torque=jnp.float32(2.0),
            dt=jnp.float32(0.05),
            g=jnp.float32(10.0),
            m=jnp.float32(1.0),
            l=jnp.float32(1.0),
            max_steps_in_episode=jnp.int32(MAX_EPISODE_STEPS),
            obs_noise_std=jnp.float32(0.0),
        )

    def check_params(self, params: PendulumParams) -> None:
        """Eager validation (before any compilation); raises ``ValueError`` naming the field."""
        check_range("task.max_speed", params.max_speed, 0.0, low_open=True)
        check_range("task.max_torque", params.max_torque, 0.0)
        check_range("task.dt", params.dt, 0.0, low_open=True)
        check_range("task.g", params.g)
        check_range("task.m", params.m, 0.0, low_open=True)
        check_range("task.l", params.l, 0.0, low_open=True)
        check_range("task.max_steps_in_episode", params.max_steps_in_episode, 1, integer=True)
        check_range("task.obs_noise_std", params.obs_noise_std, 0.0)

    def cast_params(self, params: PendulumParams) -> PendulumParams:
        """Params with the default dtypes (float32 / int32)."""
        return cast_like(params, self.default_params)

    def step_env(
        self, key: jax.Array, state: PendulumState, action: jax.Array, params: PendulumParams
    ) -> tuple[jax.Array, PendulumState, jax.Array, jax.Array, dict[str, Any]]:
        """Gymnasium's step: reward of the current state, then semi-implicit Euler."""
        torque = jnp.reshape(jnp.asarray(action, jnp.float32), ())
        torque = jnp.clip(torque, -params.max_torque, params.max_torque)
        reward = -pendulum_cost(state.theta, state.theta_dot, torque)
        theta, theta_dot = pendulum_dynamics(state.theta, state.theta_dot, torque, params)
        state = PendulumState(theta=theta, theta_dot=theta_dot, time=state.time + 1)
        obs = self.get_obs(state, params, key)
        terminated = self.is_terminated(state, params)
        return obs, state, reward.astype(jnp.float32), terminated, {"discount": jnp.float32(1.0)}

    def reset_env(self, key: jax.Array, params: PendulumParams) -> tuple[jax.Array, PendulumState]:
        """``θ ~ U(−π, π)``, ``θ̇ ~ U(−1, 1)``."""
        key_state, key_obs = jax.random.split(key)
        high = jnp.array([jnp.pi, 1.0], jnp.float32)
        theta, theta_dot = jax.random.uniform(key_state, (2,), jnp.float32, -high, high)
        state = PendulumState(theta=theta, theta_dot=theta_dot, time=jnp.int32(0))
        return self.get_obs(state, params, key_obs), state

    def get_obs(
        self, state: PendulumState, params: PendulumParams | None = None, key: jax.Array | None = None
    ) -> jax.Array:
        """``(cos θ, sin θ[, θ̇]) + obs_noise_std·ε``; no noise when ``key`` or ``params`` is None."""
        parts = [jnp.cos(state.theta), jnp.sin(state.theta)]
        if self.observe_velocity:
            parts.append(state.theta_dot)
        obs = jnp.stack(parts).astype(jnp.float32)
        if key is not None and params is not None:
            obs = obs + params.obs_noise_std * jax.random.normal(key, obs.shape, jnp.float32)
        return obs

    def is_terminated(self, state: PendulumState, params: PendulumParams) -> jax.Array:
        """The pendulum never terminates; episodes end by truncation only."""
        return jnp.array(False)

    def action_space(self, params: PendulumParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(-params.max_torque, params.max_torque, (1,), jnp.float32)

    def observation_space(self, params: PendulumParams | None = None) -> spaces.Box:
        """Noise-free bounds (``obs_noise_std > 0`` can leave them)."""
        params = self.default_params if params is None else params
        high = jnp.array([1.0, 1.0, params.max_speed], jnp.float32)[: self.observation_size]
        return spaces.Box(-high, high, self.obs_shape, jnp.float32)

    def state_space(self, params: PendulumParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        big = jnp.finfo(jnp.float32).max
        return spaces.Dict(
            {
                "theta": spaces.Box(-big, big, (), jnp.float32),
                "theta_dot": spaces.Box(-params.max_speed, params.max_speed, (), jnp.float32),
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
            }
        )

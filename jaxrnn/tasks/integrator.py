"""Linear k-th order integrator plant (the double integrator for ``k = 2``), differentiable.

The plant of Ger & Barak (NeurIPS 2025, arXiv 2505.13567), "Learning Dynamics of RNNs in
Closed-Loop Environments" — authors' ``k_integrator_torch`` (``code/utils.py``)::

    x_{t+1} = clamp(A x_t + B u_t + w_t),      w_t ~ N(0, (noise_std·√dt)² I_k)
    y_t     = C x_t
    A = I_k,  A[i, i+1] = dt   (i = 0..k−2)          k=2: A = [[1, dt], [0, 1]]
    B (k×m):  B[k−i, m−i] = dt (i = 1..min(k, m))    k=2, m=1: B = [[0], [dt]]
    C (c×k):  C[i, i] = 1      (i < c)               c=1: C = [[1, 0]]  (position only)
    clamp(x) = clip(x, −clamp, clamp)   (authors: ±100 when on; here ``clamp = inf`` is off)

All the authors' double-integrator runs use ``k=2, dt=1, c=1, m=1, noise=0, clamp off``, which
are the defaults here.

Spec of the environment :class:`Integrator`:

- **Observation** ``y_t = C x_t``, ``[c]`` float32 (position only by default: partial
  observation, the velocity must be inferred).
- **Action** ``u_t``, ``[m]`` (a scalar is accepted when ``m = 1``); not clipped.
- **Reward** ``r_t = −(‖x_t‖² + β‖u_t‖²)·dt`` of the state *before* the step and the action
  taken in it, as in the authors' loss ``Σ_t loss_t·dt``. Their per-step loss is a mean over
  the state dimensions (``‖x_t‖²/k``) and their ``β`` multiplies a *sum* over the batch; a rule
  that wants their exact numbers rescales (``β = 0`` in the main analysis).
  The authors also set ``u_0 = 0`` (controller not called at ``t = 0``): that is the rule's choice.
- **Start state** ``x_0 ~ U(−w, w)`` elementwise, ``w = init_half_width`` (``[k]``, default 1:
  the authors' nonlinear runs; their low-rank theory uses 2), ``time = 0``.
- **Termination** never; **truncation** at ``time ≥ max_steps_in_episode`` (T = 50).

The pure functions :func:`plant_matrices`, :func:`plant_step` and :func:`observe` are what
closed-loop (BPTT-through-the-plant) training uses: they are differentiable end to end (the
clamp is ``jnp.clip``, whose gradient is 1 inside the box and 0 outside). The environment's
transitions are differentiable too (no ``stop_gradient``).

Environments compare equal (and hash alike) when their static configuration is equal, so the
inherited ``jax.jit(static_argnames="self")`` cache is shared between equal instances.

Configuration tiers: ``order`` (k), ``control_size`` (m) and ``observation_size`` (c) are static
(they fix shapes); every field of :class:`IntegratorParams` is a sweepable pytree leaf;
:class:`IntegratorState` changes each step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxrnn._checks import check_range, fail
from jaxrnn.tasks.base import cast_like

EPISODE_STEPS = 50


@struct.dataclass
class IntegratorState:
    """Per-step state (tier: state).

    Attributes:
      x: ``[k]`` float32 plant state (position, velocity, … for ``k ≥ 2``).
      time: ``()`` int32 steps taken in this episode.
    """

    x: jax.Array
    time: jax.Array


@struct.dataclass
class IntegratorParams:
    """Sweepable parameters (tier: params; all pytree leaves).

    Attributes:
      dt: integration step (1).
      noise_std: process-noise scale; ``w ~ N(0, (noise_std·√dt)²)`` per state component (0).
      clamp: bound of the state clip ``[−clamp, clamp]`` after each step; ``inf`` is off
        (default); the authors' "on" is 100.
      init_half_width: ``[k]`` half-widths of the start box, ``x_0 ~ U(−w, w)`` (ones).
      beta: control-cost weight β in the reward (0).
      max_steps_in_episode: episode length T before truncation (int32, 50).
    """

    dt: jax.Array = 1.0
    noise_std: jax.Array = 0.0
    clamp: jax.Array = float("inf")
    init_half_width: jax.Array = 1.0
    beta: jax.Array = 0.0
    max_steps_in_episode: jax.Array = EPISODE_STEPS


def plant_matrices(k: int, m: int, c: int, dt: jax.Array | float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The authors' ``A [k,k]``, ``B [k,m]``, ``C [c,k]`` (see the module docstring).

    ``k``, ``m``, ``c`` are Python ints (static); ``dt`` may be traced (differentiable in ``dt``).
    """
    dt = jnp.asarray(dt, jnp.float32)
    A = jnp.eye(k, dtype=jnp.float32) + dt * jnp.eye(k, k, 1, dtype=jnp.float32)
    b_mask = np.zeros((k, m), np.float32)
    for i in range(1, min(k, m) + 1):
        b_mask[k - i, m - i] = 1.0
    B = dt * jnp.asarray(b_mask)
    C = jnp.eye(c, k, dtype=jnp.float32)
    return A, B, C


def plant_step(
    x: jax.Array, u: jax.Array, params: IntegratorParams, noise_key: jax.Array | None = None
) -> jax.Array:
    """One plant step ``x_{t+1} = clip(A x_t + B u_t + w_t, −clamp, clamp)``.

    Args:
      x: ``[k]`` state.
      u: ``[m]`` control.
      params: the sweepable params (``dt``, ``noise_std``, ``clamp`` are read).
      noise_key: PRNG key for the process noise ``w ~ N(0, (noise_std·√dt)²)``; ``None``
        means no noise (a deterministic plant).

    Returns:
      ``[k]`` next state. Differentiable in ``x``, ``u`` and the params.
    """
    A, B, _ = plant_matrices(x.shape[-1], u.shape[-1], 1, params.dt)
    x_next = A @ x + B @ u
    if noise_key is not None:
        scale = params.noise_std * jnp.sqrt(params.dt)
        x_next = x_next + scale * jax.random.normal(noise_key, x_next.shape, x_next.dtype)
    return jnp.clip(x_next, -params.clamp, params.clamp)


def observe(x: jax.Array, params: IntegratorParams | None = None, observation_size: int = 1) -> jax.Array:
    """``y = C x``: the first ``observation_size`` (c, static) components of ``x`` ``[k] -> [c]``.

    ``params`` is unused (C does not depend on them); it keeps the signature uniform.
    """
    del params
    _, _, C = plant_matrices(x.shape[-1], 1, observation_size, 1.0)
    return C @ x


def integrator_cost(x: jax.Array, u: jax.Array, params: IntegratorParams) -> jax.Array:
    """Per-step cost ``(‖x‖² + β‖u‖²)·dt`` (the negative reward)."""
    return (jnp.sum(x**2) + params.beta * jnp.sum(u**2)) * params.dt


class Integrator(environment.Environment[IntegratorState, IntegratorParams]):
    """k-th order integrator environment (see the module docstring for the spec).

    Args:
      order: k, the state size (static, ≥ 1; 2 is the double integrator).
      control_size: m, the control size (static, ``1 ≤ m ≤ k``).
      observation_size: c, the number of observed leading components (static, ``1 ≤ c ≤ k``).
    """

    _supports_transition_gradients = True
    _transition_gradients_enabled = True

    def __init__(self, order: int = 2, control_size: int = 1, observation_size: int = 1):
        super().__init__()
        check_range("task.order", order, 1, integer=True)
        check_range("task.control_size", control_size, 1, order, integer=True)
        check_range("task.observation_size", observation_size, 1, order, integer=True)
        self.order = int(order)
        self.control_size = int(control_size)
        self.observation_size = int(observation_size)
        self.obs_shape = (self.observation_size,)

    def __repr__(self) -> str:
        return (
            f"Integrator(order={self.order}, control_size={self.control_size}, "
            f"observation_size={self.observation_size})"
        )

    def _static_key(self) -> tuple:
        return (type(self), self.order, self.control_size, self.observation_size,
                self.transition_gradients_enabled)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Integrator) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    @property
    def name(self) -> str:
        return f"Integrator-k{self.order}"

    @property
    def num_actions(self) -> int:
        """Size of the (continuous) action, m."""
        return self.control_size

    @property
    def default_params(self) -> IntegratorParams:
        return IntegratorParams(
            dt=jnp.float32(1.0),
            noise_std=jnp.float32(0.0),
            clamp=jnp.float32(jnp.inf),
            init_half_width=jnp.ones((self.order,), jnp.float32),
            beta=jnp.float32(0.0),
            max_steps_in_episode=jnp.int32(EPISODE_STEPS),
        )

    def check_params(self, params: IntegratorParams) -> None:
        """Eager validation (before any compilation); raises ``ValueError`` naming the field."""
        check_range("task.dt", params.dt, 0.0, low_open=True)
        check_range("task.noise_std", params.noise_std, 0.0)
        clamp = np.asarray(params.clamp, dtype=float)
        if np.any(np.isnan(clamp)) or np.any(clamp <= 0):
            fail("task.clamp", params.clamp, "> 0 (inf switches the clamp off; the authors used 100)")
        width = np.asarray(params.init_half_width)
        if width.ndim not in (0, 1) or (width.ndim == 1 and width.shape[-1] != self.order):
            fail("task.init_half_width", params.init_half_width,
                 f"a scalar or a length-{self.order} vector (one half-width per state component)")
        check_range("task.init_half_width", params.init_half_width, 0.0)
        check_range("task.beta", params.beta, 0.0)
        check_range("task.max_steps_in_episode", params.max_steps_in_episode, 1, integer=True)

    def cast_params(self, params: IntegratorParams) -> IntegratorParams:
        """Params with the default dtypes (float32 / int32)."""
        return cast_like(params, self.default_params)

    def matrices(self, params: IntegratorParams) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(A [k,k], B [k,m], C [c,k])`` at ``params.dt``."""
        return plant_matrices(self.order, self.control_size, self.observation_size, params.dt)

    def step_env(
        self, key: jax.Array, state: IntegratorState, action: jax.Array, params: IntegratorParams
    ) -> tuple[jax.Array, IntegratorState, jax.Array, jax.Array, dict[str, Any]]:
        """Reward of ``(x_t, u_t)``, then ``x_{t+1} = plant_step(x_t, u_t)``; obs ``C x_{t+1}``."""
        u = jnp.reshape(jnp.asarray(action, jnp.float32), (self.control_size,))
        reward = -integrator_cost(state.x, u, params)
        x_next = plant_step(state.x, u, params, key)
        state = IntegratorState(x=x_next, time=state.time + 1)
        terminated = self.is_terminated(state, params)
        return self.get_obs(state, params), state, reward, terminated, {"discount": jnp.float32(1.0)}

    def reset_env(self, key: jax.Array, params: IntegratorParams) -> tuple[jax.Array, IntegratorState]:
        """``x_0 ~ U(−w, w)``, ``w = init_half_width``."""
        unit = jax.random.uniform(key, (self.order,), jnp.float32, -1.0, 1.0)
        state = IntegratorState(x=unit * params.init_half_width, time=jnp.int32(0))
        return self.get_obs(state, params), state

    def get_obs(
        self, state: IntegratorState, params: IntegratorParams | None = None, key: jax.Array | None = None
    ) -> jax.Array:
        """``y = C x`` (noise-free)."""
        return observe(state.x, params, self.observation_size)

    def is_terminated(self, state: IntegratorState, params: IntegratorParams) -> jax.Array:
        """Never; episodes end by truncation only."""
        return jnp.array(False)

    def action_space(self, params: IntegratorParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.control_size,), jnp.float32)

    def observation_space(self, params: IntegratorParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(-params.clamp, params.clamp, self.obs_shape, jnp.float32)

    def state_space(self, params: IntegratorParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "x": spaces.Box(-params.clamp, params.clamp, (self.order,), jnp.float32),
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
            }
        )

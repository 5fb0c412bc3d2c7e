"""2-D point-mass tracking of a multi-frequency sum of sinusoids, differentiable.

The tracking task of Ger & Barak (NeurIPS 2025, arXiv 2505.13567, App. D) — authors'
``plant_2D_torch`` and reference generator (``code/utils.py``, ``code/tracking_task.ipynb``).

Plant (state ``s = [x, vx, y, vy]``, control ``u = [ax, ay]``), two double integrators::

    s_{t+1} = clip(A s_t + B u_t + w_t, −clamp, clamp)       (clamp = 10, all four states)
    A = [[1, dt, 0, 0], [0, 1, 0, 0], [0, 0, 1, dt], [0, 0, 0, 1]]
    B = [[0, 0], [dt, 0], [0, 0], [0, dt]]
    w_t ~ N(0, (noise_std·√dt)² I_4)                          (noise_std = 0 in the paper)

Reference, per axis ``a ∈ {x, y}`` and per trial (``J`` components per axis)::

    r_a(t) = ramp(t) · Σ_j amp_{a,j} cos(2π f_{a,j} t + φ_{a,j}),   ramp(t) = clip(t/ramp_duration, 0, 1)
    f_x = {0.1, 0.3} Hz, f_y = {0.2, 0.4} Hz, amp = 2.31, ramp_duration = 1 s,
    φ_{a,j} ~ U(−π, π) independently per trial and component,
    t_i = i·dt, i = 0..T−1   (T = 300, dt = 0.1: ``linspace(0, 30, 300, endpoint=False)``).

Spec of the environment :class:`Tracking2D`:

- **Observation** at step i: ``[x_i, y_i, r_x(t_i), r_y(t_i)]`` ``[4]`` float32 (positions
  only; the velocities must be inferred).
- **Action** ``[ax, ay]`` ``[2]``, not clipped.
- **Reward** ``−((x_{i+1} − r_x(t_i))² + (y_{i+1} − r_y(t_i))²)``: the error of the post-step
  state against the reference sample fed at that step. The authors' loss is
  ``Σ_i mean_batch(−reward_i)·dt / T``.
- **Start state** ``s_0 ~ U(−w, w)`` with ``w = init_half_width`` (``[4]``, default 0: the
  authors' ``x0 = 0``); fresh phases, the reference is stored in the state; ``time = 0``.
- **Termination** never; **truncation** at ``time ≥ max_steps_in_episode`` (default T = 300).
  A probe (:func:`probe_reference`) is run by replacing ``state.reference`` after a reset.

Environments compare equal (and hash alike) when their static configuration is equal, so the
inherited ``jax.jit(static_argnames="self")`` cache is shared between equal instances.

Configuration tiers: ``num_samples`` (T, the reference length) and ``num_components`` (J) are
static (they fix shapes); every field of :class:`TrackingParams` is a sweepable pytree leaf
(frequencies and amplitudes are fixed-size ``[2, J]`` arrays); :class:`TrackingState` changes
each step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.tasks.base import cast_like

NUM_SAMPLES = 300
FREQUENCIES = ((0.1, 0.3), (0.2, 0.4))
AMPLITUDE = 2.31


@struct.dataclass
class TrackingState:
    """Per-step state (tier: state).

    Attributes:
      s: ``[4]`` float32 plant state ``[x, vx, y, vy]``.
      reference: ``[T, 2]`` float32 reference of this episode (``r_x, r_y`` per step).
      time: ``()`` int32 steps taken in this episode (index into ``reference``).
    """

    s: jax.Array
    reference: jax.Array
    time: jax.Array


@struct.dataclass
class TrackingParams:
    """Sweepable parameters (tier: params; all pytree leaves).

    Attributes:
      dt: plant step and reference sampling interval (0.1 s).
      frequencies: ``[2, J]`` component frequencies in Hz, row 0 the x-axis, row 1 the y-axis
        (``[[0.1, 0.3], [0.2, 0.4]]``).
      amplitudes: ``[2, J]`` component amplitudes (2.31).
      ramp_duration: seconds of the linear onset ramp (1; must be > 0).
      noise_std: process-noise scale, ``w ~ N(0, (noise_std·√dt)²)`` (0).
      clamp: bound of the state clip (10; ``inf`` is off).
      init_half_width: ``[4]`` half-widths of the start box (zeros: ``s_0 = 0``).
      max_steps_in_episode: steps before truncation (int32, ``≤ T``; default T).
    """

    dt: jax.Array = 0.1
    frequencies: jax.Array = struct.field(default_factory=lambda: jnp.asarray(FREQUENCIES, jnp.float32))
    amplitudes: jax.Array = AMPLITUDE
    ramp_duration: jax.Array = 1.0
    noise_std: jax.Array = 0.0
    clamp: jax.Array = 10.0
    init_half_width: jax.Array = 0.0
    max_steps_in_episode: jax.Array = NUM_SAMPLES


def plant_matrices(dt: jax.Array | float) -> tuple[jax.Array, jax.Array]:
    """``A [4,4]`` and ``B [4,2]`` of the 2-D point mass (see the module docstring)."""
    dt = jnp.asarray(dt, jnp.float32)
    axis_A = jnp.eye(2, dtype=jnp.float32) + dt * jnp.eye(2, 2, 1, dtype=jnp.float32)
    axis_B = dt * jnp.array([[0.0], [1.0]], jnp.float32)
    eye = jnp.eye(2, dtype=jnp.float32)
    return jnp.kron(eye, axis_A), jnp.kron(eye, axis_B)


def plant_step(
    s: jax.Array, u: jax.Array, params: TrackingParams, noise_key: jax.Array | None = None
) -> jax.Array:
    """``s_{t+1} = clip(A s_t + B u_t + w_t, −clamp, clamp)``; ``[4], [2] -> [4]``, differentiable.

    ``noise_key = None`` means no process noise.
    """
    A, B = plant_matrices(params.dt)
    s_next = A @ s + B @ u
    if noise_key is not None:
        scale = params.noise_std * jnp.sqrt(params.dt)
        s_next = s_next + scale * jax.random.normal(noise_key, s_next.shape, s_next.dtype)
    return jnp.clip(s_next, -params.clamp, params.clamp)


def positions(s: jax.Array) -> jax.Array:
    """``[x, y]`` of a state ``[x, vx, y, vy]`` (``[..., 4] -> [..., 2]``)."""
    return s[..., ::2]


def sample_times(params: TrackingParams, num_samples: int = NUM_SAMPLES) -> jax.Array:
    """``t_i = i·dt``, ``[T]`` (equals ``linspace(0, T·dt, T, endpoint=False)``)."""
    return jnp.arange(num_samples, dtype=jnp.float32) * params.dt


def reference_from_phases(
    phases: jax.Array, params: TrackingParams, num_samples: int = NUM_SAMPLES
) -> jax.Array:
    """``r_a(t_i) = ramp(t_i)·Σ_j amp_{a,j} cos(2π f_{a,j} t_i + φ_{a,j})`` for phases ``[2, J]``.

    Returns:
      ``[T, 2]`` float32 reference (column 0 ``r_x``, column 1 ``r_y``).
    """
    t = sample_times(params, num_samples)
    ramp = jnp.clip(t / params.ramp_duration, 0.0, 1.0)
    frequencies = jnp.broadcast_to(params.frequencies, phases.shape)
    amplitudes = jnp.broadcast_to(params.amplitudes, phases.shape)
    waves = amplitudes * jnp.cos(2 * jnp.pi * frequencies * t[:, None, None] + phases)  # [T, 2, J]
    return (ramp[:, None] * jnp.sum(waves, axis=-1)).astype(jnp.float32)


def sample_phases(key: jax.Array, num_components: int = 2) -> jax.Array:
    """Phases ``φ ~ U(−π, π)``, ``[2, J]``."""
    return jax.random.uniform(key, (2, num_components), jnp.float32, -jnp.pi, jnp.pi)


def reference(key: jax.Array, params: TrackingParams, num_samples: int = NUM_SAMPLES) -> jax.Array:
    """One trial's reference ``[T, 2]`` with fresh phases ``φ ~ U(−π, π)`` (J from ``params``)."""
    num_components = jnp.shape(params.frequencies)[-1]
    return reference_from_phases(sample_phases(key, num_components), params, num_samples)


def probe_reference(
    axis: int,
    frequency: jax.Array | float,
    phase: jax.Array | float,
    params: TrackingParams,
    amplitude: jax.Array | float | None = None,
    num_samples: int = NUM_SAMPLES,
) -> jax.Array:
    """Single-sinusoid probe ``[T, 2]``: ``ramp(t)·amp·cos(2π f t + φ)`` on ``axis``, 0 on the other.

    The authors' per-frequency probe (one axis, one frequency each). ``axis`` is 0 (x) or 1 (y)
    (static); ``amplitude`` defaults to the mean amplitude of that axis (2.31 by default).
    """
    check_choice("axis", axis, (0, 1))
    if amplitude is None:
        amplitudes = jnp.asarray(params.amplitudes)
        amplitude = jnp.mean(amplitudes[axis] if amplitudes.ndim == 2 else amplitudes)
    t = sample_times(params, num_samples)
    ramp = jnp.clip(t / params.ramp_duration, 0.0, 1.0)
    wave = ramp * amplitude * jnp.cos(2 * jnp.pi * frequency * t + phase)
    return jnp.zeros((num_samples, 2), jnp.float32).at[:, axis].set(wave.astype(jnp.float32))


def tracking_error(s_next: jax.Array, target: jax.Array) -> jax.Array:
    """``(x_{i+1} − r_x,i)² + (y_{i+1} − r_y,i)²`` for a post-step state ``[4]`` and target ``[2]``."""
    return jnp.sum((positions(s_next) - target) ** 2)


class Tracking2D(environment.Environment[TrackingState, TrackingParams]):
    """2-D multi-frequency tracking environment (see the module docstring for the spec).

    Args:
      num_samples: T, the reference length (static; 300 = 30 s at 10 Hz).
      num_components: J, sinusoids per axis (static; the shape ``[2, J]`` of the
        frequency/amplitude params; 2). For ``J ≠ 2`` the default frequencies are odd harmonics
        ``f_{a,0}·(1, 3, 5, …)`` of the paper's base frequencies; set them explicitly.
    """

    _supports_transition_gradients = True
    _transition_gradients_enabled = True
    obs_shape = (4,)

    def __init__(self, num_samples: int = NUM_SAMPLES, num_components: int = 2):
        super().__init__()
        check_range("task.num_samples", num_samples, 1, integer=True)
        check_range("task.num_components", num_components, 1, integer=True)
        self.num_samples = int(num_samples)
        self.num_components = int(num_components)

    def __repr__(self) -> str:
        return f"Tracking2D(num_samples={self.num_samples}, num_components={self.num_components})"

    def _static_key(self) -> tuple:
        return (type(self), self.num_samples, self.num_components, self.transition_gradients_enabled)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tracking2D) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    @property
    def name(self) -> str:
        return "Tracking2D"

    @property
    def num_actions(self) -> int:
        """Size of the (continuous) action ``[ax, ay]``."""
        return 2

    @property
    def default_params(self) -> TrackingParams:
        frequencies = np.asarray(FREQUENCIES, np.float32)
        if self.num_components != frequencies.shape[1]:
            # More or fewer components: harmonics of the default base frequencies.
            base = frequencies[:, :1]
            frequencies = base * (1 + 2 * np.arange(self.num_components, dtype=np.float32))
        return TrackingParams(
            dt=jnp.float32(0.1),
            frequencies=jnp.asarray(frequencies, jnp.float32),
            amplitudes=jnp.full((2, self.num_components), AMPLITUDE, jnp.float32),
            ramp_duration=jnp.float32(1.0),
            noise_std=jnp.float32(0.0),
            clamp=jnp.float32(10.0),
            init_half_width=jnp.zeros((4,), jnp.float32),
            max_steps_in_episode=jnp.int32(self.num_samples),
        )

    def check_params(self, params: TrackingParams) -> None:
        """Eager validation (before any compilation); raises ``ValueError`` naming the field."""
        check_range("task.dt", params.dt, 0.0, low_open=True)
        for field in ("frequencies", "amplitudes"):
            value = getattr(params, field)
            if np.shape(value)[-2:] != (2, self.num_components):
                fail(f"task.{field}", value,
                     f"an array of shape (2, {self.num_components}): one row per axis (x, y), one "
                     "column per component (change num_components to change J)")
        check_range("task.frequencies", params.frequencies, 0.0)
        check_range("task.amplitudes", params.amplitudes)
        check_range("task.ramp_duration", params.ramp_duration, 0.0, low_open=True)
        check_range("task.noise_std", params.noise_std, 0.0)
        clamp = np.asarray(params.clamp, dtype=float)
        if np.any(np.isnan(clamp)) or np.any(clamp <= 0):
            fail("task.clamp", params.clamp, "> 0 (inf switches the clamp off; the authors used 10)")
        width = np.asarray(params.init_half_width)
        if width.ndim not in (0, 1) or (width.ndim == 1 and width.shape[-1] != 4):
            fail("task.init_half_width", params.init_half_width, "a scalar or a length-4 vector")
        check_range("task.init_half_width", params.init_half_width, 0.0)
        check_range("task.max_steps_in_episode", params.max_steps_in_episode, 1, self.num_samples,
                    integer=True)

    def cast_params(self, params: TrackingParams) -> TrackingParams:
        """Params with the default dtypes (float32 / int32)."""
        return cast_like(params, self.default_params)

    def reference(self, key: jax.Array, params: TrackingParams) -> jax.Array:
        """A fresh ``[T, 2]`` reference (module :func:`reference` with this env's T)."""
        return reference(key, params, self.num_samples)

    def probe_reference(
        self, axis: int, frequency, phase, params: TrackingParams, amplitude=None
    ) -> jax.Array:
        """Module :func:`probe_reference` with this env's T."""
        return probe_reference(axis, frequency, phase, params, amplitude, self.num_samples)

    def target(self, state: TrackingState) -> jax.Array:
        """``[2]`` reference sample ``r(t_i)`` at the state's step (held at the last sample)."""
        return state.reference[jnp.minimum(state.time, self.num_samples - 1)]

    def step_env(
        self, key: jax.Array, state: TrackingState, action: jax.Array, params: TrackingParams
    ) -> tuple[jax.Array, TrackingState, jax.Array, jax.Array, dict[str, Any]]:
        """``s_{i+1} = plant_step(s_i, u_i)``; reward ``−‖pos(s_{i+1}) − r(t_i)‖²``."""
        u = jnp.reshape(jnp.asarray(action, jnp.float32), (2,))
        target = self.target(state)
        s_next = plant_step(state.s, u, params, key)
        reward = -tracking_error(s_next, target)
        state = state.replace(s=s_next, time=state.time + 1)
        terminated = self.is_terminated(state, params)
        info = {"discount": jnp.float32(1.0), "target": target}
        return self.get_obs(state, params), state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: TrackingParams) -> tuple[jax.Array, TrackingState]:
        """Fresh phases (the reference is stored in the state), ``s_0 ~ U(−w, w)``."""
        key_reference, key_state = jax.random.split(key)
        unit = jax.random.uniform(key_state, (4,), jnp.float32, -1.0, 1.0)
        state = TrackingState(
            s=unit * params.init_half_width,
            reference=self.reference(key_reference, params),
            time=jnp.int32(0),
        )
        return self.get_obs(state, params), state

    def get_obs(
        self, state: TrackingState, params: TrackingParams | None = None, key: jax.Array | None = None
    ) -> jax.Array:
        """``[x, y, r_x(t_i), r_y(t_i)]``."""
        return jnp.concatenate([positions(state.s), self.target(state)]).astype(jnp.float32)

    def is_terminated(self, state: TrackingState, params: TrackingParams) -> jax.Array:
        """Never; episodes end by truncation only."""
        return jnp.array(False)

    def action_space(self, params: TrackingParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)

    def observation_space(self, params: TrackingParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        bound = jnp.maximum(params.clamp, jnp.sum(jnp.abs(params.amplitudes), axis=-1).max())
        return spaces.Box(-bound, bound, self.obs_shape, jnp.float32)

"""Policy and hidden-state geometry of recurrent pendulum controllers (Huang, Singh & Rajan 2024).

The analyses behind Fig. 1 b–e of "Learning dynamics and the geometry of neural dynamics in
recurrent neural controllers" (InterpPol @ RLC 2024). The authors' code is not public;
every definition below is ours and is stated here. An *agent* is a
:class:`~jaxrnn.models.actor_critic.ActorCritic` ``net`` (static) with params
``{"cell", "actor", "critic"}`` whose cell carry is one array ``h[N]`` (VanillaRNN, CTRNN):
``h_t = F(h_{t−1}, o_t)``, policy ``π(a|h_t) = N(μ(h_t), σ²)``. Every function is written for one
agent; :func:`analyze_population` and :func:`landscape_population` are the vmapped forms over
members × snapshots (``params`` leaves ``[P, S, ...]``, as ``params.cell.W_rec[member, snapshot]``).

- **Closed-loop rollouts** (:func:`closed_loop_rollout`): ``E`` episodes (5) of ``T`` steps (200)
  from Pendulum resets, deterministic policy ``u_t = clip(μ(h_t), ±max_torque)`` (as PPO's
  ``evaluate``), no auto-reset. ``hidden[e, t] = h_t`` is paired with the state ``θ_t`` that
  produced ``o_t``; ``hidden_prev[e, t] = h_{t−1}`` (0 at ``t = 0``).
- **Policy landscape** (:func:`policy_landscape`): ``μ(θ, θ̇)`` on a grid. A PO agent must infer
  θ̇ from its history, so for PO *and* FO alike the landscape is the mean action after driving
  the RNN from the zero (episode-start) state with the ``k`` observations (``history``, 50 =
  2.5 s, longer than the agents' integration timescales, so the start state is forgotten:
  for our trained agents the landscape at 48 steps equals the one at 100) of the zero-torque
  (free-swing) trajectory that ends in ``(θ, θ̇)``, found by running
  Pendulum's semi-implicit Euler step backwards (:func:`free_swing_history`):
  ``θ_{j−1} = θ_j − θ̇_j dt``, ``θ̇_{j−1} = clip(θ̇_j − (3g/2l) sin θ_{j−1} dt, ±max_speed)``
  (exactly the inverse of the forward step wherever the speed clip is inactive).
- **Hidden PCA and ring score** (:func:`~jaxrnn.analysis.ring.pca`,
  :func:`~jaxrnn.analysis.ring.ring_score`): PCA by SVD of centred hidden states ``X[S, N]``. With ``p = (PC1, PC2)`` scores, a circle is fitted by algebraic
  least squares (Kåsa 1976: ``|p|² + D p₁ + E p₂ + F = 0``), ``ρ_s = ‖p_s − c‖``, and
  ``radius_cv = std ρ / mean ρ`` (0 on a circle), ``variance_fraction = (s₁² + s₂²)/Σ sᵢ²``
  and ``circular_corr = max(|⟨e^{i(φ−θ)}⟩|, |⟨e^{i(φ+θ)}⟩|)`` with ``φ = atan2(p − c)`` — the
  phase locking of the ring angle to θ up to a rotation or reflection (1: ``φ = ±θ + const``;
  ≈ 0: unrelated). Unlike a Jammalamadaka–SenGupta correlation it needs no mean direction,
  which is undefined for angles spread around the whole circle. ``score = variance_fraction ·
  circular_corr · max(0, 1 − radius_cv)`` summarises the three.
- **Fixed points** (:func:`analyze_agent`): of ``h ↦ F(h, o*)`` under the goal observation
  ``o* = (cos 0, sin 0[, 0])`` and the hanging one (``θ = π``), found by
  :func:`~jaxrnn.analysis.fixed_points.find_fixed_points` (Levenberg–Marquardt) from the state
  reached by iterating ``F(·, o*)`` ``relax_steps`` times from 0, the location below, and visited
  states. The *goal location* ``g`` is the mean hidden state over the rollout samples with
  ``|angle_normalize(θ)| < radius`` (0.1 rad) under the agent's own policy (NaN if never
  visited); the *hanging location* likewise around ``θ = π``. The *stable goal FP* is the stable
  fixed point under ``o*`` nearest ``g`` and ``fp_goal_distance = ‖h*_stable − g‖`` (the distance
  from the goal location to the nearest attractor); the *hanging FP* is the fixed point (either
  stability) nearest the hanging location. Where a location is NaN the relaxed state stands in.
- **Timescales** (:func:`trajectory_timescales`): ``J_t = ∂F/∂h`` at ``(h_{t−1}, o_t)`` along the
  ``E·T`` (1,000) closed-loop steps; ``τ_i = |1/ln|λ_i||`` in steps, modes with ``|λ| ≥ 1`` set to
  ``τ = 1`` (Singh's ``'fix'`` filter, plumetracknets ``arch_utils.get_taus``), a complex-conjugate
  pair counted once, the ``top`` (5) largest per step, then their mean across steps with a
  ``confidence`` (99 %) interval. Consecutive steps are strongly autocorrelated (while the
  pendulum is held upright the state, hence ``τ``, barely changes), so the interval is the
  circular block bootstrap of :mod:`jaxrnn.analysis.intervals` (Politis–White block length,
  bias-corrected) over the concatenated episodes; ``interval="naive"`` gives the t-interval that
  treats steps as independent (:func:`~jaxrnn.analysis.stats.mean_interval`, the paper's kind
  of error bar, several times narrower). Singh linearised at input 0; ``zero_input=True`` does
  that instead of the observed inputs.
- **Untrained baseline of the ring** (:func:`driven_states`): the hidden states of any network
  (e.g. the same seed's untrained one) driven open loop by a rollout's observation sequences, so
  a ring score can be compared with what the inputs alone draw.
- **Proximity vs reward** (:func:`reward_to_go`, :func:`~jaxrnn.analysis.stats.linear_regression`):
  reward-to-go of snapshot ``s`` is ``R_final − R_s`` (paper: "the difference between final
  reward and episode reward at the corresponding time point"), ``R`` the mean closed-loop
  episode return of the rollouts above; regressed on ``fp_goal_distance`` pooled over seeds
  and snapshots.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_choice, check_range
from jaxrnn.analysis.fixed_point_inputs import sample_states
from jaxrnn.analysis.fixed_points import FixedPoints, find_fixed_points
from jaxrnn.analysis.intervals import block_bootstrap_interval
from jaxrnn.analysis.linearize import spectrum, timescales
from jaxrnn.analysis.ring import RingScore, pca, ring_score
from jaxrnn.analysis.stats import mean_interval
from jaxrnn.lapack_guard import after, ordered_map
from jaxrnn.tasks.pendulum import PendulumState, angle_normalize

GOAL_ANGLE = 0.0
HANGING_ANGLE = math.pi


__all__ = ["AgentGeometry", "GOAL_ANGLE", "HANGING_ANGLE", "Rollout", "SelectedFixedPoint", "Timescales",
           "analyze_agent", "analyze_population", "angle_location", "closed_loop_rollout", "driven_states",
           "free_swing_history", "landscape_population", "nearest_fixed_point", "observation_fixed_points", "observe",
           "policy_landscape", "recurrence", "reward_to_go", "trajectory_timescales"]


@struct.dataclass
class Rollout:
    """Closed-loop episodes (see the module docstring).

    Attributes:
      theta, theta_dot: ``[E, T]`` the state that produced observation ``t``.
      obs: ``[E, T, M]`` observations ``o_t``.
      hidden_prev, hidden: ``[E, T, N]`` ``h_{t−1}`` (0 at ``t = 0``) and ``h_t = F(h_{t−1}, o_t)``.
      action: ``[E, T]`` the policy mean ``μ(h_t)`` (unclipped; the torque applied is clipped).
      reward: ``[E, T]`` Pendulum rewards.
    """

    theta: jax.Array
    theta_dot: jax.Array
    obs: jax.Array
    hidden_prev: jax.Array
    hidden: jax.Array
    action: jax.Array
    reward: jax.Array

    @property
    def episode_return(self) -> jax.Array:
        """``[E]`` undiscounted return of each episode."""
        return jnp.sum(self.reward, axis=-1)


def recurrence(net, params):
    """The pure map ``F(h[N], o[M]) -> h'[N]`` of the agent's cell (params closed over)."""
    return lambda h, o: net.cell.apply(params["cell"], h, o)[0]


def observe(env, theta: jax.Array, theta_dot: jax.Array = 0.0) -> jax.Array:
    """Noise-free Pendulum observation ``(cos θ, sin θ[, θ̇])`` of ``env`` (PO or FO)."""
    state = PendulumState(jnp.asarray(theta, jnp.float32), jnp.asarray(theta_dot, jnp.float32), jnp.int32(0))
    return env.get_obs(state)


def closed_loop_rollout(net, env, params, key: jax.Array, env_params, num_episodes: int = 5,
                        num_steps: int = 200) -> Rollout:
    """``num_episodes`` deterministic episodes of ``num_steps`` steps from ``env.reset``."""
    space = env.action_space(env_params)

    def episode(key_episode):
        key_reset, key_steps = jax.random.split(key_episode)
        obs, state = env.reset(key_reset, env_params)

        def body(carry, key_t):
            state, obs, h = carry
            h_new, (mean, _, _) = net.policy_step(params, h, obs, jnp.array(False))
            next_obs, next_state, reward, _, _ = env.step_env(
                key_t, state, jnp.clip(mean, space.low, space.high), env_params)
            out = Rollout(theta=state.theta, theta_dot=state.theta_dot, obs=obs, hidden_prev=h, hidden=h_new,
                          action=mean[0], reward=reward)
            return (next_state, next_obs, h_new), out

        _, out = jax.lax.scan(body, (state, obs, net.initial_carry()), jax.random.split(key_steps, num_steps))
        return out

    return jax.vmap(episode)(jax.random.split(key, num_episodes))


def free_swing_history(theta: jax.Array, theta_dot: jax.Array, env_params, history: int):
    """``(θ[k], θ̇[k])``, oldest first, of the zero-torque trajectory ending in ``(θ, θ̇)``."""
    p = env_params

    def back(carry, _):
        th, thd = carry
        th_prev = th - thd * p.dt
        thd_prev = jnp.clip(thd - 3 * p.g / (2 * p.l) * jnp.sin(th_prev) * p.dt, -p.max_speed, p.max_speed)
        return (th_prev, thd_prev), (th_prev, thd_prev)

    theta, theta_dot = jnp.float32(theta), jnp.float32(theta_dot)
    _, (ths, thds) = jax.lax.scan(back, (theta, theta_dot), None, length=history - 1)
    return (jnp.concatenate([ths[::-1], theta[None]]), jnp.concatenate([thds[::-1], theta_dot[None]]))


def policy_landscape(net, env, params, thetas: jax.Array, theta_dots: jax.Array, env_params,
                     history: int = 50) -> jax.Array:
    """Mean action ``μ[Gθ, Gθ̇]`` (unclipped, first action) after a free-swing history (see above)."""
    check_range("history", history, 1, integer=True)

    def one(theta, theta_dot):
        ths, thds = free_swing_history(theta, theta_dot, env_params, history)
        obs = jax.vmap(functools.partial(observe, env))(ths, thds)
        h, _ = jax.lax.scan(lambda h, o: (recurrence(net, params)(h, o), None), net.initial_carry(), obs)
        mean, _ = net.policy.apply(params["actor"], h)
        return mean[0]

    return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(jnp.asarray(thetas), jnp.asarray(theta_dots))


def angle_location(hidden: jax.Array, theta: jax.Array, angle: float, radius: float = 0.1):
    """``(mean hidden[N], count)`` over samples with ``|angle_normalize(θ − angle)| < radius``."""
    near = (jnp.abs(angle_normalize(theta - angle)) < radius).astype(jnp.float32)
    count = jnp.sum(near)
    return jnp.sum(near[:, None] * hidden, 0) / jnp.where(count > 0, count, jnp.nan), count


def observation_fixed_points(net, env, params, angle: float, x0: jax.Array, **fp_options: Any) -> FixedPoints:
    """Fixed points of ``h ↦ F(h, o(angle))`` (``θ̇ = 0`` for FO) from the starts ``x0[K, N]``.

    ``angle = 0`` is the goal observation ``(1, 0[, 0])``, ``π`` the hanging one. ``fp_options``
    go to :func:`find_fixed_points` (default ``tol = 1e-7``: ``q = ½‖F(h) − h‖²`` in float32).
    """
    return find_fixed_points(recurrence(net, params), x0, observe(env, angle), **{"tol": 1e-7, **fp_options})


@struct.dataclass
class SelectedFixedPoint:
    """One fixed point picked from a :class:`FixedPoints` set (``found = False``: none qualified)."""

    x: jax.Array
    stable: jax.Array
    found: jax.Array
    num_unstable: jax.Array


def nearest_fixed_point(fps: FixedPoints, reference: jax.Array, stable: bool | None = None) -> SelectedFixedPoint:
    """The valid fixed point nearest ``reference[N]``; only stable ones if ``stable``."""
    ok = fps.stable if stable else fps.valid
    distance = jnp.where(ok, jnp.linalg.norm(fps.x - reference, axis=-1), jnp.inf)
    i = jnp.argmin(distance)
    found = ok[i]
    return SelectedFixedPoint(x=jnp.where(found, fps.x[i], jnp.nan), stable=fps.stable[i] & found, found=found,
                              num_unstable=jnp.where(found, fps.num_unstable[i], -1))


@struct.dataclass
class Timescales:
    """Top integration timescales: ``mean[top]`` and the interval ``low[top]``, ``high[top]``."""

    mean: jax.Array
    low: jax.Array
    high: jax.Array


def trajectory_timescales(step, hidden_prev: jax.Array, inputs: jax.Array, *, top: int = 5,
                          confidence: float = 0.99, unstable_tau: float | None = 1.0, zero_input: bool = False,
                          distinct_pairs: bool = True, key: jax.Array | None = None,
                          num_resamples: int = 1000) -> tuple[Timescales, jax.Array]:
    """``τ`` of ``J_t = ∂step/∂h (h_{t−1}[T, N], o_t[T, M])``: ``(Timescales, τ[T, top])``.

    Per step the ``τ_i = |1/ln|λ_i||`` are sorted in descending order and the first ``top`` kept.
    ``distinct_pairs`` counts a complex-conjugate pair (one oscillatory mode, one τ) once, by
    dropping the eigenvalues with ``Im λ < 0``; otherwise τ₁ = τ₂ whenever the slowest mode rotates.
    With ``key`` the interval of each mean is the block bootstrap
    (:func:`~jaxrnn.analysis.intervals.block_bootstrap_interval`, ``num_resamples``); without,
    the naive t-interval across steps.
    """
    inputs = jnp.zeros_like(inputs) if zero_input else inputs
    J = jax.vmap(jax.jacfwd(step))(hidden_prev, inputs)
    eigvals = spectrum(J)
    tau = timescales(eigvals, unstable_tau=unstable_tau)
    if distinct_pairs:
        tau = jnp.where(jnp.imag(eigvals) < 0, -jnp.inf, tau)
    tau = -jnp.sort(-tau, axis=-1)[:, :top]
    if key is None:
        mean, low, high = mean_interval(tau, axis=0, confidence=confidence)
    else:
        mean, low, high = jax.vmap(
            lambda k, series: block_bootstrap_interval(k, series, confidence, num_resamples=num_resamples),
            in_axes=(0, 1))(jax.random.split(key, tau.shape[1]), tau)
    return Timescales(mean=mean, low=low, high=high), tau


@struct.dataclass
class AgentGeometry:
    """Everything :func:`analyze_agent` measures for one agent (leaves gain ``[P, S]`` when vmapped).

    ``episode_return``: mean return of the rollouts; ``ring``: :class:`~jaxrnn.analysis.ring.RingScore` of all rollout
    states; ``goal_location``/``hanging_location`` ``[N]`` and ``goal_visits``/``hanging_visits``;
    ``goal_fps``/``hanging_fps``: :class:`FixedPoints` under the two observations;
    ``goal_fp``/``hanging_fp``: the selected ones; ``fp_goal_distance``; ``tau``:
    :class:`Timescales`; ``pc_mean[N]``, ``pcs[2, N]``: the top-2 PCA basis of the rollout states.
    """

    episode_return: jax.Array
    ring: RingScore
    goal_location: jax.Array
    goal_visits: jax.Array
    hanging_location: jax.Array
    hanging_visits: jax.Array
    goal_fps: FixedPoints
    hanging_fps: FixedPoints
    goal_fp: SelectedFixedPoint
    hanging_fp: SelectedFixedPoint
    fp_goal_distance: jax.Array
    tau: Timescales
    pc_mean: jax.Array
    pcs: jax.Array


def analyze_agent(net, env, params, key: jax.Array, env_params, *, num_episodes: int = 5, num_steps: int = 200,
                  radius: float = 0.1, num_starts: int = 16, relax_steps: int = 200, top: int = 5,
                  confidence: float = 0.99, unstable_tau: float | None = 1.0, zero_input: bool = False,
                  distinct_pairs: bool = True, tau_stride: int = 1, fp_options: dict | None = None,
                  interval: str = "block_bootstrap", num_resamples: int = 1000) -> AgentGeometry:
    """All per-agent measures of the module docstring for one agent (one snapshot of one member).

    ``key`` fixes the rollout starts (reuse one key across snapshots for common random starts)
    and the fixed-point starts. ``fp_options`` go to :func:`find_fixed_points` (default
    ``tol = 1e-7``, enough for float32). ``tau_stride`` linearises only every ``tau_stride``-th
    step (the ``E·T`` eigen-decompositions dominate the cost: ~1 s per agent on one CPU core).
    """
    check_range("num_starts", num_starts, 3, integer=True)
    check_range("tau_stride", tau_stride, 1, integer=True)
    check_range("top", top, 1, integer=True)
    check_range("radius", radius, 0.0, low_open=True)
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    check_choice("interval", interval, ("block_bootstrap", "naive"))
    key_rollout, key_starts = jax.random.split(key)
    key_tau = jax.random.fold_in(key, 1)
    ro = closed_loop_rollout(net, env, params, key_rollout, env_params, num_episodes, num_steps)
    hidden = ro.hidden.reshape(-1, ro.hidden.shape[-1])
    theta = ro.theta.reshape(-1)
    step = recurrence(net, params)
    fit = pca(hidden)

    def fixed_points(angle, key_fp, previous):
        o = observe(env, angle)
        location, count = angle_location(hidden, theta, angle, radius)
        relaxed = jax.lax.fori_loop(0, relax_steps, lambda _, h: step(h, o), net.initial_carry())
        reference = jnp.where(count > 0, location, relaxed)
        x0 = jnp.concatenate([relaxed[None], reference[None], sample_states(key_fp, hidden, num_starts - 2)])
        fps = observation_fixed_points(net, env, params, angle, after(x0, previous), **(fp_options or {}))
        return fps, reference, location, count

    # The batched linear algebra below (PCA and ring SVDs, two LM searches with their spectra,
    # the trajectory spectra) runs one stage after another: unordered, two of them can deadlock
    # XLA:CPU's thread pool (jaxrnn.lapack_guard).
    key_goal, key_hang = jax.random.split(key_starts)
    goal_fps, goal_ref, goal_location, goal_visits = fixed_points(GOAL_ANGLE, key_goal, fit)
    hang_fps, hang_ref, hanging_location, hanging_visits = fixed_points(HANGING_ANGLE, key_hang, goal_fps)
    goal_fp = nearest_fixed_point(goal_fps, goal_ref, stable=True)
    tau, _ = trajectory_timescales(step, after(ro.hidden_prev.reshape(hidden.shape)[::tau_stride], hang_fps),
                                   ro.obs.reshape(-1, ro.obs.shape[-1])[::tau_stride], top=top,
                                   confidence=confidence, unstable_tau=unstable_tau, zero_input=zero_input,
                                   distinct_pairs=distinct_pairs, num_resamples=num_resamples,
                                   key=key_tau if interval == "block_bootstrap" else None)
    return AgentGeometry(
        episode_return=jnp.mean(ro.episode_return), ring=ring_score(after(hidden, tau), theta),
        goal_location=goal_location, goal_visits=goal_visits, hanging_location=hanging_location,
        hanging_visits=hanging_visits, goal_fps=goal_fps, hanging_fps=hang_fps, goal_fp=goal_fp,
        hanging_fp=nearest_fixed_point(hang_fps, hang_ref), fp_goal_distance=jnp.linalg.norm(goal_fp.x - goal_location),
        tau=tau, pc_mean=fit.mean, pcs=fit.components[:2])


def analyze_population(net, env, params: Any, keys: jax.Array, env_params, *, snapshot_batch: int | None = None,
                       **options: Any) -> AgentGeometry:
    """:func:`analyze_agent` over members × snapshots: ``params`` leaves ``[P, S, ...]``, ``keys[P]``.

    Members are vmapped; snapshots run through ``lapack_guard.ordered_map`` in batches of ``snapshot_batch``
    (all at once by default) to bound memory. Every member uses its own key at every snapshot.
    """
    analyze = functools.partial(analyze_agent, net, env, env_params=env_params, **options)

    def member(member_params, key):
        return ordered_map(lambda p: analyze(p, key), member_params, batch_size=snapshot_batch)

    return jax.jit(jax.vmap(member))(params, keys)


def landscape_population(net, env, params: Any, thetas: jax.Array, theta_dots: jax.Array, env_params,
                         history: int = 50) -> jax.Array:
    """:func:`policy_landscape` over members × snapshots: ``μ[P, S, Gθ, Gθ̇]``."""
    one = functools.partial(policy_landscape, net, env, thetas=thetas, theta_dots=theta_dots,
                            env_params=env_params, history=history)
    return jax.jit(jax.vmap(jax.vmap(one)))(params)


def driven_states(net, params, obs: jax.Array) -> jax.Array:
    """Hidden states ``h[E, T, N]`` of the agent ``params`` driven open loop by ``obs[E, T, M]``
    (each episode from the zero state): the states an untrained network draws from the same inputs."""
    step = recurrence(net, params)

    def body(h, x):
        h = step(h, x)
        return h, h

    def episode(o):
        return jax.lax.scan(body, net.initial_carry(), o)[1]

    return jax.vmap(episode)(obs)


def reward_to_go(returns: jax.Array) -> jax.Array:
    """``R[..., S_final] − R[..., s]`` of returns ``R[..., S]`` ordered by snapshot."""
    return returns[..., -1:] - returns

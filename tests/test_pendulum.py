"""Pendulum-v1 (FO/PO) against Gymnasium's ``PendulumEnv``, plus the gymnax contract."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control.pendulum import PendulumEnv

import jaxrnn
from jaxrnn.tasks.pendulum import Pendulum, PendulumState, angle_normalize

NUM_CASES = 256


def _random_cases(seed):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-3 * np.pi, 3 * np.pi, NUM_CASES).astype(np.float32)
    theta_dot = rng.uniform(-8.0, 8.0, NUM_CASES).astype(np.float32)
    torque = rng.uniform(-3.0, 3.0, NUM_CASES).astype(np.float32)  # |u| > 2 exercises the clip
    return theta, theta_dot, torque


def _gymnasium_step(theta, theta_dot, torque, g=10.0):
    env = PendulumEnv(g=g)
    env.reset(seed=0)
    env.state = np.array([theta, theta_dot], dtype=np.float64)
    obs, reward, terminated, truncated, _ = env.step(np.array([torque], dtype=np.float32))
    return obs, reward, np.array(env.state), terminated, truncated


@pytest.mark.parametrize("g", [10.0, 9.81])
def test_step_matches_gymnasium(g):
    env, params = jaxrnn.make("pendulum-fo", g=g)
    theta, theta_dot, torque = _random_cases(0)
    states = PendulumState(
        theta=jnp.asarray(theta), theta_dot=jnp.asarray(theta_dot), time=jnp.zeros(NUM_CASES, jnp.int32)
    )
    step = jax.jit(jax.vmap(env.step_env, in_axes=(None, 0, 0, None)))
    obs, next_states, reward, terminated, _ = step(jax.random.key(0), states, jnp.asarray(torque)[:, None], params)
    for i in range(NUM_CASES):
        gym_obs, gym_reward, gym_state, gym_terminated, gym_truncated = _gymnasium_step(
            float(theta[i]), float(theta_dot[i]), float(torque[i]), g
        )
        np.testing.assert_allclose(obs[i], gym_obs, rtol=1e-5, atol=2e-5)
        np.testing.assert_allclose(reward[i], gym_reward, rtol=1e-5, atol=2e-5)
        np.testing.assert_allclose(next_states.theta[i], gym_state[0], rtol=1e-6, atol=2e-5)
        np.testing.assert_allclose(next_states.theta_dot[i], gym_state[1], rtol=1e-6, atol=2e-5)
        assert not bool(terminated[i]) and not gym_terminated and not gym_truncated
    assert np.all(np.asarray(next_states.time) == 1)
    assert np.max(np.abs(next_states.theta_dot)) <= 8.0  # velocity clip is active in these cases
    assert np.sum(np.abs(next_states.theta_dot) == 8.0) > 0
    assert reward.dtype == jnp.float32 and obs.dtype == jnp.float32


def test_short_trajectory_matches_gymnasium_without_resync():
    env, params = jaxrnn.make("pendulum-fo")
    torques = np.random.default_rng(1).uniform(-2.5, 2.5, 30).astype(np.float32)
    state = PendulumState(theta=jnp.float32(0.4), theta_dot=jnp.float32(-0.3), time=jnp.int32(0))
    gym_env = PendulumEnv()
    gym_env.reset(seed=0)
    gym_env.state = np.array([0.4, -0.3], dtype=np.float64)
    step = jax.jit(env.step_env)
    for u in torques:
        obs, state, reward, _, _ = step(jax.random.key(0), state, jnp.float32(u), params)
        gym_obs, gym_reward, _, _, _ = gym_env.step(np.array([u]))
        np.testing.assert_allclose(obs, gym_obs, atol=1e-4)
        np.testing.assert_allclose(reward, gym_reward, rtol=1e-4, atol=1e-4)


def test_angle_normalize_and_reward_range():
    x = jnp.array([0.0, np.pi - 1e-3, np.pi + 1e-3, -np.pi - 1e-3, 7.0, -7.0])
    expected = (np.asarray(x, np.float64) + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(angle_normalize(x), expected, atol=1e-5)
    env, params = jaxrnn.make("pendulum-fo")
    worst = PendulumState(theta=jnp.float32(np.pi - 1e-6), theta_dot=jnp.float32(8.0), time=jnp.int32(0))
    _, _, reward, _, _ = env.step_env(jax.random.key(0), worst, jnp.float32(5.0), params)
    np.testing.assert_allclose(reward, -(np.pi**2 + 0.1 * 64 + 0.001 * 4), rtol=1e-5)  # −16.2736


@pytest.mark.parametrize("name, size", [("pendulum-fo", 3), ("pendulum-po", 2)])
def test_observations_are_the_specified_components(name, size):
    env, params = jaxrnn.make(name)
    obs, state = env.reset(jax.random.key(3), params)
    expected = np.array([np.cos(state.theta), np.sin(state.theta), state.theta_dot])[:size]
    assert obs.shape == (size,) and env.observation_space(params).shape == (size,)
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    obs, state, *_ = env.step(jax.random.key(4), state, jnp.array([1.5]), params)
    expected = np.array([np.cos(state.theta), np.sin(state.theta), state.theta_dot])[:size]
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    assert env.num_actions == 1 and env.action_space(params).shape == (1,)
    np.testing.assert_allclose(env.action_space(params).high, 2.0)


def test_reset_distribution():
    env, params = jaxrnn.make("pendulum-fo")
    _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 4000), params)
    theta, theta_dot = np.asarray(states.theta), np.asarray(states.theta_dot)
    assert theta.min() >= -np.pi and theta.max() <= np.pi
    assert theta_dot.min() >= -1.0 and theta_dot.max() <= 1.0
    np.testing.assert_allclose(theta.std(), np.pi / np.sqrt(3), rtol=0.05)
    np.testing.assert_allclose(theta_dot.std(), 1 / np.sqrt(3), rtol=0.05)
    assert np.all(np.asarray(states.time) == 0) and states.time.dtype == jnp.int32


def test_truncation_at_200_steps_and_auto_reset():
    env, params = jaxrnn.make("pendulum-po")
    assert gymnasium.spec("Pendulum-v1").max_episode_steps == int(params.max_steps_in_episode) == 200
    _, state = env.reset(jax.random.key(0), params)

    def body(state, key):
        obs, next_state, reward, terminated, truncated, info = env.step(key, state, jnp.array([0.5]), params)
        return next_state, (terminated, truncated, next_state.time, info["final_observation"], obs)

    keys = jax.random.split(jax.random.key(1), 401)
    _, (terminated, truncated, time, final_obs, obs) = jax.lax.scan(body, state, keys)
    assert not np.any(terminated)
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [199, 399]
    assert int(time[198]) == 199 and int(time[199]) == 0 and int(time[200]) == 1
    assert not np.allclose(obs[199], final_obs[199])  # auto-reset obs differs from the final one
    np.testing.assert_allclose(obs[:199], final_obs[:199])


def test_observation_noise():
    env, params = jaxrnn.make("pendulum-fo", obs_noise_std=0.1)
    state = PendulumState(theta=jnp.float32(0.3), theta_dot=jnp.float32(1.0), time=jnp.int32(0))
    keys = jax.random.split(jax.random.key(0), 4000)
    noisy = jax.vmap(lambda k: env.get_obs(state, params, k))(keys)
    clean = np.array([np.cos(0.3), np.sin(0.3), 1.0])
    np.testing.assert_allclose(np.mean(noisy, 0), clean, atol=0.01)
    np.testing.assert_allclose(np.std(noisy, 0), 0.1, rtol=0.05)
    exact = env.get_obs(state, env.default_params, keys[0])
    np.testing.assert_allclose(exact, clean, atol=1e-6)


def test_jit_equals_no_jit():
    env, params = jaxrnn.make("pendulum-fo", obs_noise_std=0.05)
    _, state = env.reset(jax.random.key(0), params)
    jitted = env.step(jax.random.key(1), state, jnp.array([0.7]), params)
    with jax.disable_jit():
        plain = env.step(jax.random.key(1), state, jnp.array([0.7]), params)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_vmap_over_keys_and_params():
    env, params = jaxrnn.make("pendulum-fo")
    gs = jnp.array([2.0, 10.0, 20.0], jnp.float32)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 3), params).replace(g=gs)
    keys = jax.random.split(jax.random.key(0), 3)
    obs, states = jax.vmap(env.reset)(keys, stacked)
    step = jax.vmap(env.step, in_axes=(0, 0, None, 0))
    obs, states, reward, *_ = step(keys, states, jnp.array([0.2]), stacked)
    for i in range(3):
        _, state_i = env.reset(keys[i], params.replace(g=gs[i]))
        obs_i, state_i, reward_i, *_ = env.step(keys[i], state_i, jnp.array([0.2]), params.replace(g=gs[i]))
        np.testing.assert_allclose(obs[i], obs_i, rtol=1e-6)
        np.testing.assert_allclose(reward[i], reward_i, rtol=1e-6)
        np.testing.assert_allclose(states.theta_dot[i], state_i.theta_dot, rtol=1e-6)
    # the same start state under different g: θ̇' = θ̇ + (3g/2·sin θ + 3u)·dt for each g
    start = PendulumState(theta=jnp.float32(0.5), theta_dot=jnp.float32(0.0), time=jnp.int32(0))
    _, moved, *_ = jax.vmap(env.step_env, in_axes=(None, None, None, 0))(
        keys[0], start, jnp.float32(0.2), stacked
    )
    expected = (1.5 * np.asarray(gs) * np.sin(0.5) + 3 * 0.2) * 0.05
    np.testing.assert_allclose(moved.theta_dot, expected, rtol=1e-5)


def test_gradient_through_transition():
    env, params = jaxrnn.make("pendulum-fo")
    state = PendulumState(theta=jnp.float32(0.5), theta_dot=jnp.float32(0.2), time=jnp.int32(0))

    def next_theta_dot(u):
        return env.step_env(jax.random.key(0), state, u, params)[1].theta_dot

    np.testing.assert_allclose(jax.grad(next_theta_dot)(jnp.float32(0.1)), 3.0 * 0.05, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"m": 0.0}, "task.m"),
        ({"dt": -0.05}, "task.dt"),
        ({"max_speed": 0.0}, "task.max_speed"),
        ({"obs_noise_std": -1.0}, "task.obs_noise_std"),
        ({"max_steps_in_episode": 2.5}, "task.max_steps_in_episode"),
        ({"g": float("nan")}, "task.g"),
        ({"observe_velocity": "yes"}, "task.observe_velocity"),
        ({"gravity": 9.81}, "task.gravity"),
    ],
)
def test_bad_params_raise(overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        jaxrnn.make("pendulum-fo", **overrides)


def test_equal_envs_share_the_compiled_step():
    env, params = jaxrnn.make("pendulum-fo")
    same, _ = jaxrnn.make("pendulum-fo")
    other, _ = jaxrnn.make("pendulum-po")
    assert env == same and hash(env) == hash(same) and env != other
    _, state = env.reset(jax.random.key(0), params)
    env.step(jax.random.key(0), state, jnp.array([1.0]), params)
    compiled = Pendulum.step._cache_size()
    same.step(jax.random.key(1), state, jnp.array([2.0]), params.replace(g=jnp.float32(3.0)))
    assert Pendulum.step._cache_size() == compiled  # new instance, new params values: no recompile


@pytest.mark.parametrize("observe_velocity", [True, False])
def test_step_with_drawn_reset_equals_gymnax_step(observe_velocity):
    """jaxrnn.tasks.autoreset = gymnax's Environment.step, bit for bit, resets included."""
    from jaxrnn.tasks.autoreset import draw_resets, step_with_reset

    env, params = jaxrnn.make("pendulum-fo" if observe_velocity else "pendulum-po")
    params = params.replace(max_steps_in_episode=jnp.int32(3), obs_noise_std=jnp.float32(0.1))
    keys = jax.random.split(jax.random.PRNGKey(0), (7, 5))  # [T, E]
    step_keys, resets = jax.jit(draw_resets, static_argnums=0)(env, keys, params)
    ours_step = jax.jit(jax.vmap(step_with_reset, in_axes=(None, 0, 0, 0, 0, None)), static_argnums=0)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 5), params)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (7, 5, 1), minval=-2.0, maxval=2.0)
    ours = gymnax_state = state
    ended = 0
    for t in range(7):
        expected = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys[t], gymnax_state, actions[t], params)
        reset_t = jax.tree.map(lambda a: a[t], resets)
        got = ours_step(env, step_keys[t], reset_t, ours, actions[t], params)
        for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        gymnax_state, ours = expected[1], got[1]
        ended += int(np.sum(np.asarray(expected[4])))
    assert ended >= 5  # episodes of 3 steps: the resets were exercised

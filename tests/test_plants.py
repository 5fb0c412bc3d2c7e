"""Integrator and 2-D tracking plants (Ger & Barak 2025) against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.tasks import integrator, tracking
from jaxrnn.tasks.integrator import Integrator, IntegratorParams, IntegratorState
from jaxrnn.tasks.tracking import Tracking2D, TrackingState


# ----------------------------------------------------------------------------- NumPy references


def numpy_integrator_matrices(k, m, c, dt):
    """A line-by-line port of the authors' ``k_integrator_torch.__init__``."""
    A = np.eye(k)
    for i in range(k - 1):
        A[i, i + 1] = dt
    B = np.zeros((k, m))
    for i in range(1, min(k, m) + 1):
        B[-i, -i] = dt
    C = np.zeros((c, k))
    for i in range(c):
        C[i, i] = 1.0
    return A, B, C


def numpy_closed_loop_cost(K, x0, dt, beta, steps):
    """``Σ_t (‖x_t‖² + β u_t²)·dt`` with ``u_t = −K x_t`` on the double integrator, float64."""
    A, B, _ = numpy_integrator_matrices(2, 1, 1, dt)
    x, cost = np.array(x0, np.float64), 0.0
    for _ in range(steps):
        u = -K @ x
        cost += (x @ x + beta * u @ u) * dt
        x = A @ x + B @ u
    return cost


def numpy_reference(phases, frequencies, amplitudes, ramp_duration=1.0):
    t = np.linspace(0, 30, 300, endpoint=False)
    ramp = np.clip(t / ramp_duration, 0, 1)
    r = np.zeros((300, 2))
    for axis in range(2):
        for j in range(phases.shape[1]):
            r[:, axis] += amplitudes[axis, j] * np.cos(2 * np.pi * frequencies[axis, j] * t + phases[axis, j])
    return ramp[:, None] * r


# ----------------------------------------------------------------------------- integrator


@pytest.mark.parametrize("k, m, c, dt", [(2, 1, 1, 1.0), (3, 1, 1, 0.1), (3, 2, 2, 0.5), (4, 1, 3, 0.2)])
def test_integrator_matrices_match_authors(k, m, c, dt):
    A, B, C = integrator.plant_matrices(k, m, c, dt)
    for ours, theirs in zip((A, B, C), numpy_integrator_matrices(k, m, c, dt)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7)
    if (k, m, c, dt) == (2, 1, 1, 1.0):
        np.testing.assert_array_equal(A, [[1, 1], [0, 1]])
        np.testing.assert_array_equal(B, [[0], [1]])
        np.testing.assert_array_equal(C, [[1, 0]])
    if k == 3 and m == 1:
        np.testing.assert_allclose(A, [[1, dt, 0], [0, 1, dt], [0, 0, 1]], rtol=1e-7)
        np.testing.assert_allclose(B, [[0], [0], [dt]], rtol=1e-7)


@pytest.mark.parametrize("k", [2, 3])
def test_integrator_env_matches_numpy_loop(k):
    env, params = jaxrnn.make("double-integrator", order=k, dt=0.5, clamp=100.0, beta=0.3)
    rng = np.random.default_rng(k)
    controls = rng.normal(8.0, 20.0, (40, 1)).astype(np.float32)  # drifts into the clamp
    obs, state = env.reset(jax.random.key(0), params)

    def body(state, u):
        obs, state, reward, terminated, _ = env.step_env(jax.random.key(0), state, u, params)
        return state, (obs, state.x, reward, terminated)

    _, (obs_t, x_t, reward_t, terminated_t) = jax.jit(lambda s: jax.lax.scan(body, s, controls))(state)
    A, B, C = numpy_integrator_matrices(k, 1, 1, 0.5)
    x = np.asarray(state.x, np.float64)
    np.testing.assert_allclose(obs, C @ x, rtol=1e-6)
    for t, u in enumerate(controls.astype(np.float64)):
        np.testing.assert_allclose(reward_t[t], -(x @ x + 0.3 * u @ u) * 0.5, rtol=2e-5)
        x = np.clip(A @ x + B @ u, -100, 100)
        np.testing.assert_allclose(x_t[t], x, rtol=2e-5, atol=1e-4)
        np.testing.assert_allclose(obs_t[t], C @ x, rtol=2e-5, atol=1e-4)
    assert np.max(np.abs(x_t)) == 100.0  # the clamp was active
    assert not np.any(terminated_t)


def test_integrator_reset_truncation_and_spaces():
    env, params = jaxrnn.make("double-integrator", init_half_width=jnp.array([1.0, 2.0]))
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 4000), params)
    x = np.asarray(states.x)
    assert x.shape == (4000, 2) and obs.shape == (4000, 1)
    np.testing.assert_allclose(np.abs(x).max(0), [1.0, 2.0], rtol=0.01)
    np.testing.assert_allclose(x.std(0), np.array([1.0, 2.0]) / np.sqrt(3), rtol=0.05)
    np.testing.assert_array_equal(obs[:, 0], x[:, 0])  # position only
    assert env.num_actions == 1 and env.observation_space(params).shape == (1,)

    _, state = env.reset(jax.random.key(1), params)

    def body(state, key):
        _, state, _, terminated, truncated, _ = env.step(key, state, jnp.array([0.0]), params)
        return state, (terminated, truncated, state.time)

    _, (terminated, truncated, time) = jax.lax.scan(body, state, jax.random.split(jax.random.key(2), 100))
    assert not np.any(terminated)
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [49, 99]  # T = 50
    assert int(time[49]) == 0


def test_integrator_process_noise_scale():
    params = IntegratorParams(dt=jnp.float32(0.25), noise_std=jnp.float32(2.0), clamp=jnp.float32(jnp.inf))
    keys = jax.random.split(jax.random.key(0), 4000)
    x_next = jax.vmap(lambda key: integrator.plant_step(jnp.zeros(2), jnp.zeros(1), params, key))(keys)
    np.testing.assert_allclose(np.std(x_next, 0), 2.0 * np.sqrt(0.25), rtol=0.05)  # noise·√dt
    deterministic = integrator.plant_step(jnp.ones(2), jnp.ones(1), params)  # no key → no noise
    np.testing.assert_allclose(deterministic, [1.25, 1.25])


def test_closed_loop_gradient_matches_finite_differences():
    """∂/∂(K, dt) of Σ_t (‖x_t‖² + β u_t²)·dt through 20 steps, u = −K x, vs float64 central FD."""
    x0, beta, steps = np.array([1.0, -0.5]), 0.1, 20

    def cost(K, dt):
        params = IntegratorParams(dt=dt, beta=jnp.float32(beta))

        def body(x, _):
            u = -K @ x
            return integrator.plant_step(x, u, params), integrator.integrator_cost(x, u, params)

        _, costs = jax.lax.scan(body, jnp.asarray(x0, jnp.float32), None, length=steps)
        return jnp.sum(costs)

    K, dt = np.array([[0.3, 0.8]]), 1.0
    value, (grad_K, grad_dt) = jax.value_and_grad(cost, argnums=(0, 1))(jnp.asarray(K, jnp.float32), jnp.float32(dt))
    np.testing.assert_allclose(value, numpy_closed_loop_cost(K, x0, dt, beta, steps), rtol=1e-5)
    eps = 1e-6
    fd_K = np.zeros_like(K)
    for j in range(2):
        step = np.zeros_like(K)
        step[0, j] = eps
        fd_K[0, j] = (numpy_closed_loop_cost(K + step, x0, dt, beta, steps)
                      - numpy_closed_loop_cost(K - step, x0, dt, beta, steps)) / (2 * eps)
    fd_dt = (numpy_closed_loop_cost(K, x0, dt + eps, beta, steps)
             - numpy_closed_loop_cost(K, x0, dt - eps, beta, steps)) / (2 * eps)
    np.testing.assert_allclose(grad_K, fd_K, rtol=1e-4)
    np.testing.assert_allclose(grad_dt, fd_dt, rtol=1e-4)

    # the same gradient through the gymnax environment's step (auto-reset not reached: 20 < T)
    env, params = jaxrnn.make("double-integrator", beta=beta)
    state0 = IntegratorState(x=jnp.asarray(x0, jnp.float32), time=jnp.int32(0))

    def env_cost(K):
        def body(state, key):
            _, state_next, reward, *_ = env.step(key, state, -K @ state.x, params)
            return state_next, reward

        return -jnp.sum(jax.lax.scan(body, state0, jax.random.split(jax.random.key(0), steps))[1])

    np.testing.assert_allclose(jax.grad(env_cost)(jnp.asarray(K, jnp.float32)), fd_K, rtol=1e-4)


def test_clamp_gradient():
    params = IntegratorParams(dt=jnp.float32(1.0), clamp=jnp.float32(100.0))
    jac = jax.jacobian(integrator.plant_step)(jnp.array([99.5, 1.0]), jnp.zeros(1), params)
    np.testing.assert_allclose(jac, [[0.0, 0.0], [0.0, 1.0]])  # position clipped at 100: no gradient


def test_integrator_vmap_over_keys_and_params():
    env, params = jaxrnn.make("double-integrator", noise_std=0.1)
    dts = jnp.array([0.1, 0.5, 1.0], jnp.float32)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 3), params).replace(dt=dts)
    keys = jax.random.split(jax.random.key(0), 3)
    _, states = jax.vmap(env.reset)(keys, stacked)
    obs, states_next, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, None, 0))(keys, states, jnp.array([1.0]), stacked)
    for i in range(3):
        p = params.replace(dt=dts[i])
        _, s = env.reset(keys[i], p)
        obs_i, s_i, reward_i, *_ = env.step(keys[i], s, jnp.array([1.0]), p)
        np.testing.assert_allclose(obs[i], obs_i, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(states_next.x[i], s_i.x, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(reward[i], reward_i, rtol=1e-6)


@pytest.mark.parametrize(
    "name, overrides, field",
    [
        ("double-integrator", {"dt": 0.0}, "task.dt"),
        ("double-integrator", {"clamp": -1.0}, "task.clamp"),
        ("double-integrator", {"noise_std": -0.1}, "task.noise_std"),
        ("double-integrator", {"init_half_width": [1.0, 1.0, 1.0]}, "task.init_half_width"),
        ("double-integrator", {"beta": -1.0}, "task.beta"),
        ("double-integrator", {"order": 0}, "task.order"),
        ("double-integrator", {"control_size": 3}, "task.control_size"),
        ("tracking-2d", {"frequencies": [0.1, 0.2]}, "task.frequencies"),
        ("tracking-2d", {"amplitudes": np.ones((2, 3))}, "task.amplitudes"),
        ("tracking-2d", {"ramp_duration": 0.0}, "task.ramp_duration"),
        ("tracking-2d", {"max_steps_in_episode": 301}, "task.max_steps_in_episode"),
        ("tracking-2d", {"clamp": 0.0}, "task.clamp"),
        ("tracking-2d", {"num_samples": 0}, "task.num_samples"),
    ],
)
def test_bad_params_raise(name, overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        jaxrnn.make(name, **overrides)


# ----------------------------------------------------------------------------- tracking


def test_tracking_matrices_and_clamp():
    dt = 0.1
    A, B = tracking.plant_matrices(dt)
    np.testing.assert_allclose(A, [[1, dt, 0, 0], [0, 1, 0, 0], [0, 0, 1, dt], [0, 0, 0, 1]], rtol=1e-7)
    np.testing.assert_allclose(B, [[0, 0], [dt, 0], [0, 0], [0, dt]], rtol=1e-7)
    _, params = jaxrnn.make("tracking-2d")
    s = jnp.array([9.95, 5.0, -9.9, -3.0])
    u = jnp.array([200.0, -300.0])
    s_next = tracking.plant_step(s, u, params)
    expected = np.clip(np.asarray(A, np.float64) @ np.asarray(s) + np.asarray(B, np.float64) @ np.asarray(u), -10, 10)
    np.testing.assert_allclose(s_next, expected, rtol=1e-6)
    np.testing.assert_allclose(s_next, [10.0, 10.0, -10.0, -10.0])  # all four states clamped


def test_reference_matches_numpy_formula():
    env, params = jaxrnn.make("tracking-2d")
    key = jax.random.key(7)
    r = env.reference(key, params)
    phases = np.asarray(tracking.sample_phases(key, 2), np.float64)
    assert r.shape == (300, 2) and r.dtype == jnp.float32
    expected = numpy_reference(phases, np.array([[0.1, 0.3], [0.2, 0.4]]), np.full((2, 2), 2.31))
    np.testing.assert_allclose(r, expected, atol=2e-4)
    np.testing.assert_array_equal(r[0], [0.0, 0.0])  # ramp(0) = 0
    np.testing.assert_allclose(tracking.sample_times(params), np.linspace(0, 30, 300, endpoint=False), atol=1e-5)
    all_phases = jax.vmap(tracking.sample_phases)(jax.random.split(key, 2000))
    assert np.all(np.abs(all_phases) <= np.pi)
    np.testing.assert_allclose(np.std(all_phases, 0), np.pi / np.sqrt(3), rtol=0.06)
    assert abs(np.corrcoef(all_phases[:, 0, 0], all_phases[:, 1, 1])[0, 1]) < 0.1  # independent


def test_probe_reference():
    _, params = jaxrnn.make("tracking-2d", ramp_duration=2.0)
    probe = tracking.probe_reference(1, 0.4, 0.5, params)
    t = np.linspace(0, 30, 300, endpoint=False)
    expected = np.clip(t / 2.0, 0, 1) * 2.31 * np.cos(2 * np.pi * 0.4 * t + 0.5)
    np.testing.assert_array_equal(probe[:, 0], 0.0)
    np.testing.assert_allclose(probe[:, 1], expected, atol=1e-4)
    with pytest.raises(ValueError, match="axis"):
        tracking.probe_reference(2, 0.4, 0.5, params)


def test_tracking_env_matches_numpy_loop():
    env, params = jaxrnn.make("tracking-2d", max_steps_in_episode=40)
    obs, state = env.reset(jax.random.key(3), params)
    np.testing.assert_allclose(obs, [0.0, 0.0, *state.reference[0]])
    controls = np.random.default_rng(0).normal(0.0, 30.0, (50, 2)).astype(np.float32)

    def body(state, inputs):
        key, u = inputs
        obs, state, reward, terminated, truncated, info = env.step(key, state, u, params)
        return state, (obs, reward, truncated, info["final_observation"])

    keys = jax.random.split(jax.random.key(4), 50)
    _, (obs_t, reward_t, truncated_t, final_t) = jax.lax.scan(body, state, (keys, controls))
    A, B = (np.asarray(m, np.float64) for m in tracking.plant_matrices(0.1))
    ref = np.asarray(state.reference, np.float64)
    s = np.zeros(4)
    for i in range(40):
        s = np.clip(A @ s + B @ controls[i], -10, 10)
        error = (s[0] - ref[i, 0]) ** 2 + (s[2] - ref[i, 1]) ** 2
        np.testing.assert_allclose(reward_t[i], -error, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(final_t[i], [s[0], s[2], *ref[min(i + 1, 299)]], rtol=1e-5, atol=1e-4)
    assert np.flatnonzero(np.asarray(truncated_t)).tolist() == [39]
    assert np.max(np.abs(final_t[:40, :2])) == 10.0  # clamp active


def test_tracking_gradient_matches_finite_differences():
    """Gradient of the authors' loss through 20 closed-loop steps with ``u = −K·obs``."""
    env, params = jaxrnn.make("tracking-2d")
    state0 = env.reset(jax.random.key(0), params)[1]
    ref = np.asarray(state0.reference, np.float64)

    def loss(K):
        def body(state, _):
            obs, state, reward, *_ = env.step_env(jax.random.key(0), state, -K @ env.get_obs(state), params)
            return state, reward

        return -jnp.sum(jax.lax.scan(body, state0, None, length=20)[1]) * 0.1 / 300

    def numpy_loss(K):
        A, B = (np.asarray(m, np.float64) for m in tracking.plant_matrices(0.1))
        s, total = np.zeros(4), 0.0
        for i in range(20):
            u = -K @ np.array([s[0], s[2], *ref[i]])
            s = np.clip(A @ s + B @ u, -10, 10)
            total += ((s[0] - ref[i, 0]) ** 2 + (s[2] - ref[i, 1]) ** 2) * 0.1 / 300
        return total

    K = np.random.default_rng(0).normal(0.0, 0.5, (2, 4))
    grad = jax.grad(loss)(jnp.asarray(K, jnp.float32))
    fd = np.zeros_like(K)
    for idx in np.ndindex(K.shape):
        step = np.zeros_like(K)
        step[idx] = 1e-6
        fd[idx] = (numpy_loss(K + step) - numpy_loss(K - step)) / 2e-6
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-6)


def test_tracking_jit_and_vmap_over_keys_and_params():
    env, params = jaxrnn.make("tracking-2d", noise_std=0.1)
    freqs = jnp.array([[[0.1, 0.3], [0.2, 0.4]], [[0.05, 0.5], [0.15, 0.25]]], jnp.float32)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 2), params).replace(frequencies=freqs)
    keys = jax.random.split(jax.random.key(0), 2)
    obs, states = jax.vmap(env.reset)(keys, stacked)
    obs2, states2, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, None, 0))(keys, states, jnp.ones(2), stacked)
    for i in range(2):
        p = params.replace(frequencies=freqs[i])
        with jax.disable_jit():
            obs_i, s_i = env.reset(keys[i], p)
            obs2_i, s2_i, reward_i, *_ = env.step(keys[i], s_i, jnp.ones(2), p)
        np.testing.assert_allclose(states.reference[i], s_i.reference, atol=1e-4)  # cos of ~75 rad in f32
        np.testing.assert_allclose(obs2[i], obs2_i, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(reward[i], reward_i, rtol=1e-5, atol=1e-5)
    assert not np.allclose(states.reference[0], states.reference[1])
    assert isinstance(states, TrackingState) and obs.shape == (2, 4)
    assert isinstance(Tracking2D(), Tracking2D) and isinstance(Integrator(), Integrator)

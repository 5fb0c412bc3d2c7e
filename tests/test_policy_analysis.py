"""Policy geometry of pendulum controllers (Huang, Singh & Rajan): timescales, fixed points under the
goal observation, policy landscapes, ring score and regression against closed forms and SciPy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jaxrnn
from jaxrnn.analysis import policy
from jaxrnn.analysis.ring import fit_circle, ring_score
from jaxrnn.analysis.stats import linear_regression, mean_interval, t_quantile
from jaxrnn.models import VanillaRNN
from jaxrnn.models.actor_critic import ActorCritic
from jaxrnn.tasks.pendulum import pendulum_dynamics


def _agent(task: str, hidden: int, w_in, w_rec, b, w_mean, b_mean=0.0):
    """A hand-built agent: VanillaRNN(hidden), heads without hidden layers (μ = W_mean h + b_mean)."""
    env, env_params = jaxrnn.make(task)
    net = ActorCritic(VanillaRNN(hidden), env.observation_size, 1, features=4, num_layers=0)
    params = net.init(jax.random.PRNGKey(0))
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    params["cell"] = {"params": {"W_in": f(w_in), "W_rec": f(w_rec), "b": f(b)}}
    params["actor"] = {"params": {**params["actor"]["params"], "W_mean": f(w_mean)[None], "b_mean": f([b_mean])}}
    return net, env, env_params, params


def test_timescales_of_a_diagonal_linear_rnn_equal_the_formula():
    lam = np.array([0.99, 0.9, -0.8, 0.5, 1.5, 0.2, 0.1])
    B = np.random.default_rng(0).normal(size=(7, 2))
    step = lambda h, u: jnp.asarray(lam, jnp.float32) * h + jnp.asarray(B, jnp.float32) @ u  # noqa: E731
    hidden = jax.random.normal(jax.random.PRNGKey(1), (30, 7))
    inputs = jax.random.normal(jax.random.PRNGKey(2), (30, 2))
    summary, tau = policy.trajectory_timescales(step, hidden, inputs, top=5)
    # τ = |1/ln|λ||, unstable |λ| = 1.5 counted as τ = 1 (Singh's 'fix'), sorted descending
    expected = sorted([abs(1 / math.log(abs(x))) if abs(x) < 1 else 1.0 for x in lam], reverse=True)[:5]
    np.testing.assert_allclose(expected[:4], [99.499, 9.4912, 4.4814, 1.4427], rtol=1e-4)
    np.testing.assert_allclose(tau, np.broadcast_to(expected, (30, 5)), rtol=1e-4)
    np.testing.assert_allclose(summary.mean, expected, rtol=1e-4)
    np.testing.assert_allclose(summary.high - summary.low, 0.0, atol=1e-3)  # a constant Jacobian: no spread


def test_timescales_count_a_rotation_once_and_follow_the_state():
    r, w = 0.95, 0.3  # a rotation block (one oscillatory mode) and a state-dependent tanh unit
    A = jnp.array([[r * math.cos(w), -r * math.sin(w), 0.0], [r * math.sin(w), r * math.cos(w), 0.0], [0.0, 0.0, 0.0]])
    step = lambda h, u: A @ h + jnp.array([0.0, 0.0, 1.0]) * jnp.tanh(0.8 * h[2] + u[0])  # noqa: E731
    hidden = jnp.stack([jnp.zeros(5), jnp.zeros(5), jnp.linspace(-1, 1, 5)], 1)
    inputs = jnp.linspace(-0.5, 0.5, 5)[:, None]
    tau_r = 1 / -math.log(r)
    slopes = 0.8 * (1 - np.tanh(0.8 * np.linspace(-1, 1, 5) + np.linspace(-0.5, 0.5, 5)) ** 2)
    _, tau = policy.trajectory_timescales(step, hidden, inputs, top=2)
    np.testing.assert_allclose(tau[:, 0], tau_r, rtol=1e-4)
    np.testing.assert_allclose(tau[:, 1], 1 / -np.log(slopes), rtol=1e-4)
    _, both = policy.trajectory_timescales(step, hidden, inputs, top=2, distinct_pairs=False)
    np.testing.assert_allclose(both, tau_r, rtol=1e-4)
    summary, _ = policy.trajectory_timescales(step, hidden, inputs, top=2, confidence=0.99)
    taus = 1 / -np.log(slopes)
    lo, hi = scipy.stats.t.interval(0.99, 4, loc=np.mean(taus), scale=scipy.stats.sem(taus))
    np.testing.assert_allclose([summary.low[1], summary.high[1]], [lo, hi], rtol=1e-4)


def test_goal_observation_fixed_points_of_a_bistable_network():
    # unit 0: h = tanh(2h) (no input) -> 0 (unstable, slope 2) and ±h_b (stable);
    # unit 1: h = tanh(0.5h + cos θ) -> one stable point, 1.0 at the goal, -1.0 hanging
    net, env, _, params = _agent("pendulum-po", 2, [[0.0, 0.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 0.5]], [0, 0], [1, 0])
    h_b = 0.9575040240772687  # root of h = tanh(2h)
    for angle, drive in ((policy.GOAL_ANGLE, 1.0), (policy.HANGING_ANGLE, -1.0)):
        h1 = 0.0
        for _ in range(200):
            h1 = math.tanh(0.5 * h1 + drive)
        x0 = jnp.array([[1.0, 0.0], [-1.0, 0.5], [0.05, -0.5], [0.8, 0.9], [-0.9, 1.0]])
        fps = policy.observation_fixed_points(net, env, params, angle, x0, tol=1e-12)
        x = np.asarray(fps.x)[np.asarray(fps.valid)]
        order = np.argsort(x[:, 0])
        np.testing.assert_allclose(x[order], [[-h_b, h1], [0.0, h1], [h_b, h1]], atol=1e-5)
        np.testing.assert_array_equal(np.asarray(fps.stable)[np.asarray(fps.valid)][order], [True, False, True])
        np.testing.assert_array_equal(np.asarray(fps.num_unstable)[np.asarray(fps.valid)][order], [0, 1, 0])
    chosen = policy.nearest_fixed_point(fps, jnp.array([0.2, 0.0]), stable=True)
    np.testing.assert_allclose(chosen.x, [h_b, h1], atol=1e-5)  # the stable one, not the nearer saddle
    assert bool(chosen.stable) and int(chosen.num_unstable) == 0
    anyone = policy.nearest_fixed_point(fps, jnp.array([0.2, 0.0]))
    np.testing.assert_allclose(anyone.x, [0.0, h1], atol=1e-5)


def test_analyze_agent_goal_location_and_distance():
    net, env, env_params, params = _agent("pendulum-po", 2, [[0.0, 0.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 0.5]],
                                          [0.3, 0], [0, 0])  # μ = 0: the pendulum swings freely
    key = jax.random.PRNGKey(3)
    g = jax.jit(lambda p: policy.analyze_agent(net, env, p, key, env_params, num_episodes=3, num_steps=60,
                                               radius=0.3, num_starts=6))(params)
    ro = policy.closed_loop_rollout(net, env, params, jax.random.split(key)[0], env_params, 3, 60)
    theta, hidden = np.asarray(ro.theta).ravel(), np.asarray(ro.hidden).reshape(-1, 2)
    near = np.abs((theta + np.pi) % (2 * np.pi) - np.pi) < 0.3
    assert near.sum() > 0 and int(g.goal_visits) == near.sum()
    np.testing.assert_allclose(g.goal_location, hidden[near].mean(0), rtol=1e-5)
    np.testing.assert_allclose(g.episode_return, np.asarray(ro.reward).sum(-1).mean(), rtol=1e-5)
    # the stable fixed point of the bias-shifted bistable unit reached from the visited states
    assert bool(g.goal_fp.found) and bool(g.goal_fp.stable)
    x = np.asarray(g.goal_fp.x)
    np.testing.assert_allclose(x[0], math.tanh(2 * x[0] + 0.3), atol=1e-5)
    np.testing.assert_allclose(g.fp_goal_distance, np.linalg.norm(x - np.asarray(g.goal_location)), rtol=1e-5)
    assert g.tau.mean.shape == (2,) and g.pcs.shape == (2, 2)  # top 5 of only N = 2 modes


def test_policy_landscape_of_a_memoryless_fo_agent_is_its_formula():
    s, w = 0.7, np.array([0.5, -1.2, 0.9])
    net, env, env_params, params = _agent("pendulum-fo", 3, s * np.eye(3), np.zeros((3, 3)), np.zeros(3), w, 0.1)
    thetas, dots = np.linspace(-np.pi, np.pi, 9), np.linspace(-8, 8, 7)
    mu = policy.policy_landscape(net, env, params, thetas, dots, env_params, history=5)
    T, D = np.meshgrid(thetas, dots, indexing="ij")
    expected = w[0] * np.tanh(s * np.cos(T)) + w[1] * np.tanh(s * np.sin(T)) + w[2] * np.tanh(s * D) + 0.1
    np.testing.assert_allclose(mu, expected, atol=1e-5)


def test_policy_landscape_of_a_po_agent_sees_the_free_swing_history():
    # unit 1 = tanh(s sin θ_t); unit 2 = tanh(r·unit 1 at t−1): μ = unit 1 − unit 2 (a velocity estimate)
    s, r = 0.5, 0.8
    w_in = [[0.0, 0.0], [0.0, s], [0.0, 0.0]]
    w_rec = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, r, 0.0]]
    net, env, env_params, params = _agent("pendulum-po", 3, w_in, w_rec, np.zeros(3), [0.0, 1.0, -1.0])
    thetas, dots = np.linspace(-3, 3, 7), np.linspace(-6, 6, 5)
    mu = policy.policy_landscape(net, env, params, thetas, dots, env_params, history=4)
    T, D = np.meshgrid(thetas, dots, indexing="ij")
    previous = T - D * 0.05  # the free-swing state one step earlier: θ_{t−1} = θ_t − θ̇_t dt
    expected = np.tanh(s * np.sin(T)) - np.tanh(r * np.tanh(s * np.sin(previous)))
    np.testing.assert_allclose(mu, expected, atol=1e-5)
    # the history is a zero-torque trajectory of the environment's own forward step
    ths, thds = policy.free_swing_history(2.0, -3.0, env_params, 6)
    for j in range(5):
        nxt = pendulum_dynamics(ths[j], thds[j], jnp.float32(0.0), env_params)
        np.testing.assert_allclose(nxt, (ths[j + 1], thds[j + 1]), atol=1e-5)
    assert float(ths[-1]) == 2.0 and float(thds[-1]) == -3.0


def _embed(points2, n=8, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return jnp.asarray(points2 @ q[:2] + 0.3, jnp.float32)


def test_ring_score_is_high_on_a_circle_and_low_on_a_blob():
    theta = np.random.default_rng(1).uniform(-np.pi, np.pi, 400)
    for sign in (1.0, -1.0):  # a rotated or reflected copy of θ
        phi = sign * theta + 1.0
        ring = ring_score(_embed(np.stack([2 * np.cos(phi) + 1, 2 * np.sin(phi) - 3], 1)), theta)
        assert float(ring.radius_cv) < 1e-3
        assert float(ring.variance_fraction) > 0.999
        assert float(ring.circular_corr) > 0.999
        assert float(ring.score) > 0.99
        np.testing.assert_allclose(ring.radius, 2.0, rtol=1e-3)
    blob = ring_score(jax.random.normal(jax.random.PRNGKey(0), (400, 8)), theta)
    assert float(blob.radius_cv) > 0.3
    assert float(blob.variance_fraction) < 0.45
    assert float(blob.circular_corr) < 0.2
    assert float(blob.score) < 0.1
    center, radius = fit_circle(jnp.asarray(np.stack([3 + 1.5 * np.cos(theta), -2 + 1.5 * np.sin(theta)], 1)))
    np.testing.assert_allclose(center, [3.0, -2.0], atol=1e-4)
    np.testing.assert_allclose(radius, 1.5, rtol=1e-4)


def test_regression_equals_scipy_linregress():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 3, 60)
    y = 40 * x + rng.normal(0, 30, 60)
    x[[3, 17]] = np.nan  # missing distances are left out
    fit = linear_regression(x, y, confidence=0.95)
    keep = np.isfinite(x)
    ref = scipy.stats.linregress(x[keep], y[keep])
    for name in ("slope", "intercept", "pvalue", "stderr"):
        mine = {"pvalue": fit.p}.get(name, getattr(fit, name, None))
        np.testing.assert_allclose(mine, getattr(ref, name), rtol=2e-4)
    np.testing.assert_allclose(fit.r, ref.rvalue, rtol=1e-5)
    half = scipy.stats.t.ppf(0.975, keep.sum() - 2) * ref.stderr
    np.testing.assert_allclose([fit.ci_low, fit.ci_high], [ref.slope - half, ref.slope + half], rtol=1e-4)
    assert int(fit.n) == 58
    y_weak = rng.normal(size=60)  # no relation: p far from 0
    weak, ref_weak = linear_regression(x, y_weak), scipy.stats.linregress(x[keep], y_weak[keep])
    assert ref_weak.pvalue > 0.05
    np.testing.assert_allclose([weak.slope, weak.r, weak.p], [ref_weak.slope, ref_weak.rvalue, ref_weak.pvalue],
                               rtol=1e-3)
    np.testing.assert_allclose(t_quantile(0.995, 7.0), scipy.stats.t.ppf(0.995, 7), rtol=1e-4)
    m, lo, hi = mean_interval(jnp.asarray(y), confidence=0.99)
    ref_lo, ref_hi = scipy.stats.t.interval(0.99, 59, loc=y.mean(), scale=scipy.stats.sem(y))
    np.testing.assert_allclose([m, lo, hi], [y.mean(), ref_lo, ref_hi], rtol=1e-4)


def test_population_forms_stack_single_agents():
    net, env, env_params, params = _agent("pendulum-fo", 3, 0.7 * np.eye(3), np.zeros((3, 3)), np.zeros(3),
                                          [0.5, -1.2, 0.9])
    stacked = jax.tree.map(lambda x: jnp.stack([jnp.stack([x, 2 * x])] * 2), params)  # [P=2, S=2]
    thetas, dots = np.linspace(-3, 3, 4), np.linspace(-5, 5, 3)
    mu = policy.landscape_population(net, env, stacked, thetas, dots, env_params, history=3)
    one = policy.policy_landscape(net, env, jax.tree.map(lambda x: 2 * x, params), thetas, dots, env_params, 3)
    assert mu.shape == (2, 2, 4, 3)
    np.testing.assert_allclose(mu[1, 1], one, atol=1e-6)
    returns = jnp.array([[-900.0, -500.0, -200.0]])
    np.testing.assert_allclose(policy.reward_to_go(returns), [[700.0, 300.0, 0.0]])


@pytest.mark.parametrize("hidden, theta, field", [
    (np.zeros((3,)), np.zeros(3), "hidden.shape"),
    (np.zeros((2, 3, 4)), np.zeros(3), "hidden.shape"),
    (np.zeros((5, 4)), np.zeros(4), "theta.shape"),
])
def test_ring_score_rejects_bad_shapes(hidden, theta, field):
    with pytest.raises(ValueError, match=field):
        ring_score(jnp.asarray(hidden), jnp.asarray(theta))


def test_within_group_regression_equals_dummy_variable_ols():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(3), 15)
    x = rng.normal(size=45) + groups
    y = 2.5 * x + np.array([0.0, 10.0, -7.0])[groups] + rng.normal(size=45)
    demeaned = [np.concatenate([v[groups == g] - v[groups == g].mean() for g in range(3)]) for v in (x, y)]
    fit = linear_regression(*demeaned, num_intercepts=3)
    design = np.column_stack([x, np.eye(3)[groups]])  # slope + one intercept per group
    coef, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = 45 - 4
    stderr = np.sqrt(residual[0] / df * np.linalg.inv(design.T @ design)[0, 0])
    np.testing.assert_allclose([fit.slope, fit.stderr], [coef[0], stderr], rtol=1e-4)
    np.testing.assert_allclose(fit.p, 2 * scipy.stats.t.sf(abs(coef[0] / stderr), df), rtol=1e-3, atol=1e-30)

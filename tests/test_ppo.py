"""Recurrent PPO: GAE, the clipped loss and evaluation against NumPy; re-running stored segments
reproduces the rollout; a population learns the pendulum; population members equal members
trained alone."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import population
from jaxrnn.models import VanillaRNN
from jaxrnn.population.builders import build_rule, member_hparams
from jaxrnn.rules import ppo
from jaxrnn.models.actor_critic import ActorCritic, _orthogonal, gaussian_entropy, gaussian_log_prob
from jaxrnn.rules.ppo_objective import Segment, gae, normalize_advantages, ppo_loss, segment_loss


def _gae_reference(rewards, values, last_value, masks, gamma, lam):
    """ikostrikov/pytorch-a2c-ppo-acktr ``compute_returns`` indexing: ``value_preds[T+1]``,
    ``masks[t+1] = 0`` when step ``t`` ended the episode (truncation treated as termination)."""
    T = len(rewards)
    value_preds = np.append(values, last_value)
    masks = np.append(1.0, masks)  # masks[t + 1] belongs to step t
    advantages, gae_t = np.zeros(T), 0.0
    for step in reversed(range(T)):
        delta = rewards[step] + gamma * value_preds[step + 1] * masks[step + 1] - value_preds[step]
        gae_t = delta + gamma * lam * masks[step + 1] * gae_t
        advantages[step] = gae_t
    return advantages, advantages + values


def test_gae_matches_numpy_loop_with_dones():
    rng = np.random.default_rng(0)
    T, gamma, lam = 12, 0.9, 0.8
    rewards, values = rng.normal(size=T), rng.normal(size=T)
    last_value = 0.7
    dones = np.zeros(T, bool)
    dones[[3, 8]] = True
    next_values = np.append(values[1:], last_value)  # after a done this is the next episode's V (ignored)
    adv, ret = gae(*(jnp.asarray(x, jnp.float32) for x in (rewards, values, next_values)),
                   jnp.asarray(dones), jnp.asarray(dones), gamma, lam)
    ref_adv, ref_ret = _gae_reference(rewards, values, last_value, 1.0 - dones, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-6)
    # hand-computed: the last step of the first episode is the one-step TD error r + 0 − V
    assert adv[3] == pytest.approx(rewards[3] - values[3], abs=1e-6)
    # λ = 1 without dones: A_t = Σ_k γ^k r_{t+k} + γ^{T−t} V_T − V_t (discounted return − V)
    adv1, _ = gae(*(jnp.asarray(x, jnp.float32) for x in (rewards, values, next_values)),
                  jnp.zeros(T, bool), jnp.zeros(T, bool), gamma, 1.0)
    discounted = [sum(gamma**k * rewards[t + k] for k in range(T - t)) + gamma ** (T - t) * last_value - values[t]
                  for t in range(T)]
    np.testing.assert_allclose(adv1, discounted, rtol=1e-5, atol=1e-5)


def test_gae_bootstraps_truncated_episodes():
    # step 2 is cut by the time limit (done, not terminal): δ_2 bootstraps from V(final obs) = 5
    r, v = jnp.ones(4), jnp.zeros(4)
    nv = jnp.array([0.0, 0.0, 5.0, 0.0])
    dones = jnp.array([False, False, True, False])
    adv, _ = gae(r, v, nv, jnp.zeros(4, bool), dones, 0.5, 1.0)
    np.testing.assert_allclose(adv, [1 + 0.5 * (1 + 0.5 * 3.5), 1 + 0.5 * 3.5, 1 + 0.5 * 5, 1.0], rtol=1e-6)


def test_ppo_loss_matches_numpy_minibatch():
    rng = np.random.default_rng(1)
    B, T, A = 3, 5, 1
    mean, old_mean = rng.normal(size=(B, T, A)), rng.normal(size=(B, T, A))
    log_std = np.array([-0.3])
    actions = old_mean + np.exp(log_std) * rng.normal(size=(B, T, A))
    values, old_values, returns = rng.normal(size=(3, B, T))
    advantages = normalize_advantages(jnp.asarray(rng.normal(size=(B, T)) * 3 + 1, jnp.float32))
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    log_probs = gaussian_log_prob(f(mean), f(log_std), f(actions))
    old_log_probs = gaussian_log_prob(f(old_mean), f(log_std), f(actions))
    eps, vf, ent = 0.2, 0.5, 0.01
    loss, aux = ppo_loss(log_probs, gaussian_entropy(f(log_std)), f(values), old_log_probs, f(old_values),
                         advantages, f(returns), eps, vf, ent)

    # NumPy reference
    sigma = math.exp(log_std[0])
    logpdf = lambda a, m: (-0.5 * ((a - m) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi)))[..., 0]  # noqa: E731
    adv = np.asarray(advantages, np.float64)
    assert abs(adv.mean()) < 1e-5 and abs(adv.std() - 1) < 1e-4  # normalised over the minibatch
    ratio = np.exp(logpdf(actions, mean) - logpdf(actions, old_mean))
    assert np.any(ratio > 1 + eps) and np.any(ratio < 1 - eps)  # both clip branches are exercised
    policy = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv))
    clipped_v = old_values + np.clip(values - old_values, -eps, eps)
    value = 0.5 * np.mean(np.maximum((values - returns) ** 2, (clipped_v - returns) ** 2))
    entropy = 0.5 * math.log(2 * math.pi * math.e * sigma**2)
    np.testing.assert_allclose(aux["policy_loss"], policy, rtol=1e-5)
    np.testing.assert_allclose(aux["value_loss"], value, rtol=1e-5)
    np.testing.assert_allclose(aux["entropy"], entropy, rtol=1e-6)
    np.testing.assert_allclose(loss, policy + vf * value - ent * entropy, rtol=1e-5)
    np.testing.assert_allclose(aux["clip_fraction"], np.mean(np.abs(ratio - 1) > eps), rtol=1e-6)
    # unclipped value loss
    _, aux = ppo_loss(log_probs, 0.0, f(values), old_log_probs, f(old_values), advantages, f(returns),
                      eps, vf, ent, clip_value_loss=False)
    np.testing.assert_allclose(aux["value_loss"], 0.5 * np.mean((values - returns) ** 2), rtol=1e-5)


@pytest.mark.parametrize("shape", [(64, 3), (3, 64), (64, 64), (1, 64), (16, 40)])
def test_orthogonal_init_equals_jax_and_runs_no_lapack_under_vmap(shape):
    """The Householder initializer gives jax.nn.initializers.orthogonal's matrices, and a vmapped
    population init has no LAPACK call (whose batched CPU kernel can deadlock XLA's pool)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    ours = jax.vmap(lambda k: _orthogonal(1.5)(k, shape))(keys)
    theirs = jax.vmap(lambda k: jax.nn.initializers.orthogonal(1.5)(k, shape))(keys)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    small = min(shape)
    gram = jnp.einsum("pij,pkj->pik", ours, ours) if shape[0] == small else jnp.einsum("pji,pjk->pik", ours, ours)
    np.testing.assert_allclose(gram, 2.25 * np.broadcast_to(np.eye(small), gram.shape), atol=2e-5)
    text = jax.jit(jax.vmap(lambda k: _orthogonal(1.5)(k, shape))).lower(keys).as_text()
    assert "lapack" not in text and "custom_call" not in text


def test_sequence_resets_the_carry_at_episode_starts():
    net = ActorCritic(VanillaRNN(8), 3, 1, features=16)
    params = net.init(jax.random.PRNGKey(0), 1.5)
    obs = jax.random.normal(jax.random.PRNGKey(1), (10, 3))
    carry0 = jax.random.normal(jax.random.PRNGKey(2), (8,))
    resets = jnp.zeros(10, bool).at[6].set(True)
    means, log_std, values = net.sequence(params, carry0, obs, resets)
    m_before, _, v_before = net.sequence(params, carry0, obs[:6], resets[:6])
    m_after, _, v_after = net.sequence(params, jnp.zeros(8), obs[6:], jnp.zeros(4, bool))  # a fresh episode
    np.testing.assert_allclose(means, np.concatenate([m_before, m_after]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(values, np.concatenate([v_before, v_after]), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(log_std, [0.0])
    # a hand-written loop: h ← tanh(W_rec h + W_in x + b), μ = W_mean tanh(W_hidden h + b_hidden) + b_mean
    p = jax.tree.map(np.asarray, params)
    cell, actor = p["cell"]["params"], p["actor"]["params"]
    h = np.asarray(carry0)
    for t in range(6):
        h = np.tanh(cell["W_rec"] @ h + cell["W_in"] @ np.asarray(obs[t]) + cell["b"])
    z = np.tanh(actor["trunk"]["W_hidden"] @ h + actor["trunk"]["b_hidden"])
    np.testing.assert_allclose(means[5], actor["W_mean"] @ z + actor["b_mean"], rtol=1e-5, atol=1e-6)
    # the bootstrap value of the next observation equals the next step's value (no reset between)
    carry1, _ = net.step(params, carry0, obs[0], jnp.array(False))
    np.testing.assert_allclose(net.value_after(params, carry1, obs[1]), values[1], rtol=1e-6)


def test_fast_vanilla_sequences_equal_the_generic_path_loss_and_gradients():
    # The VanillaRNN fast path (input drive outside the loop, hand-written backward pass) against
    # the generic one (cell.apply per step, autodiff): the PPO loss of a minibatch and its gradient
    # with respect to every param and to carry0, for a vmapped population of 3 with random params,
    # random stored carries and resets in the middle of the sequences (and one at t = 0).
    P, B, T, N, M = 3, 2, 40, 16, 3
    net = ActorCritic(VanillaRNN(N), M, 1, features=8)
    params = jax.vmap(lambda k: net.init(k, 1.2))(jax.random.split(jax.random.PRNGKey(0), P))
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    resets = jnp.zeros((P, B, T), bool).at[:, 0, 13].set(True).at[:, 1, 27].set(True).at[0, 1, 0].set(True)
    segment = Segment(
        carry0=0.5 * jax.random.normal(keys[0], (P, B, N)), obs=jax.random.normal(keys[1], (P, B, T, M)),
        resets=resets, actions=jax.random.normal(keys[2], (P, B, T, 1)),
        log_probs=jax.random.normal(keys[3], (P, B, T)) - 1.0, values=jax.random.normal(keys[4], (P, B, T)),
        advantages=jax.random.normal(keys[5], (P, B, T)), returns=jax.random.normal(keys[6], (P, B, T)))
    hp = jnp.float32(0.2), jnp.float32(0.5), jnp.float32(0.01)

    def loss(params, carry0, segment, fast):
        hparams = type("HP", (), dict(zip(("clip_eps", "vf_coef", "ent_coef"), hp)))
        return segment_loss(net, params, segment.replace(carry0=carry0), hparams, fast=fast)[0]

    grad = {fast: jax.jit(jax.vmap(jax.value_and_grad(lambda p, c, s, f=fast: loss(p, c, s, f), argnums=(0, 1))))
            for fast in (False, True)}
    (loss_ref, grads_ref), (loss_fast, grads_fast) = (grad[f](params, segment.carry0, segment) for f in (False, True))
    np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-5, atol=1e-6)
    cell_grads = jax.tree.leaves(grads_ref[0]["cell"])
    assert len(cell_grads) == 3 and all(float(jnp.max(jnp.abs(g))) > 1e-3 for g in cell_grads)
    for (path, ref), fast in zip(jax.tree_util.tree_leaves_with_path(grads_ref), jax.tree.leaves(grads_fast)):
        scale = float(jnp.max(jnp.abs(ref)))
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=jax.tree_util.keystr(path))
    # the carry gradient of the sequence reset at t = 0 is exactly zero (the stored carry is unused)
    np.testing.assert_array_equal(grads_fast[1][0, 1], 0.0)


def _pendulum_return_numpy(theta, theta_dot, torque, steps=200):
    """Gymnasium Pendulum-v1 in NumPy with a constant torque: the episode's return."""
    total = 0.0
    for _ in range(steps):
        u = np.clip(torque, -2.0, 2.0)
        total -= ((theta + np.pi) % (2 * np.pi) - np.pi) ** 2 + 0.1 * theta_dot**2 + 0.001 * u**2
        theta_dot = np.clip(theta_dot + (15.0 * np.sin(theta) + 3.0 * u) * 0.05, -8.0, 8.0)
        theta = theta + theta_dot * 0.05
    return total


SEEDS = (0, 1, 2, 3)
NUM_UPDATES = 40
# the packaged huang-pendulum recipe (benchmarks/ppo_recipe_sweep.py); 8 envs × 128 steps, 10 epochs, 4 minibatches
LEARN = {"learning_rate": 1e-3, "anneal_updates": 100, "gamma": 0.95, "normalize_rewards": True,
         "num_eval_episodes": 20}


def _config(seeds=SEEDS, num_updates=NUM_UPDATES, rule=LEARN):
    # validated after every update; params snapshots at 4 log-spaced updates (0, 1, …, 40)
    return population.from_dict({
        "run": {"num_updates": num_updates, "eval_every": 1, "chunk_updates": num_updates, "snapshots": 4,
                "snapshot_spacing": "log", "stop_metric": "return", "stop_threshold": float("inf")},
        "task": {"name": "pendulum-fo"},
        "model": {"cell": "vanilla", "hidden": 64},
        "rule": {"name": "ppo", **rule},
        "grid": {"seeds": list(seeds)},
    })


@pytest.fixture(scope="module")
def fo_rule():
    """The rule of the FO population's members, its hyper-parameters, and jitted update/evaluate
    (compiled once for every test below)."""
    member = _config().members()[0]
    rule, env = build_rule(member.task, member.model, member.rule)
    hp = member_hparams(rule, member.task, member.model, member.rule)
    return rule, env, hp, jax.jit(rule.update), jax.jit(rule.evaluate)


@pytest.fixture(scope="module")
def fo_population():
    config = _config()
    return config, population.run(config, quiet=True)


@pytest.mark.parametrize("bias", [0.0, 5.0])  # zero torque; a mean of 5 is clipped to 2
def test_evaluate_returns_deterministic_episode_returns(fo_rule, bias):
    rule, env, hp, _, evaluate = fo_rule
    state = rule.init(jax.random.PRNGKey(0), hp)
    actor = dict(state.params["actor"]["params"])
    actor["W_mean"] = jnp.zeros_like(actor["W_mean"])
    actor["b_mean"] = jnp.full_like(actor["b_mean"], bias)
    state = state.replace(params={**state.params, "actor": {"params": actor}})
    key = jax.random.PRNGKey(7)
    metrics = evaluate(key, state, hp)
    episodes = 20  # num_eval_episodes (LEARN)
    _, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.split(key)[0], episodes), hp.task)
    returns = [_pendulum_return_numpy(np.float64(th), np.float64(thd), bias)
               for th, thd in zip(env_state.theta, env_state.theta_dot)]
    np.testing.assert_allclose(metrics["return"], np.mean(returns), rtol=2e-3)
    np.testing.assert_allclose(metrics["return_std"], np.std(returns), rtol=2e-2, atol=1.0)


def test_rerun_from_stored_state_reproduces_the_rollout(fo_rule):
    # With learning rate 0 the params never move, so every ratio is exactly the rollout's:
    # the re-run from the segment's stored initial carry, with resets at the stored done flags
    # (episodes of 50 steps: 2 or 3 resets in each 128-step segment), must give ratio 1 everywhere.
    rule, env, hp, update, _ = fo_rule
    hp = hp.replace(learning_rate=jnp.float32(0.0),
                    task=hp.task.replace(max_steps_in_episode=jnp.int32(50)))
    state = rule.init(jax.random.PRNGKey(3), hp)
    for u in range(2):
        state, metrics = update(jax.random.PRNGKey(u), state, hp)
        assert float(metrics["approx_kl"]) < 1e-7 and float(metrics["clip_fraction"]) == 0.0
        assert abs(float(metrics["policy_loss"])) < 1e-5  # −mean(normalised A) = 0
        assert float(metrics["num_episodes"]) in (16.0, 24.0)  # 8 envs × (2 or 3) episode ends
        assert -16.3 * 50 < float(metrics["episode_return"]) < 0
    assert int(state.step) == 2


def test_bad_static_value_names_the_field():
    env, _ = jaxrnn.make("pendulum-fo")
    with pytest.raises(ValueError, match=r"rule\.num_minibatches.*divisor"):
        ppo(VanillaRNN(8), env, num_envs=6, num_minibatches=4)
    with pytest.raises(ValueError, match=r"rule\.gamma"):
        population.from_dict({"task": {"name": "pendulum-fo"}, "rule": {"name": "ppo", "gamma": 1.5}})


@pytest.mark.slow
def test_fo_population_learns_to_swing_up(fo_population, fo_rule):
    """The PPO recipe on a CPU-sized FO population: 4 agents, 40 updates × 1,024 steps (40,960
    steps each), scored on 20 deterministic episodes, reach a mean return ≥ −300 (a solved
    swing-up scores about −150 to −200; an untrained agent about −1,200 to −1,500)."""
    config, ds = fo_population
    rule, _, hp, _, evaluate = fo_rule
    val_key = jax.random.PRNGKey(config.run.validation_seed)
    initial = np.array([float(evaluate(val_key, rule.init(population.member_keys(s)[0], hp), hp)["return"])
                        for s in SEEDS])
    final = ds.val_return.values[:, -1]
    # Measured with the recipe at P = 15 (benchmarks/results/ppo_recipe_refine.md, FO γ 0.95): seeds 0–2
    # at update 40: −190, −155, −209 (final at 100: −186, −153, −178).
    assert np.mean(initial) < -1000
    assert np.mean(final) >= -300, final
    assert np.all(final - initial > 500)
    assert not ds.diverged.any() and np.all(ds.converged_update.values == -1)  # PPO never stops early
    assert np.all(np.isfinite(ds.loss.values))


@pytest.mark.slow
def test_population_equals_member_trained_alone(fo_population, fo_rule):
    """The runner's member equals the rule run alone from ``member_keys``/``update_key``.

    To float32 tolerance for the initial params, the first update and the validation after it.
    Beyond that the closed loop is chaotic: the ~1e-7 rounding differences between the vmapped
    and the single-member program grow to ~1e-3 within the next 1,024-step rollout (measured:
    W_rec differs by 6e-7 after update 1, 4e-4 after update 2), so update 2 is checked loosely —
    enough to tell that the same keys were used (another key changes the loss by tens of %).
    """
    config, ds = fo_population
    rule, _, hp, update, evaluate = fo_rule
    member = config.members()[2]
    init_key, train_key = population.member_keys(member.seed)
    state = rule.init(init_key, hp)
    np.testing.assert_allclose(ds["params.cell.W_rec"].values[2, 0], state.params["cell"]["params"]["W_rec"],
                               rtol=1e-6)
    state, metrics = update(population.update_key(train_key, jnp.int32(0)), state, hp)
    np.testing.assert_allclose(ds.loss.values[2, 0], metrics["loss"], rtol=1e-4)
    assert ds.snapshot_update.values[1] == 1
    for name, leaf in (("params.cell.W_rec", state.params["cell"]["params"]["W_rec"]),
                       ("params.actor.log_std", state.params["actor"]["params"]["log_std"]),
                       ("params.critic.W_value", state.params["critic"]["params"]["W_value"])):
        np.testing.assert_allclose(ds[name].values[2, 1], leaf, rtol=1e-4, atol=1e-5)
    val = evaluate(jax.random.PRNGKey(config.run.validation_seed), state, hp)
    np.testing.assert_allclose(ds.val_return.values[2, 0], val["return"], rtol=1e-4)
    _, metrics = update(population.update_key(train_key, jnp.int32(1)), state, hp)
    np.testing.assert_allclose(ds.loss.values[2, 1], metrics["loss"], rtol=2e-2)


def test_running_moments_equal_numpy_moments_of_all_batches():
    from jaxrnn.rules.ppo_normalize import init_moments, update_moments

    rng = np.random.default_rng(4)
    batches = [rng.normal(2.0, 3.0, size=(n, 3)) for n in (5, 17, 40)]
    m = init_moments((3,))
    for b in batches:
        m = update_moments(m, jnp.asarray(b, jnp.float32))
    everything = np.concatenate(batches)
    # the 1e-4-weight pseudo-sample (mean 0, variance 1) shifts the moments by ~1e-5
    np.testing.assert_allclose(m.mean, everything.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m.var, everything.var(0), rtol=1e-4)
    assert float(m.count) == pytest.approx(62 + 1e-4)


def test_folded_input_normalisation_equals_normalised_inputs():
    from jaxrnn.rules.ppo_normalize import RunningMoments, fold_input_normalization, normalize

    cell = VanillaRNN(8)
    net = ActorCritic(cell, 3, 1, features=8)
    params = net.init(jax.random.PRNGKey(0))
    m = RunningMoments(mean=jnp.array([0.3, -0.2, 1.5]), var=jnp.array([0.5, 0.4, 9.0]), count=jnp.float32(100))
    h = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (8,))
    o = jnp.array([0.8, -0.6, 4.0])
    direct = cell.apply(params["cell"], h, normalize(m, o))[0]
    folded = cell.apply(fold_input_normalization(params["cell"], m), h, o)[0]
    np.testing.assert_allclose(folded, direct, rtol=1e-5, atol=1e-6)
    # hand check of the normaliser: (o − μ)/sqrt(σ² + 1e-8)
    np.testing.assert_allclose(normalize(m, o), (np.array([0.8, -0.6, 4.0]) - [0.3, -0.2, 1.5]) / np.sqrt(
        np.array([0.5, 0.4, 9.0]) + 1e-8), rtol=1e-6)


def test_discounted_returns_reset_after_episode_ends():
    from jaxrnn.rules.ppo_normalize import discounted_returns

    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    dones = np.array([False, True, False, False, True])
    g, end = discounted_returns(jnp.asarray(r), jnp.asarray(dones), jnp.float32(10.0), 0.5)
    ref, acc = [], 10.0
    for x, d in zip(r, dones):  # VecNormalize: returns = returns·γ + r; returns[dones] = 0
        acc = acc * 0.5 + x
        ref.append(acc)
        acc = 0.0 if d else acc
    np.testing.assert_allclose(g, ref, rtol=1e-6)
    assert float(end) == 0.0


def test_learning_rate_annealing_and_kl_early_stopping(fo_rule):
    rule, _, hp, update, _ = fo_rule
    hp = hp.replace(anneal_updates=jnp.float32(4.0), target_kl=jnp.float32(1e-9))
    state = rule.init(jax.random.PRNGKey(5), hp)
    state = state.replace(step=jnp.int32(3))
    new_state, metrics = update(jax.random.PRNGKey(0), state, hp)
    # lr·(1 − 3/4); the first minibatch step is taken (its KL to the rollout policy is 0), every later one
    # sees KL > 1.5e-9 and the update stops: 1 of 10 epochs × 4 minibatches
    assert float(metrics["learning_rate"]) == pytest.approx(float(hp.learning_rate) / 4, rel=1e-6)
    assert float(metrics["steps_fraction"]) == pytest.approx(1 / 40)
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), new_state.params, state.params)
    assert max(jax.tree.leaves(moved)) > 0
    # without the stop, all 40 steps are taken
    _, metrics = update(jax.random.PRNGKey(0), state, hp.replace(target_kl=jnp.float32(0.0)))
    assert float(metrics["steps_fraction"]) == 1.0

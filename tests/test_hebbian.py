"""Miconi's node-perturbation rule: one update and validation vs NumPy, trace/baseline/clip in
numbers, learning RDM to criterion, and the population runner (vmapped = alone, divergence isolated).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import population
from jaxrnn.models import CTRNN, LinearReadout
from jaxrnn.population.builders import member_hparams
from jaxrnn.rules import hebbian
from jaxrnn.rules.hebbian import run_trial, update_baseline, weight_change

MICONI = dict(activation="tanh", weight_init="uniform", input_scale=1.0, output="rate")


def _numpy_trial(w_rec, w_in, x0, inputs, xi, *, alpha, a, clamp, kind, length):
    """Miconi (2017) eqs. written out in float64 (b = 0): rates r[T, N] and the trace e[N, N]."""
    def fix(x):
        if clamp:
            x[1], x[10], x[11] = 1.0, 1.0, -1.0
        return x

    x = fix(np.array(x0, np.float64))
    x_bar, e, rates = x.copy(), np.zeros((len(x), len(x))), []
    r = np.tanh(x)
    for t, (u, p) in enumerate(zip(inputs, xi)):
        r_prev = r
        x = fix(x + alpha * (-x + w_rec @ r_prev + w_in @ u + p))
        r = np.tanh(x)
        rates.append(r)
        dx = x - x_bar
        x_bar = a * x_bar + (1 - a) * x
        if 3 <= t < length:  # net.cpp: numiter > 2
            for i in range(len(x)):
                for j in range(len(x)):
                    e[i, j] += (r_prev[j] * dx[i]) ** 3 if kind == "product_cubed" else r_prev[j] * dx[i] ** 3
    return np.array(rates), e


def _f64(tree):
    return jax.tree.map(lambda v: np.asarray(v, np.float64), tree)


@pytest.mark.parametrize("clamp,kind", [(True, "product_cubed"), (False, "delta_cubed")])
def test_run_trial_matches_numpy_given_the_perturbations(clamp, kind):
    n, steps = (12, 10) if clamp else (4, 8)
    task, tp = jaxrnn.make("rdm", num_steps=steps, noise_std=0.3)
    rule = hebbian(CTRNN(n, **MICONI), task, clamp_bias=clamp, eligibility=kind)
    params = jax.jit(rule.init)(jax.random.PRNGKey(1), rule.default_hparams.replace(task=tp)).params
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    inputs = task.sample(keys[0], tp, 1).inputs[0]
    x0 = 0.5 * jax.random.normal(keys[1], (n,))
    xi = 20.0 * jax.random.normal(keys[2], (steps, n)) * (jax.random.uniform(keys[3], (steps, n)) < 0.3)
    trial = jax.jit(functools.partial(run_trial, alpha=0.1, clamp=clamp, eligibility=kind))
    z, e = trial(params, x0, inputs, xi, jnp.int32(steps - 1), jnp.float32(0.05))
    p = _f64(params)["cell"]["params"]
    rates, e_ref = _numpy_trial(p["W_rec"], p["W_in"], x0, np.asarray(inputs, np.float64), np.asarray(xi, np.float64),
                                alpha=0.1, a=0.05, clamp=clamp, kind=kind, length=steps - 1)
    np.testing.assert_allclose(z[:, 0], rates[:, 0], rtol=1e-5, atol=1e-6)  # z = r_0
    np.testing.assert_allclose(e, e_ref, rtol=2e-4, atol=1e-7)
    assert np.abs(e_ref).max() > 1e-2  # the perturbations made a non-trivial trace
    if clamp:
        np.testing.assert_array_equal(e_ref[[1, 10, 11]], 0.0)  # clamped units never learn


def test_weight_change_and_baseline_in_numbers():
    hp = hebbian(CTRNN(4, **MICONI), jaxrnn.make("rdm")[0]).default_hparams.replace(
        learning_rate=jnp.float32(0.01), max_dw=jnp.float32(1e-3))
    e = jnp.array([[2.0, -1e-3], [0.05, 0.0]])
    # ΔJ = clip(−η e (err − R̄)) with err − R̄ = 0.3: −6e-3 → clipped to −1e-3; 3e-6; −1.5e-4; 0
    np.testing.assert_allclose(weight_change(e, 0.5, 0.2, hp), [[-1e-3, 3e-6], [-1.5e-4, 0.0]], rtol=1e-5)
    # net.cpp's extra factor R̄_k = 0.2
    np.testing.assert_allclose(weight_change(e, 0.5, 0.2, hp, True), [[-1e-3, 6e-7], [-3e-5, 0.0]], rtol=1e-5)
    # R̄_1 ← 0.75·0.4 + 0.25·0.8 = 0.5; R̄_0 unchanged
    np.testing.assert_allclose(update_baseline(jnp.array([0.1, 0.4]), 1, 0.8, 0.75), [0.1, 0.5], rtol=1e-6)


def test_one_update_and_evaluate_match_numpy():
    n, steps, alpha = 12, 14, 0.1
    task, tp = jaxrnn.make("rdm", num_steps=steps, noise_std=0.5)
    rule = hebbian(CTRNN(n, alpha=alpha, **MICONI), task, num_validation_trials=6)
    hp = rule.default_hparams.replace(
        task=tp, perturb_prob=jnp.float32(0.2), perturb_size=jnp.float32(1.5), learning_rate=jnp.float32(0.05),
        max_dw=jnp.float32(2e-3), warmup_trials=jnp.int32(0), eval_window=jnp.int32(5))
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), hp)
    state = state.replace(baseline=jnp.array([0.6, 0.9], jnp.float32))
    key = jax.random.PRNGKey(7)
    update, evaluate = jax.jit(rule.update), jax.jit(rule.evaluate)
    new, metrics = update(key, state, hp)

    # the network as analysis sees it: W_out = e_0 on the rate, no input to the output unit
    net = rule.network(new)
    assert set(net["cell"]["params"]) == {"W_in", "W_rec", "b"} and set(net["readout"]["params"]) == {"W_out"}
    np.testing.assert_array_equal(net["readout"]["params"]["W_out"], np.eye(n)[:1])
    np.testing.assert_array_equal(net["cell"]["params"]["W_in"][0], 0.0)

    # re-derive the trial, x_0 and perturbations from the update key (the documented split order)
    key_trial, key_x0, key_perturb = jax.random.split(jax.random.split(key, 1)[0], 3)
    trials = jax.device_get(task.sample(key_trial, tp, 1))
    x0 = 0.1 * np.asarray(jax.random.uniform(key_x0, (n,), jnp.float32, -1.0, 1.0), np.float64)
    v = np.asarray(jax.random.uniform(key_perturb, (steps, n)), np.float64)
    hit = v < np.float32(0.2)
    hit[:4] = False  # net.cpp: numiter > 3
    xi = np.where(hit, 1.5 / alpha * (2 * v / np.float32(0.2) - 1), 0.0)  # one draw: hit iff v < p, size 2v/p - 1
    p = _f64(state.params)["cell"]["params"]
    rates, e = _numpy_trial(p["W_rec"], p["W_in"], x0, trials.inputs[0].astype(np.float64), xi, alpha=alpha, a=0.05,
                            clamp=True, kind="product_cubed", length=steps)
    s = trials.targets[0, -1, 0]
    err = np.mean(np.abs(rates[-5:, 0] - s))
    k = int(s > 0)
    np.testing.assert_allclose(metrics["loss"], err, rtol=1e-5)
    raw = -0.05 * [0.6, 0.9][k] * e * (err - [0.6, 0.9][k])  # default: net.cpp's extra factor R̄_k
    dw = np.clip(raw, -2e-3, 2e-3)
    clipped = np.abs(raw) > 2e-3
    assert 0 < clipped.sum() < np.sum(raw != 0)  # both regimes occur
    np.testing.assert_allclose(new.params["cell"]["params"]["W_rec"] - p["W_rec"], dw, rtol=2e-3, atol=2e-8)
    baseline = [0.6, 0.9]
    baseline[k] = 0.75 * baseline[k] + 0.25 * err
    np.testing.assert_allclose(new.baseline, baseline, rtol=1e-5)
    assert int(new.trial) == 1
    for name in ("W_in", "b"):
        np.testing.assert_array_equal(new.params["cell"]["params"][name], state.params["cell"]["params"][name])

    # warm-up: the baseline learns but J does not
    frozen, _ = update(key, state, hp.replace(warmup_trials=jnp.int32(1)))
    np.testing.assert_array_equal(frozen.params["cell"]["params"]["W_rec"], state.params["cell"]["params"]["W_rec"])
    np.testing.assert_allclose(frozen.baseline, baseline, rtol=1e-5)

    # evaluate: BPTT's validation set, no perturbation, accuracy = sign of r_0 at the last step
    val_key = jax.random.PRNGKey(3)
    result = evaluate(val_key, new, hp)
    key_trials, key_x0 = jax.random.split(val_key)
    val = jax.device_get(task.validation_trials(key_trials, tp, 6))
    x0s = 0.1 * np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (n,), jnp.float32, -1, 1))(
        jax.random.split(key_x0, 6)), np.float64)
    q = _f64(new.params)["cell"]["params"]
    correct, errors = [], []
    for x0_b, u, y in zip(x0s, val.inputs, val.targets):
        r, _ = _numpy_trial(q["W_rec"], q["W_in"], x0_b, u.astype(np.float64), np.zeros((steps, n)), alpha=alpha,
                            a=0.05, clamp=True, kind="product_cubed", length=steps)
        correct.append(np.sign(r[-1, 0]) == y[-1, 0])
        errors.append(np.mean(np.abs(r[-5:, 0] - y[-1, 0])))
    np.testing.assert_allclose(result["accuracy"], np.mean(correct), atol=1e-6)
    np.testing.assert_allclose(result["loss"], np.mean(errors), rtol=1e-5)


def test_readout_option_and_bad_structure_fail_early():
    task, tp = jaxrnn.make("cdi", num_steps=6)
    rule = hebbian(CTRNN(4, **MICONI), task, output="readout", readout=LinearReadout(1, scale=0.3))
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), rule.default_hparams.replace(task=tp))
    assert state.baseline.shape == (4,)  # CDI: context × target sign
    assert np.abs(state.params["readout"]["params"]["W_out"]).min() > 0
    assert np.abs(state.params["cell"]["params"]["W_in"][0]).min() > 0  # only unit-0 output zeroes W_in[0]
    for kwargs, field in [({"activation": "shifted_tanh", "output": "rate"}, "model.activation"),
                          ({"activation": "tanh"}, "model.output")]:
        with pytest.raises(ValueError, match=field):
            hebbian(CTRNN(4, **kwargs), task)
    with pytest.raises(ValueError, match="rule.clamp_bias"):
        hebbian(CTRNN(8, **MICONI), task, clamp_bias=True)
    with pytest.raises(ValueError, match="rule.perturb_prob"):
        population.from_dict({"task": {"name": "rdm"}, "rule": {"name": "hebbian", "perturb_prob": 1.5}})


MODEL = {"hidden": 12, **MICONI, "gain": 1.5}


@pytest.fixture(scope="module")
def mixed_population():
    """8 members (2 seeds × 2 noise levels × 2 learning rates); η = 1e30 with a 3e38 clip diverges."""
    config = population.from_dict({
        "run": {"num_updates": 12, "eval_every": 3, "chunk_updates": 6, "snapshots": 3,
                "snapshot_spacing": "linear", "stop_threshold": 2.0},
        "task": {"name": "rdm", "num_steps": 20, "noise_std": [0.1, 1.0]},
        "model": MODEL,
        "rule": {"name": "hebbian", "trials_per_update": 2, "num_validation_trials": 40, "warmup_trials": 0,
                 "eval_window": 10, "perturb_prob": 0.05, "max_dw": 3e38, "learning_rate": [0.05, 1e30]},
        "grid": {"seeds": [0, 5]},
    })
    return config, population.run(config, quiet=True)


@functools.cache
def _lone_rule():
    rule = hebbian(CTRNN(12, **MICONI), jaxrnn.make("rdm", num_steps=20)[0], readout=LinearReadout(1),
                   trials_per_update=2, num_validation_trials=40)
    return rule, jax.jit(rule.init), jax.jit(rule.update)


def _train_alone(member):
    """The reference: one member, a plain Python loop of jitted un-vmapped updates (stops at a NaN)."""
    rule, init, update = _lone_rule()
    hp = member_hparams(rule, member.task, member.model, member.rule)
    init_key, train_key = population.member_keys(member.seed)
    state, losses = init(init_key, hp), []
    for u in range(12):
        new, metrics = update(population.update_key(train_key, jnp.int32(u)), state, hp)
        losses.append(float(metrics["loss"]))
        if not all(np.all(np.isfinite(x)) for x in jax.tree.leaves((new, metrics))):
            break
        state = new
    return state, np.array(losses)


def test_population_equals_members_trained_alone(mixed_population):
    config, ds = mixed_population
    for member in config.members():
        if member.rule["learning_rate"] > 1:
            continue
        state, losses = _train_alone(member)
        np.testing.assert_allclose(ds.loss.values[member.index], losses, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(ds["params.cell.W_rec"].values[member.index, -1],
                                   state.params["cell"]["params"]["W_rec"], rtol=2e-5, atol=1e-6)
        assert ds.seed.values[member.index] == member.seed
        assert ds["task.noise_std"].values[member.index] == member.task["noise_std"]
        assert ds["rule.learning_rate"].values[member.index] == member.rule["learning_rate"]


def test_diverging_member_is_flagged_frozen_and_isolated(mixed_population):
    # isolation: the healthy members equal their lone runs (previous test); here the diverging ones
    config, ds = mixed_population
    huge = np.array([m.rule["learning_rate"] > 1 for m in config.members()])
    np.testing.assert_array_equal(ds.diverged.values, huge)
    for member in config.members():
        if not huge[member.index]:
            continue
        state, losses = _train_alone(member)
        bad = ds.loss.values[member.index]
        first_bad = len(losses) - 1  # the update whose new state was non-finite
        np.testing.assert_allclose(bad[:first_bad + 1], losses, rtol=2e-5, atol=1e-6)
        assert np.all(np.isnan(bad[first_bad + 1:]))  # frozen: no further updates
        final = ds["params.cell.W_rec"].values[member.index, -1]  # the last finite state was kept
        np.testing.assert_allclose(final, state.params["cell"]["params"]["W_rec"], rtol=2e-5, atol=1e-6)


def test_hebbian_learns_rdm_to_criterion():
    """RDM, noise std 0.1, 150-step trials, N = 50 (α = 0.1), W_in ~ U(−3, 3), g = 1.5, the rule's
    default (Miconi) constants. Budget: 12,000 trials per member (24 updates × 500 trials),
    validated on 200 trials every 1,000; a member stops when 3 validations in a row are ≥ 0.9.
    Seeds 0 and 1 meet it after ~7,000–8,000 trials; the test trains seed 0 alone (one member is
    half the CPU of two; the population runner's vmap is tested by the mixed population above).
    Of seeds 0–7, seven reach it within 24,000 trials; seed 2 does not move in 30,000 (its output unit
    starts saturated at r_0 ≈ −0.96, where the |z − s| error gives the rule almost no signal).
    """
    config = population.from_dict({
        "run": {"num_updates": 24, "eval_every": 2, "chunk_updates": 8, "stop_window": 3, "snapshots": 0},
        "task": {"name": "rdm", "num_steps": 150, "noise_std": 0.1},
        "model": {"hidden": 50, **MICONI, "input_scale": 3.0, "gain": 1.5},
        "rule": {"name": "hebbian", "trials_per_update": 500, "num_validation_trials": 200},
        "grid": {"seeds": [0]},
    })
    ds = population.run(config, quiet=True)
    assert np.all(ds.converged_update.values > 0), ds.val_accuracy.values
    assert np.all(ds.val_accuracy.values[:, 0] < 0.6)  # learnt, not born solved

"""Closed- and open-loop rules (Ger & Barak 2025) against NumPy references, and training to stability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import population
from jaxrnn.analysis.closed_loop import joint_matrix, spectral_radius
from jaxrnn.models import CTRNN
from jaxrnn.population.builders import build_rule, member_hparams
from jaxrnn.rules import closed_loop, open_loop
from jaxrnn.rules.controller import Episodes, closed_loop_cost, default_readout, sample_episodes

A = np.array([[1.0, 1.0], [0.0, 1.0]])
B = np.array([[0.0], [1.0]])


def _cell(n, **kw):
    return CTRNN(n, **{"alpha": 1.0, "activation": "tanh", "output": "rate", "use_bias": False,
                       "weight_init": "ger_barak", **kw})


def _np(params):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    return p["cell"]["params"]["W_in"], p["cell"]["params"]["W_rec"], p["readout"]["params"]["W_out"]


def _numpy_cost(w_in, w_rec, w_out, x0, reg_u, T, call_at_zero=False):
    """The authors' loop (SPECS §1.3), row convention, float64: returns (total, state part)."""
    x, h = x0.copy(), np.zeros((x0.shape[0], w_rec.shape[0]))
    total = state = 0.0
    for t in range(T):
        if t == 0 and not call_at_zero:
            u = np.zeros((x.shape[0], 1))
        else:
            h = np.tanh(h @ w_rec.T + x[:, :1] @ w_in.T)
            u = h @ w_out.T
        state += np.mean(x**2)
        total += np.mean(x**2) + reg_u * np.sum(u**2)  # dt = 1
        x = x @ A.T + u @ B.T
    return total, state


def _numpy_controls(w_in, w_rec, w_out, ys):
    """Controls ``[B, T, 1]`` of the rate RNN on inputs ``ys[B, T, 1]``, called every step."""
    h, us = np.zeros((ys.shape[0], w_rec.shape[0])), []
    for t in range(ys.shape[1]):
        h = np.tanh(h @ w_rec.T + ys[:, t] @ w_in.T)
        us.append(h @ w_out.T)
    return np.stack(us, axis=1)


def test_closed_loop_update_matches_finite_difference_sgd_step():
    plant, tp = jaxrnn.make("double-integrator")
    rule = closed_loop(_cell(3), plant, batch=4, num_steps=5)
    hp = rule.default_hparams.replace(gain=jnp.float32(1.5), learning_rate=jnp.float32(0.05),
                                      max_grad_norm=jnp.float32(0.5), reg_u=jnp.float32(0.1))
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), hp)
    key = jax.random.PRNGKey(3)
    new_state, metrics = jax.jit(rule.update)(key, state, hp)

    x0 = np.asarray(sample_episodes(key, plant, tp, 4).x0, np.float64)  # the rule's draw
    assert np.all(np.abs(x0) <= 1.0) and x0.shape == (4, 2)
    mats = list(_np(state.params))
    loss, state_part = _numpy_cost(*mats, x0, 0.1, 5)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["state_cost"], state_part, rtol=1e-5)
    grads, eps = [np.zeros_like(m) for m in mats], 1e-6
    for k, m in enumerate(mats):
        for idx in np.ndindex(m.shape):
            plus, minus = [a.copy() for a in mats], [a.copy() for a in mats]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            grads[k][idx] = (_numpy_cost(*plus, x0, 0.1, 5)[0] - _numpy_cost(*minus, x0, 0.1, 5)[0]) / (2 * eps)
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    np.testing.assert_allclose(metrics["grad_norm"], norm, rtol=1e-4)
    assert norm > 0.5  # the clip is active
    scale = min(1.0, 0.5 / norm)
    for new, old, g in zip(_np(new_state.params), mats, grads):
        np.testing.assert_allclose(new, old - 0.05 * scale * g, rtol=1e-4, atol=1e-7)
    assert int(new_state.step) == 1


def test_u0_is_zero_and_reg_u_sums_over_the_batch():
    plant, tp = jaxrnn.make("double-integrator")
    cell = _cell(3)
    rule = closed_loop(cell, plant, batch=3, num_steps=6)
    params = jax.jit(rule.init)(jax.random.PRNGKey(1), rule.default_hparams.replace(gain=jnp.float32(1.5))).params
    ep = sample_episodes(jax.random.PRNGKey(2), plant, tp, 3)
    head = default_readout(cell, 1)
    cost_fn = jax.jit(lambda e, beta, task: closed_loop_cost(cell, head, plant, params, e, task, beta, 6))
    cost = lambda e, beta, task=tp: cost_fn(e, jnp.float32(beta), task)  # noqa: E731
    x0 = np.asarray(ep.x0, np.float64)
    mats = _np(params)
    # u_0 = 0: equals the reference loop that skips the controller at t = 0, not the one that calls it
    total, state_part = cost(ep, 0.0)
    np.testing.assert_allclose(total, _numpy_cost(*mats, x0, 0.0, 6)[0], rtol=1e-5)
    assert abs(_numpy_cost(*mats, x0, 0.0, 6, call_at_zero=True)[0] - float(total)) > 1e-3
    # the state part is a mean over trials: duplicating every trial leaves it unchanged,
    # the control part is a sum over trials: it doubles
    doubled = Episodes(jnp.concatenate([ep.x0, ep.x0]), None, jnp.concatenate([ep.noise_keys, ep.noise_keys]))
    beta = 0.3
    control = float(cost(ep, beta)[0] - cost(ep, 0.0)[0])
    np.testing.assert_allclose(cost(doubled, 0.0)[0], total, rtol=1e-6)
    np.testing.assert_allclose(float(cost(doubled, beta)[0] - cost(doubled, 0.0)[0]), 2 * control, rtol=1e-5)
    ref_control = _numpy_cost(*mats, x0, beta, 6)[0] - _numpy_cost(*mats, x0, 0.0, 6)[0]
    np.testing.assert_allclose(control, ref_control, rtol=1e-4)
    # episode length T < num_steps masks the later steps
    short = tp.replace(max_steps_in_episode=jnp.int32(4))
    np.testing.assert_allclose(cost(ep, beta, short)[0], _numpy_cost(*mats, x0, beta, 4)[0], rtol=1e-5)


def test_tracking_cost_matches_numpy():
    plant, tp = jaxrnn.make("tracking-2d", num_samples=12)
    cell = CTRNN(3, alpha=0.1, activation="linear", output="rate", use_bias=False, weight_init="uniform",
                 input_scale=0.5)
    rule = closed_loop(cell, plant, batch=2, num_steps=8)
    hp = rule.default_hparams.replace(gain=jnp.float32(1.0))
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), hp)
    params = state.params
    w_in, w_rec, w_out = _np(params)
    ep = sample_episodes(jax.random.PRNGKey(4), plant, tp, 2)
    loss, _ = jax.jit(lambda p: closed_loop_cost(cell, default_readout(cell, 2), plant, p, ep, tp, 0.0, 8))(params)
    dt, total = 0.1, 0.0
    a = np.kron(np.eye(2), [[1, dt], [0, 1]])
    b = np.kron(np.eye(2), [[0], [dt]])
    s, h = np.asarray(ep.x0, np.float64), np.zeros((2, 3))
    ref = np.asarray(ep.reference, np.float64)
    for i in range(8):
        obs = np.concatenate([s[:, ::2], ref[:, i]], axis=1)
        h = h + 0.1 * (-h + h @ w_rec.T + obs @ w_in.T)  # the authors' leaky linear rate RNN
        s = np.clip(s @ a.T + (h @ w_out.T) @ b.T, -10, 10)
        total += np.mean(np.sum((s[:, ::2] - ref[:, i]) ** 2, axis=1)) * dt / 8
    np.testing.assert_allclose(loss, total, rtol=1e-5)
    # the tracking default freezes W_in (the authors' closed loop)
    new_state, _ = jax.jit(rule.update)(jax.random.PRNGKey(5), state, hp)
    np.testing.assert_array_equal(new_state.params["cell"]["params"]["W_in"], params["cell"]["params"]["W_in"])
    assert np.any(new_state.params["readout"]["params"]["W_out"] != params["readout"]["params"]["W_out"])


@pytest.mark.parametrize("white_noise", [True, False])
def test_open_loop_loss_matches_numpy(white_noise):
    plant, tp = jaxrnn.make("double-integrator")
    cell = _cell(3)
    closed = closed_loop(cell, plant, batch=3, num_steps=6)
    closed_init = jax.jit(closed.init)
    teacher = closed_init(jax.random.PRNGKey(9), closed.default_hparams.replace(gain=jnp.float32(2.0))).params
    teacher = jax.tree.map(lambda w: 5.0 * w, teacher)
    rule = open_loop(cell, plant, teacher, batch=3, num_steps=6, white_noise=white_noise)
    hp = rule.default_hparams
    state = jax.jit(rule.init)(jax.random.PRNGKey(0), hp)
    # the student is the closed-loop member's initial network (same key and gain)
    jax.tree.map(np.testing.assert_array_equal, state.params,
                 closed_init(jax.random.PRNGKey(0), closed.default_hparams).params)
    key = jax.random.PRNGKey(6)
    new_state, metrics = jax.jit(rule.update)(key, state, hp)
    s, t = _np(state.params), _np(teacher)
    if white_noise:
        ys = np.asarray(jax.random.normal(key, (3, 6, 1)), np.float64)
        us, ut = _numpy_controls(*s, ys), _numpy_controls(*t, ys)
    else:  # teacher-driven plant, u_0 = 0 for both
        x = np.asarray(sample_episodes(key, plant, tp, 3).x0, np.float64)
        hs, ht, us, ut = np.zeros((3, 3)), np.zeros((3, 3)), [np.zeros((3, 1))], [np.zeros((3, 1))]
        x = x @ A.T
        for _ in range(1, 6):
            hs, ht = np.tanh(hs @ s[1].T + x[:, :1] @ s[0].T), np.tanh(ht @ t[1].T + x[:, :1] @ t[0].T)
            us.append(hs @ s[2].T)
            ut.append(ht @ t[2].T)
            x = x @ A.T + ut[-1] @ B.T
        us, ut = np.stack(us, 1), np.stack(ut, 1)
    np.testing.assert_allclose(metrics["loss"], np.sum(np.mean((us - ut) ** 2, axis=(0, 2))), rtol=1e-5)
    # the teacher does not move, the student does
    jax.tree.map(np.testing.assert_array_equal, new_state.teacher, state.teacher)
    assert not np.allclose(new_state.params["cell"]["params"]["W_rec"], state.params["cell"]["params"]["W_rec"])


PAPER = {  # N = 100, tanh, g = 0.1, SGD 1e-2, clip 1, T = 50, batch 100, all matrices trained
    "run": {"num_updates": 200, "eval_every": 10, "chunk_updates": 200, "snapshots": 2,
            "snapshot_spacing": "linear", "stop_metric": "test_cost", "stop_threshold": float("inf")},
    "task": {"name": "double-integrator"},
    "model": {"cell": "ctrnn", "hidden": 100, "activation": "tanh", "alpha": 1.0, "weight_init": "ger_barak",
              "output": "rate", "use_bias": False, "gain": 0.1},
    "rule": {"name": "closed_loop", "optimizer": "sgd", "learning_rate": 1e-2, "max_grad_norm": 1.0,
             "batch": 100, "trainable": ["W_in", "W_rec", "W_out"]},
    "grid": {"seeds": [0, 1, 2]},
}


def test_paper_configuration_stabilises_every_seed_and_population_equals_loop(tmp_path):
    """200 updates (the paper's run stabilises after ~130 epochs) of 3 seeds."""
    config = population.from_dict(PAPER)
    ds = population.run(config, out=tmp_path, quiet=True)
    test_cost = ds.val_test_cost.values
    assert not ds.diverged.any()
    plant, tp = jaxrnn.make("double-integrator")
    a, b, c = plant.matrices(tp)
    radius = lambda i, s: spectral_radius(joint_matrix(  # noqa: E731
        a, b, c, *(ds[f"params.{n}"].values[i, s] for n in ("cell.W_in", "cell.W_rec", "readout.W_out"))))
    rule, _ = build_rule(config.members()[0].task, config.members()[0].model, config.members()[0].rule)
    init, evaluate = jax.jit(rule.init), jax.jit(rule.evaluate)
    val_key = population.runner.validation_key(config.run)
    for member in config.members():
        i = member.index
        hp = member_hparams(rule, member.task, member.model, member.rule)
        initial = evaluate(val_key, init(population.member_keys(member.seed)[0], hp), hp)["test_cost"]
        assert test_cost[i, -1] < 0.01 * initial and test_cost[i, -1] < test_cost[i, 0]
        assert radius(i, 0) > 0.99  # the initial loop is (marginally) unstable: the double integrator's λ = 1
        assert radius(i, -1) < 0.95  # stable after training
    # population == one member trained alone with a Python loop of un-vmapped updates
    member = config.members()[1]
    hp = member_hparams(rule, member.task, member.model, member.rule)
    init_key, train_key = population.member_keys(member.seed)
    state = init(init_key, hp)
    update = jax.jit(rule.update)
    losses = []
    for u in range(200):
        state, metrics = update(population.update_key(train_key, jnp.int32(u)), state, hp)
        losses.append(float(metrics["loss"]))
    np.testing.assert_allclose(ds.loss.values[1], losses, rtol=2e-5)
    np.testing.assert_allclose(ds["params.cell.W_rec"].values[1, -1], state.params["cell"]["params"]["W_rec"],
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(test_cost[1, -1], evaluate(val_key, state, hp)["test_cost"], rtol=1e-5)

    # open-loop students taught by these networks, loaded from the store by member index
    students = population.from_dict({
        **PAPER, "run": {**PAPER["run"], "num_updates": 10, "snapshots": 0},
        "rule": {"name": "open_loop", "teacher": str(tmp_path), "teacher_member": [0, 2], "batch": 20},
        "grid": {"seeds": [1]},
    })
    out = population.run(students, quiet=True)
    assert np.all(out.loss.values[:, -1] < out.loss.values[:, 0])
    s_rule, _ = build_rule(students.members()[0].task, students.members()[0].model, students.members()[0].rule)
    s_init = jax.jit(s_rule.init)
    for m in students.members():
        s_state = s_init(init_key, member_hparams(s_rule, m.task, m.model, m.rule))
        for name in ("cell.W_in", "cell.W_rec", "readout.W_out"):
            module, leaf = name.split(".")
            # the teacher is the chosen member's final network, the student its own seed's epoch 0
            np.testing.assert_array_equal(s_state.teacher[module]["params"][leaf],
                                          ds[f"params.{name}"].values[m.rule["teacher_member"], -1])
            np.testing.assert_array_equal(s_state.params[module]["params"][leaf], ds[f"params.{name}"].values[1, 0])


def test_packaged_config_and_bad_values_fail_eagerly():
    config = population.load_config("ger-barak")
    assert config.rule["name"] == "closed_loop"
    axes = config.sweep_axes()
    assert {"task.max_steps_in_episode", "model.gain", "rule.reg_u", "rule.optimizer"} <= set(axes)
    assert len(population.group_members(config)) >= 2  # the optimizer is static
    assert max(axes["task.max_steps_in_episode"]) <= config.rule["num_steps"]
    plant, _ = jaxrnn.make("double-integrator")
    with pytest.raises(ValueError, match="rule.optimizer"):
        closed_loop(_cell(3), plant, optimizer="rmsprop")
    with pytest.raises(ValueError, match="rule.trainable"):
        closed_loop(_cell(3), plant, trainable=("W_foo",))
    with pytest.raises(ValueError, match="rule.teacher"):
        open_loop(_cell(3), plant)
    with pytest.raises(ValueError, match="rule.reg_u"):
        population.from_dict({**PAPER, "rule": {**PAPER["rule"], "reg_u": -1.0}})
    with pytest.raises(ValueError, match="rule.teacher"):
        population.from_dict({**PAPER, "rule": {"name": "open_loop", "teacher": "/nonexistent/run"}})


def test_ger_barak_initialisation_scales():
    """SPECS §1.2: W_in, W_out ~ N(0, 1/N²), W_rec = g·N(0, 1/N); tracking: U(−1/k, 1/k)."""
    n = 400
    plant, _ = jaxrnn.make("double-integrator")
    rule = closed_loop(_cell(n), plant)
    w_in, w_rec, w_out = _np(jax.jit(rule.init)(jax.random.PRNGKey(0), rule.default_hparams.replace(
        gain=jnp.float32(0.5))).params)
    assert w_in.shape == (n, 1) and w_out.shape == (1, n)
    np.testing.assert_allclose([w_in.std(), w_out.std()], [1 / n, 1 / n], rtol=0.12)
    np.testing.assert_allclose(w_rec.std(), 0.5 / np.sqrt(n), rtol=0.02)
    plant, _ = jaxrnn.make("tracking-2d")
    cell = CTRNN(n, alpha=0.1, activation="linear", output="rate", use_bias=False, weight_init="uniform",
                 input_scale=1 / np.sqrt(n))
    rule = closed_loop(cell, plant)
    w_in, _, w_out = _np(jax.jit(rule.init)(jax.random.PRNGKey(0), rule.default_hparams).params)
    for w in (w_in, w_out):
        assert np.abs(w).max() <= 1 / np.sqrt(n) and np.abs(w).max() > 0.95 / np.sqrt(n)

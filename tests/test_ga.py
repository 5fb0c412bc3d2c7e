"""GA: one generation against NumPy, elitism, what mutates, learning RDM/CDI, population runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import population
from jaxrnn.models import CTRNN, LinearReadout
from jaxrnn.population.builders import member_hparams
from jaxrnn.rules import ga

LEAVES = [("cell", "W_in"), ("cell", "W_rec"), ("cell", "b"), ("readout", "W_out")]  # jax.tree order


def _leaf(tree, where):
    return np.asarray(tree[where[0]]["params"][where[1]], np.float64)


def _numpy_losses(individuals, x0, trials, alpha=0.1):
    """The study's forward pass (1 + tanh rates, readout of the state) and first/last-step loss,
    written independently in float64: one loss per individual, averaged over the batch."""
    losses = []
    for w_in, w_rec, b, w_out in individuals:
        per_trial = []
        for inputs, targets, mask in zip(trials.inputs, trials.targets, trials.mask):
            x, total = x0.copy(), 0.0
            for t, u in enumerate(inputs):
                x = (1 - alpha) * x + alpha * (w_rec @ (1 + np.tanh(x)) + w_in @ u + b)
                total += mask[t] * np.sum((w_out @ x - targets[t]) ** 2)
            per_trial.append(total)
        losses.append(np.mean(per_trial))
    return np.array(losses)


def _split(population_tree, size):
    return [[_leaf(population_tree, w)[i] for w in LEAVES] for i in range(size)]


def _one_generation(rule, task, tp, hp, init_key, key, batch, num_parents, noise_width=0):
    """Init, one update, the reported network, and the generation's draws re-derived from
    ``key`` as the rule documents them (trials, x_0, parent slots, mutation noise) — one
    compiled program."""

    def run():
        state = rule.init(init_key, hp)
        new_state, metrics = rule.update(key, state, hp)
        key_trials, key_x0, key_children = jax.random.split(key, 3)
        key_choice, key_noise = jax.random.split(key_children)
        size, hidden = jax.tree.leaves(state.population)[0].shape[:2]
        draws = (task.sample(key_trials, tp, batch), hp.init_state_scale * jax.random.normal(key_x0, (hidden,)),
                 jax.random.randint(key_choice, (size,), 0, num_parents),
                 jax.random.normal(key_noise, (size, noise_width)))
        return state, new_state, metrics, rule.network(new_state), draws

    return jax.device_get(jax.jit(run)())


def test_one_generation_matches_numpy_selection_and_mutation():
    size, parents, sigma = 7, 3, 0.05
    task, tp = jaxrnn.make("rdm", num_steps=9, noise_std=0.5)
    rule = ga(CTRNN(4), task, population_size=size, num_parents=parents, batch=3, num_validation_trials=8)
    hp = rule.default_hparams.replace(task=tp, mutation_std=jnp.float32(sigma))
    state, new_state, metrics, network, (trials, x0, slot, noise) = _one_generation(
        rule, task, tp, hp, jax.random.PRNGKey(0), jax.random.PRNGKey(11), 3, parents, noise_width=4 + 16 + 4)
    old = _split(state.population, size)
    losses = _numpy_losses(old, np.float64(x0), trials)
    np.testing.assert_allclose(metrics["loss"], losses.min(), rtol=1e-5)
    np.testing.assert_allclose(metrics["mean_loss"], losses.mean(), rtol=1e-5)
    top = np.argsort(losses, kind="stable")[:parents]

    evolved = [i for i, where in enumerate(LEAVES) if where[1] != "b"]
    widths = [old[0][i].size for i in evolved]
    assert noise.shape == (size, sum(widths))
    noise = np.float64(noise)
    offsets = dict(zip(evolved, np.cumsum([0] + widths[:-1])))
    new = _split(new_state.population, size)
    for c in range(size):
        parent = top[0] if c == 0 else top[slot[c]]
        for i in range(len(LEAVES)):
            expected = old[parent][i]
            if c > 0 and i in evolved:
                step = noise[c, offsets[i]:offsets[i] + expected.size].reshape(expected.shape)
                np.testing.assert_allclose(new[c][i], expected + sigma * step, rtol=1e-6, atol=1e-7)
            else:  # the elite and every bias are copied bit for bit
                np.testing.assert_array_equal(new[c][i], expected)
    # the reported network is the best individual of the generation just evaluated
    for leaf_index, where in enumerate(LEAVES):
        np.testing.assert_array_equal(_leaf(network, where), old[top[0]][leaf_index])


def test_elitism_best_loss_never_increases_on_a_fixed_batch():
    task, tp = jaxrnn.make("rdm", num_steps=20, noise_std=0.5)
    rule = ga(CTRNN(8), task, population_size=10, num_parents=3, batch=16, num_validation_trials=8)
    hp = rule.default_hparams.replace(task=tp, mutation_std=jnp.float32(0.05))
    state = jax.jit(rule.init)(jax.random.PRNGKey(1), hp)
    key = jax.random.PRNGKey(2)  # the same key every generation: same trials and x_0

    def generation(state, _):
        state, metrics = rule.update(key, state, hp)
        return state, metrics["loss"]

    _, best = jax.jit(lambda s: jax.lax.scan(generation, s, None, length=40))(state)
    best = np.asarray(best)
    assert np.all(np.diff(best) <= 1e-6 * best[:-1]), best
    assert best[-1] < 0.8 * best[0]  # and it does improve


def test_mutation_touches_only_the_named_matrices_and_children_come_from_the_top():
    size, parents, sigma = 40, 5, 0.01
    task, tp = jaxrnn.make("rdm", num_steps=10)
    rule = ga(CTRNN(10), task, population_size=size, num_parents=parents, num_elites=2, batch=8,
              trainable=("W_rec",), num_validation_trials=8)
    hp = rule.default_hparams.replace(task=tp, mutation_std=jnp.float32(sigma))
    state, new_state, _, _, (trials, x0, _, _) = _one_generation(
        rule, task, tp, hp, jax.random.PRNGKey(3), jax.random.PRNGKey(4), 8, parents)
    losses = _numpy_losses(_split(state.population, size), np.float64(x0), trials)
    top = list(np.argsort(losses, kind="stable")[:parents])

    old = {where: _leaf(state.population, where) for where in LEAVES}
    new = {where: _leaf(new_state.population, where) for where in LEAVES}
    steps = []
    for c in range(size):
        # W_in does not mutate here, so it names each child's parent
        matches = [i for i in range(size) if np.array_equal(new[("cell", "W_in")][c], old[("cell", "W_in")][i])]
        assert len(matches) == 1 and matches[0] in top
        parent = matches[0]
        if c < 2:
            assert parent == top[c]  # two elites: the two best parents, unchanged
        for where in LEAVES:
            if where[1] == "W_rec" and c >= 2:
                steps.append((new[where][c] - old[where][parent]) / sigma)
            else:
                np.testing.assert_array_equal(new[where][c], old[where][parent])
    steps = np.concatenate([s.ravel() for s in steps])  # 38 children x 100 weights ~ N(0, 1)
    assert abs(steps.mean()) < 0.05 and abs(steps.std() - 1.0) < 0.05


@pytest.mark.parametrize("task,mutation_std,seed,budget", [("rdm", 0.005, 0, 300), ("cdi", 0.02, 3, 600)])
def test_ga_learns_to_criterion(task, mutation_std, seed, budget):
    """Budget: ≤ 300 (RDM) / 600 (CDI) generations of 20 individuals (N = 20, 50-step trials,
    noise std 0.1, batch 64, 5 parents, 1 elite; σ = 0.005 as the study for RDM, 0.02 for CDI) to
    reach ≥ 90 % on 400 validation trials at 3 successive validations (every 10 generations).
    Seen at this size: RDM seeds 0–2 at 110 / 50 / 70 generations; CDI seeds 0–3 at
    > 1,500 / 620 / 560 / 270 (σ = 0.01: > 1,500 / 430 / 440 / 1,050) — GA on CDI is slow and
    seed-dependent at this scale, so the test names a seed that gets there."""
    config = population.from_dict({
        "run": {"num_updates": budget, "eval_every": 10, "chunk_updates": 50, "stop_window": 3, "snapshots": 0},
        "task": {"name": task, "num_steps": 50, "noise_std": 0.1},
        "model": {"hidden": 20},
        "rule": {"name": "ga", "population_size": 20, "batch": 64, "mutation_std": mutation_std,
                 "num_validation_trials": 400},
        "grid": {"seeds": [seed]},
    })
    ds = population.run(config, quiet=True)
    converged = int(ds.converged_update.values[0])
    accuracies = ds.val_accuracy.values[0]
    assert 0 < converged <= budget, f"{task}: not at 90 % within {budget} generations: {accuracies}"
    assert np.min(accuracies[np.isfinite(accuracies)][-3:]) >= 0.9


SMALL = {"population_size": 6, "num_parents": 2, "batch": 8, "num_validation_trials": 40}


@pytest.fixture(scope="module")
def mixed_run():
    """One population: σ ∈ {0.005, 1e38, 0.05} × seeds {0, 5}; σ = 1e38 overflows the weights."""
    config = population.from_dict({
        "run": {"num_updates": 12, "eval_every": 3, "chunk_updates": 6, "snapshots": 3,
                "snapshot_spacing": "linear", "stop_threshold": 2.0},
        "task": {"name": "cdi", "num_steps": 20, "noise_std": 0.5},
        "model": {"hidden": 8},
        "rule": {"name": "ga", "mutation_std": [0.005, 1e38, 0.05], **SMALL},
        "grid": {"seeds": [0, 5]},
    })
    return config, population.run(config, quiet=True)


def test_population_equals_members_trained_alone(mixed_run):
    """Every healthy member equals the same member trained alone by a plain loop of
    un-vmapped ``rule.update`` calls (so the diverging members beside it changed nothing)."""
    config, ds = mixed_run
    task, _ = jaxrnn.make("cdi", num_steps=20)
    rule = ga(CTRNN(8), task, readout=LinearReadout(1, scale=0.1), **SMALL)
    init, update = jax.jit(rule.init), jax.jit(rule.update)
    for member in config.members():
        if member.rule["mutation_std"] > 1:
            continue
        hp = member_hparams(rule, member.task, member.model, member.rule)
        init_key, train_key = population.member_keys(member.seed)
        state = init(init_key, hp)
        losses = []
        for u in range(12):
            state, metrics = update(population.update_key(train_key, jnp.int32(u)), state, hp)
            losses.append(float(metrics["loss"]))
        np.testing.assert_allclose(ds.loss.values[member.index], losses, rtol=2e-5, atol=1e-6)
        network = rule.network(state)
        for name in ("W_in", "W_rec"):
            np.testing.assert_allclose(ds[f"params.cell.{name}"].values[member.index, -1],
                                       network["cell"]["params"][name], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(ds["params.readout.W_out"].values[member.index, -1],
                                   network["readout"]["params"]["W_out"], rtol=2e-5, atol=1e-6)
        assert ds.seed.values[member.index] == member.seed
        assert ds["rule.mutation_std"].values[member.index] == member.rule["mutation_std"]


def test_diverging_member_is_flagged_frozen_and_isolated(mixed_run):
    _, ds = mixed_run
    assert ds.diverged.values.tolist() == [False, False, True, True, False, False]
    np.testing.assert_array_equal(ds.converged_update.values[2:4], -1)
    for bad in ds.loss.values[2:4]:
        first_bad = int(np.argmax(~np.isfinite(bad)))
        assert np.all(np.isnan(bad[first_bad + 1:]))  # frozen: no further updates
    # the non-finite update was discarded: the stored params stay finite
    assert np.all(np.isfinite(ds["params.cell.W_rec"].values[2:4]))
    assert np.all(np.isfinite(ds.loss.values[[0, 1, 4, 5]]))  # the others never noticed


def test_bad_ga_values_raise_naming_the_field():
    task, _ = jaxrnn.make("rdm", num_steps=10)
    with pytest.raises(ValueError, match=r"rule\.num_parents"):
        ga(CTRNN(4), task, population_size=4, num_parents=5)
    with pytest.raises(ValueError, match=r"rule\.trainable"):
        ga(CTRNN(4), task, trainable=("W_foo",))
    with pytest.raises(ValueError, match=r"rule\.mutation_std"):
        population.from_dict({"task": {"name": "rdm"}, "rule": {"name": "ga", "mutation_std": -1.0}})

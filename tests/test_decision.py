"""Decision tasks against the spec of McMahan et al. (task/williams.py, task/Ncontext.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.tasks import DecisionTask


def _sample(name, batch=4000, **overrides):
    task, params = jaxrnn.make(name, **overrides)
    return task, params, jax.device_get(task.sample(jax.random.PRNGKey(0), params, batch))


@pytest.mark.parametrize("name,channels", [("rdm", 1), ("cdi", 2), ("ncdi-4", 4)])
def test_noise_coherence_context_and_targets(name, channels):
    task, params, trials = _sample(name, noise_std=0.7, num_steps=60)
    inputs = trials.inputs
    assert inputs.shape == (4000, 60, 1 if name == "rdm" else 2 * channels)
    sensory = inputs[..., :channels]
    mean = sensory.mean(axis=1)  # signal s_j * mu plus averaged noise
    residual = sensory - sensory.mean(axis=1, keepdims=True)
    # noise std: residual variance = sigma^2 (T-1)/T
    np.testing.assert_allclose(residual.std() * np.sqrt(60 / 59), 0.7, rtol=0.01)
    # coherence range: |s mu| = |mean| up to noise sigma/sqrt(T)
    assert np.abs(mean).max() <= 0.1857 + 5 * 0.7 / np.sqrt(60)
    label = trials.targets[:, -1, 0]
    assert set(np.unique(label)) == {-1.0, 1.0}
    if name != "rdm":
        cue = inputs[..., channels:]
        np.testing.assert_array_equal(cue.sum(-1), 1.0)  # one-hot on every step
        assert set(np.unique(cue)) == {0.0, 1.0}
        np.testing.assert_array_equal(cue.std(axis=1), 0.0)  # constant over the trial
    # target = sign of the cued channel's mean, checked noise-free
    task0, params0 = jaxrnn.make(name, noise_std=0.0, num_steps=60)
    clean = jax.device_get(task0.sample(jax.random.PRNGKey(1), params0, 2000))
    cued0 = np.zeros(2000, int) if name == "rdm" else clean.inputs[:, 0, channels:].argmax(-1)
    channel_mean = clean.inputs[np.arange(2000), :, cued0].mean(-1)
    nonzero = channel_mean != 0
    np.testing.assert_array_equal(np.sign(channel_mean[nonzero]), clean.targets[nonzero, -1, 0])
    # coherences fill U(0, 0.1857): max close to the bound, roughly uniform
    mu = np.abs(clean.inputs[:, 0, :channels]).max(-1)
    assert 0.18 < mu.max() <= 0.1857 + 1e-6
    np.testing.assert_allclose(mu.mean(), 0.1857 / 2, rtol=0.05)


def test_mask_first_and_last_step_and_trial_length():
    task, params, trials = _sample("rdm", batch=8, num_steps=50, trial_length=30)
    expected = np.zeros(50)
    expected[[0, 29]] = 1
    np.testing.assert_array_equal(trials.mask, np.broadcast_to(expected, (8, 50)))
    np.testing.assert_array_equal(trials.inputs[:, 30:], 0.0)
    np.testing.assert_array_equal(trials.targets[:, 0], 0.0)
    assert np.all(np.abs(trials.targets[:, 29, 0]) == 1)


def test_pulse_variant_switches_sensory_off_and_keeps_cue():
    task, params, trials = _sample("cdi", batch=16, num_steps=40, stimulus_end=10, noise_std=0.3)
    assert np.all(trials.inputs[:, 10:, :2] == 0.0)
    assert np.all(trials.inputs[:, :10, :2] != 0.0)
    np.testing.assert_array_equal(trials.inputs[:, :, 2:].sum(-1), 1.0)


def test_validation_grid_cycles_20_coherences():
    task, params = jaxrnn.make("rdm", noise_std=0.0, num_steps=20)
    trials = jax.device_get(task.validation_trials(jax.random.PRNGKey(0), params, 2000))
    mu = np.abs(trials.inputs[:, 0, 0])
    np.testing.assert_allclose(mu[:20], np.linspace(0, 0.1875, 20), atol=1e-7)
    np.testing.assert_allclose(mu[20:40], mu[:20], atol=1e-7)


def test_accuracy_uses_sign_at_last_step():
    task, params = jaxrnn.make("rdm", num_steps=5, trial_length=4)
    trials = task.sample(jax.random.PRNGKey(0), params, 6)
    target = trials.targets[:, 3, 0]
    outputs = jnp.zeros((6, 5, 1)).at[:, 3, 0].set(target * jnp.array([1, -1, 1, 0, -2, 3.0]))
    outputs = outputs.at[:, 4, 0].set(-target)  # past the trial: ignored
    np.testing.assert_array_equal(task.accuracy(outputs, trials), [1, 0, 1, 1, 0, 1])
    loss = task.loss(outputs, trials)
    expected = np.mean((np.array([1, -1, 1, 0, -2, 3.0]) - 1) ** 2)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_num_contexts_one_is_rejected():
    with pytest.raises(ValueError, match="task.num_contexts"):
        DecisionTask(num_contexts=1)

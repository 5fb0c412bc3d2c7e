"""The documentation's example code (docs/examples/*.py, included in the pages) runs and is right.

- the task of "Write a task" against a hand computation of its trials and accuracy, and a
  population trained on it through the config machinery;
- one update of the rule of "Write a learning rule" against the same step computed by a NumPy
  loop, and its registration checked through config validation;
- the script of "Load stored networks" on a stored run.

The site itself is built by ``.ci/run`` (``mkdocs build --strict``).
"""

import re
import runpy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import population
from jaxrnn.models import CTRNN

from toy_run import toy_run

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))

import delayed_response  # noqa: E402  (registers "delayed-response")
import weight_perturbation as wp  # noqa: E402  (registers "weight_perturbation")


def test_task_example_trials_and_accuracy_by_hand():
    task, params = jaxrnn.make("delayed-response", num_steps=10, pulse_steps=2, noise_std=0.0, pulse=0.7)
    trials = task.sample(jax.random.PRNGKey(0), params, 6)
    signs = np.asarray(trials.targets[:, -1, 0])
    assert set(signs) <= {-1.0, 1.0}
    expected = np.zeros((6, 10, 1))
    expected[:, :2, 0] = 0.7 * signs[:, None]
    np.testing.assert_allclose(trials.inputs, expected, atol=1e-7)
    np.testing.assert_array_equal(trials.mask[0], [1] + [0] * 8 + [1])
    outputs = np.zeros((6, 10, 1))
    outputs[:, -1, 0] = np.where(np.arange(6) < 3, signs, -signs)  # first three right, last three wrong
    np.testing.assert_array_equal(task.accuracy(jnp.asarray(outputs), trials), [1, 1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="task.pulse_steps = 12"):
        jaxrnn.make("delayed-response", num_steps=10, pulse_steps=12)


def test_task_example_population_run(capsys):
    runpy.run_path(str(EXAMPLES / "delayed_response_run.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "[0.5 0.5 1.  1. ]" in printed  # the swept pulse amplitude is a per-member coordinate


def _numpy_loss(W_in, W_rec, b, W_out, inputs, targets, mask, alpha=0.1):
    x = np.zeros((inputs.shape[0], W_rec.shape[0]))
    loss = np.zeros(inputs.shape[0])
    for t in range(inputs.shape[1]):
        x = (1 - alpha) * x + alpha * ((1 + np.tanh(x)) @ W_rec.T + inputs[:, t] @ W_in.T + b)
        loss += mask[:, t] * np.sum((x @ W_out.T - targets[:, t]) ** 2, axis=-1)
    return loss.mean()


def test_rule_example_update_matches_numpy():
    task, task_params = jaxrnn.make("delayed-response", num_steps=8)
    rule = wp.weight_perturbation(CTRNN(5), task, batch=4)
    hp = rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(0.1), perturb_std=jnp.float32(0.05))
    state = rule.init(jax.random.PRNGKey(0), hp)
    key = jax.random.PRNGKey(1)
    new_state, metrics = jax.jit(rule.update)(key, state, hp)
    # the same step by hand: the rule's own key splits give the same trials and perturbation
    key_trials, key_xi = jax.random.split(key)
    trials = jax.tree.map(np.asarray, task.sample(key_trials, task_params, 4))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)
    W_in, W_rec, b = (p["cell"]["params"][k] for k in ("W_in", "W_rec", "b"))
    W_out = p["readout"]["params"]["W_out"]
    xi = 0.05 * np.asarray(jax.random.normal(key_xi, W_rec.shape), np.float64)
    loss = _numpy_loss(W_in, W_rec, b, W_out, trials.inputs, trials.targets, trials.mask)
    loss_xi = _numpy_loss(W_in, W_rec + xi, b, W_out, trials.inputs, trials.targets, trials.mask)
    expected = W_rec - 0.1 * (loss_xi - loss) / 0.05**2 * xi
    np.testing.assert_allclose(float(metrics["loss"]), loss, rtol=1e-5)
    np.testing.assert_allclose(new_state.params["cell"]["params"]["W_rec"], expected, rtol=2e-3, atol=1e-6)
    # registered: a config may name it and sweep its hyper-parameters; bad values fail eagerly
    config = population.from_dict({"task": {"name": "delayed-response"}, "model": {"hidden": 5},
                                   "rule": {"name": "weight_perturbation", "learning_rate": [0.02, 0.05]},
                                   "grid": {"seeds": 2}})
    assert len(config.members()) == 4 and config.sweep_axes() == {"rule.learning_rate": [0.02, 0.05]}
    with pytest.raises(ValueError, match="rule.perturb_std = -1"):
        population.from_dict({"task": {"name": "delayed-response"},
                              "rule": {"name": "weight_perturbation", "perturb_std": -1}})


def test_stored_network_example_runs_on_a_stored_run(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["stored_network.py", str(toy_run())])
    runpy.run_path(str(EXAMPLES / "stored_network.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NetworkSpec(task='rdm'") and lines[0].endswith("update 9")
    accuracy = float(lines[1].split(":")[1])
    assert 0.0 <= accuracy <= 1.0
    assert "fixed point(s); slowest timescale" in lines[2]


def test_docstrings_cite_nothing_outside_the_repository():
    """The package cites papers, the authors' code and in-repo docs — never the project's private
    notes (SPECS.md, DESIGN.md), which a reader of the package does not have."""
    root = Path(jaxrnn.__file__).resolve().parent
    hits = [f"{path.relative_to(root.parent)}:{i}: {line.strip()}"
            for path in sorted(root.rglob("*")) if path.suffix in (".py", ".toml")
            for i, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"\bSPECS\b|DESIGN(\.md|'s)", line)]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)

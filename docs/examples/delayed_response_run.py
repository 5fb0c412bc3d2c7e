"""Train a small population on the new task: 2 pulse amplitudes × 2 seeds, BPTT."""

from jaxrnn import population

import delayed_response  # noqa: F401  (registers "delayed-response")

config = population.from_dict({
    "run": {"name": "delayed", "num_updates": 20, "eval_every": 10, "chunk_updates": 10, "snapshots": 2},
    "task": {"name": "delayed-response", "pulse": [0.5, 1.0], "num_steps": 12},
    "model": {"cell": "ctrnn", "hidden": 8, "alpha": 0.5},
    "rule": {"name": "bptt", "batch": 16, "learning_rate": 0.01, "num_validation_trials": 50},
    "grid": {"seeds": 2},
})
dataset = population.run(config, quiet=True)
print(dataset["task.pulse"].values, dataset["val_accuracy"].values[:, -1])

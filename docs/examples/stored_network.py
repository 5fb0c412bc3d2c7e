"""Reload a stored member's network, run it on new trials, and analyse it.

    python docs/examples/stored_network.py runs/default
"""

import sys

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn.analysis import find_fixed_points, load_network, timescales

run_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/default"
net = load_network(run_dir, member=3)  # snapshot=-1: the member's last finite snapshot
print(net.spec, "snapshot taken at update", net.update)

# new inputs: noise-free validation trials of the member's task
task, params = jaxrnn.make(net.spec.task, noise_std=0.0)
trials = task.validation_trials(jax.random.PRNGKey(0), params, 100)
states, outputs = net.run(trials.inputs)  # [100, T, N] states, [100, T, O] outputs
print("accuracy on noise-free trials:", float(task.accuracy(outputs, trials).mean()))

# fixed points at zero input, started from visited states, and their slowest timescale
step = lambda x, u: net.step(net.params, x, u)  # noqa: E731  (the library's analyses take step(x, u))
starts = states.reshape(-1, net.spec.hidden)[:: states.shape[1] // 4][:16]
fps = find_fixed_points(step, starts, jnp.zeros(net.spec.inputs))
slowest = timescales(fps.eigvals[fps.valid]).max() if fps.valid.any() else float("nan")
print(f"{int(fps.valid.sum())} fixed point(s); slowest timescale {float(slowest):.1f} steps")

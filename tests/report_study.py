"""A two-claim study for the report tests: the study interface of ``jaxrnn.studies`` on a tiny run.

It trains a real (tiny) population, draws a real figure from it and decides its claims from the
stored numbers, so ``jaxrnn reproduce`` and ``jaxrnn report`` are tested end to end without
waiting for a real study's scale.
"""

import tomllib
from pathlib import Path

import numpy as np

from jaxrnn import population
from jaxrnn.plot import plot_final_accuracy
from jaxrnn.studies import check_scale
from jaxrnn.studies.claims import Claim, decide, write_claims

TOY_TOML = """
[run]
name = "toy"
num_updates = 9
eval_every = 3
chunk_updates = 3
snapshots = 2
stop_threshold = 0.7
stop_window = 1
[task]
name = "rdm"
noise_std = [0.1, 1.0]
num_steps = 15
[model]
hidden = 6
[rule]
batch = 4
num_validation_trials = 20
learning_rate = 0.05
[grid]
seeds = 3
"""
FIGURES = {"final_accuracy.png": "Final validation accuracy of the 6 toy networks (3 per noise level).",
           "listed_but_never_drawn.png": "A figure the study lists but did not write."}


def final_accuracy(dataset):
    return np.array([row[np.isfinite(row)][-1] for row in dataset["val_accuracy"].values])


def reproduce(out, *, scale="cpu", quiet=False):
    check_scale(scale)
    out = Path(out)
    config = population.from_dict(tomllib.loads(TOY_TOML))
    dataset = population.run(config, out=out / "runs" / "toy", quiet=True)
    plot_final_accuracy(dataset, out / "final_accuracy.png")
    acc = final_accuracy(dataset)
    noise = dataset["task.noise_std"].values
    gap = float(acc[noise == 0.1].mean() - acc[noise == 1.0].mean())
    claims = [
        Claim(id="noise-hurts", section="1", figure="final_accuracy.png", paper="more noise, lower accuracy",
              statistic="mean final accuracy at noise 0.1 minus at 1.0", value=gap, threshold="> 0", n=len(acc),
              holds=decide(gap, above=0.0)),
        Claim(id="all-learn", section="2", figure="final_accuracy.png", paper="every network learns",
              statistic="mean final accuracy", value=float(acc.mean()), threshold="> 2", n=len(acc),
              holds=decide(float(acc.mean()), above=2.0)),
        Claim(id="not-measured", section="3", figure="", paper="a finding this toy cannot test",
              statistic="none", value=None, threshold="> 0", n=None, holds=None, note="not computed in a toy"),
    ]
    return write_claims(out, "toy-study", scale, "jaxrnn reproduce toy", claims)

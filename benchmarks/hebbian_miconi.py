"""The Hebbian rule on Miconi's own task: does ``jaxrnn.rules.hebbian`` reproduce his learning?

Miconi (2017, eLife), ``selectiveint/net.cpp`` (github ThomasMiconi/BiologicallyPlausibleLearningRNN):
a Mante-Sussillo selective-integration task learned by node perturbation. Everything here is
his setting, run through the package's rule (``baseline_factor=True`` and the cubed product,
as net.cpp):

- network: N = 200, ``J ~ G·N(0, 1)/√N`` with G = 1.5, ``W_in ~ U(−1, 1)`` with row 0 (the
  output unit) zeroed, dt = 1, τ = 30 (α = 1/30), bias units 1, 10, 11 clamped, z = tanh(x_0);
- trial: 700 steps; the sensory inputs (two modalities) are on for steps 1..500,
  ``u = INPUTMULT·(N(0, 1) + s·ALPHABIAS)`` with INPUTMULT = 0.5, ALPHABIAS = 0.5, each modality
  its own random sign; two context inputs (one-hot, on for the whole trial); the target is the
  sign of the attended modality, the error is the mean ``|z − s|`` over the last 200 steps;
- rule: η = 0.01, perturbation probability 0.003 per neuron and step, ±ALPHAMODUL·U(−1, 1) with
  ALPHAMODUL = 30 on the drive (a kick of ≤ 1 on x), x̄ rate 0.05, baseline rate 0.75 per trial
  type (4 types: context × sign), ``|ΔJ| ≤ 2e-4``, no weight change for the first 101 trials.

Differences (not part of what is checked): trial types are drawn at random, not cycled
(``trial % 4``); net.cpp's unused constant "go" input (always 0) is left out; x̄ starts each
trial at x_0 rather than at the previous trial's end (the difference has decayed by 0.05³ before
the first trace step).

Miconi's published curve (``selectiveint/figure_errs_selectiveint.png``, 20 seeds): the median
trial error falls from ~1 to ~0.1 within ~5,000–7,000 trials and stays below ~0.05 after
15,000; ``makefigsingle.py``'s criterion is "95 of 100 successive trials with error < 1".

    python benchmarks/hebbian_miconi.py                      # 4 seeds x 20,000 trials (~25 min, 2 cores)
    python benchmarks/hebbian_miconi.py --seeds 2 --trials 4000   # shorter

Writes ``benchmarks/results/hebbian_miconi-cpu.json`` (``hebbian_miconi_N50-cpu.json`` for
``--hidden 50``: per-seed error curves in blocks of 100 trials, trials to Miconi's criterion,
validation accuracy every ``--eval-every`` trials, wall time and load average) and the PNG
beside it.

Measured (4 seeds, 12,000 trials; load average 15-21 on the shared 2-core box, so the walls are
several times the idle time):

- N = 200 (Miconi's): trials to criterion 665 / 4,328 / 4,242 / 8,281; median error (blocks
  of 100) 0.94 -> 0.12 at 8,000 trials -> 0.05 at 12,000; validation 1.0 for all four. Wall 31 min.
- N = 50 (McMahan's size), same task and constants: 4,569 / never / never / never; validation
  1.0 / 0.63 / 0.78 / 0.76 at 12,000; median error 0.55. Wall 6 min. The rule's speed depends
  strongly on N: McMahan's 50-unit networks need many more trials than Miconi's 200-unit ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrnn.models import CTRNN
from jaxrnn.rules import hebbian
from jaxrnn.tasks.base import Trials
from jaxrnn.tasks.decision import DecisionTask

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "hebbian_miconi-cpu.json"


@struct.dataclass
class MiconiParams:
    """Task params (pytree leaves): trial length, stimulus window [start, end), input scale, bias."""

    trial_length: jax.Array
    stim_start: jax.Array
    stim_end: jax.Array
    input_mult: jax.Array
    bias: jax.Array


class MiconiSelectiveIntegration:
    """Miconi's selectiveint task: inputs ``[mod1, mod2, ctx1, ctx2]`` (``[T, 4]``), target ±1.

    The target is written at the last step only (``mask`` = 1 there): the Hebbian rule reads
    the trial's sign there and its own error window over the last ``eval_window`` steps.
    """

    num_contexts = 2
    input_size = 4
    output_size = 1

    def __init__(self, num_steps: int = 700):
        self.num_steps = num_steps

    @property
    def default_params(self) -> MiconiParams:
        return MiconiParams(trial_length=jnp.int32(self.num_steps), stim_start=jnp.int32(1),
                            stim_end=jnp.int32(501), input_mult=jnp.float32(0.5), bias=jnp.float32(0.5))

    def trial(self, key: jax.Array, params: MiconiParams) -> Trials:
        key_context, key_sign, key_noise = jax.random.split(key, 3)
        context = jax.random.randint(key_context, (), 0, 2)
        signs = jax.random.rademacher(key_sign, (2,), dtype=jnp.float32)
        steps = jnp.arange(self.num_steps)
        on = (steps >= params.stim_start) & (steps < params.stim_end)
        noise = jax.random.normal(key_noise, (self.num_steps, 2), jnp.float32)
        sensory = params.input_mult * (noise + params.bias * signs) * on[:, None]
        cue = jnp.broadcast_to(jax.nn.one_hot(context, 2, dtype=jnp.float32), (self.num_steps, 2))
        last = params.trial_length - 1
        targets = jnp.where(steps == last, signs[context], 0.0)[:, None]
        return Trials(inputs=jnp.concatenate([sensory, cue], -1), targets=targets,
                      mask=(steps == last).astype(jnp.float32))

    def sample(self, key, params, batch):
        return jax.vmap(self.trial, in_axes=(0, None))(jax.random.split(key, batch), params)

    def validation_trials(self, key, params, num_trials=2000):
        return self.sample(key, params, num_trials)

    accuracy = staticmethod(DecisionTask.accuracy)


def criterion_trial(errors: np.ndarray, span: int = 100, count: int = 95) -> int:
    """Miconi's ``crittime``: first trial index where ``count`` of the last ``span`` errors are < 1 (−1: never)."""
    good = np.convolve((errors < 1.0).astype(float), np.ones(span), "valid")
    hits = np.nonzero(good > count)[0]
    return int(hits[0]) if hits.size else -1


def run(seeds: int, trials: int, eval_every: int, validation_trials: int, chunk: int, hidden: int = 200,
        tau: float = 30.0) -> dict:
    task = MiconiSelectiveIntegration()
    cell = CTRNN(hidden, alpha=1.0 / tau, activation="tanh", weight_init="uniform", input_scale=1.0, output="rate")
    rule = hebbian(cell, task, baseline_factor=True, eligibility="product_cubed",
                   num_validation_trials=validation_trials)
    hp = rule.default_hparams.replace(task=task.default_params)  # gain 1.5 and every constant = net.cpp
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    states = jax.jit(jax.vmap(rule.init, in_axes=(0, None)))(keys, hp)

    @jax.jit
    def advance(states, first):
        def one(states, t):
            ks = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
            return jax.vmap(rule.update, in_axes=(0, 0, None))(ks, states, hp)

        states, metrics = jax.lax.scan(one, states, first + jnp.arange(chunk))
        return states, metrics["loss"].T  # [seeds, chunk]

    evaluate = jax.jit(jax.vmap(rule.evaluate, in_axes=(None, 0, None)))
    errors, accuracy, loads = [], [], [os.getloadavg()]
    start = time.perf_counter()
    for first in range(0, trials, chunk):
        states, err = advance(states, jnp.int32(first))
        errors.append(np.asarray(err))
        if (first + chunk) % eval_every == 0:
            acc = np.asarray(evaluate(jax.random.PRNGKey(1), states, hp)["accuracy"])
            accuracy.append({"trial": first + chunk, "accuracy": acc.tolist()})
            loads.append(os.getloadavg())
            print(f"trial {first + chunk:6d}  median error (last {chunk}) "
                  f"{np.median(errors[-1].mean(1)):.3f}  validation accuracy {np.round(acc, 3)}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    wall = time.perf_counter() - start
    errors = np.concatenate(errors, axis=1)  # [seeds, trials]
    blocks = errors[:, : trials // 100 * 100].reshape(seeds, -1, 100).mean(-1)
    return {
        "benchmark": "hebbian_miconi", "command": "python benchmarks/hebbian_miconi.py "
        f"--seeds {seeds} --trials {trials}" + (f" --hidden {hidden}" if hidden != 200 else "")
        + (f" --tau {tau:g}" if tau != 30 else ""), "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__},
        "settings": {"N": hidden, "alpha": 1 / tau, "gain": 1.5, "trial_steps": 700, "stimulus": [1, 501],
                     "input_mult": 0.5, "bias": 0.5, "eval_window": 200, "eta": 0.01, "perturb_prob": 0.003,
                     "perturb_size_on_x": 1.0, "trace_rate": 0.05, "baseline_rate": 0.75, "max_dw": 2e-4,
                     "warmup_trials": 101, "baseline_factor": True, "eligibility": "product_cubed",
                     "validation_trials": validation_trials},
        "seeds": seeds, "trials": trials,
        "error_per_100_trials": blocks.tolist(),
        "median_error_per_100_trials": np.median(blocks, 0).tolist(),
        "trials_to_miconi_criterion": [criterion_trial(e) for e in errors],
        "validation": accuracy, "wall_s": wall, "loadavg": loads,
        "miconi_published": "median error ~1 -> ~0.1 within ~5,000-7,000 trials, < ~0.05 after 15,000 (20 seeds)",
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = np.asarray(result["error_per_100_trials"])
    x = (np.arange(blocks.shape[1]) + 1) * 100
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.fill_between(x, np.percentile(blocks, 25, 0), np.percentile(blocks, 75, 0), color="0.75", label="IQR")
    ax.plot(x, np.median(blocks, 0), "k", label=f"median of {blocks.shape[0]} seeds")
    ax.set(xlabel="trial", ylabel="trial error (mean |z − s|, last 200 steps)", ylim=(0, 2))
    st = result["settings"]
    ax.set_title(f"jaxrnn Hebbian rule on Miconi's selective-integration task (N = {st['N']}, "
                 f"α = 1/{1 / st['alpha']:.0f})", fontsize=9)
    ax.legend(fontsize=8)
    fig.text(0.01, -0.06, "Errors averaged over blocks of 100 trials (Miconi plots single trials). "
             "Compare selectiveint/figure_errs_selectiveint.png:\nmedian ~0.1 by ~5,000-7,000 trials "
             "(20 seeds). Few seeds here: the spread is not a population estimate.", fontsize=7)
    fig.savefig(path, bbox_inches="tight", dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--validation-trials", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=200, help="N (Miconi: 200; McMahan: 50)")
    parser.add_argument("--tau", type=float, default=30.0, help="tau in steps, alpha = 1/tau (Miconi: 30; McMahan: 10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default benchmarks/results/hebbian_miconi[_N<hidden>]-cpu.json)")
    args = parser.parse_args(argv)
    result = run(args.seeds, args.trials, args.eval_every, args.validation_trials, args.chunk, args.hidden, args.tau)
    out = args.out or (RESULTS if args.hidden == 200 else RESULTS.with_name(f"hebbian_miconi_N{args.hidden}-cpu.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot(result, out.with_name(out.name.replace("-cpu.json", ".png")))
    print("trials to Miconi's criterion:", result["trials_to_miconi_criterion"], f"wall {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()

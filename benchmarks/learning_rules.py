"""Learning rules of McMahan et al. (2021) on this CPU: networks to criterion per hour, one GA
generation against the study's PyTorch "super-RNN", and the projected wall time of the full
1,920-network ``mcmahan`` population.

    python benchmarks/learning_rules.py            # full run, ~17 min on 2 cores at load ~4
    python benchmarks/learning_rules.py --quick    # tiny sizes, RDM only: a smoke test (~2-3 min)

Study settings (SPECS §3.1–3.6): CTRNN, N = 50, α = 0.1, trials of T = 750 steps, input noise
std 0.1 (one level, stated in every row), validation on 2,000 trials every ``eval_every = 10``
updates, stop when the min of the last 10 validation accuracies is ≥ 0.9 (the ``mcmahan``
config's ``[run]``). Rules as configured for that study (``examples/learning_rules.py --full``):

- **bptt**: 1 + tanh rates, state read-out, only ``W_rec`` trained, Adam 5e-4, batch 500;
  one update = one Adam step.
- **ga**: same network; 50 (RDM) / 20 (CDI) individuals per member, 5 parents, 1 elite,
  σ = 0.005, 500 trials per generation; one update = one generation.
- **hebbian**: Miconi's node perturbation (tanh rates, ``W_in ~ U(−1, 1)``, g = 1.5, his
  constants), 10 trials per update.
- **full_force**: tanh rates, RLS towards a driven network (ff_alpha 50,000 RDM / 10,000 CDI,
  error_trigger 200); one update = one trial.

What is **measured** (each configuration in its own subprocess, with its peak RSS and the load
average at the measurement; the best of ``--repeats`` timed calls after a warm-up call, except
where a row says ``single call``):

1. *Throughput at the study's settings, population 64* (``kind = "update"`` /
   ``"validation"``): seconds per population-update of ``jax.jit(lax.scan(jax.vmap(rule.update)))``
   over 64 members (the runner's program) and seconds per population-validation
   (``jax.vmap(rule.evaluate)``, 2,000 trials), both built from config dicts through the
   runner's own ``group_members`` / ``prepare``.
2. *Updates to criterion, small runs* (``kind = "to criterion"``): ``jaxrnn.population.run``
   end to end with the stopping criterion on, at a reduced protocol that a 2-core CPU can
   afford (``--criterion-seeds`` seeds, T = 150, 200 validation trials, BPTT batch 100, GA batch
   32, FF error_trigger 40, Hebbian error window 40; every other constant as above, the same
   ``eval_every`` and window). Reported: fraction converged, updates to criterion (median and
   last), wall time including compilation, and the networks to criterion per hour *of that
   small run* — a measurement, but of the reduced protocol.
3. *One GA generation* (``kind = "GA generation"``) at the study's settings for populations of
   1 and 64 members (each member a GA population of 50 / 20 networks, 500 trials, T = 750), and
   the PyTorch reference (``torch_ga_reference.py``) of one generation the study's way: all
   networks of the generation in one dense block-diagonal super-RNN, a Python loop over time,
   truncation selection and mutation. PyTorch runs with 1 thread and its default; a
   ``--torch-probe-steps``-step probe picks the faster, which then times the full generation.
   A second PyTorch variant (the blocks as one batched matmul — not what the study did) is
   reported beside it. Speed-up = PyTorch seconds per generation / (jaxrnn seconds per call / P).
   Before timing, a check runs both on the same weights, trials and ``x_0`` and compares
   the fitness of every network (float32) and the parents selected.

What is **projected** (never measured here; ``measured = False`` in its row, formula stated):

4. *Networks to criterion per hour at population 64, study settings* (``kind = "networks/hour"``):
   ``64·f / W`` with ``W = U·t_update + (U / eval_every)·t_validation``, where ``t_update`` and
   ``t_validation`` are the measured P = 64 seconds of (1), ``f`` the fraction of the small run
   (2) that converged and ``U`` the update at which its last member converged — or its budget,
   if some never did (the runner advances a group in lock-step until every member has stopped,
   so the slowest member sets the wall time). Assumes the study's protocol needs as many updates
   as the small run's.
5. *Wall time of the full ``mcmahan`` population* (1,920 networks: A BPTT+GA × {RDM, CDI} × 3
   noise × 50 seeds; B BPTT+GA × N-CDI 3..6 × 3 × 30; C full-FORCE × {RDM, CDI} × 3 × 50;
   D Hebbian × {RDM, CDI} × 3 × 50) on this CPU: ``Σ_groups (n / 64)·W`` over the groups of
   the packaged config (members counted from ``load_config("mcmahan")``, with their GA
   population, ``run.num_updates`` and ``eval_every``; a built-in table of the same if it cannot
   be read), each group's ``W`` as in (4), two ways: ``to criterion`` — ``U`` from the small runs
   at noise 0.1, a lower bound (higher noise and more contexts need more updates; N-CDI groups
   take the CDI figures) — and ``to budget`` — ``U`` = the group's ``run.num_updates`` (BPTT
   20,000, GA 2,000 generations, full-FORCE 5,000 trials, Hebbian 5,040 updates of 10 trials):
   what the lock-step runner spends if any member of every group misses the criterion. A GA
   generation's time is scaled linearly in the GA networks per member; work is assumed linear
   in members (the CPU is saturated at 64).

The H100 time of the full run is not measured here (no GPU in this session; the script times the
CPU): the JSON says so rather than giving a number.
Writes ``benchmarks/results/learning_rules-cpu.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "learning_rules-cpu.json"
RULES = ("bptt", "ga", "hebbian", "full_force")
TASKS = ("rdm", "cdi")
NOISE_STD = 0.1
POPULATION = 64
GA_POPULATION = {"rdm": 50, "cdi": 20}
EVAL_EVERY, STOP_WINDOW, STOP_THRESHOLD = 10, 10, 0.9
TARGET_GA_SPEEDUP = 3.0
TARGET_H100_MINUTES = 15.0
# This script times the CPU only; the H100 time of the full run is measured with `jaxrnn run mcmahan`.
NO_GPU = shutil.which("nvidia-smi") is None
H100_NOTE = ("not measured: no GPU is lent to this session" if NO_GPU
             else "not measured by this script (it times the CPU): run `jaxrnn run mcmahan` on the GPU")
STUDY = {"steps": 750, "batch": 500, "validation_trials": 2000, "error_window": 200}
SMALL = {"steps": 150, "bptt_batch": 100, "ga_batch": 32, "validation_trials": 200, "error_window": 40}
SMALL_SEEDS = {"bptt": 8, "ga": 8, "hebbian": 8, "full_force": 8}
SMALL_BUDGET = {"bptt": 1500, "ga": 1000, "hebbian": 2000, "full_force": 500}
UPDATE_MEANS = {"bptt": "one Adam step on a batch", "ga": "one generation",
                "hebbian": "10 trials", "full_force": "one trial"}
# The 1,920 networks of the mcmahan config, used when the packaged config cannot be read:
# (sub-population, rule, task, members, GA networks per member, update budget, eval_every).
MCMAHAN = (
    ("A", "bptt", "rdm", 150, None, 20000, 10), ("A", "bptt", "cdi", 150, None, 20000, 10),
    ("A", "ga", "rdm", 150, 50, 2000, 10), ("A", "ga", "cdi", 150, 20, 2000, 10),
    ("B", "bptt", "ncdi", 360, None, 20000, 10), ("B", "ga", "ncdi", 360, 20, 2000, 10),
    ("C", "full_force", "rdm", 150, None, 5000, 10), ("C", "full_force", "cdi", 150, None, 5000, 10),
    ("D", "hebbian", "rdm", 150, None, 5040, 10), ("D", "hebbian", "cdi", 150, None, 5040, 10),
)


# --- configs -------------------------------------------------------------------------------


def config_dict(rule: str, task: str, *, seeds: int, small: bool, num_updates: int = EVAL_EVERY,
                steps: int | None = None, batch: int | None = None, validation_trials: int | None = None) -> dict:
    """The run config of ``rule`` on ``task`` (study settings, or the small-run protocol)."""
    proto = SMALL if small else STUDY
    steps = steps or proto["steps"]
    validation_trials = validation_trials or proto["validation_trials"]
    scale = steps / proto["steps"]  # error windows scale with the trial
    window = max(1, round(proto["error_window"] * scale))
    mcmahan = {"cell": "ctrnn", "hidden": 50, "alpha": 0.1, "activation": "shifted_tanh", "output": "state",
               "weight_init": "mcmahan", "input_scale": 0.5, "readout_scale": 0.1, "gain": 1.0}
    tanh_rate = {"cell": "ctrnn", "hidden": 50, "alpha": 0.1, "activation": "tanh", "output": "rate"}
    if rule == "bptt":
        table = {"name": "bptt", "learning_rate": 5e-4, "trainable": ["W_rec"],
                 "batch": batch or (SMALL["bptt_batch"] if small else STUDY["batch"])}
        model = mcmahan
    elif rule == "ga":
        table = {"name": "ga", "population_size": GA_POPULATION[task], "num_parents": 5, "num_elites": 1,
                 "mutation_std": 0.005, "batch": batch or (SMALL["ga_batch"] if small else STUDY["batch"])}
        model = mcmahan
    elif rule == "hebbian":
        table = {"name": "hebbian", "trials_per_update": 10, "eval_window": window}
        model = {**tanh_rate, "weight_init": "uniform", "input_scale": 1.0, "gain": 1.5}
    elif rule == "full_force":
        table = {"name": "full_force", "error_trigger": window}
        model = tanh_rate
    else:
        raise ValueError(f"rule {rule!r}: one of {RULES}")
    table["num_validation_trials"] = validation_trials
    run = {"name": f"bench-{rule}-{task}", "num_updates": num_updates, "eval_every": EVAL_EVERY,
           "chunk_updates": 100, "stop_metric": "accuracy", "stop_threshold": STOP_THRESHOLD,
           "stop_window": STOP_WINDOW, "snapshots": 0}
    return {"run": run, "task": {"name": task, "noise_std": NOISE_STD, "num_steps": steps},
            "model": model, "rule": table, "grid": {"seeds": seeds}}


# --- helpers --------------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(call, repeats: int, warmup: bool) -> dict:
    """Wall seconds of ``repeats`` calls of ``call()`` (after one untimed call if ``warmup``)."""
    first = None
    if warmup:
        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
    seconds, cpu, loads = [], [], []
    for _ in range(repeats):
        loads.append(os.getloadavg())
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        call()
        seconds.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - cpu0)
    return {"seconds": seconds, "best_s": min(seconds), "median_s": statistics.median(seconds),
            "first_call_s": first, "cores_busy": statistics.median(c / s for c, s in zip(cpu, seconds)),
            "loadavg": loads, "single_call": not warmup and repeats == 1}


def _prepared(cfg: dict):
    from jaxrnn.population import from_dict
    from jaxrnn.population.runner import group_members, prepare

    [members] = group_members(from_dict(cfg, name=cfg["run"]["name"]))
    return prepare(members)


# --- workers (each in its own subprocess) ---------------------------------------------------


def throughput_worker(rule: str, task: str, population: int, updates: int, repeats: int, warmup: bool,
                      do_update: bool, do_validation: bool, steps: int, batch: int | None,
                      validation_trials: int) -> dict:
    """Seconds per population-update and per population-validation at the study's settings."""
    import jax
    import jax.numpy as jnp

    from jaxrnn.population.program import update_key

    cfg = config_dict(rule, task, seeds=population, small=False, steps=steps, batch=batch,
                      validation_trials=validation_trials)
    rule_fns, hparams, init_keys, train_keys = _prepared(cfg)
    states = jax.jit(jax.vmap(rule_fns.init))(init_keys, hparams)
    out = {"rule": rule, "task": task, "population": population, "config": cfg}
    if do_update:
        def train(states, hparams, train_keys, first):
            def one(states, u):
                keys = jax.vmap(update_key, in_axes=(0, None))(train_keys, u)
                states, metrics = jax.vmap(rule_fns.update)(keys, states, hparams)
                return states, metrics["loss"]

            return jax.lax.scan(one, states, first + jnp.arange(updates))

        start = time.perf_counter()
        compiled = jax.jit(train, donate_argnums=(0,)).lower(states, hparams, train_keys, jnp.int32(0)).compile()
        out["update_compile_s"] = time.perf_counter() - start
        box = {"states": states, "u": 0}

        def call():
            box["states"], losses = compiled(box["states"], hparams, train_keys, jnp.int32(box["u"]))
            box["loss"] = jax.block_until_ready(losses)
            box["u"] += updates

        timing = _timed(call, repeats, warmup)
        loss = jax.device_get(box["loss"])
        if not bool(jnp.all(jnp.isfinite(loss))):
            raise RuntimeError(f"{rule} on {task}: non-finite loss {loss}")
        states = box["states"]
        out["update"] = {**timing, "updates_per_call": updates,
                         "seconds_per_population_update": timing["best_s"] / updates,
                         "network_updates_per_s": population * updates / timing["best_s"],
                         "final_loss_mean": float(loss[-1].mean())}
    if do_validation:
        evaluate = jax.jit(jax.vmap(rule_fns.evaluate, in_axes=(None, 0, 0)))
        key = jax.random.PRNGKey(0)
        start = time.perf_counter()
        compiled_eval = evaluate.lower(key, states, hparams).compile()
        out["validation_compile_s"] = time.perf_counter() - start
        box = {}

        def call_eval():
            box["metrics"] = jax.block_until_ready(compiled_eval(key, states, hparams))

        timing = _timed(call_eval, 1, False)
        out["validation"] = {**timing, "seconds_per_population_validation": timing["best_s"],
                             "validation_trials": validation_trials,
                             "accuracy_mean": float(jax.device_get(box["metrics"]["accuracy"]).mean())}
    out["peak_rss_bytes"] = _peak_rss_bytes()
    return out


def criterion_worker(rule: str, task: str, seeds: int, num_updates: int, steps: int, validation_trials: int) -> dict:
    """A small population run to criterion through ``jaxrnn.population.run``."""
    import numpy as np

    from jaxrnn import population

    cfg = config_dict(rule, task, seeds=seeds, small=True, num_updates=num_updates, steps=steps,
                      validation_trials=validation_trials)
    loads = [os.getloadavg()]
    start = time.perf_counter()
    ds = population.run(population.from_dict(cfg, name=cfg["run"]["name"]), quiet=True)
    wall = time.perf_counter() - start
    loads.append(os.getloadavg())
    converged = np.asarray(ds["converged_update"].values)
    times = np.asarray(ds["converged_time"].values) if "converged_time" in ds else np.full(converged.shape, np.nan)
    accuracy = np.asarray(ds["val_accuracy"].values)
    last = [float(row[np.isfinite(row)][-1]) if np.isfinite(row).any() else float("nan") for row in accuracy]
    compile_s = ds.attrs.get("compile_time")
    return {"rule": rule, "task": task, "seeds": seeds, "num_updates": num_updates, "config": cfg,
            "converged_update": converged.tolist(),
            "converged_time_s": [None if np.isnan(t) else float(t) for t in times],
            "diverged": np.asarray(ds["diverged"].values).astype(bool).tolist(),
            "last_val_accuracy": last, "wall_s": wall, "runner_wall_s": float(ds.attrs.get("wall_time", wall)),
            "first_chunk_s": json.loads(compile_s) if isinstance(compile_s, str) else compile_s,
            "loadavg": loads, "peak_rss_bytes": _peak_rss_bytes()}


def check_worker(task: str, batch: int, steps: int) -> dict:
    """jaxrnn's GA fitness vs the PyTorch super-RNN's on the same weights, trials and ``x_0``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import torch_ga_reference as ref

    import jaxrnn
    from jaxrnn.models import LinearReadout
    from jaxrnn.population import from_dict
    from jaxrnn.population.builders import build_cell
    from jaxrnn.population.runner import group_members
    from jaxrnn.rules.ga import population_losses, select_parents

    torch.set_num_threads(1)
    cfg = config_dict("ga", task, seeds=1, small=False, steps=steps, batch=batch)
    rule_fns, hparams, init_keys, _ = _prepared(cfg)
    hp = jax.tree.map(lambda x: x[0], hparams)
    state = jax.jit(rule_fns.init)(init_keys[0], hp)
    task_obj, _ = jaxrnn.make(task, num_steps=steps)
    trials = task_obj.sample(jax.random.PRNGKey(1), hp.task, batch)
    x0 = hp.init_state_scale * jax.random.normal(jax.random.PRNGKey(2), (50,), jnp.float32)
    [members] = group_members(from_dict(cfg, name="check"))  # the member's full model table
    cell = build_cell(members[0].model)
    readout = LinearReadout(1, scale=members[0].model["readout_scale"])
    jax_losses = np.asarray(jax.jit(lambda p, x, t: population_losses(cell, readout, task_obj, p, x, t))(
        state.population, x0, trials))
    params = jax.device_get(state.population)
    w_in = torch.from_numpy(np.asarray(params["cell"]["params"]["W_in"]))
    w_rec = torch.from_numpy(np.asarray(params["cell"]["params"]["W_rec"]))
    w_out = torch.from_numpy(np.asarray(params["readout"]["params"]["W_out"]))
    bias_zero = bool(np.all(np.asarray(params["cell"]["params"]["b"]) == 0))
    inputs = torch.from_numpy(np.moveaxis(np.asarray(trials.inputs), 0, -1).copy())  # [T, M, B]
    targets = torch.from_numpy(np.asarray(trials.targets)[:, -1, 0].copy())
    x0_t = torch.from_numpy(np.asarray(x0))
    with torch.no_grad():
        block = ref.super_rnn_losses(torch, *ref.super_rnn(torch, w_in, w_rec, w_out), x0_t, inputs, targets).numpy()
        batched = ref.batched_losses(torch, w_in, w_rec, w_out, x0_t, inputs, targets).numpy()
    parents_jax = np.asarray(select_parents(jnp.asarray(jax_losses), 5)).tolist()
    parents_torch = np.argsort(block, kind="stable")[:5].tolist()
    diff = np.abs(jax_losses - block)
    return {"task": task, "ga_population": int(w_rec.shape[0]), "batch": batch, "steps": steps,
            "bias_zero": bias_zero, "fitness_jax": jax_losses.tolist(), "fitness_torch": block.tolist(),
            "max_abs_diff": float(diff.max()), "max_rel_diff": float((diff / np.abs(block)).max()),
            "max_abs_diff_batched": float(np.abs(jax_losses - batched).max()),
            "parents_jax": parents_jax, "parents_torch": parents_torch,
            "same_parents": parents_jax == parents_torch,
            "fitness_close": bool(np.allclose(jax_losses, block, rtol=1e-4, atol=1e-5))}


def torch_worker(task: str, variant: str, generations: int, repeats: int, steps: int, batch: int,
                 probe_steps: int, threads: list[int]) -> dict:
    """Seconds per GA generation of the PyTorch reference, at its faster thread setting."""
    sys.path.insert(0, str(HERE))
    import torch

    import torch_ga_reference as ref

    kw = {"population": GA_POPULATION[task], "num_contexts": 0 if task == "rdm" else 2, "batch": batch,
          "variant": variant}
    probes = {}
    for n in threads:  # 0: PyTorch's default (one thread per core)
        torch.set_num_threads(n or os.cpu_count())
        ref.time_generations(1, **kw, num_steps=2)  # warm-up
        probes[n] = {"seconds": ref.time_generations(1, **kw, num_steps=probe_steps, seed=1),
                     "torch_threads": torch.get_num_threads(), "loadavg": os.getloadavg()}
    best = min(probes, key=lambda n: probes[n]["seconds"])
    torch.set_num_threads(best or os.cpu_count())
    seconds, loads = [], []
    for r in range(repeats):
        loads.append(os.getloadavg())
        seconds.append(ref.time_generations(generations, **kw, num_steps=steps, seed=r + 2) / generations)
    return {"task": task, "variant": variant, "ga_population": kw["population"], "steps": steps, "batch": batch,
            "probe_steps": probe_steps, "thread_probes": {str(k): v for k, v in probes.items()},
            "torch_threads": torch.get_num_threads(), "threads_setting": best,
            "seconds_per_generation": seconds, "best_s": min(seconds), "loadavg": loads,
            "peak_rss_bytes": _peak_rss_bytes()}


WORKERS = {"throughput": throughput_worker, "criterion": criterion_worker, "check": check_worker,
           "torch": torch_worker}


# --- driver ---------------------------------------------------------------------------------


def _run_worker(kind: str, timeout: float = 3600.0, **kwargs) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(kwargs)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind} {kwargs} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - start
    return result


def _machine() -> dict:
    sys.path.insert(0, str(HERE))
    from bptt_population import _machine as machine  # CPU model, cores, memory, versions, XLA_FLAGS

    gpu = "none: no accelerator is lent to this session, so the H100 time is not measured" if NO_GPU else "present"
    return {**machine(), "gpu": gpu}


def _say(text: str) -> None:
    print(text, flush=True)


def _lockstep_updates(small: dict) -> int:
    """Updates a lock-step group runs: the last member's convergence, or the budget if any never did."""
    converged = small["converged_update"]
    return max(converged) if all(u >= 0 for u in converged) else small["num_updates"]


def group_seconds(updates: float, update_s: float, validation_s: float, eval_every: int = EVAL_EVERY) -> float:
    """``W = U·t_update + (U / eval_every)·t_validation`` (one population of 64)."""
    return updates * update_s + updates / eval_every * validation_s


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--population", type=int, default=POPULATION, help="members for the throughput rows (64)")
    parser.add_argument("--ga-populations", type=int, nargs="+", default=[1, POPULATION],
                        help="members per GA-generation measurement (each member: 50 / 20 GA networks)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls where a call is short (after a warm-up)")
    parser.add_argument("--criterion-seeds", type=int, default=None,
                        help=f"seeds of every small run to criterion (default per rule: {SMALL_SEEDS})")
    parser.add_argument("--criterion-budget", type=int, default=None,
                        help=f"updates of every small run (default per rule: {SMALL_BUDGET})")
    parser.add_argument("--torch-probe-steps", type=int, default=30, help="steps of the PyTorch thread probe")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 0],
                        help="torch.set_num_threads values to try (0: PyTorch's default); the faster is the reference")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ga", "throughput", "criterion"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, kwargs = args.worker
        result = WORKERS[kind](**json.loads(kwargs))
        print(json.dumps(result))
        return result

    steps, batch, val_trials = STUDY["steps"], STUDY["batch"], STUDY["validation_trials"]
    small_steps, small_val = SMALL["steps"], SMALL["validation_trials"]
    seeds = {r: args.criterion_seeds or SMALL_SEEDS[r] for r in RULES}
    budget = {r: args.criterion_budget or SMALL_BUDGET[r] for r in RULES}
    probe_steps = args.torch_probe_steps
    if args.quick:
        steps, batch, val_trials, small_steps, small_val, probe_steps = 30, 20, 50, 30, 50, 5
        args.population, args.ga_populations, args.repeats, args.tasks = 4, [1, 4], 2, ["rdm"]
        seeds = {r: 2 for r in RULES}
        budget = {r: 20 for r in RULES}
    started = time.perf_counter()
    report = {
        "benchmark": "learning_rules",
        "command": " ".join(["python benchmarks/learning_rules.py", *(argv if argv is not None else sys.argv[1:])]),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": _machine(),
        "loadavg_at_start": os.getloadavg(),
        "protocol": {
            "noise_std": NOISE_STD, "population": args.population, "eval_every": EVAL_EVERY,
            "stop": f"min of the last {STOP_WINDOW} validation accuracies >= {STOP_THRESHOLD}",
            "study_settings": {"steps": steps, "batch": batch, "validation_trials": val_trials,
                               "ga_population": GA_POPULATION, "update_means": UPDATE_MEANS},
            "small_runs": {"steps": small_steps, "validation_trials": small_val, "seeds": seeds, "budget": budget,
                           "bptt_batch": SMALL["bptt_batch"], "ga_batch": SMALL["ga_batch"],
                           "error_window_and_trigger": "scaled with T (200 of 750 -> 40 of 150)"},
            "projection_formula": "networks/hour at P=64 = 64*f / W * 3600 s, "
                                  "W = U*t_update + (U/eval_every)*t_validation",
        },
    }
    rows: list[dict] = []

    # 1. GA generation: jaxrnn vs the study's PyTorch super-RNN -----------------------------------------
    ga = {"check": {}, "jax": [], "torch": []}
    if "ga" not in args.skip and "ga" in args.rules:
        for task in args.tasks:
            check = _run_worker("check", task=task, batch=20, steps=steps)
            ga["check"][task] = check
            _say(f"GA fitness check {task}: largest difference {check['max_abs_diff']:.2e} "
                 f"(relative {check['max_rel_diff']:.2e}), same parents {check['same_parents']}")
        for task in args.tasks:
            for variant in ("block_diagonal", "batched"):
                result = _run_worker("torch", task=task, variant=variant, generations=1,
                                     repeats=1 if variant == "block_diagonal" and not args.quick else args.repeats,
                                     steps=steps, batch=batch, probe_steps=probe_steps, threads=args.torch_threads)
                ga["torch"].append(result)
                _say(f"torch {variant:14s} {task}: {result['best_s']:.2f} s/generation "
                     f"({result['torch_threads']} thread(s), load {result['loadavg'][0][0]:.1f})")
            for members in args.ga_populations:
                big = members > 1 and not args.quick
                result = _run_worker("throughput", rule="ga", task=task, population=members, updates=1,
                                     repeats=1 if big else args.repeats, warmup=not big, do_update=True,
                                     do_validation=False, steps=steps, batch=batch, validation_trials=val_trials)
                ga["jax"].append(result)
                _say(f"jaxrnn GA P={members} {task}: {result['update']['best_s']:.2f} s/call "
                     f"(load {result['update']['loadavg'][0][0]:.1f})")
        rows += _ga_rows(ga)
    report["ga_generation"] = ga

    # 2. throughput at the study's settings, P = 64 -----------------------------------------------------
    throughput = {}
    if "throughput" not in args.skip:
        for rule in args.rules:
            for task in args.tasks:
                reuse = next((r for r in ga["jax"] if r["rule"] == rule and r["task"] == task
                              and r["population"] == args.population), None)
                slow = rule in ("bptt", "ga") and not args.quick  # seconds to minutes per population-update
                result = _run_worker("throughput", rule=rule, task=task, population=args.population,
                                     updates=1 if slow else 2,
                                     repeats=(1 if rule == "ga" else min(args.repeats, 2)) if slow else args.repeats,
                                     warmup=not (slow and rule == "ga"), do_update=reuse is None,
                                     do_validation=True, steps=steps,
                                     batch=batch if rule in ("bptt", "ga") else None, validation_trials=val_trials)
                if reuse is not None:
                    result["update"] = reuse["update"]
                    result["update_from"] = "the GA-generation measurement"
                    result["update_peak_rss_bytes"] = reuse["peak_rss_bytes"]
                throughput[(rule, task)] = result
                _say(f"{rule:10s} {task}: {result['update']['seconds_per_population_update']:.3f} s/update, "
                     f"{result['validation']['seconds_per_population_validation']:.2f} s/validation "
                     f"(P={args.population}, load {result['validation']['loadavg'][0][0]:.1f})")
        rows += _throughput_rows(throughput)
    report["throughput"] = {f"{r}/{t}": v for (r, t), v in throughput.items()}

    # 3. small runs to criterion ------------------------------------------------------------------------
    small = {}
    if "criterion" not in args.skip:
        for rule in args.rules:
            for task in args.tasks:
                result = _run_worker("criterion", rule=rule, task=task, seeds=seeds[rule], num_updates=budget[rule],
                                     steps=small_steps, validation_trials=small_val)
                small[(rule, task)] = result
                done = sum(u >= 0 for u in result["converged_update"])
                _say(f"{rule:10s} {task}: {done}/{result['seeds']} to criterion, updates {result['converged_update']}, "
                     f"wall {result['wall_s']:.1f} s (load {result['loadavg'][0][0]:.1f})")
        rows += _criterion_rows(small, small_steps, small_val)
    report["small_runs"] = {f"{r}/{t}": v for (r, t), v in small.items()}

    # 4. projections ------------------------------------------------------------------------------------
    projected = {}
    for key in throughput:
        if key in small:
            projected[key] = _project(key, throughput[key], small[key], args.population)
    rows += [p["row"] for p in projected.values()]
    report["networks_per_hour_projected"] = {f"{r}/{t}": {k: v for k, v in p.items() if k != "row"}
                                             for (r, t), p in projected.items()}
    mcmahan = _project_mcmahan(throughput, small, args.population)
    report["mcmahan_projection"] = mcmahan
    rows += mcmahan.pop("rows", [])

    report["rows"] = rows
    report["targets"] = _targets(rows, mcmahan)
    report["total_wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    _print_table(rows)
    _say(f"targets: {report['targets']}")
    _say(f"wrote {args.out} in {report['total_wall_s'] / 60:.1f} min")
    return report


# --- rows -----------------------------------------------------------------------------------


def _row(kind: str, **fields) -> dict:
    base = {"kind": kind, "rule": None, "task": None, "population": None, "backend": None, "measured": True,
            "networks_per_hour": None, "network_updates_per_s": None, "seconds": None, "speedup": None,
            "converged": None, "updates_to_criterion": None, "peak_rss_bytes": None, "load_1min": None, "note": None}
    unknown = set(fields) - set(base)
    if unknown:
        raise KeyError(f"unknown row fields {unknown}")
    return {**base, **fields}


def _ga_rows(ga: dict) -> list[dict]:
    rows = []
    reference = {}
    for result in ga["torch"]:
        if result["variant"] == "block_diagonal":
            reference[result["task"]] = result["best_s"]
    for result in ga["torch"]:
        task = result["task"]
        label = "dense block-diagonal super-RNN (the study's way)" if result["variant"] == "block_diagonal" \
            else "blocks as one batched matmul (not the study's way)"
        rows.append(_row("GA generation", rule="ga", task=task, population=1,
                         backend=f"torch, {result['torch_threads']} thread(s)",
                         network_updates_per_s=round(result["ga_population"] / result["best_s"], 3),
                         seconds=round(result["best_s"], 3), peak_rss_bytes=result["peak_rss_bytes"],
                         load_1min=round(result["loadavg"][0][0], 2),
                         note=f"{label}; {result['ga_population']} networks x {result['batch']} trials x "
                              f"{result['steps']} steps; network_updates_per_s = GA network-generations/s; "
                              f"best of {len(result['seconds_per_generation'])}"))
    for result in ga["jax"]:
        task, members, update = result["task"], result["population"], result["update"]
        per_member = update["best_s"] / members
        networks = result["config"]["rule"]["population_size"]
        speedup = reference[task] / per_member if task in reference else None
        batched = next((r["best_s"] for r in ga["torch"] if r["task"] == task and r["variant"] == "batched"), None)
        rows.append(_row("GA generation", rule="ga", task=task, population=members, backend="jaxrnn",
                         network_updates_per_s=round(members * networks / update["best_s"], 3),
                         seconds=round(per_member, 3), speedup=None if speedup is None else round(speedup, 2),
                         peak_rss_bytes=result["peak_rss_bytes"], load_1min=round(update["loadavg"][0][0], 2),
                         note=f"{members} member(s) x {networks} networks in one call; seconds per member-generation; "
                              "network_updates_per_s = GA network-generations/s"
                              + ("; single call" if update["single_call"] else f"; best of {len(update['seconds'])}")
                              + ("" if batched is None else f"; {batched / per_member:.2f}x the batched-matmul torch")))
    for task, check in ga["check"].items():
        rows.append(_row("GA fitness check", rule="ga", task=task, population=1, backend="jaxrnn vs torch",
                         note=f"{check['ga_population']} networks, {check['batch']} trials, {check['steps']} steps: "
                              f"largest fitness difference {check['max_abs_diff']:.1e} "
                              f"(relative {check['max_rel_diff']:.1e}), "
                              f"same 5 parents: {check['same_parents']}"))
    return rows


def _throughput_rows(throughput: dict) -> list[dict]:
    rows = []
    for (rule, task), result in throughput.items():
        update, validation = result["update"], result["validation"]
        rows.append(_row("update", rule=rule, task=task, population=result["population"], backend="jaxrnn",
                         network_updates_per_s=round(update["network_updates_per_s"], 3),
                         seconds=round(update["seconds_per_population_update"], 4),
                         peak_rss_bytes=result.get("update_peak_rss_bytes", result["peak_rss_bytes"]),
                         load_1min=round(update["loadavg"][0][0], 2),
                         note=f"study settings; seconds per population-update ({UPDATE_MEANS[rule]})"
                              + ("; single call" if update["single_call"] else f"; best of {len(update['seconds'])}")
                              + (f"; from {result['update_from']}" if "update_from" in result else "")))
        rows.append(_row("validation", rule=rule, task=task, population=result["population"], backend="jaxrnn",
                         seconds=round(validation["seconds_per_population_validation"], 3),
                         peak_rss_bytes=result["peak_rss_bytes"], load_1min=round(validation["loadavg"][0][0], 2),
                         note=f"{validation['validation_trials']} trials per member; single call"))
    return rows


def _criterion_rows(small: dict, steps: int, validation_trials: int) -> list[dict]:
    rows = []
    for (rule, task), result in small.items():
        converged = [u for u in result["converged_update"] if u >= 0]
        hours = result["wall_s"] / 3600
        batch = result["config"]["rule"].get("batch")
        rows.append(_row("to criterion", rule=rule, task=task, population=result["seeds"], backend="jaxrnn",
                         networks_per_hour=round(len(converged) / hours, 1),
                         seconds=round(result["wall_s"], 1), converged=f"{len(converged)}/{result['seeds']}",
                         updates_to_criterion=(f"median {statistics.median(converged):.0f}, last {max(converged)}"
                                               if converged else f"none in {result['num_updates']}"),
                         peak_rss_bytes=result["peak_rss_bytes"], load_1min=round(result["loadavg"][0][0], 2),
                         note=f"small run: T={steps}, {validation_trials} validation trials"
                              + (f", batch {batch}" if batch else "") + f", budget {result['num_updates']} updates; "
                              "wall includes compilation"))
    return rows


def _project(key: tuple[str, str], throughput: dict, small: dict, population: int) -> dict:
    rule, task = key
    update_s = throughput["update"]["seconds_per_population_update"]
    validation_s = throughput["validation"]["seconds_per_population_validation"]
    converged = sum(u >= 0 for u in small["converged_update"])
    fraction = converged / small["seeds"]
    updates = _lockstep_updates(small)
    seconds = group_seconds(updates, update_s, validation_s)
    per_hour = population * fraction / seconds * 3600
    row = _row("networks/hour", rule=rule, task=task, population=population, backend="jaxrnn", measured=False,
               networks_per_hour=round(per_hour, 2), seconds=round(seconds, 1),
               converged=f"{fraction:.2f}", updates_to_criterion=str(updates),
               note=f"projected, study settings: 64*f/W, W = {updates}*{update_s:.3g} s + {updates}/{EVAL_EVERY}*"
                    f"{validation_s:.3g} s; U, f from the small run"
                    + ("" if fraction == 1 else " (not all converged: U = its budget)"))
    return {"fraction_converged": fraction, "updates": updates, "update_s": update_s, "validation_s": validation_s,
            "group_seconds": seconds, "networks_per_hour": per_hour, "row": row}


def mcmahan_groups() -> tuple[list[tuple], str]:
    """The groups of the packaged ``mcmahan`` config, ``(part, rule, task, members, GA networks,
    budget, eval_every)``, counted from its members; the built-in table if it cannot be read."""
    try:
        from jaxrnn.population import load_config
        from jaxrnn.population.builders import rule_values

        members = list(load_config("mcmahan").members())
    except Exception as error:  # noqa: BLE001 - the config is optional here
        return list(MCMAHAN), f"built-in table (the packaged config could not be read: {type(error).__name__})"
    counts: dict[tuple, int] = {}
    for m in members:
        values = rule_values(m.rule)
        rule, task = values["name"], m.task["name"]
        part = getattr(m, "subgrid", 0)
        networks = values.get("population_size") if rule == "ga" else None
        key = (part, rule, "ncdi" if task.startswith("ncdi") else task, networks, m.run.num_updates,
               m.run.eval_every)
        counts[key] = counts.get(key, 0) + 1
    part = {"full_force": "C", "hebbian": "D"}  # the config's sub-populations A-D
    groups = [(f"{part.get(k[1], 'B' if k[2] == 'ncdi' else 'A')} (subgrid {k[0]})", k[1], k[2], n, *k[3:])
              for k, n in counts.items()]
    return groups, f"packaged config jaxrnn/configs/mcmahan.toml ({len(members)} members)"


def _project_mcmahan(throughput: dict, small: dict, population: int) -> dict:
    """Projected wall time of the 1,920-network mcmahan population (see the module docstring)."""
    groups, source = mcmahan_groups()
    entries, rows = [], []
    totals = {"to criterion": 0.0, "to budget": 0.0}
    missing = []
    for part, rule, task, members, networks, budget, eval_every in groups:
        figures = "cdi" if task == "ncdi" else task  # N-CDI groups take the CDI figures
        measured = throughput.get((rule, figures))
        if measured is None or (rule, figures) not in small:
            missing.append(f"{rule}/{task}")
            continue
        update_s = measured["update"]["seconds_per_population_update"]
        if rule == "ga":  # a generation's time is linear in the GA networks per member
            update_s *= networks / measured["config"]["rule"]["population_size"]
        validation_s = measured["validation"]["seconds_per_population_validation"]
        entry = {"part": part, "rule": rule, "task": task, "figures_from": figures, "members": members,
                 "ga_networks": networks, "budget": budget, "eval_every": eval_every,
                 "update_s_per_64": update_s, "validation_s_per_64": validation_s}
        for mode in totals:
            updates = _lockstep_updates(small[(rule, figures)]) if mode == "to criterion" else budget
            seconds = members / population * group_seconds(updates, update_s, validation_s, eval_every)
            entry[mode] = {"updates": updates, "seconds": seconds}
            totals[mode] += seconds
        entries.append(entry)
    total_members = sum(e["members"] for e in entries)
    for mode, seconds in totals.items():
        rows.append(_row("mcmahan wall time", population=total_members, backend="jaxrnn, this CPU",
                         measured=False, seconds=round(seconds),
                         note=f"projected, {mode}: {seconds / 3600:.1f} h = {seconds / 86400:.2f} days; "
                              "sum over groups of (members/64)*W" + (f"; missing {missing}" if missing else "")))
    rows.append(_row("mcmahan wall time", population=total_members, backend="jaxrnn, one H100", measured=False,
                     note=H100_NOTE))
    return {"formula": "sum over groups of (members / 64) * (U*t_update + U/eval_every*t_validation), "
                       "t_* measured at P = 64; GA t_update scaled by GA networks / measured GA networks; "
                       "'to criterion': U from the small runs (lock-step: last member, or the small budget); "
                       "'to budget': U = the group's run.num_updates",
            "groups_from": source, "missing": missing, "groups": entries, "seconds": totals,
            "hours": {k: v / 3600 for k, v in totals.items()},
            "h100": H100_NOTE,
            "study_reports": "about 7 days on one GPU plus CPUs",
            "rows": rows}


def _targets(rows: list[dict], mcmahan: dict) -> dict:
    speedups = {f"{r['task']} P={r['population']}": r["speedup"] for r in rows
                if r["kind"] == "GA generation" and r["speedup"] is not None}
    return {"ga_speedup_per_generation_min": TARGET_GA_SPEEDUP, "ga_speedup": speedups,
            "ga_met": {k: v >= TARGET_GA_SPEEDUP for k, v in speedups.items()},
            "h100_full_mcmahan_minutes_max": TARGET_H100_MINUTES,
            "h100_measured": "not available: no GPU in this session" if NO_GPU else H100_NOTE,
            "cpu_full_mcmahan_hours_projected": {k: round(v, 1) for k, v in mcmahan.get("hours", {}).items()}}


def _print_table(rows: list[dict]) -> None:
    _say("\nkind               rule        task  P    backend                    "
         "net/h      upd/s     seconds  speed-up")
    for r in rows:
        def f(v, spec):
            return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v or "-")
        _say(f"{r['kind']:18s} {str(r['rule'] or '-'):10s} {str(r['task'] or '-'):5s} {f(r['population'], '4d'):4s} "
             f"{str(r['backend'])[:26]:26s} {f(r['networks_per_hour'], '9.2f'):>9s} "
             f"{f(r['network_updates_per_s'], '9.2f'):>9s} {f(r['seconds'], '10.2f'):>10s} "
             f"{f(r['speedup'], '8.2f'):>8s}  {r['measured'] and 'measured' or 'PROJECTED'}")


if __name__ == "__main__":
    main()

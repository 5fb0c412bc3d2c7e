"""Closed-loop training throughput: jaxrnn populations vs a PyTorch loop (Ger & Barak 2025).

    python benchmarks/closed_loop_population.py [--populations 1 64 512] [--repeats 3] [--out FILE]

Workload (SPECS §1.3): tanh rate RNN controllers, N = 100, α = 1, no bias, g = 0.1, on the double
integrator, T = 50, batch 100, reg_U = 0.005, SGD 1e-2, global-norm clip 1, all three matrices
trained — one *network-update* is one such SGD step of one network.

- **jaxrnn**: the library's rule ``closed_loop(CTRNN(...), plant)`` for ``P`` members, advanced by
  ``jax.jit(lax.scan over updates of jax.vmap(rule.update))`` — what the population runner does.
  ``jax_updates_per_s`` counts population steps, ``network_updates_per_s = P × jax_updates_per_s``.
- **PyTorch**: the authors' loop (``code/utils.py`` L123–L321, row convention), one network at a
  time, a Python loop over time: ``u_0 = 0`` (controller not called at ``t = 0``), then
  ``h ← h + (dt/τ)(−h + tanh(h W_hh + y W_ih))``, ``u = h W_ho``; loss
  ``Σ_t [MSE(x_t, 0) + reg_U Σ_batch u_t²]``; ``clip_grad_norm_(1)``; ``SGD(1e-2)``. Departure in
  PyTorch's favour: the zero process noise of the plant is not drawn.

Every configuration runs in its own subprocess (its peak RSS is that process's ``ru_maxrss``;
the load average is read when it measures) and repeats its timing; the best repeat counts. Both
sides run at their best setting, each tried: PyTorch with 1 thread and its default; XLA with its
default thread pool or single-threaded, each with glibc's default allocator or huge pages
(``JAX_VARIANTS``; huge pages make XLA's per-call scratch mmaps cheaper, see README.md). On a
shared, loaded 2-core machine OpenMP's spinning threads make PyTorch's default an order of
magnitude slower or worse, so its one-thread run is the fair reference; the best PyTorch rate of
the run (measured before and after the JAX runs) is the denominator of every speed-up. Compile
time is ``jit(...).lower(...).compile()`` of the JAX program.
Writes ``benchmarks/results/closed_loop_population-cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HIDDEN, BATCH, NUM_STEPS, REG_U, LEARNING_RATE, CLIP, GAIN = 100, 100, 50, 0.005, 1e-2, 1.0, 0.1
TARGET_SPEEDUP = 3.0
RESULTS = Path(__file__).resolve().parent / "results" / "closed_loop_population-cpu.json"


# ----------------------------------------------------------------------------- workers


def jax_worker(population: int, num_updates: int, repeats: int, warmup: bool = True) -> dict:
    """Best of ``repeats`` timed calls of ``num_updates`` updates (after one warm-up call if ``warmup``;
    without it the first call after ahead-of-time compilation is timed, as for a whole GPU run)."""
    import jax
    import jax.numpy as jnp

    import jaxrnn
    from jaxrnn.models import CTRNN
    from jaxrnn.rules import closed_loop

    plant, task_params = jaxrnn.make("double-integrator")
    cell = CTRNN(HIDDEN, alpha=1.0, activation="tanh", output="rate", use_bias=False, weight_init="ger_barak")
    rule = closed_loop(cell, plant, batch=BATCH, num_steps=NUM_STEPS)
    hp = rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(LEARNING_RATE),
                                      max_grad_norm=jnp.float32(CLIP), reg_u=jnp.float32(REG_U),
                                      gain=jnp.float32(GAIN))
    hps = jax.tree.map(lambda x: jnp.broadcast_to(x, (population,) + jnp.shape(x)), hp)
    keys = jax.random.split(jax.random.PRNGKey(0), population)
    states = jax.jit(jax.vmap(rule.init))(keys, hps)

    def train(states, hps, update_keys):  # update_keys [U, P, 2]
        def one(s, k):
            s, metrics = jax.vmap(rule.update)(k, s, hps)
            return s, metrics["loss"]

        return jax.lax.scan(one, states, update_keys)

    update_keys = jax.vmap(lambda k: jax.random.split(k, population))(jax.random.split(jax.random.PRNGKey(1),
                                                                                        num_updates))
    start = time.perf_counter()
    train = jax.jit(train, donate_argnums=(0,)).lower(states, hps, update_keys).compile()
    compile_s = time.perf_counter() - start
    if warmup:
        states, losses = jax.block_until_ready(train(states, hps, update_keys))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        states, losses = jax.block_until_ready(train(states, hps, update_keys))
        best = min(best, time.perf_counter() - start)
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise RuntimeError("jaxrnn closed-loop training diverged")
    load = os.getloadavg()
    return {"population": population, "num_updates": num_updates, "seconds": best,
            "jax_updates_per_s": num_updates / best, "network_updates_per_s": population * num_updates / best,
            "compile_s": compile_s, "loadavg": load, "final_loss": float(losses[-1].mean())}


def torch_train(torch, num_updates: int, seed: int = 0) -> float:
    """The authors' closed-loop training of one network; returns seconds for ``num_updates``."""
    generator = torch.Generator().manual_seed(seed)
    w_ih = (torch.randn(1, HIDDEN, generator=generator) / HIDDEN).requires_grad_(True)
    w_hh = (GAIN * torch.randn(HIDDEN, HIDDEN, generator=generator) / HIDDEN**0.5).requires_grad_(True)
    w_ho = (torch.randn(HIDDEN, 1, generator=generator) / HIDDEN).requires_grad_(True)
    params = [w_ih, w_hh, w_ho]
    optimizer = torch.optim.SGD(params, lr=LEARNING_RATE)
    mse = torch.nn.MSELoss()
    a = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    b = torch.tensor([[0.0], [1.0]])
    dt = tau = 1.0
    start = time.perf_counter()
    for _ in range(num_updates):
        x = torch.rand(2, BATCH, generator=generator) * 2 - 1  # position, velocity ~ U(−1, 1)
        h = torch.zeros(BATCH, HIDDEN)
        target = torch.zeros(2, BATCH)
        total = 0.0
        for t in range(NUM_STEPS):
            obs = x.T[:, :1]
            if t == 0:
                u = torch.zeros(BATCH, 1)
            else:
                h_new = torch.tanh(h @ w_hh + obs @ w_ih)
                h = h + (dt / tau) * (-h + h_new)
                u = h @ w_ho
            total = total + (mse(x, target) + REG_U * torch.sum(u**2)) * dt
            x = a @ x + b @ u.T
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
    elapsed = time.perf_counter() - start
    if not torch.isfinite(total):
        raise RuntimeError(f"torch reference diverged: loss = {total.item()}")
    return elapsed


def torch_worker(num_updates: int, repeats: int, threads: int) -> dict:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch_train(torch, 2)  # warm-up
    best = min(torch_train(torch, num_updates, seed=r) for r in range(repeats))
    return {"num_updates": num_updates, "seconds": best, "torch_network_updates_per_s": num_updates / best,
            "threads": torch.get_num_threads(), "loadavg": os.getloadavg()}


# ----------------------------------------------------------------------------- driver


SINGLE_THREAD_XLA = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
HUGE_PAGES = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}  # XLA's per-call scratch mmaps on huge pages
JAX_VARIANTS = {"default": {}, "1 thread": SINGLE_THREAD_XLA, "1 thread + hugetlb": {**SINGLE_THREAD_XLA, **HUGE_PAGES},
                "default + hugetlb": HUGE_PAGES}


def in_subprocess(args: list[str], env_extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for name, value in (env_extra or {}).items():
        env[name] = (env.get(name, "") + " " + value).strip() if name == "XLA_FLAGS" else value
    command = [sys.executable, __file__, "--worker", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"env": env_extra or {}}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = {}
    for name in ("jax", "jaxlib", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    return {"cpu": model, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), **versions}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 64, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-updates", type=int, default=60)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        result = jax_worker(*map(int, rest)) if kind == "jax" else torch_worker(*map(int, rest))
        result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(result))
        return

    # each side at its best thread setting (on a shared, loaded machine one thread often wins)
    def measure_torch(threads: int, updates: int) -> dict:
        r = in_subprocess(["torch", str(updates), str(args.repeats), str(threads)])
        print(f"torch, {r['threads']} thread(s): {r['torch_network_updates_per_s']:.2f} network-updates/s "
              f"(load {r['loadavg'][0]:.1f})", flush=True)
        return r

    references = [measure_torch(1, args.torch_updates), measure_torch(0, max(2, args.torch_updates // 6))]
    rows = []
    for population in args.populations:
        updates = max(2, min(40, 2000 // (population * 10)))  # roughly equal work per configuration
        trials = {name: in_subprocess(["jax", str(population), str(updates), str(args.repeats)], extra)
                  for name, extra in JAX_VARIANTS.items()}
        name, result = max(trials.items(), key=lambda kv: kv[1]["network_updates_per_s"])
        row = {"population": population,
               "jax_updates_per_s": result["jax_updates_per_s"],
               "network_updates_per_s": result["network_updates_per_s"],
               "torch_network_updates_per_s": None,  # filled in below
               "speedup": None,
               "peak_rss_bytes": result["peak_rss_bytes"],
               "compile_s": result["compile_s"],
               "jax_variant": name,
               "jax_env": result["env"],
               "timed_updates": updates,
               "loadavg": result["loadavg"],
               "all_jax_variants": {k: {f: v[f] for f in ("network_updates_per_s", "peak_rss_bytes", "compile_s",
                                                            "loadavg")} for k, v in trials.items()}}
        rows.append(row)
        print(f"P={population}: {row['network_updates_per_s']:.2f} network-updates/s ({name}), "
              f"peak RSS {row['peak_rss_bytes'] / 2**20:.0f} MiB, "
              f"compile {row['compile_s']:.1f}s (load {row['loadavg'][0]:.1f})", flush=True)
    references.append(measure_torch(1, args.torch_updates))  # again after JAX: the load drifts
    reference = max(references, key=lambda r: r["torch_network_updates_per_s"])
    for row in rows:  # the best PyTorch rate seen during the whole run, in PyTorch's favour
        row["torch_network_updates_per_s"] = reference["torch_network_updates_per_s"]
        row["speedup"] = row["network_updates_per_s"] / row["torch_network_updates_per_s"]
        print(f"P={row['population']}: speedup {row['speedup']:.2f}x against the best PyTorch rate")
    report = {
        "benchmark": "closed_loop_population",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "workload": {"hidden": HIDDEN, "num_steps": NUM_STEPS, "batch": BATCH, "optimizer": "sgd",
                     "learning_rate": LEARNING_RATE, "max_grad_norm": CLIP, "reg_u": REG_U,
                     "activation": "tanh", "repeats": args.repeats},
        "torch_reference": reference,
        "torch_measurements": references,
        "rows": rows,
        "targets": {"speedup_at_least": TARGET_SPEEDUP,
                    "met": {str(r["population"]): r["speedup"] >= TARGET_SPEEDUP for r in rows}},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

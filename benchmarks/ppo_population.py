"""Recurrent PPO throughput: environment steps per second of whole populations vs a PyTorch loop.

Measures full PPO training — rollout of 8 environments × 128 steps, GAE, 10 epochs × 4
minibatches of forward + backward through the recurrent network, Adam updates — of the packaged
``huang-pendulum`` agents (VanillaRNN(64), one-layer 64-unit heads, FO Pendulum) for populations
of 1, 64 and 1,024 agents: ``jax.jit(scan over updates of population_map(rule.update, block, mesh))``
compiled ahead of time — what the population runner runs (``jaxrnn.population.runner``: on one
CPU device blocks of 16 vmapped members, one after another; elsewhere one ``jax.vmap``), then timed after compilation (population ≤ 64: one warm-up call, then the best of
``--repeats``; larger populations: the first call after compilation, ``--big-updates`` updates).
A population whose compiled program XLA accounts (``Compiled.memory_analysis()``, as the
population runner's memory planner) above ``--memory-budget`` is split into equal slices run one
after another (the time is the sum). Members are initialised one after another (``lax.map``): the
vmapped orthogonal init of the heads is a batched LAPACK QR whose ``ParallelBatchMap`` deadlocks,
intermittently, jaxlib 0.10.2's CPU thread pool on this 2-core machine (seen at 256 and 1,024
members; gdb: every pool thread in ``BlockingCounter::Wait`` under ``lapack_sorgqr_ffi``). A child
that does not finish within 420 s is recorded as an ``error`` row.

The reference is :mod:`torch_ppo_reference` (the same recurrent PPO for one agent in plain
PyTorch, a Python loop over steps as the template it follows), timed with 1 and 2 intra-op
threads (on a shared 2-core machine OpenMP spinning makes 2 threads much slower); the best is
the reference speed. Every configuration runs in its own process, so its peak RSS is its own,
and ``os.getloadavg()`` is recorded around each (the machine is shared).

Target: ≥ 20× the PyTorch loop's env steps/s at population 64.

    python benchmarks/ppo_population.py [--populations 1 64 1024] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
STEPS_PER_UPDATE = 8 * 128

CHILD_JAX = r"""
import json, os, resource, sys, time
import jax, jax.numpy as jnp
from jaxrnn import population
from jaxrnn.population.builders import build_rule, member_hparams
size, updates, repeats, budget, warmup = (int(a) for a in sys.argv[1:6])
import tomllib
from importlib import resources
raw = tomllib.loads(resources.files("jaxrnn.configs").joinpath("huang-pendulum.toml").read_text())
raw["task"]["name"] = "pendulum-fo"
raw["grid"]["seeds"] = 1
member = population.from_dict(raw).members()[0]
rule, task = build_rule(member.task, member.model, member.rule)
hp = member_hparams(rule, member.task, member.model, member.rule)

from jaxrnn.population.mapping import default_member_block, population_map
from jaxrnn.population.sharding import population_mesh
mesh = population_mesh() if jax.device_count() > 1 else None
update = population_map(rule.update, default_member_block(), mesh)  # as the runner's make_chunk builds it

def train(states, keys, hps):
    def body(s, k):
        s, metrics = update(k, s, hps)
        return s, metrics["loss"]
    return jax.lax.scan(body, states, keys)

def program(p):
    hps = jax.tree.map(lambda x: jnp.broadcast_to(x, (p,) + jnp.shape(x)), hp)
    # members are initialised one after another (lax.map): a vmapped orthogonal init is a batched
    # LAPACK QR, whose ParallelBatchMap can deadlock jaxlib's 2-thread CPU pool (jax 0.10.2)
    init = jax.jit(lambda k, h: jax.lax.map(lambda a: rule.init(*a), (k, h)))
    states = init(jax.random.split(jax.random.PRNGKey(0), p), hps)
    keys = jax.random.split(jax.random.PRNGKey(1), updates * p).reshape(updates, p, -1)
    t0 = time.perf_counter()
    compiled = jax.jit(train, donate_argnums=0).lower(states, keys, hps).compile()
    stats = compiled.memory_analysis()
    need = (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes)
    return compiled, (states, keys, hps), time.perf_counter() - t0, need

slice_size = size
compiled, args, compile_s, need = program(slice_size)
while need > budget and slice_size > 1:
    slice_size = -(-slice_size // 2)
    compiled, args, more, need = program(slice_size)
    compile_s += more
slices = -(-size // slice_size)
states, keys, hps = args
if warmup:
    states, _ = compiled(states, keys, hps)
    jax.block_until_ready(states)
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    states, losses = compiled(states, keys, hps)
    jax.block_until_ready(losses)
    best = min(best, time.perf_counter() - t0)
seconds = best * slices
print(json.dumps({"population": size, "slice_size": slice_size, "slices": slices, "updates_timed": updates,
    "compile_s": compile_s, "xla_bytes_per_slice": int(need), "seconds": seconds,
    "env_steps_per_s": size * updates * STEPS / seconds, "finite": bool(jnp.all(jnp.isfinite(losses))),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""".replace("STEPS", str(STEPS_PER_UPDATE))

CHILD_TORCH = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import torch
threads, updates, repeats = (int(a) for a in sys.argv[2:5])
torch.set_num_threads(threads)
from torch_ppo_reference import train
best = max(train(updates, warmup=1)[0] for _ in range(repeats))
print(json.dumps({"threads": threads, "updates_timed": updates, "env_steps_per_s": best,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def child(code: str, *args, timeout: float = 420.0) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is the row (an ``error`` row if it fails)."""
    before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                             timeout=timeout)
        row = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-2000:]}
    except subprocess.TimeoutExpired:
        row = {"error": f"timed out after {timeout} s"}
    row.update(loadavg_before=before, loadavg_after=os.getloadavg(), wall_s=time.perf_counter() - t0)
    return row


def write(args, torch_rows: list[dict], rows: list[dict]) -> None:
    """Write the results JSON (called after every row, so a later failure keeps the earlier rows)."""
    at_64 = next((r for r in rows if r["population"] == 64 and r.get("speedup")), None)
    result = {
        "benchmark": "ppo_population",
        "command": "python benchmarks/ppo_population.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor()},
        "config": {"config": "huang-pendulum", "task": "pendulum-fo", "hidden": 64, "num_envs": 8, "num_steps": 128,
                   "num_epochs": 10, "num_minibatches": 4, "env_steps_per_update": STEPS_PER_UPDATE,
                   "memory_budget": args.memory_budget},
        "torch_reference": torch_rows,
        "rows": rows,
        "targets": {"speedup_at_64_min": 20.0, "measured_speedup_at_64": None if at_64 is None else at_64["speedup"],
                    "met": None if at_64 is None else at_64["speedup"] >= 20.0},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--updates", type=int, default=2, help="updates per timed call (population ≤ 64)")
    parser.add_argument("--big-updates", type=int, default=1, help="updates in the one timed call (population > 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-updates", type=int, default=3)
    parser.add_argument("--memory-budget", type=int, default=8 * 2**30)
    parser.add_argument("--quick", action="store_true", help="populations 1 and 8, one repeat")
    parser.add_argument("--out", default=str(HERE / "results" / "ppo_population-cpu.json"))
    args = parser.parse_args()
    if args.quick:
        args.populations, args.repeats, args.torch_updates = [1, 8], 1, 1
    import torch  # noqa: F401  (fail early if the reference cannot run)

    torch_rows = [child(CHILD_TORCH, HERE, 1, args.torch_updates, args.repeats),
                  child(CHILD_TORCH, HERE, 2, 1, 1)]
    for row in torch_rows:
        print(json.dumps(row), flush=True)
    reference = max((r for r in torch_rows if "error" not in r), key=lambda r: r["env_steps_per_s"])
    rows: list[dict] = []
    for size in args.populations:
        big = size > 64
        row = {"population": size, **child(CHILD_JAX, size, args.big_updates if big else args.updates,
                                           1 if big else args.repeats, args.memory_budget, 0 if big else 1)}
        row["torch_env_steps_per_s"] = reference["env_steps_per_s"]
        row["speedup"] = row["env_steps_per_s"] / reference["env_steps_per_s"] if "error" not in row else None
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(args, torch_rows, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

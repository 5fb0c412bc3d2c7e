"""Population scaling of the runner: throughput per network vs population size and device count.

Measures the compiled chunk the population runner executes (``jaxrnn.population.planner
.time_one_chunk``: vmapped ``rule.update`` scanned over updates, validation included) for BPTT on
CDI with a CPU-sized network (N = 50, T = 100, batch 32 by default), for population sizes
1 … 1,024 (slices chosen by the memory planner when a population does not fit the budget), and
for 1, 2 and 4 fake CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count``; on a
2-core machine this measures the sharding overhead, not a speed-up). Each configuration runs in
its own process, so its peak RSS is its own.

Target (issue 7): network-updates/s per network does not fall by more than 10 % from population 64
to the largest population that fits the memory budget.

    python benchmarks/scaling.py [--populations 1 4 16 64 256 1024] [--devices 1 2 4] [--quick]
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

CHILD = r"""
import json, os, resource, sys, time
import jax
from jaxrnn import population
from jaxrnn.population import planner
size, steps, batch, updates, budget = (int(a) for a in sys.argv[1:6])
config = population.from_dict({
    "run": {"num_updates": updates, "eval_every": updates, "chunk_updates": updates, "snapshots": 0,
            "stop_threshold": float("inf")},
    "task": {"name": "cdi", "num_steps": steps},
    "model": {"hidden": 50},
    "rule": {"batch": batch, "num_validation_trials": 100},
    "grid": {"seeds": size}})
members = config.members()
plan = planner.plan_group(members, config.run, budget)
slices = plan.slices(members)
compile_s, chunk_s = planner.time_one_chunk(slices[0], config.run, plan.rule_overrides)
best = chunk_s
for _ in range(2):
    _, again = planner.time_one_chunk(slices[0], config.run, plan.rule_overrides)
    best = min(best, again)
seconds = best * len(slices)  # slices run one after another
print(json.dumps({
    "population": size, "devices": jax.device_count(), "slices": len(slices), "slice_size": plan.population_chunk,
    "remat": bool(plan.rule_overrides.get("remat", False)), "compile_s": compile_s,
    "network_updates_per_s": size * updates / seconds, "per_network_updates_per_s": updates / seconds,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "loadavg": os.getloadavg()}))
"""


def measure(size: int, devices: int, args) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}" if devices > 1 else ""
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(args.steps), str(args.batch), str(args.updates),
                          str(args.memory_budget)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--memory-budget", type=int, default=8 * 2**30)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scaling-cpu.json"))
    args = parser.parse_args()
    if args.quick:
        args.populations, args.devices, args.steps, args.updates = [1, 4], [1, 2], 20, 2
    rows = []
    for size in args.populations:
        rows.append({"kind": "population", **measure(size, 1, args)})
        print(json.dumps(rows[-1]), flush=True)
    device_size = max(p for p in args.populations if p <= 64)
    for devices in args.devices:
        rows.append({"kind": "devices", **measure(device_size, devices, args)})
        print(json.dumps(rows[-1]), flush=True)
    pop_rows = [r for r in rows if r["kind"] == "population"]
    ref = next((r for r in pop_rows if r["population"] == 64), None)
    largest = max(pop_rows, key=lambda r: r["population"])
    result = {
        "benchmark": "scaling",
        "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", "")},
        "config": {"task": "cdi", "hidden": 50, "num_steps": args.steps, "batch": args.batch,
                   "memory_budget": args.memory_budget},
        "rows": rows,
        # throughput per network = network-updates per second (each network-update counted once)
        "targets": {"drop_64_to_largest_max": 0.10,
                    "measured_drop": None if ref is None else
                    1 - largest["network_updates_per_s"] / ref["network_updates_per_s"]},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Recurrent SAC throughput: environment steps per second of whole populations vs a PyTorch loop.

Measures full off-policy training — per iteration 8 environments × 128 steps of acting with the
recurrent actor, sequence-replay writes, and the iteration's gradient steps (each: ``batch_size``
windows of ``sequence_length`` steps through the actor's, the critic's and the target critic's
encoders, the SAC losses, three Adam steps, Polyak averaging) — of VanillaRNN(64) agents with
one-layer 64-unit heads on FO Pendulum (:mod:`jaxrnn.rules.recurrent_sac` with the settings of
:data:`torch_sac_reference.SETTINGS`, the ones that meet the study's learning target) for
populations of 1, 64 and 1,024 agents: ``jax.jit(scan over updates of population_map(rule.update,
block, mesh))`` compiled ahead of time — what the population runner runs — then timed after
compilation (population ≤ 64: one warm-up call, then the best of ``--repeats``; larger
populations: the first call after compilation, ``--big-updates`` updates). The timed updates
come after ``learning_starts``, so every one of them takes all its gradient steps. A population
whose compiled program XLA accounts above ``--memory-budget`` is split into equal slices run one
after another (the time is the sum).

The reference is :mod:`torch_sac_reference` (the same algorithm for one agent in plain PyTorch),
timed with 1 and 2 intra-op threads; the best is the reference speed. Every configuration runs in
its own process, so its peak RSS is its own, and ``os.getloadavg()`` is recorded around each (the
machine is shared: compare rows measured at similar load).

Target: ≥ 20× the PyTorch loop's env steps/s at population 64.

    python benchmarks/sac_population.py [--populations 1 64 1024] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from ppo_population import child  # noqa: E402
from torch_sac_reference import SETTINGS  # noqa: E402

STEPS_PER_UPDATE = SETTINGS["num_envs"] * SETTINGS["num_steps"]

CHILD_JAX = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp
sys.path.insert(0, sys.argv[6])
from torch_sac_reference import SETTINGS as S
from jaxrnn import population
from jaxrnn.population.builders import build_rule, member_hparams
from jaxrnn.population.mapping import default_member_block, population_map
from jaxrnn.population.sharding import population_mesh
size, updates, repeats, budget, warmup = (int(a) for a in sys.argv[1:6])
rule_table = {"name": "recurrent_sac", **{k: S[k] for k in ("num_envs", "num_steps", "num_rounds", "gradient_steps",
              "batch_size", "sequence_length", "buffer_size", "gamma", "tau", "reward_scale", "random_steps",
              "learning_starts", "actor_lr", "critic_lr")}, "hidden_head": S["hidden"]}
member = population.from_dict({"task": {"name": "pendulum-fo"}, "model": {"cell": "vanilla", "hidden": S["hidden"]},
                               "rule": rule_table, "grid": {"seeds": 1}}).members()[0]
rule, task = build_rule(member.task, member.model, member.rule)
hp = member_hparams(rule, member.task, member.model, member.rule)
mesh = population_mesh() if jax.device_count() > 1 else None
update = population_map(rule.update, default_member_block(), mesh)  # as the runner's make_chunk builds it

def train(states, keys, hps):
    def body(s, k):
        s, metrics = update(k, s, hps)
        return s, (metrics["loss"], metrics["gradient_steps"])
    return jax.lax.scan(body, states, keys)

def program(p):
    hps = jax.tree.map(lambda x: jnp.broadcast_to(x, (p,) + jnp.shape(x)), hp)
    states = jax.jit(jax.vmap(rule.init))(jax.random.split(jax.random.PRNGKey(0), p), hps)
    # past learning_starts, so that every timed update takes all its gradient steps
    first = jax.jit(jax.vmap(rule.update))(jax.random.split(jax.random.PRNGKey(2), p), states, hps)[0]
    keys = jax.random.split(jax.random.PRNGKey(1), updates * p).reshape(updates, p, -1)
    t0 = time.perf_counter()
    compiled = jax.jit(train, donate_argnums=0).lower(first, keys, hps).compile()
    stats = compiled.memory_analysis()
    need = (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes)
    return compiled, (first, keys, hps), time.perf_counter() - t0, need

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
    states, (losses, steps) = compiled(states, keys, hps)
    jax.block_until_ready(losses)
    best = min(best, time.perf_counter() - t0)
seconds = best * slices
print(json.dumps({"population": size, "slice_size": slice_size, "slices": slices, "updates_timed": updates,
    "compile_s": compile_s, "xla_bytes_per_slice": int(need), "seconds": seconds,
    "env_steps_per_s": size * updates * STEPS / seconds, "finite": bool(jnp.all(jnp.isfinite(losses))),
    "all_gradient_steps_taken": bool(jnp.all(steps == S["gradient_steps"])),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""".replace("STEPS", str(STEPS_PER_UPDATE))

CHILD_TORCH = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import torch
threads, updates, repeats = (int(a) for a in sys.argv[2:5])
torch.set_num_threads(threads)
from torch_sac_reference import train
best = max(train(updates, warmup=1)[0] for _ in range(repeats))
print(json.dumps({"threads": threads, "updates_timed": updates, "env_steps_per_s": best,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def write(args, config: dict, torch_rows: list[dict], rows: list[dict]) -> None:
    """Write the results JSON (after every row, so a later failure keeps the earlier rows)."""
    at_64 = next((r for r in rows if r["population"] == 64 and r.get("speedup")), None)
    result = {
        "benchmark": "sac_population",
        "command": "python benchmarks/sac_population.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor()},
        "config": config,
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
    parser.add_argument("--updates", type=int, default=1, help="updates per timed call (population ≤ 64)")
    parser.add_argument("--big-updates", type=int, default=1, help="updates in the one timed call (population > 64)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-updates", type=int, default=1)
    parser.add_argument("--memory-budget", type=int, default=8 * 2**30)
    parser.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds per configuration")
    parser.add_argument("--quick", action="store_true", help="populations 1 and 8, one repeat")
    parser.add_argument("--out", default=str(HERE / "results" / "sac_population-cpu.json"))
    args = parser.parse_args()
    if args.quick:
        args.populations, args.repeats = [1, 8], 1
    import torch  # noqa: F401  (fail early if the reference cannot run)

    config = {"task": "pendulum-fo", **SETTINGS, "env_steps_per_update": STEPS_PER_UPDATE,
              "memory_budget": args.memory_budget}
    torch_rows = [child(CHILD_TORCH, HERE, 1, args.torch_updates, 1, timeout=args.timeout),
                  child(CHILD_TORCH, HERE, 2, args.torch_updates, 1, timeout=args.timeout)]
    for row in torch_rows:
        print(json.dumps(row), flush=True)
    reference = max((r for r in torch_rows if "error" not in r), key=lambda r: r["env_steps_per_s"])
    rows: list[dict] = []
    for size in args.populations:
        big = size > 64
        row = {"population": size, **child(CHILD_JAX, size, args.big_updates if big else args.updates,
                                           1 if big else args.repeats, args.memory_budget, 0 if big else 1, HERE,
                                           timeout=args.timeout)}
        row["torch_env_steps_per_s"] = reference["env_steps_per_s"]
        row["speedup"] = row["env_steps_per_s"] / reference["env_steps_per_s"] if "error" not in row else None
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(args, config, torch_rows, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

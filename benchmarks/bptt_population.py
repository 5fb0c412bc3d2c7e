"""Network-updates per second of population BPTT on CDI, against a one-network PyTorch loop.

Workload (McMahan et al. 2021, SPECS §3.1–3.3): CTRNN with N = 50 units, shifted tanh
(rate 1 + tanh x), α = dt/τ = 0.1, trials of T = 750 steps, batches of 500 fresh CDI trials,
loss on the first and last outputs, only W_rec trained, Adam (lr 5e-4).

- JAX: the library's own rule, ``jaxrnn.rules.bptt(jaxrnn.models.CTRNN(50), task,
  batch=500)`` with its defaults, run the way the population runner runs it:
  ``jaxrnn.population.mapping.population_map(rule.update, default_member_block(), mesh)`` over
  stacked states / keys / hyper-parameters (on CPU: ``lax.map`` over blocks of 16 vmapped
  members on each device, the population sharded over ``--cpu-devices`` XLA CPU devices;
  on an accelerator one ``jax.vmap``), inside a ``jax.lax.scan`` over ``--updates`` updates, all under one ``jax.jit`` (states
  donated). A "network-update" is one update of one member.
- PyTorch: ``benchmarks/torch_reference.py`` trains ONE network at a time with a Python
  loop over time, as the study's own trainer does.

Every configuration (each population size, and the PyTorch loop) runs in its own subprocess,
so each gets its own peak RSS (``resource.getrusage``), once with the default glibc allocator
and once with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (transparent huge pages for malloc'd
memory; XLA:CPU's scratch buffers are fresh ``mmap``s that are page-faulted on every call).

Usage::

    python benchmarks/bptt_population.py                     # full run, ~10 min on 2 cores
    python benchmarks/bptt_population.py --quick             # tiny sizes, smoke test
    python benchmarks/bptt_population.py --populations 1 16 64 --updates 2 --repeats 3 \\
        --out benchmarks/results/bptt_population-cpu.json

Writes JSON (default ``benchmarks/results/bptt_population-cpu.json``) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HIDDEN, ALPHA, INPUTS, OUTPUTS, LEARNING_RATE = 50, 0.1, 4, 1, 5e-4
ALLOCATORS = {"default": None, "hugetlb": "glibc.malloc.hugetlb=1"}
FLOP_FORMULA = (
    "flops per network-update = T*B*(6*N^2 + 2*N*M + 4*N*O): forward W_rec r (2N^2), W_in u "
    "(2NM) and read-out W_out x (2NO) at every step and trial; backward W_rec^T lambda (2N^2), "
    "dL/dW_rec += lambda r^T (2N^2) and W_out^T dL/dy (2NO). Matmul FLOPs only (elementwise "
    "tanh/updates, sampling and Adam are not counted); the PyTorch reference does the same work."
)


def flops_per_update(steps: int, batch: int, hidden: int = HIDDEN, inputs: int = INPUTS, outputs: int = OUTPUTS) -> int:
    """Matmul FLOPs of one BPTT update of one network (see ``FLOP_FORMULA``)."""
    return steps * batch * (6 * hidden**2 + 2 * hidden * inputs + 4 * hidden * outputs)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # ru_maxrss is KiB on Linux


def _timings(seconds: list[float], cpu: list[float], work: float) -> dict:
    """Summary of repeated calls that each do ``work`` network-updates."""
    best, median = min(seconds), statistics.median(seconds)
    return {
        "seconds_per_call": seconds,
        "cpu_seconds_per_call": cpu,
        "updates_per_call": work,
        "network_updates_per_s_best": work / best,
        "network_updates_per_s_median": work / median,
        "cores_busy_median": statistics.median(c / s for c, s in zip(cpu, seconds)),
    }


# --- workers (run in subprocesses) -----------------------------------------------------------


def jax_worker(population: int, batch: int, steps: int, updates: int, repeats: int,
               member_block: int | None | str = "auto", trials_per_chunk: int | None = None,
               kernel: str | dict = "xla") -> dict:
    """Time ``repeats`` compiled calls of ``updates`` population updates (after one warm-up call).

    ``member_block="auto"`` is what the population runner uses (``default_member_block()``); an
    int or ``None`` overrides it (``benchmarks/gpu.py`` tries smaller blocks when a population
    does not fit the accelerator's memory). ``trials_per_chunk=None`` is the rule's default.
    ``kernel`` is the rule's ``kernel`` (``"xla"`` or ``"pallas"``), or a dict of
    :class:`~jaxrnn.models.ctrnn_fused.FusedKernel` settings.
    """
    import jax
    import jax.numpy as jnp

    import jaxrnn
    import jaxrnn.models
    import jaxrnn.rules

    task, task_params = jaxrnn.make("cdi", num_steps=steps)
    cell = jaxrnn.models.CTRNN(HIDDEN, alpha=ALPHA, activation="shifted_tanh")
    if isinstance(kernel, dict):
        from jaxrnn.models.ctrnn_fused import FusedKernel

        kernel = FusedKernel(**kernel)
    rule = jaxrnn.rules.bptt(cell, task, batch=batch, trials_per_chunk=trials_per_chunk, kernel=kernel)
    hparams = rule.default_hparams.replace(task=task_params, learning_rate=jnp.float32(LEARNING_RATE))
    hparams = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (population,) + jnp.shape(leaf)), hparams)
    init_keys, train_keys = jax.vmap(lambda k: jax.random.split(k))(jax.random.split(jax.random.PRNGKey(0), population)).swapaxes(0, 1)
    states = jax.jit(jax.vmap(rule.init))(init_keys, hparams)

    from jaxrnn.population.mapping import default_member_block, population_map
    from jaxrnn.population.sharding import population_mesh, shard

    if member_block == "auto":
        member_block = default_member_block()  # what the population runner runs
    mesh = population_mesh() if jax.device_count() > 1 else None
    update = population_map(rule.update, member_block, mesh)  # as make_chunk builds it
    if mesh is not None and population % jax.device_count() == 0:
        states, train_keys, hparams = shard(jax.device_get((states, train_keys, hparams)), mesh)

    def run(states, train_keys, hparams, first_update):
        def one_update(states, u):
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(train_keys, u)
            states, metrics = update(keys, states, hparams)
            return states, metrics["loss"]

        return jax.lax.scan(one_update, states, first_update + jnp.arange(updates))

    step = jax.jit(run, donate_argnums=(0,))
    start = time.perf_counter()
    compiled = step.lower(states, train_keys, hparams, jnp.int32(0)).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    start = time.perf_counter()
    states, losses = compiled(states, train_keys, hparams, jnp.int32(0))
    jax.block_until_ready(losses)
    first_call_s = time.perf_counter() - start
    seconds, cpu, loads = [], [], []
    for r in range(repeats):
        loads.append(os.getloadavg())
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        states, losses = compiled(states, train_keys, hparams, jnp.int32((r + 1) * updates))
        jax.block_until_ready(losses)
        seconds.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - cpu0)
    losses = jax.device_get(losses)
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise RuntimeError(f"non-finite loss: {losses}")
    out = {
        "population": population,
        "member_block": member_block,
        "devices": jax.device_count(),
        "compile_s": compile_s,
        "first_call_s": first_call_s,
        "xla_temp_bytes": int(memory.temp_size_in_bytes) if memory is not None else None,
        "trials_per_chunk": trials_per_chunk or _trials_per_chunk(batch),
        "kernel": kernel if isinstance(kernel, str) else dataclasses.asdict(kernel),
        "final_loss_mean": float(losses[-1].mean()),
        "loadavg_at_measurement": loads,
        **_timings(seconds, cpu, population * updates),
    }
    out["peak_rss_gib"] = _peak_rss_gib()
    return out


def _trials_per_chunk(batch: int) -> int:
    from jaxrnn.rules.bptt import default_trials_per_chunk

    return default_trials_per_chunk(batch)


def torch_worker(batch: int, steps: int, updates: int, repeats: int, max_seconds: float, threads: int) -> dict:
    sys.path.insert(0, str(HERE))
    import torch

    import torch_reference

    threads = threads or None  # 0: PyTorch's default (one per core)
    torch_reference.train(1, batch=batch, num_steps=steps, num_threads=threads)  # warm-up
    seconds, cpu, loads = [], [], []
    started = time.perf_counter()
    for r in range(repeats):
        loads.append(os.getloadavg())
        cpu0 = _cpu_seconds()
        seconds.append(torch_reference.train(updates, batch=batch, num_steps=steps, seed=r + 1, num_threads=threads))
        cpu.append(_cpu_seconds() - cpu0)
        if time.perf_counter() - started > max_seconds and r >= 1:
            break
    return {
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_measurement": loads,
        **_timings(seconds, cpu, updates),
        "peak_rss_gib": _peak_rss_gib(),
    }


def matmul_peak_worker(size: int, repeats: int = 10) -> dict:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        seconds.append(time.perf_counter() - start)
    return {
        "size": size,
        "gflops_best": 2 * size**3 / min(seconds) / 1e9,
        "gflops_median": 2 * size**3 / statistics.median(seconds) / 1e9,
        "loadavg_at_measurement": os.getloadavg(),
    }


# --- driver ---------------------------------------------------------------------------------


def _run_worker(args: list[str], allocator: str | None, timeout: float, devices: int = 1) -> dict:
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if devices > 1:  # one XLA CPU device per core: the runner shards the population over them
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    if allocator is not None:
        env["GLIBC_TUNABLES"] = allocator
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["GLIBC_TUNABLES"] = allocator
    return result


def _machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "GLIBC_TUNABLES_of_parent": os.environ.get("GLIBC_TUNABLES"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--steps", type=int, default=750, help="trial length T")
    parser.add_argument("--updates", type=int, default=None,
                        help="updates per compiled call (default: 16 for P=1, 4 up to P=16, 2 above)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (after one warm-up call)")
    parser.add_argument("--torch-updates", type=int, default=5, help="updates per timed PyTorch call")
    parser.add_argument("--allocators", nargs="+", default=list(ALLOCATORS), choices=list(ALLOCATORS))
    parser.add_argument("--cpu-devices", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                        help="XLA CPU devices for the JAX runs (one per core lets the runner use every core)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[0, 1],
                        help="torch.set_num_threads values to try (0: PyTorch's default); the faster is the reference")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bptt_population-cpu.json")
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        values = [float(v) if "." in v else int(v) for v in rest]
        result = {"jax": jax_worker, "torch": torch_worker, "matmul": matmul_peak_worker}[kind](*values)
        print(json.dumps(result))
        return result

    if args.quick:
        args.populations, args.batch, args.steps, args.repeats, args.torch_updates = [1, 4], 20, 30, 2, 2
    timeout = 1800.0

    def updates_for(population: int) -> int:
        if args.updates is not None:
            return args.updates
        return 16 if population == 1 else 4 if population <= 16 else 2

    started = time.perf_counter()
    flops = flops_per_update(args.steps, args.batch)
    peak = _run_worker(["matmul", "2048" if args.quick else "4096"], None, timeout)
    results = {
        "benchmark": "bptt_population",
        "command": "python benchmarks/bptt_population.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "workload": {
            "task": "CDI (jaxrnn.make('cdi')), noise_std 0.5", "hidden": HIDDEN, "activation": "shifted_tanh",
            "alpha": ALPHA, "steps": args.steps, "batch": args.batch, "inputs": INPUTS, "outputs": OUTPUTS,
            "trained": "W_rec only", "optimizer": f"Adam lr {LEARNING_RATE}",
        },
        "machine": _machine(),
        "flops_per_network_update": flops,
        "flop_formula": FLOP_FORMULA,
        "matmul_peak": peak,
        "runs": [],
    }
    for allocator_name in args.allocators:
        allocator = ALLOCATORS[allocator_name]
        for threads in [] if args.no_torch else args.torch_threads:
            torch_args = ["torch", str(args.batch), str(args.steps), str(args.torch_updates), str(args.repeats), "120.0",
                          str(threads)]
            run = {"backend": "torch", "allocator": allocator_name, **_run_worker(torch_args, allocator, timeout)}
            run["gflops"] = flops * run["network_updates_per_s_best"] / 1e9
            results["runs"].append(run)
            _print_run(run)
        for population, devices in [(p, d) for d in dict.fromkeys(args.cpu_devices) for p in args.populations]:
            jax_args = ["jax", str(population), str(args.batch), str(args.steps), str(updates_for(population)), str(args.repeats)]
            run = {"backend": "jax", "allocator": allocator_name, **_run_worker(jax_args, allocator, timeout, devices)}
            run["gflops"] = flops * run["network_updates_per_s_best"] / 1e9
            run["fraction_of_matmul_peak"] = run["gflops"] / peak["gflops_best"]
            results["runs"].append(run)
            _print_run(run)
    _add_speedups(results["runs"])
    results["rows"] = _rows(results["runs"], args.allocators[0])
    results["targets"] = _targets(results["runs"])
    results["total_wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    print(f"wrote {args.out}")
    return results


def _add_speedups(runs: list[dict]) -> None:
    """Speed-up of each JAX run over the fastest PyTorch loop with the same allocator setting."""
    torch_by_allocator = {}
    for run in runs:
        if run["backend"] == "torch":
            best = torch_by_allocator.get(run["allocator"])
            if best is None or run["network_updates_per_s_best"] > best["network_updates_per_s_best"]:
                torch_by_allocator[run["allocator"]] = run
    for run in runs:
        if run["backend"] == "torch":
            run["is_reference"] = run is torch_by_allocator[run["allocator"]]
            continue
        reference = torch_by_allocator.get(run["allocator"])
        if run["backend"] == "jax" and reference is not None:
            run["speedup_vs_torch_best"] = run["network_updates_per_s_best"] / reference["network_updates_per_s_best"]
            run["speedup_vs_torch_median"] = run["network_updates_per_s_median"] / reference["network_updates_per_s_median"]


def _rows(runs: list[dict], main_allocator: str) -> list[dict]:
    """Flat rows for ``jaxrnn bench``'s summary: one per run, the first allocator's JAX rows as the
    population series (``kind = "population"``)."""
    rows = []
    for run in runs:
        row = {
            "kind": ("population" if run["allocator"] == main_allocator else "population-" + run["allocator"])
            + ("" if run.get("devices", 1) == 1 else f"-{run['devices']}-devices")
            if run["backend"] == "jax" else "torch reference",
            "backend": run["backend"] if run["backend"] == "jax" else f"torch ({run['torch_threads']} thread(s))",
            "population": run.get("population", 1),
            "cpu_devices": run.get("devices", 1),
            "allocator": run["allocator"],
            "network_updates_per_s": round(run["network_updates_per_s_best"], 3),
            "network_updates_per_s_median": round(run["network_updates_per_s_median"], 3),
            "speedup_vs_torch": round(run["speedup_vs_torch_best"], 2) if "speedup_vs_torch_best" in run else None,
            "gflops": round(run["gflops"], 1),
            "peak_rss_bytes": int(run["peak_rss_gib"] * 2**30),
            "compile_s": round(run["compile_s"], 1) if "compile_s" in run else None,
            "load_1min": round(run["loadavg_at_measurement"][0][0], 2),
        }
        rows.append(row)
    return rows


def _targets(runs: list[dict]) -> dict:
    """Issue #2's CPU target: ≥ 3× the PyTorch loop per network-update at P = 64, peak < 8 GiB."""
    at_64 = [r for r in runs if r["backend"] == "jax" and r.get("population") == 64]
    best = max(at_64, key=lambda r: r.get("speedup_vs_torch_best", 0.0), default=None)
    if best is None:
        return {"speedup_at_64_min": 3.0, "peak_gib_max": 8.0, "met": None}
    speedup, peak = best.get("speedup_vs_torch_best"), best["peak_rss_gib"]
    return {"speedup_at_64_min": 3.0, "peak_gib_max": 8.0, "measured_speedup_at_64": round(speedup, 2),
            "allocator": best["allocator"], "measured_peak_gib_at_64": round(peak, 2),
            "met": bool(speedup >= 3.0 and peak < 8.0)}


def _print_run(run: dict) -> None:
    label = f"{run['backend']} P={run.get('population', 1)} d={run.get('devices', 1)}"
    if run["backend"] == "torch":
        label = f"torch {run['torch_threads']}thr"
    print(f"  {label:10s} [{run['allocator']:7s}] {run['network_updates_per_s_best']:8.2f} net-upd/s (best), "
          f"{run['network_updates_per_s_median']:8.2f} (median), peak RSS {run['peak_rss_gib']:.2f} GiB, "
          f"load {run['loadavg_at_measurement'][0][0]:.1f}", flush=True)


def _print_table(results: dict) -> None:
    print(f"\nmatmul peak {results['matmul_peak']['gflops_best']:.0f} GFLOP/s; "
          f"{results['flops_per_network_update'] / 1e9:.2f} GFLOP per network-update")
    header = "backend    P   allocator  net-upd/s best  median  speed-up  GFLOP/s  peak RSS GiB  compile s"
    print(header)
    for run in results["runs"]:
        backend = run["backend"] if run["backend"] == "jax" else f"torch/{run['torch_threads']}t"
        print(f"{backend:9s} {run.get('population', 1):3d}  {run['allocator']:9s} "
              f"{run['network_updates_per_s_best']:14.2f} {run['network_updates_per_s_median']:7.2f} "
              f"{run.get('speedup_vs_torch_best', float('nan')):8.2f} {run['gflops']:8.1f} "
              f"{run['peak_rss_gib']:12.2f} {run.get('compile_s', float('nan')):10.1f}")


if __name__ == "__main__":
    main()

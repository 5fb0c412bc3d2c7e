"""The suite's accelerator measurements in one command, for a lent GPU (H100 / H200).

Each job reuses the CPU benchmark's own worker (the same workload and the same library call),
runs in its own process with a time limit (a failure or an out-of-memory is recorded as an
``error`` row and the next job runs), and adds the device's peak memory
(``jax.Device.memory_stats()["peak_bytes_in_use"]``). One JSON per benchmark is written after
every row, as ``gpu-<benchmark>.json`` in ``--out-dir``:

- ``bptt_fused``: the same with the fused Pallas time loop (``rule.kernel = "pallas"``): first its
  numbers against the XLA path on the device (``fused_check``), then P = 64 and P = 1,920 with
  several member blocks and tile settings (rows go to ``gpu-bptt.json``).
- ``bptt``: population BPTT on CDI (N = 50, T = 750, batch 500; ``bptt_population.jax_worker``)
  at populations 1, 64, 256 and 1,920, one ``jax.vmap`` over the population (member blocks of
  960 / 480 if it does not fit); target (issue 2): ≥ 2,000 network-updates/s at P = 1,920.
  Also a float32 matmul peak (default precision and ``HIGHEST``).
- ``ppo``: recurrent PPO (``ppo_population.CHILD_JAX``): 1,024 agents × 100 updates × 1,024
  env steps, the first call after ahead-of-time compilation timed; target (issue 4): < 2 min.
- ``closed_loop``: Ger & Barak closed-loop training (``closed_loop_population.jax_worker``),
  4,096 controllers × 1,000 updates, first call after compilation; target (issue 3): < 2 min.
- ``scaling``: the runner's compiled chunk (``scaling.CHILD``) for populations 1 … 16,384.
- ``analysis``: fixed points (5 probes × 128 starts) and all-pairs SVCCA of 1,920 networks
  (``analysis_population``'s workload); target (issue 6): < 5 min together.

    python benchmarks/gpu.py --jobs bptt ppo --out-dir $OUT       # on the GPU machine, one lease call
    python benchmarks/gpu.py --merge-from CALL1 CALL2 ...          # here: one gpu-<benchmark>.json each

Timings are wall clock around ``block_until_ready``; compile time is reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GIB = 2**30


# ----------------------------------------------------------------------------- workers


def _device_memory() -> dict:
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    return {"device_peak_bytes": stats.get("peak_bytes_in_use"), "device_bytes_limit": stats.get("bytes_limit")}


def _exec_child(code: str, argv: list) -> dict:
    """Run a benchmark's ``CHILD`` snippet in this process; its last printed line is the row."""
    buffer = io.StringIO()
    saved = sys.argv
    sys.argv = ["child", *map(str, argv)]
    try:
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, "<child>", "exec"), {"__name__": "__child__"})
    finally:
        sys.argv = saved
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


def work_matmul(size: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    out = {"size": size}
    for precision in ("default", "highest"):
        f = jax.jit(lambda x, y, p=None if precision == "default" else jax.lax.Precision.HIGHEST: jnp.matmul(x, y, precision=p))
        f(a, b).block_until_ready()
        seconds = []
        for _ in range(10):
            start = time.perf_counter()
            f(a, b).block_until_ready()
            seconds.append(time.perf_counter() - start)
        out[f"tflops_{precision}"] = 2 * size**3 / float(np.median(seconds)) / 1e12
    return out


def work_bptt(population: int, updates: int, repeats: int, member_block, trials_per_chunk=None, kernel="xla",
              steps: int = 750, batch: int = 500) -> dict:
    import bptt_population

    row = bptt_population.jax_worker(population, batch, steps, updates, repeats, member_block=member_block,
                                     trials_per_chunk=trials_per_chunk, kernel=kernel)
    row["gflops"] = bptt_population.flops_per_update(steps, batch) * row["network_updates_per_s_best"] / 1e9
    return row


def work_fused_check(population: int, steps: int = 750, batch: int = 500) -> dict:
    """The fused kernel's numbers on this device against the XLA path: read-outs and W_rec gradients
    of a population on CDI trials, at default and at highest matmul precision (relative max error)."""
    import jax
    import jax.numpy as jnp

    import bptt_population as bp
    import jaxrnn
    from jaxrnn.models import CTRNN, LinearReadout, init_params
    from jaxrnn.models.ctrnn_fused import FusedKernel, ctrnn_readout_fused
    from jaxrnn.models.rollout import ctrnn_readout_trials

    task, task_params = jaxrnn.make("cdi", num_steps=steps)
    cell, readout = CTRNN(bp.HIDDEN, alpha=bp.ALPHA, activation="shifted_tanh"), LinearReadout(1, scale=0.1)
    keys = jax.random.split(jax.random.PRNGKey(0), population)
    params = jax.vmap(lambda k: init_params(cell, k, task.input_size, 1.0))(keys)
    readout_params = readout.init(keys[0], jnp.zeros(bp.HIDDEN))
    trials = jax.vmap(lambda k: task.sample(k, task_params, batch))(keys)
    x0 = 0.3 * jax.random.normal(keys[0], (batch, bp.HIDDEN))
    out = {"population": population, "steps": steps, "batch": batch}
    for precision in ("default", "highest"):
        kernel = FusedKernel(precision=precision)

        def value_and_grad(fn, p, tr):
            def loss(w):
                q = {"params": {**p["params"], "W_rec": w}}
                return task.loss(fn(cell, q, readout_params, x0, tr.inputs), tr)

            return jax.value_and_grad(loss)(p["params"]["W_rec"])

        fused = lambda *a: ctrnn_readout_fused(*a, kernel=kernel)  # noqa: E731
        with jax.default_matmul_precision("float32" if precision == "highest" else None):
            want = jax.jit(jax.vmap(lambda p, tr: value_and_grad(ctrnn_readout_trials, p, tr)))(params, trials)
        got = jax.jit(jax.vmap(lambda p, tr: value_and_grad(fused, p, tr)))(params, trials)
        rel = lambda a, b: float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))  # noqa: E731
        out[f"loss_rel_err_{precision}"] = rel(got[0], want[0])
        out[f"grad_w_rec_rel_err_{precision}"] = rel(got[1], want[1])
    return out


def work_ppo(population: int, updates: int, repeats: int, warmup: int) -> dict:
    import ppo_population

    return _exec_child(ppo_population.CHILD_JAX, [population, updates, repeats, 64 * GIB, warmup])


def work_closed_loop(population: int, updates: int, repeats: int, warmup: int) -> dict:
    import closed_loop_population

    return closed_loop_population.jax_worker(population, updates, repeats, warmup=bool(warmup))


def work_scaling(population: int) -> dict:
    import scaling

    return _exec_child(scaling.CHILD, [population, 100, 32, 5, 64 * GIB])


def work_analysis(networks: int, starts: int, svcca_networks: int, lanes: int, max_iters: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import analysis_population as ap
    from jaxrnn.analysis.pipeline import _activity, condition_inputs
    from jaxrnn.analysis.stored_networks import CTRNNStep
    from jaxrnn.analysis.population_svcca import svcca_distances

    rng = np.random.default_rng(1)
    params = ap.networks(networks)
    x0 = rng.uniform(-5, 5, size=(networks, starts, ap.N)).astype(np.float32)
    total_start = time.perf_counter()
    fps, compile_s, fp_s, _ = ap.jax_fixed_points(params, x0, networks, max_iters, 1, lanes)
    step = CTRNNStep("tanh", ap.ALPHA, False)
    acts = {k: jnp.asarray(v) for k, v in ap.networks(svcca_networks, seed=2).items()}
    start = time.perf_counter()
    Xs = jax.block_until_ready(_activity(step, acts, jnp.asarray(condition_inputs(0, 750))))
    activity_s = time.perf_counter() - start
    start = time.perf_counter()
    D = jax.block_until_ready(svcca_distances(Xs, batch_size=65536))
    svcca_first_s = time.perf_counter() - start
    start = time.perf_counter()
    D = jax.block_until_ready(svcca_distances(Xs, batch_size=65536))
    svcca_s = time.perf_counter() - start
    return {"networks": networks, "root_searches": networks * len(ap.PROBES) * starts, "lanes": lanes,
            "max_iters": max_iters, "fixed_points_s": fp_s, "fixed_points_compile_s": compile_s,
            "fraction_q_below_tol": float(np.mean(fps.converged)),
            "distinct_fixed_points_per_network_probe": float(np.mean(fps.valid.sum(-1))),
            "svcca_networks": svcca_networks, "pairs": svcca_networks * (svcca_networks - 1) // 2,
            "activity_s": activity_s, "svcca_first_call_s": svcca_first_s, "svcca_s": svcca_s,
            "svcca_finite": bool(np.all(np.isfinite(np.asarray(D)))),
            "total_wall_s_including_compilation": time.perf_counter() - total_start,
            "total_s_excluding_compilation": fp_s + activity_s + svcca_s}


WORKERS = {"matmul": work_matmul, "bptt": work_bptt, "fused_check": work_fused_check, "ppo": work_ppo,
           "closed_loop": work_closed_loop, "scaling": work_scaling, "analysis": work_analysis}


# ----------------------------------------------------------------------------- driver


def plan(job: str, quick: bool) -> list[tuple[str, dict, float]]:
    """``(worker, kwargs, timeout_s)`` of each row of ``job``."""
    if quick:
        return {
            "bptt": [("bptt", dict(population=4, updates=1, repeats=1, member_block=None), 120)],
            "bptt_fused": [("fused_check", dict(population=2, steps=20, batch=40), 120),
                           ("bptt", dict(population=2, updates=1, repeats=1, member_block=None, kernel="pallas",
                                         steps=20, batch=40), 120)],
            "ppo": [("ppo", dict(population=4, updates=1, repeats=1, warmup=0), 120)],
            "closed_loop": [("closed_loop", dict(population=4, updates=5, repeats=1, warmup=0), 120)],
            "scaling": [("scaling", dict(population=4), 120)],
            "analysis": [("analysis", dict(networks=4, starts=8, svcca_networks=8, lanes=64, max_iters=10), 120)],
        }[job]
    return {
        "bptt": [("matmul", dict(size=8192), 60),
                 ("bptt", dict(population=1, updates=8, repeats=2, member_block=None), 60),
                 ("bptt", dict(population=64, updates=4, repeats=2, member_block=None), 60),
                 ("bptt", dict(population=256, updates=2, repeats=2, member_block=None), 60),
                 ("bptt", dict(population=1920, updates=2, repeats=2, member_block=None), 150)],
        "ppo": [("ppo", dict(population=64, updates=5, repeats=2, warmup=1), 90),
                ("ppo", dict(population=1024, updates=100, repeats=1, warmup=0), 200)],
        "closed_loop": [("closed_loop", dict(population=64, updates=100, repeats=2, warmup=1), 60),
                        ("closed_loop", dict(population=4096, updates=1000, repeats=1, warmup=0), 150)],
        "scaling": [("scaling", dict(population=p), 60) for p in (1, 64, 1024, 4096, 16384)],
        "scaling_large": [("scaling", dict(population=p), 150) for p in (16384,)],
        "bptt_chunks": [("bptt", dict(population=1920, updates=2, repeats=2, member_block=block, trials_per_chunk=chunk), 90)
                        for block, chunk in ((960, 250), (480, 500))],
        "analysis": [("analysis", dict(networks=1920, starts=128, svcca_networks=1920, lanes=65536, max_iters=50), 300)],
        "bptt_fused": [("fused_check", dict(population=8), 90),
                       ("bptt", dict(population=64, updates=4, repeats=2, member_block=None, kernel="pallas"), 60),
                       *[("bptt", dict(population=1920, updates=2, repeats=2, member_block=block, trials_per_chunk=500,
                                       kernel=dict(block_trials=tile, num_warps=warps)), 90)
                         for block, tile, warps in ((480, 32, 4), (480, 64, 8), (480, 64, 4), (240, 32, 4))]],
    }[job]


def run_row(worker: str, kwargs: dict, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, json.dumps(kwargs)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE)
        if done.returncode == 0:
            row = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            row = {"error": done.stderr[-3000:]}
    except subprocess.TimeoutExpired:
        row = {"error": f"timed out after {timeout} s"}
    return {"worker": worker, **kwargs, **row, "wall_s": time.perf_counter() - start}


def machine() -> dict:
    import jax

    device = jax.devices()[0]
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        smi = None
    return {"backend": jax.default_backend(), "device_kind": device.device_kind, "devices": jax.device_count(),
            "nvidia_smi": smi, "jax": jax.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "XLA_PYTHON_CLIENT_MEM_FRACTION": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")}


TARGETS = {
    "bptt": "issue 2: >= 2,000 network-updates/s at population 1,920 on one H100",
    "ppo": "issue 4: 1,024 agents x 100 updates x 1,024 env steps in under 2 minutes on one H100",
    "closed_loop": "issue 3: 4,096 controllers trained 1,000 epochs in under 2 minutes on one H100",
    "bptt_chunks": "issue 2 (variants): trial chunks of 250 / 500 with member blocks of 960 / 480 at population 1,920",
    "scaling_large": "issue 7: the largest populations of the scaling series (longer time limits)",
    "bptt_fused": "issue 2 (variants): the fused Pallas kernel (rule.kernel = 'pallas'): its numbers against the "
                  "XLA path on the device, then population 64 and 1,920 with several tile settings",
    "scaling": "issue 7: network-updates/s per network falls by at most 10 % from 64 to the largest population",
    "analysis": "issue 6: fixed points and all pairwise distances for 1,920 networks in under 5 minutes on one H100",
}


NOTES = {
    "bptt": "float32 matmuls at JAX's default precision (TF32 on the H100: 359 TFLOP/s on an 8192^3 product, "
            "51 at HIGHEST); the time loop is bound by memory traffic (every step streams the [P, N, trials] "
            "state through HBM several times), so P >= 256 runs at 7-8.5 TFLOP/s",
    "ppo": "training only (rollout, GAE, 10 epochs x 4 minibatches, Adam), as ppo_population.py; the runner's "
           "per-update evaluation and params snapshots are not included; measured at commit c32f480, before "
           "vanilla_sequence's row layout",
    "closed_loop": "integrator fast path, groups of up to 2,147 members on the accelerator (4 GiB of stored rates)",
    "scaling": "the population runner's compiled chunk (BPTT on CDI, N = 50, T = 100, batch 32), memory budget 64 GiB; "
               "measured before runner.prepare was batched (4219e7d): the 4,096 and 16,384 rows' wall time went "
               "into building members one device op at a time",
    "analysis": "fixed points at full float32 matmul precision (jaxrnn.analysis.precision); "
                "the compile time is inside total_wall_s_including_compilation",
}
JOB_FILE = {"bptt_chunks": "bptt", "bptt_fused": "bptt", "scaling_large": "scaling"}  # extra rows of another job's file


def _key(row: dict) -> str:
    return json.dumps({k: row.get(k) for k in ("worker", "population", "updates", "member_block", "trials_per_chunk",
                                               "kernel", "networks", "size")}, sort_keys=True)


def targets(job: str, rows: list[dict]) -> dict:
    """Each job's GPU target, read off its rows (``met`` is None where the row is missing)."""
    ok = [r for r in rows if "error" not in r]
    if job == "bptt":
        at_1920 = [r for r in ok if r.get("population") == 1920 and "network_updates_per_s_best" in r]
        best = max(at_1920, key=lambda r: r["network_updates_per_s_best"], default=None)
        measured = None if best is None else best["network_updates_per_s_best"]
        return {"network_updates_per_s_at_1920_min": 2000, "measured": measured,
                "kernel_of_best": None if best is None else best.get("kernel", "xla"),
                "met": None if best is None else measured >= 2000}
    if job in ("ppo", "closed_loop"):
        size, updates = (1024, 100) if job == "ppo" else (4096, 1000)
        row = next((r for r in ok if r.get("population") == size and r.get("updates") == updates), None)
        return {"population": size, "updates": updates, "seconds_max": 120,
                "measured_seconds": None if row is None else row["seconds"],
                "compile_s": None if row is None else row["compile_s"],
                "met": None if row is None else row["seconds"] < 120}
    if job == "scaling":
        by_size = {r["population"]: r["network_updates_per_s"] for r in ok}
        if 64 not in by_size:
            return {"met": None}
        largest = max(by_size)
        drop = 1 - by_size[largest] / by_size[64]
        return {"drop_64_to_largest_max": 0.10, "largest_measured": largest, "measured_drop": drop, "met": drop <= 0.10}
    if job == "analysis":
        row = next((r for r in ok if r.get("networks") == 1920), None)
        return {"seconds_max": 300, "measured_total_wall_s_including_compilation":
                None if row is None else row["total_wall_s_including_compilation"],
                "met": None if row is None else row["total_wall_s_including_compilation"] < 300}
    return {}


def merge(folders: list[Path], out_dir: Path) -> None:
    """Merge the ``gpu-*.json`` of several lease calls into one file per benchmark in ``out_dir``.

    Rows of a later call replace an earlier call's row of the same configuration (a re-run after
    a fix or a longer time limit); a row's ``error`` is cut to its last line.
    """
    merged: dict[str, dict] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("gpu-*.json")):
            data = json.loads(path.read_text())
            job = data["benchmark"].removeprefix("gpu-")
            name = JOB_FILE.get(job, job)
            entry = merged.setdefault(name, {"benchmark": f"gpu-{name}", "commands": [], "machine": data["machine"],
                                             "target": TARGETS[name], "notes": NOTES[name], "rows": {}})
            entry["commands"].append(f"{data['command']}  ({data['time']})")
            entry["time"] = data["time"]
            for row in data["rows"]:
                if "error" in row:
                    row = {**row, "error": row["error"].strip().splitlines()[-1][:300]}
                entry["rows"][_key(row)] = row
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, entry in merged.items():
        entry["rows"] = list(entry["rows"].values())
        entry["command"] = entry["commands"][-1].split("  (")[0]
        entry["targets"] = targets(name, entry["rows"])
        (out_dir / f"gpu-{name}.json").write_text(json.dumps(entry, indent=1, default=float) + "\n")
        print(f"gpu-{name}.json: {len(entry['rows'])} rows, targets {entry['targets']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", nargs="+", default=["bptt", "ppo", "closed_loop", "scaling", "analysis"],
                        choices=list(TARGETS))
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (any backend)")
    parser.add_argument("--merge-from", nargs="+", type=Path, metavar="DIR",
                        help="merge the gpu-*.json files of these folders (one per lease call) into --out-dir")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.merge_from:
        merge(args.merge_from, args.out_dir)
        return
    if args.worker:
        sys.path.insert(0, str(HERE))
        row = WORKERS[args.worker[0]](**json.loads(args.worker[1]))
        row.update(_device_memory())
        print(json.dumps(row, default=float))
        return
    info = machine()
    if info["backend"] == "cpu" and not args.quick:
        print("benchmarks/gpu.py: no accelerator (JAX's backend is cpu): nothing measured; --quick runs a smoke test")
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for job in args.jobs:
        rows = []
        for worker, kwargs, timeout in plan(job, args.quick):
            row = run_row(worker, kwargs, timeout)
            if job == "bptt" and "error" in row and kwargs.get("population", 0) > 256:
                for block in (960, 480):  # smaller vmapped blocks if the whole population does not fit
                    rows.append(row)
                    row = run_row(worker, {**kwargs, "member_block": block}, timeout)
                    if "error" not in row:
                        break
            rows.append(row)
            summary = {k: row[k] for k in row if k not in ("error",) and not isinstance(row[k], (list, dict))}
            print(json.dumps(summary, default=float)[:600], flush=True)
            if "error" in row:
                print(f"  error: {row['error'][-800:]}", flush=True)
            result = {"benchmark": f"gpu-{job}", "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:]),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": info, "target": TARGETS[job],
                      "rows": rows}
            (args.out_dir / f"gpu-{job}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()

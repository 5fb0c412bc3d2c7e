"""Population analysis on CPU: batched fixed points and all-pairs SVCCA vs the study's loops.

1. **Fixed points** of 256 random CTRNNs (N = 50, tanh, α = 0.1, ``W_rec ~ N(0, 1.5²/N)``,
   ``W_in ~ 0.5·N(0, 1)``), 5 static inputs ``0.03·{0, ±0.5, ±1}``, 128 starts
   ``U(−5, 5)^N`` each (163,840 root searches):
   - jaxrnn: :func:`~jaxrnn.analysis.fixed_points.find_fixed_points_population` as
     :func:`jaxrnn.analysis.pipeline.analyze` runs it (``_fixed_points``): Levenberg–Marquardt in
     float32, every (network, probe, start) of a chunk in one work queue of ``--lanes`` lanes,
     closed-form normal equations from ``CTRNNStep.rate_map`` (Cholesky), eigenvalues of the
     distinct fixed points only, ``max_iters`` (default 50) per start. For reference, the generic
     path (``jax.jacfwd`` + LU, same queue) is timed on one chunk and extrapolated;
   - the study (McMahan et al. 2021, ``FP_Analysis.py``): ``scipy.optimize.root(F, x0,
     method="lm", tol=1e-8)`` per start, one network at a time, with
     ``F(x) = α(W_rec tanh(x) + W_in u + b) − αx`` (no Jacobian given, as the authors), then greedy
     de-duplication (tolerance 1e-2). **Timed on a subset of networks and starts and
     extrapolated linearly** to 163,840 searches (the JSON says so).
   Both are checked on the subset: fraction of starts with ``q = ½‖F‖² < 1e-8`` and fraction of
   the study's distinct fixed points that jaxrnn also finds (within 1e-2).
2. **SVCCA** over 200 networks: noise-free condition activity as the study (10 constant RDM inputs
   ``linspace(−0.1857, 0.1857, 10)`` × 750 steps → ``[7500, 50]`` per network), 95 % variance,
   19,900 pairs:
   - jaxrnn: :func:`jaxrnn.analysis.population_svcca.svcca_distances` (the pipeline's path;
     one SVD per network, one Gram matrix); also the generic per-pair
     ``similarity.pairwise("svcca")`` (timed on 40 networks and extrapolated);
   - the study (``svcca_analysis.py``): a Python loop over pairs, each centring and SVD-ing both
     networks and calling google/svcca ``cca_core.get_cca_similarity`` (ported below in NumPy,
     canonical directions included). **Timed on a subset of pairs and extrapolated.**

Compile time is reported separately from the timed (second) run. The machine is shared:
``os.getloadavg()`` is recorded before and after every measurement, and the process CPU time
(``cpu_seconds``) next to the wall time, with the fixed-point speed-up in both.

    python benchmarks/analysis_population.py [--quick] [--max-iters 50]

XLA's concurrency-optimised CPU scheduler is disabled here
(``--xla_cpu_enable_concurrency_optimized_scheduler=false``): with it, jaxlib 0.10.2 CPU
intermittently deadlocks (all worker threads idle, ``block_until_ready`` never returns) on the
batched-linear-algebra programs of this benchmark.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_concurrency_optimized_scheduler=false").strip()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

from jaxrnn.analysis.pipeline import _activity, _fixed_points, condition_inputs  # noqa: E402
from jaxrnn.analysis.stored_networks import CTRNNStep  # noqa: E402
from jaxrnn.analysis.population_svcca import svcca_distances  # noqa: E402
from jaxrnn.analysis.similarity import pairwise  # noqa: E402

HERE = Path(__file__).resolve().parent
N, ALPHA, GAIN = 50, 0.1, 1.5
PROBES = 0.03 * np.array([0.0, 0.5, -0.5, 1.0, -1.0])


def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "XLA_FLAGS": os.environ.get("XLA_FLAGS")}


def networks(num: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W_rec": (GAIN * rng.normal(size=(num, N, N)) / np.sqrt(N)).astype(np.float32),
            "W_in": (0.5 * rng.normal(size=(num, N, 1))).astype(np.float32),
            "b": np.zeros((num, N), np.float32), "W_out": (0.1 * rng.normal(size=(num, 1, N))).astype(np.float32)}


def timed(fn, repeats: int = 1):
    """Best of ``repeats`` calls (all recorded): the machine is shared, so the minimum is the estimate.

    ``cpu_seconds`` is the process CPU time (all threads) of that best call: unlike wall time it
    does not grow while other processes hold the cores.
    """
    load = os.getloadavg()
    seconds, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    info = {"loadavg_before": load, "loadavg_after": os.getloadavg(), "cpu_seconds": cpu[int(np.argmin(seconds))]}
    if repeats > 1:
        info["all_seconds"], info["all_cpu_seconds"] = seconds, cpu
    return out, min(seconds), info


def blas_threads(limit):
    """Context limiting NumPy's BLAS threads (None: library default)."""
    import contextlib

    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


# ---------------------------------------------------------------- fixed points
def jax_fixed_points(params, x0, chunk, max_iters, repeats, lanes, **extra):
    step = CTRNNStep("tanh", ALPHA, False)
    options = tuple(sorted(dict(method="lm", tol=1e-8, max_iters=int(max_iters), eigvals_of="valid", lanes=int(lanes),
                                **extra).items()))
    probes = jnp.asarray(PROBES[:, None], jnp.float32)
    run = lambda lo: _fixed_points(step, {k: jnp.asarray(v[lo:lo + chunk]) for k, v in params.items()},  # noqa: E731
                                   jnp.asarray(x0[lo:lo + chunk]), probes, options)
    _, first_s, _ = timed(lambda: run(0))
    parts, seconds, load = timed(lambda: [run(lo) for lo in range(0, len(x0), chunk)], repeats)
    fps = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)
    return fps, first_s - seconds * min(chunk, len(x0)) / len(x0), seconds, load


def study_fixed_points(W_rec, W_in, b, starts):
    """McMahan's FP_Analysis: scipy LM root per start, keep success, greedy de-dup at 1e-2."""
    W_rec, W_in, b = (np.asarray(a, np.float64) for a in (W_rec, W_in, b))
    found = []
    for u in PROBES:
        F = lambda x, u=u: ALPHA * (W_rec @ np.tanh(x) + W_in[:, 0] * u + b) - ALPHA * x  # noqa: E731
        roots = []
        for x0 in starts:
            sol = scipy.optimize.root(F, np.asarray(x0, np.float64), method="lm", tol=1e-8)
            if sol.success:
                roots.append((sol.x, 0.5 * float(np.sum(F(sol.x) ** 2))))
        clusters = []
        for x, q in roots:
            for c in clusters:
                if np.linalg.norm(c[0] / c[1] - x) < 1e-2:
                    c[0] += x
                    c[1] += 1
                    c[2] = min(c[2], q)
                    break
            else:
                clusters.append([x.copy(), 1, q])
        found.append({"num_roots": len(starts), "num_success": len(roots),
                      "num_q_ok": sum(q < 1e-8 for _, q in roots),
                      "points": [c[0] / c[1] for c in clusters if c[2] < 1e-8]})
    return found


# ---------------------------------------------------------------- SVCCA
def cca_core_similarity(acts1, acts2, epsilon=1e-10):
    """google/svcca ``cca_core.get_cca_similarity`` (NumPy port; neurons × datapoints inputs)."""
    numx = acts1.shape[0]
    covariance = np.cov(acts1, acts2)
    sxx, sxy = covariance[:numx, :numx], covariance[:numx, numx:]
    syx, syy = covariance[numx:, :numx], covariance[numx:, numx:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy = sxx / xmax, syy / ymax
    sxy, syx = sxy / np.sqrt(xmax * ymax), syx / np.sqrt(xmax * ymax)
    x_idx = np.abs(np.diagonal(sxx)) >= epsilon
    y_idx = np.abs(np.diagonal(syy)) >= epsilon
    sxx, syy = sxx[x_idx][:, x_idx], syy[y_idx][:, y_idx]
    sxy, syx = sxy[x_idx][:, y_idx], syx[y_idx][:, x_idx]
    sxx = sxx + epsilon * np.eye(len(sxx))
    syy = syy + epsilon * np.eye(len(syy))

    def inv_sqrt(a):
        w, v = np.linalg.eigh(a)
        return np.linalg.pinv(v @ np.diag(np.sqrt(np.maximum(w, 0))) @ v.T)

    ix, iy = inv_sqrt(sxx), inv_sqrt(syy)
    u, s, vh = np.linalg.svd(ix @ sxy @ iy)
    a1, a2 = acts1[x_idx], acts2[y_idx]
    m1, m2 = a1.mean(1, keepdims=True), a2.mean(1, keepdims=True)
    dirns1 = (u.T @ ix) @ (a1 - m1) + m1  # the canonical directions cca_core also returns
    dirns2 = (vh @ iy) @ (a2 - m2) + m2
    return {"cca_coef1": np.abs(s), "cca_dirns1": dirns1, "cca_dirns2": dirns2}


def study_svcca(X, Y, variance=0.95):
    """``svcca_analysis.py`` for one pair: centre, SVD both, keep 95 % variance, 1 − mean ρ."""
    svacts = []
    for A in (X.T.astype(np.float64), Y.T.astype(np.float64)):  # neurons × datapoints
        A = A - A.mean(axis=1, keepdims=True)
        _, s, V = np.linalg.svd(A, full_matrices=False)
        fraction = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(fraction, variance) + 1)
        svacts.append(s[:k, None] * V[:k])
    return 1.0 - float(np.mean(cca_core_similarity(*svacts)["cca_coef1"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=256)
    parser.add_argument("--starts", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=32, help="networks per compiled fixed-point call")
    parser.add_argument("--max-iters", type=int, default=50)
    parser.add_argument("--lanes", type=int, default=256, help="LM work-queue lanes")
    parser.add_argument("--study-networks", type=int, default=3, help="networks timed with scipy")
    parser.add_argument("--study-starts", type=int, default=16, help="starts per probe timed with scipy")
    parser.add_argument("--svcca-networks", type=int, default=200)
    parser.add_argument("--study-pairs", type=int, default=40, help="pairs timed with the NumPy loop")
    parser.add_argument("--steps", type=int, default=750)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of the jaxrnn fixed points (best kept)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "analysis_population-cpu.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.networks, args.starts, args.chunk, args.svcca_networks, args.steps = 8, 16, 4, 12, 100
        args.study_networks, args.study_starts, args.study_pairs = 1, 4, 6
    rows = []
    rng = np.random.default_rng(1)

    # 1. fixed points
    params = networks(args.networks)
    x0 = rng.uniform(-5, 5, size=(args.networks, args.starts, N)).astype(np.float32)
    searches = args.networks * len(PROBES) * args.starts
    fps, compile_s, jax_s, load = jax_fixed_points(params, x0, args.chunk, args.max_iters, args.repeats, args.lanes)
    rows.append({"task": "fixed_points", "method": f"jaxrnn find_fixed_points_population lm, work queue ({args.lanes} lanes) "
                                                   f"over networks x probes x starts, rate-map normal equations + Cholesky, "
                                                   f"max_iters {args.max_iters}",
                 "networks": args.networks, "root_searches": searches, "seconds": jax_s, "compile_s": compile_s,
                 "extrapolated": False, "fraction_q_below_tol": float(np.mean(fps.converged)),
                 "distinct_fixed_points_per_network_probe": float(np.mean(fps.valid.sum(-1))), **load})
    # The generic path (jacfwd + LU), same queue, on the first chunk: speed and agreement.
    part = min(args.chunk, args.networks)
    generic, _, generic_s, load = jax_fixed_points({k: v[:part] for k, v in params.items()}, x0[:part], part,
                                                   args.max_iters, 1, args.lanes, use_rate_map=False)
    same = generic.converged & fps.converged[:part]
    close = np.max(np.abs(generic.x - fps.x[:part]), axis=-1) < 1e-4
    rows.append({"task": "fixed_points", "method": f"jaxrnn generic path (jax.jacfwd + LU), same work queue, max_iters {args.max_iters}",
                 "networks": args.networks, "root_searches": searches, "seconds": generic_s * args.networks / part,
                 "extrapolated": True, "timed_networks": part, "timed_seconds": generic_s,
                 "fraction_q_below_tol": float(np.mean(generic.converged)),
                 "fraction_of_starts_ending_at_the_same_root_as_rate_map_path": float(np.mean(close[same])),
                 "distinct_fixed_points_per_network_probe": float(np.mean(generic.valid.sum(-1))), **load})
    sub = range(args.study_networks)
    starts = x0[:, : args.study_starts]
    study = {}
    for threads in (None, 1):  # the reference at its best BLAS thread setting (shared machine)
        with blas_threads(threads):
            study[threads] = timed(lambda: [study_fixed_points(params["W_rec"][i], params["W_in"][i], params["b"][i],
                                                               starts[i]) for i in sub])
    best_threads = min(study, key=lambda t: study[t][1])
    found, study_s, load = study[best_threads]
    load["blas_threads"] = best_threads or "default"
    load["timed_seconds_by_blas_threads"] = {str(t or "default"): v[1] for t, v in study.items()}
    timed_searches = args.study_networks * len(PROBES) * args.study_starts
    study_total = study_s / timed_searches * searches
    matched = total = 0
    for i, per_probe in zip(sub, found):
        for p, result in enumerate(per_probe):
            ours = fps.x[i, p][fps.valid[i, p]]
            for point in result["points"]:
                total += 1
                matched += bool(len(ours)) and np.min(np.linalg.norm(ours - point, axis=-1)) < 1e-2
    q_ok = sum(r["num_q_ok"] for f in found for r in f)
    rows.append({"task": "fixed_points", "method": "study: scipy.optimize.root lm per start, one network at a time",
                 "networks": args.networks, "root_searches": searches, "seconds": study_total, "extrapolated": True,
                 "timed_root_searches": timed_searches, "timed_seconds": study_s,
                 "extrapolation": f"timed {args.study_networks} networks x {len(PROBES)} probes x {args.study_starts} starts, "
                                  f"scaled linearly by {searches / timed_searches:.0f}",
                 "fraction_q_below_tol": q_ok / timed_searches,
                 "fraction_of_study_fixed_points_found_by_jaxrnn": matched / max(total, 1),
                 "study_distinct_fixed_points_checked": total, **load})
    fp_speedup = study_total / jax_s
    fp_speedup_cpu = load["cpu_seconds"] / timed_searches * searches / rows[0]["cpu_seconds"]
    print(f"fixed points: jaxrnn {jax_s:.1f} s (+{compile_s:.1f} s compile), study ~{study_total:.0f} s -> {fp_speedup:.1f}x "
          f"(CPU time: {fp_speedup_cpu:.1f}x)")

    # 2. SVCCA
    K = args.svcca_networks
    step = CTRNNStep("tanh", ALPHA, False)
    acts = {k: jnp.asarray(v) for k, v in networks(K, seed=2).items()}
    Xs, sim_s, _ = timed(lambda: _activity(step, acts, jnp.asarray(condition_inputs(0, args.steps))))
    pairs = K * (K - 1) // 2
    _, first_s, _ = timed(lambda: svcca_distances(Xs))  # compiles (shapes depend on K and k_max)
    D, jax_s, load = timed(lambda: svcca_distances(Xs), repeats=3)
    compile_s = first_s - jax_s
    D = np.asarray(D)
    rows.append({"task": "svcca", "method": "jaxrnn svcca_distances (one SVD per network + Gram matrix)", "networks": K,
                 "pairs": pairs, "samples": int(Xs.shape[1]), "seconds": jax_s, "compile_s": compile_s,
                 "activity_simulation_s": sim_s, "extrapolated": False, **load})
    k_sub = min(K, 40)
    _, first_s, _ = timed(lambda: pairwise("svcca", Xs[:k_sub]))
    _, sub_s, load = timed(lambda: pairwise("svcca", Xs[:k_sub]), repeats=2)
    compile_s = first_s - sub_s
    sub_pairs = k_sub * (k_sub - 1) // 2
    rows.append({"task": "svcca", "method": "jaxrnn similarity.pairwise('svcca') (per-pair covariances)", "networks": K,
                 "pairs": pairs, "seconds": sub_s / sub_pairs * pairs, "compile_s": compile_s, "extrapolated": True,
                 "timed_pairs": sub_pairs, "timed_seconds": sub_s, **load})
    Xn = np.asarray(Xs)
    chosen = [tuple(p) for p in rng.choice(np.stack(np.triu_indices(K, 1), 1), size=args.study_pairs, replace=False)]
    study = {}
    for threads in (None, 1):
        with blas_threads(threads):
            study[threads] = timed(lambda: [study_svcca(Xn[i], Xn[j]) for i, j in chosen])
    best_threads = min(study, key=lambda t: study[t][1])
    reference, study_s, load = study[best_threads]
    load["blas_threads"] = best_threads or "default"
    load["timed_seconds_by_blas_threads"] = {str(t or "default"): v[1] for t, v in study.items()}
    study_total = study_s / len(chosen) * pairs
    error = float(np.max(np.abs(np.asarray(reference) - np.asarray([D[i, j] for i, j in chosen]))))
    rows.append({"task": "svcca", "method": "study: Python loop over pairs, NumPy SVD + cca_core per pair", "networks": K,
                 "pairs": pairs, "seconds": study_total, "extrapolated": True, "timed_pairs": len(chosen),
                 "timed_seconds": study_s, "extrapolation": f"timed {len(chosen)} random pairs, scaled by {pairs / len(chosen):.0f}",
                 "max_abs_difference_to_jaxrnn": error, **load})
    svcca_speedup = study_total / jax_s
    print(f"svcca: jaxrnn {jax_s:.1f} s, study ~{study_total:.0f} s -> {svcca_speedup:.1f}x (max |diff| {error:.2e})")

    report = {"benchmark": "analysis_population", "command": "python benchmarks/analysis_population.py"
              + (" --quick" if args.quick else ""), "machine": machine(), "rows": rows,
              "targets": {"fixed_points_speedup_target": 20.0, "fixed_points_speedup": fp_speedup,
                          "fixed_points_speedup_cpu_time": fp_speedup_cpu,
                          "svcca_speedup_target": 10.0, "svcca_speedup": svcca_speedup},
              "notes": "study timings are extrapolated from the timed subsets (linear in searches / pairs); "
                       "the rate-map and generic jaxrnn paths agree to float32 rounding, which float32 LM amplifies: "
                       "~5 % of starts end at another root (as they do when the start moves by one ulp); "
                       "jaxrnn timings exclude compilation (compile_s is the first call); shared, loaded 2-core machine: "
                       "see loadavg_before/after per row"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
